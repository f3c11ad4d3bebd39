"""Options as values: every spec refuses a bad value when it is made, naming the parameter, and round-trips through a JSON record."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.errors import RareEventError
from rareevent.options import (
    InputSpec,
    ReadOptions,
    Resampling,
    ScoreSpec,
    SplitSpec,
    TrainSpec,
)
from rareevent.runs import read_record
from tests.conftest import synthetic_frame


@pytest.mark.parametrize(
    ("make", "param", "fragment"),
    [
        (lambda: ReadOptions(decimal=";"), "decimal", "decimal ';': use ',' or '.'"),
        (
            lambda: ReadOptions(time_unit="h"),
            "time_unit",
            "time_unit 'h': use one of s, ms",
        ),
        (
            lambda: ReadOptions(time_format="%d.%m.%Y", dayfirst=True),
            None,
            "`time_format` and `dayfirst` contradict each other",
        ),
        (
            lambda: ReadOptions(tz="Mars/Olympus"),
            "tz",
            "tz 'Mars/Olympus' is not a time zone name",
        ),
        (
            lambda: ReadOptions(encoding="klingon"),
            "encoding",
            "encoding 'klingon' is not a text encoding",
        ),
        (
            lambda: InputSpec(fill="mean"),
            "fill",
            "fill 'mean': use one of ffill, interpolate, drop",
        ),
        (
            lambda: Resampling("1min", "sum"),
            "agg",
            "agg 'sum': use one of mean, last, max",
        ),
        (lambda: SplitSpec(valid_frac=0.0), "valid_frac", "valid_frac must be above 0"),
        (
            lambda: SplitSpec(valid_frac=0.5, test_frac=0.45),
            None,
            "`valid_frac` + `test_frac` = 0.95 leaves too little to train on",
        ),
        (
            lambda: SplitSpec(max_gap="soon"),
            "max_gap",
            "max_gap 'soon': give a duration",
        ),
        (lambda: SplitSpec(max_gap="0x"), "max_gap", "max_gap '0x' must be above 0"),
        (
            lambda: ScoreSpec(chunk_rows=0),
            "chunk_rows",
            "chunk_rows must be a whole number of rows above 0, got 0",
        ),
        (
            lambda: ScoreSpec(chunk_rows=True),
            "chunk_rows",
            "chunk_rows must be a whole number of rows above 0, got True",
        ),
    ],
)
def test_a_spec_refuses_a_bad_value_when_it_is_made(
    make: Callable[[], object], param: str | None, fragment: str
) -> None:
    with pytest.raises(RareEventError) as info:
        make()
    assert fragment in info.value.message
    assert info.value.param == param


def test_a_spec_inside_a_spec_is_checked_before_the_outer_one_exists() -> None:
    with pytest.raises(RareEventError, match="fill 'mean'"):
        TrainSpec(InputSpec(fill="mean"), SplitSpec())


def test_specs_are_frozen_hashable_values() -> None:
    spec = InputSpec(drop=["a", "b"], read=ReadOptions(decimal=","))
    assert spec.drop == ("a", "b")  # a list given is kept as a tuple
    assert spec == InputSpec(drop=("a", "b"), read=ReadOptions(decimal=","))
    assert len({spec, InputSpec(drop=["a", "b"], read=ReadOptions(decimal=","))}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.fill = "ffill"  # type: ignore[misc]
    assert TrainSpec(context=["cmd*", "setpoint"]).context == ("cmd*", "setpoint")


def test_every_spec_round_trips_through_a_json_record() -> None:
    train = TrainSpec(
        InputSpec(
            time="t",
            label="y",
            drop=["site"],
            group="asset",
            fill="ffill",
            read=ReadOptions(
                decimal=",", dayfirst=True, tz="Europe/Berlin", encoding="cp1252"
            ),
        ),
        SplitSpec(
            valid_frac=0.25,
            test_frac=0.0,
            max_gap="10min",
            resample=Resampling("1min", "max"),
        ),
        context=["cmd*"],
    )
    score = ScoreSpec(
        InputSpec(label="fault", read=ReadOptions(time_unit="ms")), chunk_rows=37
    )
    for spec in (train, score, SplitSpec(), ReadOptions()):
        record = json.loads(json.dumps(spec.to_record()))
        assert type(spec).from_record(record) == spec
    assert train.to_record()["split"]["resample"] == {"every": "1min", "agg": "max"}
    assert train.to_record()["input"]["drop"] == ["site"]


def test_a_record_read_back_is_checked_and_may_hold_more_than_the_spec() -> None:
    assert Resampling.from_record(
        {"every": "1min", "agg": "last", "rows": 5, "empty_cells": 0}
    ) == Resampling("1min", "last")  # a run's resample counts rows too
    assert SplitSpec.from_record({"resample": None}) == SplitSpec()
    assert ScoreSpec.from_record(None) == ScoreSpec()
    with pytest.raises(RareEventError, match="agg 'sum'"):
        TrainSpec.from_record({"split": {"resample": {"every": "1min", "agg": "sum"}}})


@pytest.mark.slow
def test_the_cli_hands_train_one_spec_built_from_its_options(tmp_path: Path) -> None:
    """`train`'s input and split options reach the library as one TrainSpec, which the run keeps (and `run.json` gives back)."""
    frame = synthetic_frame().assign(site="north")
    frame.to_csv(
        tmp_path / "d.csv", index=False, sep=";", decimal=",", float_format="%.5f"
    )
    args = [
        "train",
        str(tmp_path / "d.csv"),
        "--arch",
        "pca",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "s",
    ]
    args += [
        "--drop",
        "site",
        "--decimal",
        ",",
        "--valid-frac",
        "0.25",
        "--test-frac",
        "0.1",
        "--max-gap",
        "10min",
        "--context",
        "none",
        "--label",
        "label",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(
        (tmp_path / "runs" / "s" / "run.json").read_text(encoding="utf-8")
    )["spec"]
    expected = TrainSpec(
        InputSpec(label="label", drop=["site"], read=ReadOptions(decimal=",")),
        SplitSpec(valid_frac=0.25, test_frac=0.1, max_gap="10min"),
        context="none",
    )
    assert TrainSpec.from_record(saved) == expected
    assert read_record(tmp_path / "runs" / "s").spec == expected


def test_a_bad_option_value_is_one_error_line_before_any_file_is_read(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tmp_path / "absent.csv"),
            "--max-gap",
            "soon",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 2
    assert (
        result.output.startswith("error: --max-gap 'soon': give a duration like 10min")
        and "absent.csv" not in result.output
    )
