"""Time gaps and resampling: segments that no window crosses, in training, scoring, metrics and the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import rareevent.scoring as scoring
from rareevent import gaps, windows
from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.errors import RareEventError
from rareevent.fleet import train_fleet
from rareevent.metrics import event_metrics
from rareevent.runs import load_run, run_view
from rareevent.scoring import score_csv
from rareevent.training import train
from rareevent.options import (
    InputSpec,
    Resampling,
    ScoreSpec,
    SplitSpec,
    TrainSpec,
    check_max_gap,
)
from tests.conftest import TINY, snapshot, synthetic_frame
from tests.test_errors import assert_one_error_line

T = 3  # the lookback of the tiny runs


@pytest.fixture(scope="module")
def holed_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic sensors, one row a minute, with the clock jumping six hours forward at row 300 (a historian outage)."""
    frame = synthetic_frame()
    minutes = np.arange(len(frame)) + np.where(np.arange(len(frame)) < 300, 0, 6 * 60)
    frame["timestamp"] = (
        pd.Timestamp("2026-01-01") + pd.to_timedelta(minutes, unit="min")
    ).strftime("%Y-%m-%d %H:%M:%S")
    return write(frame, tmp_path_factory.mktemp("gaps") / "holed.csv")


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, float_format="%.5f")
    return path


def flat(text: str) -> str:
    """Printed output as one line of words: table borders and line wrapping removed."""
    return " ".join(re.sub(r"[│┃]", " ", text).split())


def window_spans(
    frame: pd.DataFrame, end_rows: np.ndarray, lookback: int = T
) -> np.ndarray:
    """Minutes from the first to the last row of each window (by its end row)."""
    times = pd.to_datetime(frame["timestamp"]).to_numpy()
    return (times[end_rows] - times[end_rows - lookback + 1]) / np.timedelta64(1, "m")


# ---------------------------------------------------------------- the mechanism


def test_inside_segments_keeps_windows_within_one_segment_and_counts_add_up() -> None:
    starts = np.zeros(20, bool)
    starts[[0, 7, 9]] = True  # segments of 7, 2 and 11 rows
    keep = windows.inside_segments(starts, 3)
    assert keep.sum() == sum(windows.n_windows(n, 3) for n in (7, 2, 11)) == 5 + 0 + 9
    assert np.flatnonzero(~keep).tolist() == [
        5,
        6,
        7,
        8,
    ]  # every window holding rows 6|7 or 8|9
    np.testing.assert_array_equal(
        windows.window_resets(starts, 3)[keep], np.isin(np.flatnonzero(keep), [0, 9])
    )


def test_gap_rules_datetime_numeric_and_multiples() -> None:
    minutes = np.array(
        [
            "2026-01-01T00:00",
            "2026-01-01T00:01",
            "2026-01-01T00:02",
            "2026-01-01T06:02",
            "2026-01-01T06:03",
        ],
        dtype="datetime64[ns]",
    )
    assert (
        gaps.resolve_max_gap(None, minutes, "t", "f.csv") == 300.0
    )  # 5x the median step of 60 s
    assert gaps.resolve_max_gap("10min", minutes, "t", "f.csv") == 600.0
    assert gaps.resolve_max_gap("none", minutes, "t", "f.csv") is None
    np.testing.assert_array_equal(gaps.gap_starts(minutes, 5, 300.0), [1, 0, 0, 1, 0])
    assert gaps.gap_starts(minutes[3:], 2, 300.0, previous=minutes[2]).tolist() == [
        True,
        False,
    ]  # across a chunk border
    counter = np.array(
        [0.0, 1.0, 2.0, 3.0, 40.0, 41.0]
    )  # a numeric axis: gaps in its own unit
    assert gaps.resolve_max_gap("5x", counter, "t", "f.csv") == 5.0
    assert gaps.resolve_max_gap("50", counter, "t", "f.csv") == 50.0
    assert gaps.gap_starts(counter, 6, 5.0).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert gaps.gap_starts(counter, 6, 50.0).sum() == 1
    with pytest.raises(RareEventError, match="holds plain numbers"):
        gaps.resolve_max_gap("10min", counter, "t", "f.csv")
    with pytest.raises(RareEventError, match="holds dates"):
        gaps.resolve_max_gap("50", minutes, "t", "f.csv")
    with pytest.raises(RareEventError, match="needs a time column"):
        gaps.resolve_max_gap("10min", None, None, "f.csv")
    assert (
        gaps.resolve_max_gap(None, None, None, "f.csv") is None
    )  # the default is silent without a time column
    for bad in ("soon", "0x", "-5min"):
        with pytest.raises(RareEventError, match="^max_gap "):
            check_max_gap(bad)


