"""Files as European plant historians and Excel write them (issue 15), through the CLI.

Each export is written by pandas from the same frame as an ISO, dot-decimal
reference file; training and scoring it must give the reference's results,
byte for byte in the score output.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.runs import read_record, read_run
from tests.conftest import TINY, TINY_PCA, synthetic_frame

NAMES = {"timestamp": "Zeitstempel", "s1": "Druck", "s2": "Temp", "s3": "Fluss"}
EXPORTS = {
    # ';' separated, decimal commas, day-first dates: the first file
    "excel-de": {"sep": ";", "decimal": ",", "date_format": "%d.%m.%Y %H:%M"},
    # ',' separated, decimal points, day-first dates: the second file
    "day-first": {"sep": ",", "decimal": ".", "date_format": "%d.%m.%Y %H:%M"},
}
ISO = {"sep": ",", "decimal": ".", "date_format": "%Y-%m-%d %H:%M"}
runner = CliRunner()


def plant_frame(start: str = "2026-01-01", n: int = 600) -> pd.DataFrame:
    """The synthetic sensors with hourly times: 600 rows run from 01.01 00:00 to 25.01 23:00."""
    frame = synthetic_frame(n=n).rename(columns=NAMES)
    frame["Zeitstempel"] = pd.date_range(start, periods=n, freq="h")
    return frame


def write(frame: pd.DataFrame, path: Path, style: dict[str, str]) -> Path:
    frame.to_csv(path, index=False, **style)
    return path


def invoke(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.output
    return result


def train(data: Path, runs: Path, name: str) -> dict:
    invoke(
        "train",
        data,
        *TINY_PCA,  # what is read decides the run: the PCA baseline shows it as an LSTM would
        "--time",
        "Zeitstempel",
        "--runs-dir",
        runs,
        "--name",
        name,
    )
    scaler = RareEventDetector.read_config(runs / name).scaler_
    return {
        **dataclasses.asdict(read_run(runs / name)),
        "scaler": [scaler.mean_.tolist(), scaler.scale_.tolist()],
    }


def score(data: Path, runs: Path, name: str, output: Path, *extra: object) -> object:
    return invoke("score", data, "--run", runs / name, "--output", output, *extra)


LEARNED = (
    "threshold",
    "scaler",
    "metrics",
    "splits",
    "windows",
    "features",
    "time_column",
    "label_column",
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each export and the ISO file, trained once per module: the file, its run and its run.json."""
    folder = tmp_path_factory.mktemp("exports")
    trained = {}
    for name, style in {"iso": ISO, **EXPORTS}.items():
        data = write(plant_frame(), folder / f"{name}.csv", style)
        trained[name] = {
            "data": data,
            "runs": folder / "runs",
            "record": train(data, folder / "runs", name),
        }
    score(trained["iso"]["data"], folder / "runs", "iso", folder / "iso-scores.csv")
    trained["iso"]["scores"] = (folder / "iso-scores.csv").read_bytes()
    return trained


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORTS)
def test_exports_train_and_score_like_the_iso_file_without_options(
    export: str, exports: dict[str, dict], tmp_path: Path
) -> None:
    reference, trained = exports["iso"], exports[export]
    record = trained["record"]
    assert {key: record[key] for key in LEARNED} == {
        key: reference["record"][key] for key in LEARNED
    }
    reading = record["reading"]
    assert reading["decimal"] == EXPORTS[export]["decimal"]
    assert reading["time_format"] == EXPORTS[export]["date_format"]
    assert (reading["date_order"], reading["date_order_assumed"]) == (
        "day-first",
        False,
    )  # 13.01 settles it
    for chunk_rows in ("100000", "50"):
        result = score(
            trained["data"],
            trained["runs"],
            export,
            tmp_path / "scores.csv",
            "--chunk-rows",
            chunk_rows,
        )
        assert (tmp_path / "scores.csv").read_bytes() == reference["scores"]
        assert "note:" not in result.stderr


