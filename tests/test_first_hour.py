"""Issue 22: a plant engineer's first hour with a German SCADA export.

The export has what such files have: a ``Zeitstempel`` column of day-first
local times across the autumn clock change (Europe/Berlin repeats 02:00 to
02:59), a ``Störung`` 0/1 fault column, unit brackets in the sensor names,
decimal commas, ``;`` separators, and Excel's ANSI (cp1252) bytes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.options import InputSpec, ReadOptions
from tests.conftest import TINY

runner = CliRunner()
FLOW = "Sollwert Durchfluss [m³/h]"
PRESSURE = "Druck [bar]"
TEMPERATURE = "Temperatur [°C]"
ENTRY_POINT = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "rareevent"


def german_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """10-minute rows from 2025-10-24 in Berlin wall-clock time: the hour 02:00-02:50 of 26 October appears twice."""
    rng = np.random.default_rng(seed)
    utc = pd.date_range("2025-10-24 00:00", periods=n, freq="10min", tz="UTC")
    wall = utc.tz_convert("Europe/Berlin").tz_localize(None)
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 36)
    frame = pd.DataFrame(
        {
            "Zeitstempel": wall.strftime("%d.%m.%Y %H:%M"),
            PRESSURE: 3 + base + 0.05 * rng.standard_normal(n),
            FLOW: 12 + 2 * base + 0.05 * rng.standard_normal(n),
            TEMPERATURE: 40 - base + 0.05 * rng.standard_normal(n),
            "Störung": 0,
        }
    )
    for start in (150, 420, 530):
        frame.loc[start : start + 5, "Störung"] = 1
        frame.loc[start : start + 5, FLOW] += 6.0
        frame.loc[start : start + 5, TEMPERATURE] -= 4.0
    return frame


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scada") / "Pumpe.csv"
    text = german_frame().to_csv(sep=";", decimal=",", index=False, float_format="%.4f")
    path.write_bytes(text.encode("cp1252"))
    return path


def test_the_export_holds_what_the_issue_describes(export: Path) -> None:
    raw = export.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    lines = raw.decode("cp1252").splitlines()
    assert lines[0] == f"Zeitstempel;{PRESSURE};{FLOW};{TEMPERATURE};Störung"
    stamps = [line.split(";")[0] for line in lines[1:]]
    assert stamps.count("26.10.2025 02:00") == 2  # the repeated hour
    assert "24.10.2025 02:10" in stamps  # day-first: 24 is no month


def test_without_encoding_the_error_names_it(export: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(export), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not UTF-8 text" in result.output
    assert "--encoding cp1252" in result.output


def test_without_tz_the_clock_change_hint_names_it(
    export: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(export),
            "--encoding",
            "cp1252",
            "--label",
            "Störung",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    first_repeat = (
        2 + german_frame().index[german_frame()["Zeitstempel"] == "26.10.2025 02:00"][1]
    )
    assert (
        f"time in column 'Zeitstempel' goes backwards at line {first_repeat}"
        in result.output
    )
    assert "--tz ZONE" in result.output


@pytest.mark.slow
def test_german_export_trains_with_label_tz_and_encoding(
    export: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(export),
            "--label",
            "Störung",
            "--tz",
            "Europe/Berlin",
            "--encoding",
            "cp1252",
            *TINY,
            "--runs-dir",
            str(tmp_path),
            "--name",
            "pumpe",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "note: column 'Zeitstempel' holds dates or times: read as the time column (--time Zeitstempel)"
        in result.output
    )
    record = json.loads((tmp_path / "pumpe" / "run.json").read_text(encoding="utf-8"))
    assert (
        record["time_column"] == "Zeitstempel" and record["label_column"] == "Störung"
    )
    assert record["assumed"] == [
        {
            "column": "Zeitstempel",
            "as": "time",
            "message": "column 'Zeitstempel' holds dates or times: read as the time column (`time=Zeitstempel`)",
        }
    ]
    assert (
        record["reading"]["tz"] == "Europe/Berlin"
        and record["reading"]["encoding"] == "cp1252"
    )
    assert (
        record["reading"]["time_format"] == "%d.%m.%Y %H:%M"
        and record["reading"]["decimal"] == ","
    )
    # the repeated hour is no gap and no error: 600 rows 10 minutes apart in UTC make one segment
    assert record["gaps"]["segments"] == 1 and record["gaps"]["gaps"] == 0

    scored = tmp_path / "windows.csv"
    result = runner.invoke(
        app,
        [
            "score",
            str(export),
            "--run",
            "pumpe",
            "--runs-dir",
            str(tmp_path),
            "--output",
            str(scored),
            "--show",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    windows = pd.read_csv(scored)
    assert len(windows) == 600 - 3 + 1
    # the rows of both passes of 02:00 local are 60 minutes apart in UTC
    times = pd.to_datetime(windows.set_index("row")["time"])
    first, second = german_frame().index[
        german_frame()["Zeitstempel"] == "26.10.2025 02:00"
    ]
    assert times[second] - times[first] == pd.Timedelta("1h")
    # unit brackets survive in the alarm table (no rich markup eats them)
    assert "[m³/h]" in result.output and "[°C]" in result.output


def test_without_label_the_fault_column_becomes_the_label_and_the_run_says_so(
    export: Path, tmp_path: Path
) -> None:
    """Issue 33.1: a 0/1 ``Störung`` column is never read as a model input silently."""
    args = ["train", str(export), "--tz", "Europe/Berlin", "--encoding", "cp1252"]
    result = runner.invoke(
        app,
        [*args, "--arch", "pca", "--lookback", "3", "--runs-dir", str(tmp_path)],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert (
        "warning: column 'Störung' is named like an event label and holds only 0 and 1: "
        "read as the label (--label Störung), not as an input; if it is a state, pass "
        "--context Störung" in " ".join(result.output.split())
    )
    (run,) = tmp_path.iterdir()
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["label_column"] == "Störung"
    detector = json.loads((run / "detector.json").read_text(encoding="utf-8"))
    assert detector["fitted"]["feature_names_in_"] == [PRESSURE, FLOW, TEMPERATURE]
    assert [(a["column"], a["as"]) for a in record["assumed"]] == [
        ("Zeitstempel", "time"),
        ("Störung", "label"),
    ]


@pytest.mark.slow
def test_context_option_takes_a_name_with_brackets_and_prints_it_whole(
    export: Path, tmp_path: Path
) -> None:
    args = [
        "train",
        str(export),
        "--arch",
        "pca",
        "--lookback",
        "3",
        "--label",
        "Störung",
        "--tz",
        "Europe/Berlin",
        "--encoding",
        "cp1252",
        "--runs-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, [*args, "--context", FLOW], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"{FLOW} (read, not scored" in result.stdout


def test_context_names_with_brackets_match_literally(
    export: Path, tmp_path: Path
) -> None:
    from rareevent.training import resolve_context

    features = [PRESSURE, FLOW, TEMPERATURE]
    assert resolve_context(FLOW, features) == [1]
    assert resolve_context("Druck*", features) == [
        0
    ]  # a pattern when no column has that exact name
    assert resolve_context("Temperatur [°C],Druck [bar]", features) == [0, 2]


@pytest.mark.slow
def test_report_help_shows_the_plot_extra_and_no_bool() -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "report", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "rareevent[plot]" in result.stdout
    assert "<bool>" not in result.stdout


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> dict:
    """A pca run trained through the CLI with --json (closed form: fast)."""
    runs = tmp_path_factory.mktemp("pca-runs")
    result = runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            "--arch",
            "pca",
            "--lookback",
            "3",
            "--runs-dir",
            str(runs),
            "--name",
            "p",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return {"runs": runs, "summary": json.loads(result.stdout)}


@pytest.mark.slow
def test_pca_summary_shows_what_applies_to_pca(
    sensor_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            "--arch",
            "pca",
            "--lookback",
            "3",
            "--runs-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "in closed form (numpy)" in result.output
        and "(components and mean)" in result.output
    )
    assert (
        "ran on" not in result.output
        and "units" not in result.output
        and "epochs" not in result.output
    )


@pytest.mark.slow
def test_report_json_nests_metrics_as_train_json_does(pca_run: dict) -> None:
    result = runner.invoke(
        app, ["report", "p", "--runs-dir", str(pca_run["runs"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["runs"]
    trained = pca_run["summary"]
    assert row["metrics"] == trained["metrics"] and row["metrics_part"] == "test"
    assert row["metrics"]["test"]["f1"] == trained["metrics"]["test"]["f1"] > 0.5
    assert "f1" not in row and "events_detected" not in row  # no flat copies


@pytest.mark.slow
def test_update_has_quiet_and_json_and_says_why_it_has_no_test_metrics(
    pca_run: dict, sensor_csv: Path
) -> None:
    runs = pca_run["runs"]
    quiet = runner.invoke(
        app,
        ["update", "p", str(sensor_csv), "--runs-dir", str(runs), "--name", "q", "-q"],
    )
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == f"{runs / 'q'}\n"
    as_json = runner.invoke(
        app,
        [
            "update",
            "p",
            str(sensor_csv),
            "--runs-dir",
            str(runs),
            "--name",
            "j",
            "--json",
        ],
    )
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert (
        document["path"] == str(runs / "j")
        and document["metrics"]["test"] is None
        and document["metrics"]["valid"]["f1"] > 0.5
    )
    plain = runner.invoke(
        app, ["update", "p", str(sensor_csv), "--runs-dir", str(runs), "--name", "t"]
    )
    assert plain.exit_code == 0, plain.output
    text = " ".join(plain.stdout.split())
    assert (
        "no test metrics: update keeps no test part" in text
        and "no label column" not in text
    )


@pytest.mark.slow
def test_alarm_lines_count_as_errors_count_lines(
    pca_run: dict, sensor_csv: Path, tmp_path: Path
) -> None:
    output = tmp_path / "w.json"
    result = runner.invoke(
        app,
        [
            "score",
            str(sensor_csv),
            "--run",
            "p",
            "--runs-dir",
            str(pca_run["runs"]),
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    alarms = json.loads(output.read_text())["alarms"]
    first = alarms[0]
    assert (
        first["start_row"] >= 148
    )  # the first event starts at data row 150: line 152 of the file
    assert f"{first['start_row'] + 2}-{first['end_row'] + 2}" in result.stdout
    assert "lines" in result.stdout


def local_export(
    tmp_path: Path, stamps: pd.DatetimeIndex, name: str = "local.csv"
) -> Path:
    """An ISO CSV of naive wall-clock times and one sensor."""
    path = tmp_path / name
    pd.DataFrame(
        {
            "time": stamps.strftime("%Y-%m-%d %H:%M:%S"),
            "a": np.arange(len(stamps), dtype=float),
        }
    ).to_csv(path, index=False)
    return path


def chunked_times(path: Path, tz: str, chunk_rows: int) -> np.ndarray:
    """The time column read in chunks, each checked against the last time of the chunk before, as scoring reads."""
    from rareevent.load import read_csv_whole, read_frames, validate_frame

    raw = read_csv_whole(path, InputSpec(read=ReadOptions(tz=tz)))
    times, previous = [], None
    for frame in read_frames(raw.fmt, raw.columns, chunk_rows, raw.reading):
        block = validate_frame(
            frame, raw.fmt, raw.columns, previous_time=previous, reading=raw.reading
        )
        times.append(block.time)
        previous = block.time[-1]
    return np.concatenate(times)


def test_tz_resolves_the_repeated_autumn_hour_by_file_order_in_any_chunking(
    tmp_path: Path,
) -> None:
    utc = pd.date_range("2025-10-25 23:00", "2025-10-26 03:00", freq="10min", tz="UTC")
    path = local_export(tmp_path, utc.tz_convert("Europe/Berlin").tz_localize(None))
    expected = utc.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    for chunk_rows in (1, 2, 5, 6, 7, 13, 1000):
        np.testing.assert_array_equal(
            chunked_times(path, "Europe/Berlin", chunk_rows),
            expected,
            err_msg=f"chunk_rows={chunk_rows}",
        )


def test_tz_hourly_export_repeats_02_00_and_reads_as_consecutive_hours(
    tmp_path: Path,
) -> None:
    utc = pd.date_range("2025-10-25 22:00", periods=6, freq="h", tz="UTC")
    wall = utc.tz_convert("Europe/Berlin").tz_localize(None)
    assert list(wall.strftime("%H")) == ["00", "01", "02", "02", "03", "04"]
    path = local_export(tmp_path, wall)
    for chunk_rows in (1, 3, 1000):
        assert np.all(
            np.diff(chunked_times(path, "Europe/Berlin", chunk_rows))
            == np.timedelta64(1, "h")
        )


def test_tz_spring_step_is_an_ordinary_step_and_a_skipped_time_is_refused(
    tmp_path: Path,
) -> None:
    from rareevent.errors import RareEventError
    from rareevent.load import load_csv

    utc = pd.date_range("2026-03-29 00:00", "2026-03-29 02:00", freq="10min", tz="UTC")
    data = load_csv(
        local_export(tmp_path, utc.tz_convert("Europe/Berlin").tz_localize(None)),
        InputSpec(read=ReadOptions(tz="Europe/Berlin")),
    )
    assert np.all(
        np.diff(data.time) == np.timedelta64(10, "m")
    )  # 01:50 -> 03:00 local is 10 minutes
    skipped = local_export(
        tmp_path,
        pd.DatetimeIndex(["2026-03-29 01:50", "2026-03-29 02:30", "2026-03-29 03:10"]),
        "skipped.csv",
    )
    with pytest.raises(
        RareEventError,
        match=r"time '2026-03-29 02:30:00' in column 'time' at line 3 does not exist in Europe/Berlin",
    ):
        load_csv(skipped, InputSpec(read=ReadOptions(tz="Europe/Berlin")))


def test_tz_honours_offsets_in_the_data(tmp_path: Path) -> None:
    from rareevent.load import load_csv

    path = tmp_path / "offsets.csv"
    path.write_text(
        "time,a\n2025-10-26T02:30:00+02:00,1\n2025-10-26T02:10:00+01:00,2\n2025-10-26 03:30:00,3\n"
    )
    data = load_csv(path, InputSpec(read=ReadOptions(tz="Europe/Berlin")))
    assert [str(t) for t in data.time] == [
        "2025-10-26T00:30:00.000000000",
        "2025-10-26T01:10:00.000000000",
        "2025-10-26T02:30:00.000000000",
    ]


def test_unknown_tz_and_encoding_are_refused_by_name() -> None:
    from rareevent.errors import RareEventError
    from rareevent.options import ReadOptions

    with pytest.raises(
        RareEventError, match="tz 'Europe/Berlinn' is not a time zone name"
    ):
        ReadOptions(tz="Europe/Berlinn")
    with pytest.raises(
        RareEventError, match="encoding 'cp1252x' is not a text encoding"
    ):
        ReadOptions(encoding="cp1252x")


def test_a_run_from_before_tz_and_encoding_reads_as_before() -> None:
    from rareevent.load import Reading, reading_record_ok

    old = {
        "decimal": ".",
        "decimal_settled": False,
        "time_format": None,
        "time_unit": None,
        "date_order": None,
        "date_order_assumed": False,
    }
    assert reading_record_ok(old) and Reading.from_record(old) == Reading()
    assert reading_record_ok(Reading(tz="Europe/Berlin", encoding="cp1252").to_record())
    assert not reading_record_ok({**Reading().to_record(), "tz": "Mars/Olympus"})


def test_a_second_date_column_gets_the_time_hint_not_drop(tmp_path: Path) -> None:
    from rareevent.errors import RareEventError
    from rareevent.load import load_csv

    path = tmp_path / "two-dates.csv"
    path.write_text(
        "Zeitstempel;Wartung;a\n02.03.2026 00:00;01.03.2026;1\n02.03.2026 00:01;01.03.2026;2\n"
    )
    with pytest.raises(RareEventError) as caught:
        load_csv(path)
    assert "non-numeric value '01.03.2026' in column 'Wartung' at line 2" in str(
        caught.value
    )
    assert "`time=Wartung`" in str(caught.value) and "drop" not in str(caught.value)