def test_segments_shorter_than_the_lookback_are_skipped_with_a_count() -> None:
    minutes = (
        np.array([0, 1, 2, 3, 100, 101, 200, 201, 202], dtype="int64")
        .astype("datetime64[m]")
        .astype("datetime64[ns]")
    )
    starts = gaps.gap_starts(minutes, len(minutes), 300.0)
    found = gaps.summary(minutes, starts, T, None, 300.0)
    assert (
        found.segments,
        found.gaps,
        found.longest_gap,
        found.skipped_segments,
        found.skipped_rows,
    ) == (3, 2, 99 * 60.0, 1, 2)
    assert windows.inside_segments(starts, T).sum() == 2 + 0 + 1


def test_smoothing_starts_afresh_after_a_reset_and_chunks_agree() -> None:
    detector = RareEventDetector(smooth=3)
    raw = np.array([1, 2, 3, 10, 20, 30, 40], dtype=np.float32)
    resets = np.array([1, 0, 0, 1, 0, 0, 0], bool)
    whole = detector.smooth_scores(raw, resets=resets)
    np.testing.assert_allclose(whole, [1, 1.5, 2, 10, 15, 20, 30])
    for cut in range(1, len(raw)):  # any chunk border gives the same values
        first = detector.smooth_scores(raw[:cut], resets=resets[:cut])
        carry = detector.carry_scores(None, raw[:cut], resets[:cut])
        second = detector.smooth_scores(raw[cut:], carry, resets[cut:])
        np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_event_in_a_gap_is_unseen_and_false_alarms_per_day_count_covered_time() -> None:
    hours = (
        np.arange(48, dtype="int64").astype("datetime64[h]").astype("datetime64[ns]")
    )
    hours[24:] += np.timedelta64(24, "h")  # a day-long hole after row 23
    starts = gaps.gap_starts(hours, 48, 3600.0)
    labels = np.zeros(48, int)
    labels[24] = 1  # the first row after the hole: no window of 3 rows ends there
    labels[40:42] = 1
    keep = windows.inside_segments(starts, T)
    ends = (np.arange(windows.n_windows(48, T)) + T - 1)[keep]
    flags = np.isin(ends, [10, 41])  # one false alarm, one detection
    with_gaps = event_metrics(labels, flags, ends, time=hours, starts=starts)
    assert (
        with_gaps["events"],
        with_gaps["events_detected"],
        with_gaps["events_unseen"],
    ) == (2, 1, 1)
    assert with_gaps["false_alarms"] == 1
    assert with_gaps["false_alarms_per_day"] == pytest.approx(
        1 / (46 / 24)
    )  # 46 covered hours, not 70
    assert event_metrics(labels, flags, ends, time=hours)[
        "false_alarms_per_day"
    ] == pytest.approx(1 / (71 / 24))


def test_an_alarm_before_a_gap_does_not_warn_of_an_event_after_it() -> None:
    starts = np.zeros(40, bool)
    starts[[0, 20]] = True  # a gap before row 20
    labels = np.zeros(40, int)
    labels[22:25] = 1  # an event just after the gap
    labels[34:36] = 1  # and one inside the second segment
    ends = (np.arange(windows.n_windows(40, T)) + T - 1)[
        windows.inside_segments(starts, T)
    ]
    flags = np.isin(
        ends, [18, 31]
    )  # 4 rows before the first event (across the gap), 3 before the second
    found = event_metrics(labels, flags, ends, lead=5, starts=starts)
    assert (found["events_detected"], found["lead_rows"], found["false_alarms"]) == (
        1,
        [3],
        1,
    )
    across = event_metrics(
        labels, flags, ends, lead=5
    )  # without segments the alarm at 18 warned of the event at 22
    assert (across["events_detected"], across["lead_rows"], across["false_alarms"]) == (
        2,
        [4, 3],
        0,
    )
    # an event on the first T-1 rows after a gap is unseen: the windows before the gap could not warn of it
    first_rows = np.isin(np.arange(40), [20, 21]).astype(int)
    assert (
        event_metrics(
            first_rows, np.zeros(len(ends), bool), ends, lead=5, starts=starts
        )["events_unseen"]
        == 1
    )
    assert (
        event_metrics(first_rows, np.zeros(len(ends), bool), ends, lead=5)[
            "events_unseen"
        ]
        == 0
    )


