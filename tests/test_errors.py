"""Bad input: every failing command gives exit code 2 and one ``error:`` line, and writes nothing.

Each case of :func:`test_bad_input` builds its inputs in ``tmp_path`` (a copy
of a trained run under ``runs/``, data files under ``data/``, an empty
``out/`` for outputs), invokes the CLI in-process and checks

* exit code 2,
* exactly one non-empty stderr line, starting with ``error:`` and holding
  the expected fragments (file name, column, ``line N``, hint),
* no traceback anywhere,
* ``tmp_path`` byte-for-byte as before: no run folder, no hidden ``.tmp-*``
  entry, no output file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import TINY, TINY_PCA, snapshot, synthetic_frame
from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.runs import read_record

RAREEVENT = Path(sys.executable).parent / "rareevent"
GOOD_TEXT = synthetic_frame().to_csv(index=False, float_format="%.5f")
GOOD_LINES = (
    GOOD_TEXT.splitlines()
)  # GOOD_LINES[n - 1] is file line n; line 1 is the header
COLUMNS = GOOD_LINES[0].split(",")  # timestamp, s1, s2, s3, label


# ---------------------------------------------------------------- helpers


def has_fragment(text: str, fragment: str) -> bool:
    """``fragment`` in ``text``, not followed by another digit (``line 8`` must not match ``line 80``)."""
    return re.search(re.escape(fragment) + r"(?!\d)", text) is not None


def assert_one_error_line(
    stdout: str, stderr: str, fragments: tuple[str, ...] = ()
) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert has_fragment(line, fragment), f"{fragment!r} missing from {line!r}"
    assert "Traceback" not in stdout + stderr
    return line


def edit(line: int, column: str, value: str, lines: list[str] | None = None) -> str:
    """The good CSV text with the cell ``column`` of file line ``line`` set to ``value``."""
    lines = list(GOOD_LINES if lines is None else lines)
    cells = lines[line - 1].split(",")
    cells[COLUMNS.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def with_line(line: int, text: str) -> str:
    lines = list(GOOD_LINES)
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    """One bad-input case: a command line built in ``tmp_path`` and what the error must say."""

    id: str
    build: Callable[[Path], list[str]]
    fragments: tuple[str, ...]
    xfail: str | None = None


def data(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / "data" / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return f"data/{name}"


def train_cmd(path: str, *extra: str, model: list[str] = TINY) -> list[str]:
    return ["train", path, *model, "--runs-dir", "runs", *extra]


def score_cmd(path: str, *extra: str, run: str = "runs/tiny-ae") -> list[str]:
    return [
        "score",
        path,
        "--run",
        run,
        "--runs-dir",
        "runs",
        "--output",
        "out/windows.csv",
        *extra,
    ]


def encode_cmd(path: str, *extra: str, run: str = "runs/tiny-ae") -> list[str]:
    return [
        "encode",
        path,
        "--run",
        run,
        "--runs-dir",
        "runs",
        "--output",
        "out/codes.csv",
        *extra,
    ]


def good(tmp: Path) -> str:
    return data(tmp, "good.csv", GOOD_TEXT)


def latin1_late(tmp: Path) -> str:
    """A non-UTF-8 byte beyond the first 64 KiB (line 2501), found by the reader, not the sniffer."""
    lines = (
        synthetic_frame(n=3000).to_csv(index=False, float_format="%.5f").splitlines()
    )
    cells = lines[2500].split(",")
    cells[1] = "caf\xe9"
    lines[2500] = ",".join(cells)
    return data(tmp, "late.csv", ("\n".join(lines) + "\n").encode("latin-1"))


def corrupt_run(
    change: Callable[[Path], None], command: Callable[..., list[str]] = score_cmd
) -> Callable[[Path], list[str]]:
    """Damage the run copy ``runs/tiny-ae`` with ``change``, then score (or encode) a good file with it."""

    def build(tmp: Path) -> list[str]:
        change(tmp / "runs" / "tiny-ae")
        return command(good(tmp))

    return build


def set_record(**fields: object) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        record.update(fields)
        (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")

    return change


def truncate_model(folder: Path) -> None:
    blob = (folder / "model.weights.h5").read_bytes()
    (folder / "model.weights.h5").write_bytes(blob[: len(blob) // 2])


def set_param(**fields: object) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        config = json.loads((folder / "detector.json").read_text(encoding="utf-8"))
        config["params"].update(fields)
        (folder / "detector.json").write_text(json.dumps(config), encoding="utf-8")

    return change


def multiline_note(line: int, column: str, value: str) -> str:
    """The good CSV plus a ``note`` column (to ``--drop``) whose cell in line 100 spans two lines,
    with the cell ``column`` set to ``value`` in the row an editor shows at ``line`` (one more than its record number)."""
    lines = [GOOD_LINES[0] + ",note", *(row + "," for row in GOOD_LINES[1:])]
    lines[99] += '"a\nb"'
    return edit(line - 1, column, value, lines)


def damaged_record(**fields: object) -> Callable[[Path], list[str]]:
    """``report`` of the run copy ``runs/tiny-ae`` after ``set_record(**fields)``, by name."""

    def build(tmp: Path) -> list[str]:
        set_record(**fields)(tmp / "runs" / "tiny-ae")
        return ["report", "tiny-ae", "--runs-dir", "runs"]

    return build


RAGGED_LONG = with_line(11, GOOD_LINES[10] + ",7")
RAGGED_SHORT = with_line(11, ",".join(GOOD_LINES[10].split(",")[:3]))
NO_LABEL = (
    synthetic_frame().drop(columns=["label"]).to_csv(index=False, float_format="%.5f")
)
EU_TEXT = synthetic_frame().to_csv(
    index=False, sep=";", decimal=",", float_format="%.5f"
)  # as Excel writes it in Germany
AMBIGUOUS = (
    "a;b\n" + "".join(f"{i};{i % 7}\n" for i in range(30)) + "1,234;5\n"
)  # integers only: nothing settles the decimal mark
EPOCH_MS = "timestamp,s1\n" + "".join(
    f"{1767225600000 + 60000 * i},{i % 5}\n" for i in range(40)
)

CASES = [
    # ------------------------------------------------------------ train: the file itself
    Case(
        "train-missing-file",
        lambda t: train_cmd("data/missing.csv"),
        ("missing.csv", "not found"),
    ),
    Case("train-folder-as-file", lambda t: train_cmd("data"), ("data", "folder")),
    Case(
        "train-empty-file",
        lambda t: train_cmd(data(t, "empty.csv", "")),
        ("empty.csv", "empty"),
    ),
    Case(
        "train-header-only",
        lambda t: train_cmd(data(t, "header.csv", GOOD_LINES[0] + "\n")),
        ("header.csv", "no data rows"),
    ),
    Case(
        "train-fewer-rows-than-window",
        lambda t: train_cmd(data(t, "few.csv", "\n".join(GOOD_LINES[:3]) + "\n")),
        ("few.csv", "lookback 3"),
    ),
    Case(
        "train-too-few-rows-for-validation",
        lambda t: train_cmd(data(t, "short.csv", "\n".join(GOOD_LINES[:13]) + "\n")),
        ("short.csv", "lookback 3"),
    ),
    Case(
        "train-ragged-row-extra-field",
        lambda t: train_cmd(data(t, "ragged.csv", RAGGED_LONG)),
        ("ragged.csv", "line 11", "fields"),
    ),
    Case(
        "train-ragged-row-missing-field",
        lambda t: train_cmd(data(t, "ragged_short.csv", RAGGED_SHORT)),
        ("ragged_short.csv", "line 11", "fields"),
    ),
    Case(
        "train-duplicate-column",
        lambda t: train_cmd(
            data(t, "dup.csv", with_line(1, "timestamp,s1,s1,s3,label"))
        ),
        ("dup.csv", "'s1'", "line 1"),
    ),
    Case(
        "train-non-numeric-text",
        lambda t: train_cmd(data(t, "text.csv", edit(8, "s2", "abc"))),
        ("text.csv", "'s2'", "line 8", "'abc'"),
    ),
    Case(
        "train-blank-cell",
        lambda t: train_cmd(data(t, "blank.csv", edit(10, "s1", ""))),
        ("blank.csv", "'s1'", "line 10", "hint: repair with --fill"),
    ),
    Case(
        "train-nan-cell",
        lambda t: train_cmd(data(t, "nan.csv", edit(10, "s3", "NaN"))),
        ("nan.csv", "'s3'", "line 10", "--fill"),
    ),
    Case(
        "train-inf",
        lambda t: train_cmd(data(t, "inf.csv", edit(12, "s1", "inf"))),
        ("inf.csv", "'s1'", "line 12", "infinite"),
    ),
    Case(
        "train-minus-inf",
        lambda t: train_cmd(data(t, "minf.csv", edit(12, "s2", "-inf"))),
        ("minf.csv", "'s2'", "line 12", "infinite"),
    ),
    Case(
        "train-label-not-0-1",
        lambda t: train_cmd(data(t, "label2.csv", edit(14, "label", "2"))),
        ("label2.csv", "'label'", "line 14", "0 or 1"),
    ),
    Case(
        "train-label-text",
        lambda t: train_cmd(data(t, "labelyes.csv", edit(14, "label", "yes"))),
        ("labelyes.csv", "'label'", "line 14", "'yes'"),
    ),
    Case(
        "train-unknown-label",
        lambda t: train_cmd(good(t), "--label", "event"),
        ("good.csv", "--label", "'event'", "hint: columns are"),
    ),
    Case(
        "train-unknown-time",
        lambda t: train_cmd(good(t), "--time", "when"),
        ("good.csv", "--time", "'when'", "hint: columns are"),
    ),
    Case(
        "train-unknown-drop",
        lambda t: train_cmd(good(t), "--drop", "s1,s9"),
        ("good.csv", "--drop", "'s9'", "hint: columns are"),
    ),
    Case(
        "train-time-unparseable",
        lambda t: train_cmd(data(t, "timebad.csv", edit(16, "timestamp", "noon-ish"))),
        ("timebad.csv", "'timestamp'", "line 16", "'noon-ish'"),
    ),
    Case(
        "train-time-backwards",
        lambda t: train_cmd(
            data(t, "timeback.csv", edit(16, "timestamp", "2025-12-31 00:00:00"))
        ),
        ("timeback.csv", "'timestamp'", "line 16", "backwards"),
    ),
    Case(
        "train-time-repeats",
        lambda t: train_cmd(
            data(t, "timerep.csv", edit(16, "timestamp", GOOD_LINES[14].split(",")[0]))
        ),
        ("timerep.csv", "'timestamp'", "line 16", "repeats"),
    ),
    Case(
        "train-pipe-delimiter",
        lambda t: train_cmd(data(t, "pipe.csv", GOOD_TEXT.replace(",", "|"))),
        ("pipe.csv", "one column", "hint:"),
    ),
    Case(
        "train-binary",
        lambda t: train_cmd(
            data(
                t,
                "image.csv",
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
            )
        ),
        ("image.csv", "binary"),
    ),
    Case(
        "train-not-utf8",
        lambda t: train_cmd(
            data(t, "latin1.csv", edit(21, "s1", "caf\xe9").encode("latin-1"))
        ),
        ("latin1.csv", "line 21", "UTF-8", "hint:"),
    ),
    Case(
        "train-not-utf8-after-64k",
        lambda t: train_cmd(latin1_late(t)),
        ("late.csv", "line 2501", "UTF-8"),
    ),
    Case(
        "train-no-feature-columns",
        lambda t: train_cmd(good(t), "--drop", "s1,s2,s3"),
        ("good.csv", "no feature columns"),
    ),
    Case(
        "train-threshold-f1-without-labels",
        lambda t: train_cmd(data(t, "nolabel.csv", NO_LABEL), "--threshold", "f1"),
        ("f1", "label", "hint:"),
    ),
    Case(
        "train-threshold-f1-no-positive-validation-window",
        lambda t: train_cmd(
            data(
                t,
                "oneevent.csv",
                synthetic_frame(events=(150,)).to_csv(index=False, float_format="%.5f"),
            ),
            "--threshold",
            "f1",
        ),
        ("--threshold f1", "positive", "validation", "hint:"),
    ),
    Case(
        "train-name-exists",
        lambda t: train_cmd(good(t), "--name", "tiny-ae"),
        ("tiny-ae", "already exists", "--overwrite"),
    ),
    # ------------------------------------------------------------ train: how cells are read (issue 15)
    Case(
        "train-decimal-point-forced-on-commas",
        lambda t: train_cmd(data(t, "eu.csv", EU_TEXT), "--decimal", "."),
        ("eu.csv", "non-numeric value", "'s1'", "line 2", "hint:", "--decimal ,"),
    ),
    Case(
        "train-ambiguous-thousands",
        lambda t: train_cmd(data(t, "ambig.csv", AMBIGUOUS)),
        ("ambig.csv", "ambiguous number '1,234'", "'a'", "line 32", "--decimal ."),
    ),
    Case(
        "train-broken-thousands-groups",
        lambda t: train_cmd(
            data(t, "groups.csv", EU_TEXT.replace(";0,", ";1.23.4,", 1))
        ),
        ("groups.csv", "non-numeric value '1.23.4", "line 2"),
    ),
    Case(
        "train-mixed-time-formats",
        lambda t: train_cmd(
            data(t, "mixed.csv", edit(16, "timestamp", "01.01.2026 00:14:00"))
        ),
        ("mixed.csv", "'timestamp'", "line 16", "does not match ISO 8601", "hint:"),
    ),
    Case(
        "train-time-format-mismatch",
        lambda t: train_cmd(good(t), "--time-format", "%d.%m.%Y %H:%M"),
        ("good.csv", "'timestamp'", "line 2", "does not match the time format"),
    ),
    Case(
        "train-bad-decimal-option",
        lambda t: train_cmd(good(t), "--decimal", ";"),
        ("--decimal", "';'"),
    ),
    Case(
        "train-bad-time-format-option",
        lambda t: train_cmd(good(t), "--time-format", "%Q"),
        ("--time-format", "'%Q'", "strftime"),
    ),
    Case(
        "train-dayfirst-and-time-format",
        lambda t: train_cmd(good(t), "--dayfirst", "--time-format", "%d.%m.%Y"),
        ("--time-format and --dayfirst",),
    ),
    Case(
        "train-dayfirst-on-iso-times",
        lambda t: train_cmd(good(t), "--dayfirst"),
        ("good.csv", "--dayfirst", "'timestamp'", "line 2"),
    ),
    Case(
        "train-time-unit-out-of-range",
        lambda t: train_cmd(data(t, "epoch.csv", EPOCH_MS), "--time-unit", "s"),
        ("epoch.csv", "'timestamp'", "line 2", "out of range", "--time-unit ms"),
    ),
    Case(
        "train-time-unit-on-dates",
        lambda t: train_cmd(good(t), "--time-unit", "s"),
        ("good.csv", "'timestamp'", "line 2", "number of s since 1970"),
    ),
    # ------------------------------------------------------------ score: the data file
    Case(
        "score-missing-file",
        lambda t: score_cmd("data/missing.csv"),
        ("missing.csv", "not found"),
    ),
    Case(
        "score-missing-trained-columns",
        lambda t: score_cmd(
            data(
                t,
                "two.csv",
                synthetic_frame().drop(columns=["s2", "s3"]).to_csv(index=False),
            )
        ),
        ("two.csv", "s2", "s3"),
    ),
    Case(
        "score-fewer-rows-than-window",
        lambda t: score_cmd(data(t, "few.csv", "\n".join(GOOD_LINES[:3]) + "\n")),
        ("few.csv", "at least 3 rows"),
    ),
    Case(
        "score-blank-cell-in-later-chunk",
        lambda t: score_cmd(
            data(t, "blank.csv", edit(301, "s2", "")), "--chunk-rows", "50"
        ),
        ("blank.csv", "'s2'", "line 301", "--fill"),
    ),
    Case(
        "score-time-repeats-across-chunks",
        lambda t: score_cmd(
            data(t, "rep.csv", edit(52, "timestamp", GOOD_LINES[50].split(",")[0])),
            "--chunk-rows",
            "50",
        ),
        ("rep.csv", "line 52", "repeats"),
    ),
    Case(
        "score-label-not-0-1",
        lambda t: score_cmd(data(t, "label2.csv", edit(99, "label", "-1"))),
        ("label2.csv", "'label'", "line 99"),
    ),
    Case(
        "score-not-utf8-after-64k",
        lambda t: score_cmd(latin1_late(t), "--chunk-rows", "100"),
        ("late.csv", "line 2501", "UTF-8"),
    ),
    Case(
        "score-ragged-row-extra-field",
        lambda t: score_cmd(data(t, "ragged.csv", RAGGED_LONG)),
        ("ragged.csv", "line 11", "fields"),
    ),
    Case(
        "score-metrics-out-without-label",
        lambda t: score_cmd(
            data(t, "nolabel.csv", NO_LABEL), "--metrics-out", "out/metrics.json"
        ),
        ("nolabel.csv", "'label'", "--metrics-out"),
    ),
    Case(
        "score-time-format-mismatch",
        lambda t: score_cmd(
            good(t), "--time-format", "%d.%m.%Y %H:%M", "--chunk-rows", "50"
        ),
        ("good.csv", "line 2", "does not match the time format"),
    ),
    Case(
        "score-bad-time-unit-option",
        lambda t: score_cmd(good(t), "--time-unit", "h"),
        ("--time-unit", "'h'"),
    ),
    Case(
        "score-output-wrong-suffix",
        lambda t: [
            "score",
            good(t),
            "--run",
            "runs/tiny-ae",
            "--output",
            "out/windows.txt",
        ],
        ("windows.txt", ".csv"),
    ),
    # ------------------------------------------------------------ score: the run folder
    Case(
        "score-run-not-found",
        lambda t: score_cmd(good(t), run="runs/nope"),
        ("nope", "not found"),
    ),
    Case(
        "score-no-runs-at-all",
        lambda t: ["score", good(t), "--runs-dir", "empty-runs"],
        ("empty-runs", "no runs", "hint:"),
    ),
    Case(
        "score-run-json-not-json",
        corrupt_run(
            lambda f: (f / "run.json").write_text("{not json", encoding="utf-8")
        ),
        ("run.json", "not valid JSON"),
    ),
    Case(
        "score-run-json-missing",
        corrupt_run(lambda f: (f / "run.json").unlink()),
        ("tiny-ae", "run.json"),
    ),
    Case(
        "score-format-version-newer",
        corrupt_run(set_record(format_version=99)),
        ("run.json", "99", "newer", "hint: upgrade"),
    ),
    Case(
        "score-run-json-bad-field",
        corrupt_run(set_record(metrics=[])),
        ("run.json", "'metrics'"),
    ),
    Case(
        "score-detector-json-bad-param",
        corrupt_run(set_param(lookback="three")),
        ("detector.json", "lookback must be an integer, got 'three'"),
    ),
    Case(
        "score-run-json-bad-reading",
        corrupt_run(set_record(reading={"decimal": ";"})),
        ("run.json", "'reading'"),
    ),
    Case(
        "score-model-garbage",
        corrupt_run(
            lambda f: (f / "model.weights.h5").write_bytes(b"not an hdf5 file" * 64)
        ),
        ("model.weights.h5", "not the weights of this 'ae' model"),
    ),
    Case(
        "score-model-truncated",
        corrupt_run(truncate_model),
        ("model.weights.h5", "not the weights of this 'ae' model"),
    ),
    Case(
        "score-model-missing",
        corrupt_run(lambda f: (f / "model.weights.h5").unlink()),
        ("model.weights.h5", "missing"),
    ),
    # ------------------------------------------------------------ encode
    Case(
        "encode-missing-trained-columns",
        lambda t: encode_cmd(
            data(
                t, "two.csv", synthetic_frame().drop(columns=["s1"]).to_csv(index=False)
            )
        ),
        ("two.csv", "s1"),
    ),
    Case(
        "encode-nan-cell",
        lambda t: encode_cmd(data(t, "nan.csv", edit(40, "s3", "nan"))),
        ("nan.csv", "'s3'", "line 40"),
    ),
    Case(
        "encode-non-numeric",
        lambda t: encode_cmd(data(t, "text.csv", edit(41, "s1", "1;5"))),
        ("text.csv", "'s1'", "line 41"),
    ),
    Case(
        "encode-bad-decimal-option",
        lambda t: encode_cmd(good(t), "--decimal", "x"),
        ("--decimal", "'x'"),
    ),
    Case(
        "encode-plain-run",
        lambda t: encode_cmd(good(t), run="runs/tiny-plain"),
        ("'plain'", "hint:"),
    ),
    Case(
        "encode-model-garbage",
        corrupt_run(
            lambda f: (f / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\ngarbage"),
            encode_cmd,
        ),
        ("model.weights.h5", "not the weights"),
    ),
    Case(
        "encode-run-not-found",
        lambda t: encode_cmd(good(t), run="runs/nope"),
        ("nope", "not found"),
    ),
    # ------------------------------------------------------------ issue 9: the second hostile test
    # 1. encode --output overwrote its input
    Case(
        "encode-output-is-the-input",
        lambda t: [
            "encode",
            good(t),
            "--run",
            "runs/tiny-ae",
            "--output",
            "data/good.csv",
        ],
        ("good.csv", "is the input file"),
    ),
    # 2. two outputs on one path
    Case(
        "score-output-and-metrics-out-same-file",
        lambda t: [
            "score",
            good(t),
            "--run",
            "runs/tiny-ae",
            "--output",
            "out/same.json",
            "--metrics-out",
            "out/same.json",
        ],
        ("same.json", "--output and --metrics-out name the same file"),
    ),
    # 3. options are bounded by the rule loading applies: a run that trains also loads
    Case(
        "train-smooth-beyond-what-loading-accepts",
        lambda t: train_cmd(good(t), "--smooth", "100001"),
        ("--smooth", "100000", "100001"),
    ),
    Case(
        "train-lookback-beyond-what-loading-accepts",
        lambda t: train_cmd(good(t), "--lookback", "100001"),
        ("--lookback", "100000", "100001"),
    ),
    # 4. user input, not a bug; checked before the data is read (here the file does not even exist)
    Case(
        "train-name-too-long",
        lambda t: train_cmd(good(t), "--name", "n" * 300),
        ("--name", "300 bytes", "at most 200"),
    ),
    Case(
        "train-seed-negative-before-loading",
        lambda t: train_cmd("data/missing.csv", "--seed", "-1"),
        ("--seed", "-1"),
    ),
    Case(
        "train-lead-huge",
        lambda t: train_cmd("data/missing.csv", "--lead", "1000000000000000"),
        ("--lead", "100000", "1000000000000000"),
    ),
    # 7. editor line numbers after a quoted cell that spans two lines (line 100-101)
    Case(
        "train-line-after-multiline-cell",
        lambda t: train_cmd(
            data(t, "note.csv", multiline_note(203, "s2", "oops")), "--drop", "note"
        ),
        ("note.csv", "'s2'", "line 203", "'oops'"),
    ),
    Case(
        "score-ragged-row-after-multiline-cell",
        lambda t: score_cmd(
            data(t, "note.csv", multiline_note(203, "label", "0,7")),
            "--chunk-rows",
            "50",
        ),
        ("note.csv", "line 203", "fields"),
    ),
    # 8. the whole run.json schema is checked on load, by every command
    Case(
        "report-named-run-with-text-parameters",
        damaged_record(parameters="abc"),
        ("run.json", "'parameters'", '"abc"'),
    ),
    Case(
        "report-named-run-with-nan-in-metrics",
        damaged_record(metrics={"valid": {"f1": math.nan}, "test": None}),
        ("run.json", "'metrics'"),
    ),
    Case(
        "score-run-with-nan-in-metrics",
        corrupt_run(
            set_record(metrics={"valid": {"lead_rows": [1, math.nan]}, "test": None})
        ),
        ("run.json", "'metrics'"),
    ),
    # 9. absurd options
    Case(
        "train-margin-huge",
        lambda t: train_cmd(good(t), "--margin", "1e308"),
        ("--margin", "1000", "1e+308"),
    ),
    Case(
        "train-threshold-fbeta-inf",
        lambda t: train_cmd(good(t), "--threshold", "fbeta:inf"),
        ("--threshold 'fbeta:inf'", "beta", "100"),
    ),
    # 10: see test_errors_before_training; 5, 6 and 11 (TFSMLayer): test_safety.py, test_interrupt.py, test_storage.py
]


@pytest.fixture
def workdir(
    tmp_path: Path, trained_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``tmp_path`` as the working folder, holding ``runs/tiny-ae``, ``runs/tiny-plain``, ``data/``, ``out/``."""
    shutil.copytree(trained_runs["ae"], tmp_path / "runs" / "tiny-ae")
    shutil.copytree(trained_runs["plain"], tmp_path / "runs" / "tiny-plain")
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c,
            id=c.id,
            marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [],
        )
        for c in CASES
    ],
)
def test_bad_input(case: Case, workdir: Path) -> None:
    args = case.build(workdir)
    before = snapshot(workdir)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (
        result.exit_code,
        result.stdout[-2000:],
        result.stderr,
    )
    assert_one_error_line(result.stdout, result.stderr, case.fragments)
    assert snapshot(workdir) == before, (
        "the failing command changed files under the working folder"
    )