@pytest.mark.slow
def test_scoring_an_ambiguous_day_first_file_uses_the_runs_reading(
    exports: dict[str, dict], tmp_path: Path
) -> None:
    runs = exports["excel-de"]["runs"]
    # 01.02 to 12.02: every first field is at most 12, so the file alone cannot tell day from month
    new = plant_frame(start="2026-02-01", n=288)
    result = score(
        write(new, tmp_path / "new.csv", EXPORTS["excel-de"]),
        runs,
        "excel-de",
        tmp_path / "de.csv",
    )
    assert "note:" not in result.stderr
    score(
        write(new, tmp_path / "new-iso.csv", ISO),
        runs,
        "excel-de",
        tmp_path / "iso.csv",
    )
    assert (tmp_path / "de.csv").read_bytes() == (tmp_path / "iso.csv").read_bytes()
    assert pd.read_csv(tmp_path / "de.csv")["time"].iloc[-1] == "2026-02-12 23:00:00"


@pytest.mark.slow
def test_train_and_score_say_which_order_they_assumed(
    exports: dict[str, dict], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    data = write(
        plant_frame(n=288), tmp_path / "short.csv", EXPORTS["excel-de"]
    )  # 01.01 to 12.01
    result = invoke(
        "train",
        data,
        *TINY_PCA,
        "--threshold",
        "quantile",
        "--time",
        "Zeitstempel",
        "--runs-dir",
        runs,
        "--name",
        "short",
    )
    note = "no date in column 'Zeitstempel' has a day above 12"
    assert note in result.stderr and "read day-first (%d.%m.%Y %H:%M)" in result.stderr
    assert (
        "read as" in result.stdout and "assumed: no day above" in result.stdout
    )  # the summary table's row
    reading = json.loads((runs / "short" / "run.json").read_text(encoding="utf-8"))[
        "reading"
    ]
    assert (reading["date_order"], reading["date_order_assumed"]) == ("day-first", True)
    # a run trained on ISO times leaves the order open: score infers it from the file and says so
    iso = exports["iso"]
    result = score(data, iso["runs"], "iso", tmp_path / "s.csv")
    assert note in result.stderr
    # --time-format reads the same file month-first: 12.01 is then December 1st
    month_first = score(
        data,
        iso["runs"],
        "iso",
        tmp_path / "m.csv",
        "--time-format",
        "%m.%d.%Y %H:%M",
        "--chunk-rows",
        "30",
    )
    notes = [
        line for line in month_first.stderr.splitlines() if line.startswith("note:")
    ]
    # no order note; the only note is the month-long jumps between the days read as months (time gaps)
    assert notes == [
        "note: 11 time gap(s) above the run's --max-gap 5x split the file into 12 segments; no window crosses a gap"
    ]
    assert pd.read_csv(tmp_path / "m.csv")["time"].iloc[-1] == "2026-12-01 23:00:00"


@pytest.mark.slow
def test_epoch_time_column_gives_real_units(tmp_path: Path) -> None:
    frame = synthetic_frame()
    stamps = pd.to_datetime(frame["timestamp"])
    frame["timestamp"] = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta("1ms")
    data = tmp_path / "epoch.csv"
    frame.to_csv(data, index=False)
    runs = tmp_path / "runs"
    result = invoke(
        "train", data, *TINY, "--time-unit", "ms", "--runs-dir", runs, "--name", "epoch"
    )
    record = read_record(runs / "epoch")
    assert record.reading["time_unit"] == "ms"
    assert (
        record.metrics["test"]["false_alarms_per_day"] is not None
    )  # real days, not per 1,000 windows
    assert "/day" in result.stdout
    invoke("encode", data, "--run", runs / "epoch", "--output", tmp_path / "codes.csv")
    assert pd.read_csv(tmp_path / "codes.csv")["time"].iloc[0] == "2026-01-01 00:02:00"