def test_fit_parts_validation_labels_look_ahead_up_to_a_segment_start() -> None:
    rng = np.random.default_rng(0)
    X_train, X_valid = rng.standard_normal((60, 2)), rng.standard_normal((30, 2))
    y_valid = np.zeros(
        33, np.int8
    )  # the valid labels run lead = 3 rows past X_valid: an event begins at row 31
    y_valid[31] = 1
    detector = RareEventDetector(arch="pca", lookback=T, lead=3, threshold="f1")
    detector.fit_parts(
        X_train, None, X_valid, y_valid, starts_valid=windows.one_segment(30)
    )  # rows 30-32 continue the segment
    assert np.isfinite(detector.threshold_)
    ahead = windows.one_segment(33)
    ahead[30] = (
        True  # the rows after X_valid begin a new segment (a gap, or the next series)
    )
    with pytest.raises(
        RareEventError,
        match="needs at least one positive window in the validation part",
    ):
        detector.fit_parts(X_train, None, X_valid, y_valid, starts_valid=ahead)


# ---------------------------------------------------------------- training and scoring


def test_training_on_a_six_hour_hole_keeps_every_window_inside_a_segment(
    holed_csv: Path,
) -> None:
    frame = pd.read_csv(holed_csv)
    # the hole at row 300 lies in the train part (rows 0-359); put a second one in the test part (480-599)
    frame.loc[540:, "timestamp"] = (
        pd.to_datetime(frame.loc[540:, "timestamp"]) + pd.Timedelta(hours=6)
    ).dt.strftime("%Y-%m-%d %H:%M:%S")
    path = holed_csv.with_name("two_holes.csv")
    frame.to_csv(path, index=False)
    result = train(
        path, RareEventDetector(arch="pca", lookback=T, seed=0), name="holes"
    )
    assert result.record.gaps == gaps.GapSummary(
        max_gap="5x", max_gap_value=300.0, unit="s", segments=3, gaps=2,
        longest_gap=6 * 3600.0 + 60.0, skipped_segments=0, skipped_rows=0,
    )  # fmt: skip
    test = result.scores[result.scores["split"] == "test"]
    assert len(test) == windows.n_windows(60, T) + windows.n_windows(
        60, T
    )  # the sum over the two test segments
    assert set(window_spans(frame, result.scores["row"].to_numpy())) == {T - 1.0}
    event_windows = 6 + T - 1  # the windows holding a row of the event at rows 150-155
    assert (
        result.record.windows["train_normal"]
        == windows.n_windows(300, T) + windows.n_windows(60, T) - event_windows
    )


@pytest.mark.slow
def test_score_of_a_holed_file_drops_windows_across_the_hole_for_any_chunk_size(
    monkeypatch: pytest.MonkeyPatch, holed_csv: Path, trained_runs: dict[str, Path]
) -> None:
    monkeypatch.setattr(scoring, "PREDICT_BATCH", 16)
    record, detector = load_run(trained_runs["ae"])
    detector.smooth = 4
    frame = pd.read_csv(holed_csv)
    outputs = []
    for chunk_rows in (
        1_000_000,
        299,
        300,
        301,
        37,
        5,
    ):  # borders just before, at and after the hole
        frames: list[pd.DataFrame] = []
        result = score_csv(
            holed_csv,
            record,
            detector,
            ScoreSpec(chunk_rows=chunk_rows),
            sink=frames.append,
        )
        outputs.append((pd.concat(frames, ignore_index=True), result))
    (whole, first), *rest = outputs
    assert (
        len(whole)
        == first.n_windows
        == windows.n_windows(300, T) + windows.n_windows(300, T)
    )
    assert first.n_segments == 2
    assert set(window_spans(frame, whole["row"].to_numpy())) == {T - 1.0}
    for other, result in rest:
        pd.testing.assert_frame_equal(other, whole)
        assert result.alarms == first.alarms and result.metrics == first.metrics
    # the smoothing starts afresh at the first window after the hole: it is that window's raw score
    raw, _ = detector.score_windows(
        frame[detector.feature_names_in_].to_numpy()[300 : 300 + T]
    )
    assert whole.loc[whole["row"] == 300 + T - 1, "error"].item() == pytest.approx(
        float(raw[0]), rel=1e-6
    )


