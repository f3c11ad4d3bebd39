"""benchmarks/scorecard.py: its decision stages, --decision specs and the cache files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scorecard
import scorecard_cache


def test_split_specs_keeps_the_commas_inside_a_spec() -> None:
    assert scorecard.split_specs(
        "fixed,adaptive:event=10,min=2,telemanom_reference"
    ) == [
        "fixed",
        "adaptive:event=10,min=2",
        "telemanom_reference",
    ]
    assert scorecard.split_specs("fixed:min=3,cool=20") == ["fixed:min=3,cool=20"]


def test_unknown_decision_and_bad_spans_stop_with_a_message() -> None:
    with pytest.raises(SystemExit, match="use fixed, telemanom_reference"):
        scorecard.decision_stage("telemanom")
    with pytest.raises(SystemExit, match="'wait=3' is not one of"):
        scorecard.decision_stage("fixed:wait=3")
    with pytest.raises(SystemExit, match="adaptive needs event=E"):
        scorecard.decision_stage("adaptive:min=2")


def test_fixed_is_the_threshold_alone() -> None:
    flags = scorecard.fixed(np.array([0.1, 0.5, 0.4]), np.arange(3), 0.4, np.zeros(0))
    assert flags.tolist() == [False, True, True]


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(1.0, 0.05, n))


def test_telemanom_reference_flags_a_burst_padded_and_leaves_noise_alone() -> None:
    scores = _noise(5000)
    assert not scorecard.telemanom_reference(scores, np.arange(5000), 0.0, scores).any()
    scores[3000:3040] += 5.0
    flags = scorecard.telemanom_reference(scores, np.arange(5000), 0.0, scores)
    hit = np.flatnonzero(flags)
    # the smoothed burst, padded by 100 windows back; nothing far from it
    assert hit.min() <= 3000 - 50 and 3040 <= hit.max() <= 3040 + 400
    assert len(scorecard._runs(flags)) == 1


def test_pruning_drops_a_sequence_that_does_not_stand_out() -> None:
    values = np.full(100, 1.0)
    values[10:15] = 10.0  # stands far above the rest
    values[50:55] = 1.05  # 5% above the quiet level: pruned
    anomalous = np.zeros(100, bool)
    anomalous[10:15] = anomalous[50:55] = True
    kept = scorecard._pruned(values, anomalous, quiet_max=1.0)
    assert kept[10:15].all() and not kept[50:55].any()


def test_cards_pool_events_over_series() -> None:
    labels = np.zeros(20, np.int8)
    labels[5:8] = 1
    entry = {
        "labels": labels,
        "ends": np.arange(2, 20),
        "scores": np.where(np.isin(np.arange(2, 20), (6, 12)), 1.0, 0.0),
        "eval_start": np.int64(0),
    }
    card = scorecard.Card()
    flags = entry["scores"] >= 0.5
    scorecard.judge_series(entry, flags, card)
    scorecard.judge_series(entry, flags, card)
    # per series: 1 of 1 event, episodes [6] (true) and [12] (false)
    assert (card.events, card.caught, card.episodes, card.false_alarms) == (2, 2, 4, 2)
    assert card.precision == pytest.approx(0.5)
    assert card.f05 == pytest.approx(1.25 * 0.5 / (0.25 * 0.5 + 1.0))
    assert card.flags_f1 == [pytest.approx(0.4)] * 2
    # AP: 1 of the 2 top scores is an event row (recall 1/3), then all 18 rows (precision 3/18)
    assert (
        card.auprc == [pytest.approx(0.5 / 3 + 2 / 3 * 3 / 18)] * 2
    )  # 1 TP, 1 FP, 2 FN


def test_cache_entries_are_written_atomically_and_read_without_pickle(
    tmp_path: Path,
) -> None:
    path = tmp_path / "msl" / "ae" / "C-1.npz"
    scorecard_cache._save(
        path,
        {
            "scores": np.array([0.5, 2.0]),
            "strategy": np.str_("pot:0.001"),
            "time": np.array(
                ["2026-01-01T00:00", "2026-01-01T00:01"], "datetime64[ns]"
            ),
        },
    )
    entry = scorecard_cache.load_entry(path)
    assert entry["scores"].tolist() == [0.5, 2.0]
    assert str(entry["strategy"]) == "pot:0.001"
    assert entry["time"].dtype == np.dtype("datetime64[ns]")
    assert [p.name for p in path.parent.iterdir()] == ["C-1.npz"]  # no temporary left


def test_baselines_score_an_outlying_row_highest() -> None:
    rng = np.random.default_rng(0)
    mixing = np.array(
        [[1.0, 1.0, 0.5, 0.0], [0.0, 1.0, -1.0, 1.0]]
    )  # 4 sensors, 2 causes
    train = rng.normal(size=(300, 2)) @ mixing + rng.normal(0, 0.05, (300, 4))
    rows = rng.normal(size=(50, 2)) @ mixing + rng.normal(0, 0.05, (50, 4))
    rows[30, 0] += 6.0  # far outside, and off the relation between the sensors
    scores = {
        n: scorecard_cache.baseline_row_scores(n, train, rows)
        for n in scorecard_cache.BASELINES
    }
    for name in ("pca-rows", "l2", "1nn"):
        assert int(np.argmax(scores[name])) == 30, name
    # a forest cannot split beyond its training range: the row is only among the top few
    assert np.sum(scores["iforest"] > scores["iforest"][30]) <= 4
    trailing = [scores["iforest"][max(i - 4, 0) : i + 1].mean() for i in range(50)]
    assert scores["iforest-mean5"] == pytest.approx(trailing)


def test_library_stage_with_no_policy_gives_the_fixed_flags() -> None:
    pytest.importorskip("rareevent.decision")  # the decision stage of issue 31
    scores = _noise(500)
    scores[200:210] += 1.0
    ends = np.arange(4, 504)
    same = scorecard.decision_stage("fixed:min=1,cool=0")(scores, ends, 1.3, scores)
    assert same.tolist() == scorecard.fixed(scores, ends, 1.3, scores).tolist()
    held = scorecard.decision_stage("fixed:min=3")(scores, ends, 1.3, scores)
    assert np.flatnonzero(same).tolist() == list(range(200, 210))  # 6 sigmas: the burst
    assert np.flatnonzero(held).tolist() == list(range(202, 210))  # its first two wait