# ---------------------------------------------------------------- things that must simply work


@pytest.mark.slow
def test_bom_and_crlf_train_and_score(workdir: Path) -> None:
    """A UTF-8 BOM and Windows line endings (an Excel export) simply work."""
    raw = b"\xef\xbb\xbf" + GOOD_TEXT.replace("\n", "\r\n").encode("utf-8")
    path = data(workdir, "windows-export.csv", raw)
    result = CliRunner().invoke(
        app, train_cmd(path, "--name", "exported", model=TINY_PCA)
    )
    assert result.exit_code == 0, result.stderr
    record = read_record(workdir / "runs" / "exported")
    assert RareEventDetector.read_config(
        workdir / "runs" / "exported"
    ).feature_names_in_.tolist() == ["s1", "s2", "s3"]
    assert record.time_column == "timestamp"  # the BOM is not glued to the first name
    assert record.label_column == "label"
    assert record.metrics["test"] is not None
    scored = CliRunner().invoke(
        app, ["score", path, "--run", "runs/exported", "--output", "out/w.csv"]
    )
    assert scored.exit_code == 0, scored.stderr
    assert (workdir / "out" / "w.csv").is_file()


FILL_LINES = {(20, "s1"), (21, "s2"), (300, "s3")}  # three blank cells in three rows