@pytest.mark.slow
def test_a_run_saved_before_gaps_scores_as_before(
    tmp_path: Path, holed_csv: Path, trained_runs: dict[str, Path]
) -> None:
    folder = tmp_path / "old"
    shutil.copytree(trained_runs["ae"], folder)
    record = json.loads((folder / "run.json").read_text())
    del record["gaps"], record["resample"]
    (folder / "run.json").write_text(json.dumps(record))
    old_record, detector = load_run(folder)
    result = score_csv(holed_csv, old_record, detector)
    assert (
        result.n_windows == windows.n_windows(600, T) and result.n_segments == 1
    )  # no gap rule: today's behaviour


def test_numeric_time_column_measures_gaps_in_its_own_unit(tmp_path: Path) -> None:
    frame = synthetic_frame().drop(columns="timestamp")
    frame.insert(
        0,
        "t",
        np.where(
            np.arange(len(frame)) < 250,
            np.arange(len(frame)) * 10,
            np.arange(len(frame)) * 10 + 400,
        ),
    )
    path = tmp_path / "counter.csv"
    frame.to_csv(path, index=False)
    found = train(
        path,
        RareEventDetector(arch="pca", lookback=T),
        TrainSpec(input=InputSpec(time="t")),
        name="n",
    ).record.gaps
    assert (
        found.segments,
        found.gaps,
        found.longest_gap,
        found.max_gap_value,
        found.unit,
    ) == (2, 1, 410.0, 50.0, "column")
    assert (
        train(
            path,
            RareEventDetector(arch="pca", lookback=T),
            TrainSpec(input=InputSpec(time="t"), split=SplitSpec(max_gap="500")),
            name="n",
        ).record.gaps.segments
        == 1
    )


# ---------------------------------------------------------------- resampling


