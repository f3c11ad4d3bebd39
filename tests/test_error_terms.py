"""Library errors speak library terms; the CLI names its options instead.

A notebook user calling the library reads ``max_gap '0x' must be above 0``
and hints like ``use `threshold=pot` ...``; the CLI turns the parameter an
error begins with (``param``) and every marked one (`` `name` ``,
`` `name=value` ``) into options: ``--max-gap '0x' ...``, ``--threshold pot``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rareevent import gaps, windows
from rareevent.cli.console import option_of, terms
from rareevent.cli.main import app
from rareevent.detector import RareEventDetector, require_bottleneck
from rareevent.errors import RareEventError
from rareevent.load import load_csv
from rareevent.runs import check_run_name, check_runs_dir
from rareevent.threshold import check_labels, parse_strategy
from rareevent.options import (
    InputSpec,
    ReadOptions,
    Resampling,
    check_fill,
    check_fractions,
    check_max_gap,
)


def raised(call: Callable[[], object]) -> RareEventError:
    with pytest.raises(RareEventError) as info:
        call()
    return info.value


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


TIMED = "time,a,b\n" + "".join(
    f"2026-01-01 00:{minute:02d}:00,{minute},{minute % 3}\n" for minute in range(20)
)


def bad_inputs(tmp_path: Path) -> dict[str, Callable[[], object]]:
    """Library calls with one bad input each, over the modules that check parameters."""
    return {
        "max_gap-zero": lambda: check_max_gap("0x"),
        "max_gap-word": lambda: check_max_gap("soon"),
        "max_gap-no-time": lambda: gaps.resolve_max_gap("10min", None, None, "f.csv"),
        "max_gap-numbers": lambda: gaps.resolve_max_gap(
            "10min", np.arange(5.0), "t", "f.csv"
        ),
        "agg": lambda: Resampling("1min", "sum"),
        "resample": lambda: gaps.grid_step(
            Resampling("0min"),
            np.arange(5).astype("datetime64[m]").astype("datetime64[ns]"),
            "t",
        ),
        "decimal": lambda: ReadOptions(decimal="x"),
        "time_unit": lambda: ReadOptions(time_unit="h"),
        "contradict": lambda: ReadOptions(time_format="%d.%m.%Y", dayfirst=True),
        "time_format": lambda: ReadOptions(time_format="dd.mm"),
        "fill": lambda: check_fill("mean"),
        "unknown-drop": lambda: load_csv(
            write(tmp_path, TIMED), InputSpec(drop=["nope"])
        ),
        "blank-cell": lambda: load_csv(write(tmp_path, "a,b\n1,2\n,3\n", "blank.csv")),
        "other-decimal": lambda: load_csv(
            write(tmp_path, "a;b\n0,5;1\n0,25;1\n0.5;2\n", "semi.csv")
        ),
        "bad-label": lambda: load_csv(
            write(tmp_path, "a,label\n1,0\n2,7\n", "label.csv")
        ),
        "time-format-mismatch": lambda: load_csv(
            write(tmp_path, TIMED, "fmt.csv"),
            InputSpec(read=ReadOptions(time_format="%d.%m.%Y %H:%M")),
        ),
        "valid_frac-zero": lambda: check_fractions(0.0, 0.1),
        "fractions-sum": lambda: check_fractions(0.5, 0.45),
        "threshold-no-labels": lambda: RareEventDetector(
            arch="pca", threshold="f1"
        ).fit_parts(np.zeros((20, 2)), None, np.zeros((20, 2)), None),
        "threshold-no-positive": lambda: check_labels(
            parse_strategy("f1"), np.zeros(5, np.int8)
        ),
        "lookback-short": lambda: RareEventDetector(arch="pca", lookback=30).fit_parts(
            np.zeros((20, 2)), None, np.zeros((40, 2)), None
        ),
        "no-bottleneck": lambda: require_bottleneck("plain"),
        "run-name": lambda: check_run_name(".hidden"),
        "runs_dir": lambda: check_runs_dir(write(tmp_path, "not a folder", "runs")),
    }


def test_library_errors_name_parameters_not_options(tmp_path: Path) -> None:
    """No message or hint the library raises names an option (``--x``); every marked parameter is an option of the CLI."""
    options = terms.options()
    for case, call in bad_inputs(tmp_path).items():
        error = raised(call)
        for text in (error.message, error.hint or ""):
            assert "--" not in text, f"{case}: {text!r}"
        cli_line = terms.error_line(error)
        assert "`" not in cli_line, (
            f"{case}: a marked name the CLI has no option for: {cli_line!r}"
        )
        if error.param:
            assert (
                error.message.startswith(error.param)
                or f"`{error.param}`" in error.message
            ), case
            assert option_of(error.param) in options, case


@pytest.mark.parametrize(
    ("call", "message", "hint", "param"),
    [
        (lambda: check_max_gap("0x"), "max_gap '0x' must be above 0", None, "max_gap"),
        (
            lambda: gaps.resolve_max_gap("10min", None, None, "f.csv"),
            "f.csv: `max_gap` needs a time column",
            "name it with `time`, or leave `max_gap` out",
            "max_gap",
        ),
        (
            lambda: Resampling("1min", "sum"),
            "agg 'sum': use one of mean, last, max",
            None,
            "agg",
        ),
        (
            lambda: ReadOptions(decimal="x"),
            "decimal 'x': use ',' or '.'",
            None,
            "decimal",
        ),
        (
            lambda: ReadOptions(time_format="%d.%m.%Y", dayfirst=True),
            "`time_format` and `dayfirst` contradict each other: give one of them",
            None,
            None,
        ),
        (
            lambda: check_fill("mean"),
            "fill 'mean': use one of ffill, interpolate, drop",
            None,
            "fill",
        ),
        (
            lambda: check_fractions(0.0, 0.1),
            "valid_frac must be above 0: the threshold and early stopping need a validation part",
            None,
            "valid_frac",
        ),
        (
            lambda: check_fractions(1.5, 0.1),
            "valid_frac must be in [0, 1), got 1.5",
            None,
            "valid_frac",
        ),
        (
            lambda: RareEventDetector(arch="pca", threshold="f1").fit_parts(
                np.zeros((20, 2)), None, np.zeros((20, 2)), None
            ),
            "threshold f1 needs a label column",
            "use `threshold=pot` (or quantile) for data without labels",
            "threshold",
        ),
        (
            lambda: require_bottleneck("plain"),
            "a 'plain' run has no encoded vector: only 'ae' runs have a bottleneck",
            "train with `arch=ae`",
            None,
        ),
    ],
)
def test_library_wording(
    call: Callable[[], object], message: str, hint: str | None, param: str | None
) -> None:
    error = raised(call)
    assert (error.message, error.hint, error.param) == (message, hint, param)


def test_file_errors_mark_parameters_in_hints(tmp_path: Path) -> None:
    blank = raised(lambda: load_csv(write(tmp_path, "a,b\n1,2\n,3\n", "blank.csv")))
    assert blank.hint == "repair with `fill=ffill`, `fill=interpolate` or `fill=drop`"
    unknown = raised(lambda: load_csv(write(tmp_path, TIMED), InputSpec(drop=["nope"])))
    assert (unknown.message, unknown.param) == (
        f"{tmp_path / 'data.csv'}: `drop` names unknown column 'nope'",
        "drop",
    )
    decimal = raised(
        lambda: load_csv(write(tmp_path, "a;b\n0,5;1\n0,25;1\n0.5;2\n", "semi.csv"))
    )
    assert (
        decimal.hint
        == "the file is read with decimal mark ','; pass `decimal=.` if '.' is its decimal mark"
    )


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            RareEventError("max_gap '0x' must be above 0", param="max_gap"),
            "--max-gap '0x' must be above 0",
        ),
        (
            RareEventError(
                "f.csv: `max_gap` needs a time column",
                hint="name it with `time`, or leave `max_gap` out",
            ),
            "f.csv: --max-gap needs a time column (hint: name it with --time, or leave --max-gap out)",
        ),
        (
            RareEventError("bad", hint="pass `time_format='%m.%d.%Y'` or `fill=drop`"),
            "bad (hint: pass --time-format '%m.%d.%Y' or --fill drop)",
        ),
        (
            RareEventError("few rows", hint="raise `validation_fraction`"),
            "few rows (hint: raise --valid-frac)",
        ),
        (
            RareEventError("score_kind must be one of mean, last", param="score_kind"),
            "--score must be one of mean, last",
        ),
        # ordinary words, unmarked names and marked names that are no option stay as written
        (
            RareEventError("the time column 'fill' holds `temp`"),
            "the time column 'fill' holds `temp`",
        ),
    ],
)
def test_cli_names_options(error: RareEventError, line: str) -> None:
    assert terms.error_line(error) == line


def test_cli_output_names_options(tmp_path: Path) -> None:
    """The library's parameter words reach a CLI user as options, on one ``error:`` line."""
    path = write(tmp_path, TIMED)
    runner = CliRunner()
    cases = [
        (
            ["train", str(path), "--max-gap", "0x"],
            "error: --max-gap '0x' must be above 0",
        ),
        (
            ["train", str(path), "--drop", "nope"],
            f"error: {path}: --drop names unknown column 'nope' (hint: columns are time, a, b)",
        ),
        (
            ["train", str(path), "--time-format", "%d.%m.%Y", "--dayfirst"],
            "error: --time-format and --dayfirst contradict each other: give one of them",
        ),
    ]
    for args, expected in cases:
        result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == expected


def test_library_notes_reach_the_cli_as_options(tmp_path: Path) -> None:
    """The day/month note names `time_format` in the library, ``--time-format`` on the command line."""
    rows = "".join(
        f"{day:02d}.01.2026 {hour:02d}:00,{(day * 7 + hour) % 5},{hour % 3}\n"
        for day in range(1, 4)
        for hour in range(24)
    )
    path = write(tmp_path, "Zeit,a,b\n" + rows)
    data = load_csv(path, InputSpec(time="Zeit"))
    assert data.reading.order_note("Zeit").endswith(
        "pass `time_format='%m.%d.%Y %H:%M'` for the other order"
    )
    args = [
        "train",
        str(path),
        "--time",
        "Zeit",
        "--arch",
        "pca",
        "--lookback",
        "3",
        "--threshold",
        "quantile",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().endswith(
        "pass --time-format '%m.%d.%Y %H:%M' for the other order"
    )