def blanks_text() -> str:
    lines = list(GOOD_LINES)
    for line, column in FILL_LINES:
        cells = lines[line - 1].split(",")
        cells[COLUMNS.index(column)] = ""
        lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ffill", "interpolate", "drop"])
@pytest.mark.parametrize(
    "command",
    [
        "train",
        "score",
        "encode",
    ],
)
def test_fill_repairs_and_reports_count(
    command: str, method: str, workdir: Path
) -> None:
    path = data(workdir, "gaps.csv", blanks_text())
    args = {
        "train": train_cmd(path, "--name", "filled", model=TINY_PCA),
        "score": score_cmd(path, "--chunk-rows", "50"),
        "encode": encode_cmd(path, "--chunk-rows", "50"),
    }[command]
    result = CliRunner().invoke(app, [*args, "--fill", method])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert re.search(rf"repaired {len(FILL_LINES)}\b", result.stdout + result.stderr), (
        result.stdout[-500:],
        result.stderr,
    )
    if command == "train":
        record = json.loads(
            (workdir / "runs" / "filled" / "run.json").read_text(encoding="utf-8")
        )
        assert record["filled_cells"] == len(FILL_LINES)
        assert record["fill"] == method


# ---------------------------------------------------------------- --debug and unexpected errors


def test_debug_prints_traceback_for_data_error(workdir: Path) -> None:
    result = CliRunner().invoke(
        app, ["--debug", "train", "data/missing.csv", "--runs-dir", "runs"]
    )
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "missing.csv" in lines[-1]
    assert sum(line.startswith("error:") for line in lines) == 1