def irregular_frame(n: int = 900, seed: int = 1) -> pd.DataFrame:
    """About two rows a minute at jittered times (every minute holds at least one)."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(
        np.concatenate(
            [
                np.arange(n // 2) * 60 + 5,
                np.arange(n // 2) * 60 + rng.integers(10, 55, n // 2),
            ]
        )
    )
    frame = synthetic_frame(
        n=n, events=(300, 600, 800), length=12
    )  # events in each part of the 450-minute grid
    frame["timestamp"] = (
        pd.Timestamp("2026-01-01") + pd.to_timedelta(seconds, unit="s")
    ).strftime("%Y-%m-%d %H:%M:%S")
    return frame


def test_resample_puts_an_irregular_export_on_a_one_minute_grid(tmp_path: Path) -> None:
    frame = irregular_frame()
    path = tmp_path / "irregular.csv"
    frame.to_csv(path, index=False)
    result = train(
        path,
        RareEventDetector(arch="pca", lookback=T),
        TrainSpec(split=SplitSpec(resample=Resampling("1min", "mean"))),
        name="r",
    )
    grid = result.data
    assert len(grid) == 450 and result.record.resample == {
        "every": "1min",
        "agg": "mean",
        "rows": 450,
        "empty_cells": 0,
    }
    assert set(np.diff(grid.time) / np.timedelta64(1, "s")) == {60.0}
    minute = pd.to_datetime(frame["timestamp"]).dt.floor("min")
    np.testing.assert_allclose(
        grid.X[:, 0], frame.groupby(minute)["s1"].mean().to_numpy()
    )
    np.testing.assert_array_equal(
        grid.y, frame.groupby(minute)["label"].max().to_numpy()
    )
    assert grid.rows[:3].tolist() == [
        0,
        2,
        4,
    ]  # a cell names the data row of its first row
    last = train(
        path,
        RareEventDetector(arch="pca", lookback=T),
        TrainSpec(split=SplitSpec(resample=Resampling("1min", "max"))),
        name="r",
    ).data
    np.testing.assert_allclose(
        last.X[:, 1], frame.groupby(minute)["s2"].max().to_numpy()
    )


def test_resample_refuses_empty_cells_unless_fill_says_how(tmp_path: Path) -> None:
    frame = irregular_frame().drop(
        index=range(100, 104)
    )  # rows 100-103: the minutes 50 and 51
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        RareEventError,
        match=r"holes\.csv: no rows in the `resample` 1min grid cell at 2026-01-01 00:50:00",
    ):
        train(
            path,
            RareEventDetector(arch="pca", lookback=T),
            TrainSpec(split=SplitSpec(resample=Resampling("1min"))),
            name="r",
        )
    filled = train(
        path,
        RareEventDetector(arch="pca", lookback=T),
        TrainSpec(
            input=InputSpec(fill="ffill"), split=SplitSpec(resample=Resampling("1min"))
        ),
        name="r",
    )
    assert filled.record.resample["empty_cells"] == 2 and len(filled.data) == 450
    np.testing.assert_array_equal(filled.data.X[50], filled.data.X[49])
    dropped = train(
        path,
        RareEventDetector(arch="pca", lookback=T),
        TrainSpec(
            input=InputSpec(fill="drop"), split=SplitSpec(resample=Resampling("1min"))
        ),
        name="r",
    )
    assert (
        len(dropped.data) == 448 and dropped.record.gaps.gaps == 0
    )  # a 3-minute step is no gap at 5x


@pytest.mark.slow
@pytest.mark.parametrize("fill", ["interpolate", "drop"])
def test_chunked_scoring_of_a_resampled_run_equals_one_piece(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fill: str
) -> None:
    monkeypatch.setattr(scoring, "PREDICT_BATCH", 16)
    frame = irregular_frame().drop(index=range(100, 104))
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    result = train(
        path,
        RareEventDetector(arch="pca", lookback=T, smooth=3),
        TrainSpec(
            input=InputSpec(fill=fill),
            split=SplitSpec(resample=Resampling("1min", "last")),
        ),
        name="r",
    )
    outputs = []
    for chunk_rows in (1_000_000, 101, 102, 7, 1):
        frames: list[pd.DataFrame] = []
        scored = score_csv(
            path,
            run_view(result.record, result.detector),
            result.detector,
            ScoreSpec(InputSpec(fill=fill), chunk_rows=chunk_rows),
            sink=frames.append,
        )
        outputs.append((pd.concat(frames, ignore_index=True), scored))
    (whole, first), *rest = outputs
    assert first.n_rows == len(result.data)
    for other, scored in rest:
        pd.testing.assert_frame_equal(other, whole)
        assert scored.n_rows == first.n_rows and scored.metrics == first.metrics


# ---------------------------------------------------------------- the command line


@pytest.mark.slow
def test_acceptance_sample_data_with_500_rows_removed_reports_two_segments(
    tmp_path: Path,
) -> None:
    sample = pd.read_csv(Path(__file__).parents[1] / "sample_data" / "pump_sensors.csv")
    middle = len(sample) // 2
    holed = sample.drop(index=range(middle, middle + 500))
    path = tmp_path / "holed.csv"
    holed.to_csv(path, index=False)
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(path),
            *TINY,
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "h",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 segment(s), 1 gap(s) (longest 16h 42min); --max-gap 5x = 10min" in flat(
        result.stdout
    )
    record = json.loads((tmp_path / "runs" / "h" / "run.json").read_text())
    assert (record["gaps"]["segments"], record["gaps"]["gaps"]) == (2, 1)
    scores = pd.read_csv(tmp_path / "runs" / "h" / "scores.csv")
    spans = window_spans(holed.reset_index(drop=True), scores["row"].to_numpy())
    assert set(spans) == {
        2 * (T - 1.0)
    }  # 2-minute steps: no window's rows cross the hole


@pytest.mark.slow
def test_cli_train_and_score_report_gaps(tmp_path: Path, holed_csv: Path) -> None:
    runs = str(tmp_path / "runs")
    trained = CliRunner().invoke(
        app,
        [
            "train",
            str(holed_csv),
            *TINY,
            "--runs-dir",
            runs,
            "--name",
            "g",
            "--max-gap",
            "30min",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert "2 segment(s), 1 gap(s) (longest 6h 1min); --max-gap 30min = 30min" in flat(
        trained.stdout
    )
    out = tmp_path / "w.csv"
    scored = CliRunner().invoke(
        app,
        [
            "score",
            str(holed_csv),
            "--runs-dir",
            runs,
            "--run",
            "g",
            "--output",
            str(out),
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert (
        "1 time gap(s) above the run's --max-gap 30min split the file into 2 segments"
        in flat(scored.stderr)
    )
    assert len(pd.read_csv(out)) == 2 * windows.n_windows(300, T)


def lead_labels(
    y: np.ndarray, gap_rows: list[int], ends: np.ndarray, lead: int
) -> np.ndarray:
    """Reference window labels, one window at a time: an event row in ``[end, end+lead]`` before the next gap."""
    borders = np.array([*gap_rows, len(y)])
    return np.array(
        [
            y[end : min(end + lead, borders[borders > end][0] - 1) + 1].max()
            for end in ends
        ]
    )


def test_cli_lead_never_looks_across_a_gap(tmp_path: Path) -> None:
    # events at 390 (valid, no gap), 420 (valid, right after a gap), 480 (first test row, no gap), 540 (test, right after a gap)
    frame = synthetic_frame(events=(150, 390, 420, 480, 540))
    minutes = np.arange(len(frame)) + 6 * 60 * (
        (np.arange(len(frame)) >= 420).astype(int) + (np.arange(len(frame)) >= 540)
    )
    frame["timestamp"] = (
        pd.Timestamp("2026-01-01") + pd.to_timedelta(minutes, unit="min")
    ).strftime("%Y-%m-%d %H:%M:%S")
    path = write(frame, tmp_path / "lead.csv")
    y = frame["label"].to_numpy()
    runs = str(tmp_path / "runs")
    trained = CliRunner().invoke(
        app,
        [
            "train",
            str(path),
            *TINY,
            "--arch",
            "pca",
            "--lead",
            "5",
            "--max-gap",
            "30min",
            "--runs-dir",
            runs,
            "--name",
            "lead",
        ],
    )
    assert trained.exit_code == 0, trained.output
    scores = pd.read_csv(Path(runs) / "lead" / "scores.csv")
    label = scores.set_index("row")["label"]
    assert (
        label.loc[415:419].tolist() == [0] * 5
    )  # the event after the gap at 420 labels no window before it
    assert (
        label.loc[535:539].tolist() == [0] * 5
    )  # nor does the one after the gap at 540
    assert (
        label.loc[385:389].tolist() == [1] * 5
    )  # within a segment the look-ahead works as before
    assert (
        label.loc[475:479].tolist() == [1] * 5
    )  # and from the valid part into the test part
    np.testing.assert_array_equal(
        label.to_numpy(), lead_labels(y, [420, 540], label.index.to_numpy(), 5)
    )
    metrics_out = tmp_path / "metrics.json"
    scored = CliRunner().invoke(
        app,
        [
            "score",
            str(path),
            "--runs-dir",
            runs,
            "--run",
            "lead",
            "--output",
            str(tmp_path / "w.csv"),
            "--metrics-out",
            str(metrics_out),
        ],
    )
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(metrics_out.read_text())["metrics"]
    ends = pd.read_csv(tmp_path / "w.csv")["row"].to_numpy()
    positives = int(lead_labels(y, [420, 540], ends, 5).sum())
    assert (
        metrics["tp"] + metrics["fn"] == positives == 3 * (6 + 5) + 2 * (6 - (T - 1))
    )  # warned before 150, 390, 480; after a gap no window ends on the first T-1 rows


def test_fleet_lead_never_looks_into_the_next_series(tmp_path: Path) -> None:
    # the valid parts (rows 360-479 of each file) lie side by side in the fleet; b's begins with an event
    write(synthetic_frame(events=(150, 400)), tmp_path / "a.csv")
    write(synthetic_frame(events=(150, 360)), tmp_path / "b.csv")
    result = train_fleet(
        [tmp_path / "*.csv"],
        RareEventDetector(arch="pca", lookback=T, lead=5, seed=0),
        name="fleet",
    )
    valid = result.scores[result.scores["split"] == "valid"].set_index(
        ["series", "row"]
    )["label"]
    a, b = (
        valid.loc[str(tmp_path / name)] for name in ("a.csv", "b.csv")
    )  # a series is named by its file
    assert a.loc[475:479].tolist() == [0] * 5  # a's last windows see no event of b
    assert (
        a.loc[395:399].tolist() == [1] * 5
    )  # within a's part the look-ahead works as before
    assert b.loc[362:365].tolist() == [1] * 4


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--max-gap", "soon"], ("--max-gap 'soon'", "10min")),
        (["--max-gap", "50"], ("--max-gap '50'", "'timestamp' holds dates")),
        (
            ["--resample", "1min", "--agg", "median"],
            ("--agg 'median'", "mean, last, max"),
        ),
        (["--agg", "max"], ("--agg max needs --resample",)),
        (
            ["--resample", "30s"],
            (
                "holed.csv",
                "no rows in the --resample 30s grid cell at 2026-01-01 00:00:30",
            ),
        ),
        (
            ["--max-gap", "30min", "--time", "hourly"],
            (
                "holed.csv",
                "the train part has no window of 3 rows between two time gaps",
                "--max-gap",
            ),
        ),
    ],
)
def test_gap_and_resample_errors_are_one_line_and_write_nothing(
    tmp_path: Path, holed_csv: Path, extra: list[str], fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "holed.csv"
    frame = pd.read_csv(holed_csv)
    if (
        "hourly" in extra
    ):  # a second time column that jumps an hour after every second row
        minutes = np.arange(len(frame)) + 60 * (np.arange(len(frame)) // 2)
        frame["timestamp"] = (
            pd.Timestamp("2026-01-01") + pd.to_timedelta(minutes, unit="min")
        ).strftime("%Y-%m-%d %H:%M")
        frame = frame.rename(columns={"timestamp": "hourly"})
    frame.to_csv(path, index=False)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(
        app, ["train", str(path), *TINY, "--runs-dir", str(tmp_path / "runs"), *extra]
    )
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stdout, result.stderr, fragments)
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_update_splits_newer_rows_by_the_runs_gap_rule(
    tmp_path: Path, sensor_csv: Path, holed_csv: Path
) -> None:
    from rareevent.training import save, update

    tiny = RareEventDetector(
        arch="ae", lookback=T, units=(4, 2), epochs=1, batch_size=64
    )
    parent = save(
        train(sensor_csv, tiny, TrainSpec(split=SplitSpec(max_gap="30min")), name="p"),
        tmp_path,
    )
    result = update(parent, holed_csv, epochs=1, name="u")
    assert (
        result.record.gaps.max_gap,
        result.record.gaps.max_gap_value,
        result.record.gaps.segments,
    ) == ("30min", 1800.0, 2)
    assert set(
        window_spans(pd.read_csv(holed_csv), result.scores["row"].to_numpy())
    ) == {T - 1.0}


@pytest.mark.parametrize("field", ["gaps", "resample"])
def test_a_damaged_gap_record_is_refused(
    tmp_path: Path, trained_runs: dict[str, Path], field: str
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(trained_runs["ae"], folder)
    record = json.loads((folder / "run.json").read_text())
    record[field] = (
        {"max_gap": "5x", "max_gap_value": -1.0, "unit": "s"}
        if field == "gaps"
        else {"every": "1min", "agg": "median"}
    )
    (folder / "run.json").write_text(json.dumps(record))
    with pytest.raises(
        RareEventError, match=f"run.json: field '{field}' has an invalid value"
    ):
        load_run(folder)


@pytest.mark.slow
def test_encode_drops_windows_across_the_hole(
    tmp_path: Path, holed_csv: Path, trained_runs: dict[str, Path]
) -> None:
    out = tmp_path / "codes.csv"
    result = CliRunner().invoke(
        app,
        [
            "encode",
            str(holed_csv),
            "--run",
            str(trained_runs["ae"]),
            "--output",
            str(out),
            "--chunk-rows",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(out)
    assert len(codes) == 2 * windows.n_windows(300, T)
    assert set(window_spans(pd.read_csv(holed_csv), codes["row"].to_numpy())) == {
        T - 1.0
    }
