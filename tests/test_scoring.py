"""Scoring internals: alarm episodes, top sensors, writers, chunk invariance with smoothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rareevent.scoring as scoring
from rareevent.runs import load_run
from rareevent.scoring import AlarmEpisodes, WindowWriter, score_csv, top_features
from rareevent.options import ScoreSpec


def test_top_features_names_the_largest_shares_in_order() -> None:
    errors = np.array([[1.0, 6.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    top = top_features(errors, ["a", "b", "c", "d"])
    assert top[0] == "b:0.60;c:0.30;a:0.10"
    assert (
        top[1] == "a:0.00;b:0.00;c:0.00"
    )  # all-zero errors: no division by zero, stable order


def test_top_features_match_a_stable_sort_of_the_shares() -> None:
    errors = (
        np.random.default_rng(3).integers(0, 4, size=(500, 7)).astype(np.float32)
    )  # many ties
    names = list("abcdefg")
    top = top_features(errors, names)
    for row, text in zip(errors, top):
        total = row.sum()
        shares = row / total if total > 0 else np.zeros_like(row)
        order = np.argsort(-shares, kind="stable")[:3]
        assert text == ";".join(f"{names[i]}:{shares[i]:.2f}" for i in order)


@pytest.mark.parametrize(
    "cuts", [[10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 6, 10], [8, 10]]
)
def test_alarm_episodes_group_consecutive_flags_however_the_windows_arrive(
    cuts: list[int],
) -> None:
    flags = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    error = np.array([0, 5, 7, 0, 0, 9, 0, 2, 8, 3], dtype=np.float32)
    rows, time = np.arange(10, 20), np.arange(10, 20) * 60.0
    features = np.zeros((10, 2), np.float32)
    features[flags] = [[1, 0], [1, 1], [0, 1], [3, 1], [0, 4], [0, 4]]
    episodes = AlarmEpisodes(["a", "b"])
    opened, closed, start = [], [], 0
    for stop in cuts:  # the windows in pieces, as updates bring them
        part = slice(start, stop)
        new, ended = episodes.add(
            flags[part],
            np.zeros(stop - start, bool),
            error[part],
            features[part],
            rows[part],
            time[part],
        )
        opened += new
        closed += ended
        start = stop
    closed += episodes.end()
    alarms = episodes.alarms
    assert closed == alarms
    assert [
        (a["start_row"], a["end_row"], a["windows"], a["peak_error"]) for a in alarms
    ] == [(11, 12, 2, 7.0), (15, 15, 1, 9.0), (17, 19, 3, 8.0)]
    assert [(o["start_row"], o["error"]) for o in opened] == [
        (11, 5.0),
        (15, 9.0),
        (17, 2.0),
    ]
    assert alarms[0]["top_features"] == "a:0.67;b:0.33"
    assert alarms[1]["top_features"] == "b:1.00;a:0.00"
    assert alarms[2]["top_features"] == "b:0.75;a:0.25"
    assert alarms[0]["start_time"] == 660.0 and alarms[2]["end_time"] == 1140.0


def test_a_gap_splits_an_alarm_episode() -> None:
    episodes = AlarmEpisodes(["a"])
    flags, breaks = np.ones(4, bool), np.array([0, 0, 1, 0], bool)
    episodes.add(
        flags,
        breaks,
        np.arange(4, dtype=np.float32),
        np.ones((4, 1), np.float32),
        np.arange(4),
        None,
    )
    assert [a["start_row"] for a in episodes.end()] == [2]
    assert [(a["start_row"], a["end_row"]) for a in episodes.alarms] == [(0, 1), (2, 3)]


def test_no_flags_no_alarms() -> None:
    episodes = AlarmEpisodes(["a"])
    assert episodes.add(
        np.zeros(5, bool),
        np.zeros(5, bool),
        np.zeros(5, np.float32),
        np.zeros((5, 1), np.float32),
        np.arange(5),
        None,
    ) == ([], [])
    assert episodes.end() == [] and episodes.alarms == []


def test_window_writer_json_is_one_valid_document(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    writer = WindowWriter(path, "json")
    writer(pd.DataFrame({"row": [2, 3], "error": [0.5, 0.25]}))
    writer(pd.DataFrame({"row": [4], "error": [1.0]}))
    writer.finish({"alarms": [{"start_row": 4}], "metrics": None})
    document = json.loads(path.read_text())
    assert document == {
        "windows": [
            {"row": 2, "error": 0.5},
            {"row": 3, "error": 0.25},
            {"row": 4, "error": 1.0},
        ],
        "alarms": [{"start_row": 4}],
        "metrics": None,
    }


@pytest.mark.slow
@pytest.mark.parametrize("smooth", [1, 5])
def test_chunked_scoring_equals_whole_file_across_predict_blocks(
    monkeypatch: pytest.MonkeyPatch,
    sensor_csv: Path,
    trained_runs: dict[str, Path],
    smooth: int,
) -> None:
    monkeypatch.setattr(
        scoring, "PREDICT_BATCH", 16
    )  # many blocks, so carries across blocks are exercised
    record, detector = load_run(trained_runs["ae"])
    detector.smooth = smooth
    outputs = []
    for chunk_rows in (1_000_000, 37, 5):
        frames: list[pd.DataFrame] = []
        result = score_csv(
            sensor_csv,
            record,
            detector,
            ScoreSpec(chunk_rows=chunk_rows),
            sink=frames.append,
        )
        outputs.append((pd.concat(frames, ignore_index=True), result))
    (whole, first), *rest = outputs
    assert len(whole) == 598 and whole["row"].tolist() == list(range(2, 600))
    for frame, result in rest:
        pd.testing.assert_frame_equal(frame, whole)
        assert result.alarms == first.alarms and result.metrics == first.metrics
    if smooth > 1:  # the smoothed score is the trailing mean of raw scores
        raw, _ = detector.score_windows(
            np.asarray(pd.read_csv(sensor_csv)[["s1", "s2", "s3"]], dtype=np.float32)
        )
        expected = np.array(
            [raw[max(0, i - smooth + 1) : i + 1].mean() for i in range(len(raw))],
            dtype=np.float32,
        )
        np.testing.assert_allclose(whole["error"].to_numpy(), expected, rtol=1e-5)


def test_detector_predict_matches_the_threshold_and_validation_labels(
    sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    record, detector = load_run(trained_runs["ae"])
    X = pd.read_csv(sensor_csv)[detector.feature_names_in_].to_numpy()
    raw, per_feature = detector.score_windows(X)
    assert per_feature.shape == (598, 3)
    np.testing.assert_allclose(
        per_feature.mean(axis=1), raw, rtol=1e-5
    )  # the score is the mean over sensors
    np.testing.assert_array_equal(
        detector.window_flags(X), (raw >= detector.threshold_).astype(np.int8)
    )
    np.testing.assert_array_equal(
        detector.predict(X), np.r_[0, 0, (raw >= detector.threshold_).astype(np.int8)]
    )  # one per row