def test_unexpected_error_is_exit_1_one_line_traceback_only_with_debug(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom in the loader")

    monkeypatch.setattr("rareevent.training.load_csv", boom)
    path = good(workdir)
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_cmd(path))
    assert result.exit_code == 1
    line = assert_one_error_line(
        result.stdout, result.stderr, ("RuntimeError", "boom in the loader")
    )
    assert "--debug" in line
    debug = CliRunner().invoke(app, ["--debug", *train_cmd(path)])
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "boom in the loader" in debug.stderr
    assert snapshot(workdir) == before


# ---------------------------------------------------------------- usage errors through the real entry point


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RAREEVENT), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("train", "--bogus"), "--bogus"),
        (("train",), "Missing argument"),
        (("train", "data.csv", "--epochs", "many"), "--epochs"),
        (("score", "data.csv", "--chunk-rows", "1.5"), "--chunk-rows"),
        (("frobnicate",), "frobnicate"),
        (("--bogus-global",), "--bogus-global"),
    ],
    ids=[
        "unknown-option",
        "missing-argument",
        "bad-int",
        "bad-int-score",
        "unknown-command",
        "unknown-global-option",
    ],
)
def test_usage_errors_via_entry_point(
    args: tuple[str, ...], fragment: str, tmp_path: Path
) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert_one_error_line(result.stdout, result.stderr, (fragment,))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bare_command_prints_help_without_empty_error(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert "Usage" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert all(
        re.sub(r"\(see --help\)", "", line[len("error:") :]).strip() for line in errors
    ), errors


@pytest.mark.slow
def test_data_error_via_entry_point(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text(
        with_line(1, "timestamp,s1,s2,s2,label"), encoding="utf-8"
    )
    result = run_cli("train", "dup.csv", *TINY, "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_error_line(result.stdout, result.stderr, ("dup.csv", "'s2'", "line 1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.csv"]


# ---------------------------------------------------------------- issue 9: the rest of the second hostile test


@pytest.mark.parametrize(
    "fields",
    [{"parameters": "abc"}, {"metrics": {"valid": {"f1": math.nan}, "test": None}}],
    ids=["text-parameters", "nan-in-metrics"],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_report_skips_a_damaged_run_and_reports_the_others(
    fields: dict[str, object], as_json: bool, workdir: Path
) -> None:
    """Case 8: listing the runs, a damaged run.json is skipped with a warning naming it; the other runs are reported."""
    set_record(**fields)(workdir / "runs" / "tiny-ae")
    before = snapshot(workdir)
    result = CliRunner().invoke(
        app, ["report", "--runs-dir", "runs", *(["--json"] if as_json else [])]
    )
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    field = next(iter(fields))
    if as_json:
        report = json.loads(result.stdout)
        assert [run["name"] for run in report["runs"]] == ["tiny-plain"]
        assert (
            len(report["skipped"]) == 1
            and f"field {field!r} has an invalid value" in report["skipped"][0]
        )
    else:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("warning: skipped:"), lines
        assert "tiny-ae" in lines[0] and f"field {field!r}" in lines[0]
        assert "tiny-plain" in result.stdout
    assert snapshot(workdir) == before


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30,000 rows with one event, early in the train part: the validation part has no positive window."""
    path = tmp_path_factory.mktemp("long") / "long.csv"
    synthetic_frame(n=30_000, events=(150,)).to_csv(
        path, index=False, float_format="%.5f"
    )
    return path


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (("--runs-dir", "long.csv"), ("long.csv", "--runs-dir is a file")),
        (
            ("--threshold", "f1"),
            ("--threshold f1", "positive window in the validation part", "hint:"),
        ),
    ],
    ids=["runs-dir-is-a-file", "label-threshold-without-positive-validation-window"],
)
def test_errors_before_training(
    extra: tuple[str, ...],
    fragments: tuple[str, ...],
    long_csv: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Case 10: with default epochs on 30,000 rows, these errors come before the model is fitted (fitting would raise)."""
    from rareevent.detector import RareEventDetector

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was fitted before the error")

    monkeypatch.setattr(RareEventDetector, "_train", never)
    shutil.copy(long_csv, workdir / "long.csv")
    before = snapshot(workdir)
    result = CliRunner().invoke(
        app, ["train", "long.csv", "--runs-dir", "runs", *extra]
    )
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result.stdout, result.stderr, fragments)
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_quoted_header_name_with_separators_keeps_the_comma(workdir: Path) -> None:
    """Case 11: the header ``time,"a;b;c;d;e",s2,y`` is comma-separated; the semicolons are inside one name."""
    rows = (
        synthetic_frame()
        .drop(columns=["s3"])
        .to_csv(index=False, float_format="%.5f")
        .splitlines()[1:]
    )
    path = data(
        workdir, "quoted.csv", "\n".join(['time,"a;b;c;d;e",s2,y', *rows]) + "\n"
    )
    result = CliRunner().invoke(
        app, train_cmd(path, "--name", "quoted", model=TINY_PCA)
    )
    assert result.exit_code == 0, result.stderr
    record = read_record(workdir / "runs" / "quoted")
    assert RareEventDetector.read_config(
        workdir / "runs" / "quoted"
    ).feature_names_in_.tolist() == ["a;b;c;d;e", "s2"]
    assert (record.time_column, record.label_column) == ("time", "y")
