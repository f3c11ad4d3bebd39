"""The field's metrics of benchmarks/field_metrics.py against small cases computed by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "field_metrics",
    Path(__file__).resolve().parents[1] / "benchmarks" / "field_metrics.py",
)
fm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fm)


def bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text], dtype=bool)


@pytest.mark.parametrize(
    ("labels", "predictions", "precision", "recall", "f1"),
    [
        # half the event marked, one false range as long as the true one: P = (2*1 + 2*0)/4, R = 2/4
        ("0011110000", "0001100110", 0.5, 0.5, 0.5),
        # one event split into two predicted ranges: R = (5/6)^1 * 4/6, P = 1
        ("0111111000", "0110110000", 1.0, 20 / 36, 5 / 7),
        # one predicted range over two events: P = (6/7)^1 * 4/7, R = 1
        ("1100011000", "1111111000", 24 / 49, 1.0, 48 / 73),
        # false ranges after the last event all count (QuoVadisTAD's loop would stop after the first): P = 2/6
        ("1100000000", "1100110011", 1 / 3, 1.0, 0.5),
        ("0000000000", "0000000000", 1.0, 1.0, 1.0),
        ("0011000000", "0000000000", 0.0, 0.0, 0.0),
    ],
)
def test_range_based_precision_recall_f1_by_hand(
    labels, predictions, precision, recall, f1
):
    p, r = fm.range_precision_recall(bits(labels), bits(predictions))
    assert p == pytest.approx(precision)
    assert r == pytest.approx(recall)
    assert fm.f1_t(bits(labels), bits(predictions)) == pytest.approx(f1)


def test_best_f1_t_predicts_rows_strictly_above_the_threshold():
    labels = bits("0011000")
    # threshold 1 predicts rows 2-3 exactly (F1_T 1); threshold 0 adds row 4 (P 2/3, F1_T 0.8); 5 predicts nothing
    assert fm.best_f1_t(labels, np.array([0, 0, 5, 5, 1, 0, 0.0])) == pytest.approx(1.0)
    assert fm.best_f1_t(labels, np.array([0, 0, 5, 5, 5, 0, 0.0])) == pytest.approx(0.8)


def test_best_point_wise_f1():
    # thresholds 0.9, 0.5, 0.4, 0.1 give F1 2/3, 1/2, 4/5, 2/3
    assert fm.best_f1(bits("0110"), np.array([0.1, 0.9, 0.4, 0.5])) == pytest.approx(
        0.8
    )


def test_smoothing_is_their_asymmetric_mean():
    out = fm.smooth(np.arange(10.0))
    assert out[:5].tolist() == [0.0] * 5
    assert out[5] == pytest.approx(4.0)  # rows 0..8
    assert out[9] == pytest.approx(6.5)  # rows 4..9: the end is cut short


def test_baselines_on_a_relation_break():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(400)
    train = np.column_stack(
        [x, 2 * x, -x] + [rng.standard_normal(400) for _ in range(9)]
    )
    test = train[:200].copy()
    labels = np.zeros(200, dtype=bool)
    labels[100:110] = True
    test[100:110, 1] = -2 * test[100:110, 0]  # in range, relation broken
    scores = fm.baseline_scores(train, test, labels)
    assert set(scores) == {"range", "L2", "1-NN", "PCA error"}
    assert all(len(s) == 200 for s in scores.values())
    assert scores["range"][:100].sum() == 0  # the training rows themselves are in range
    assert fm.best_f1(labels, scores["PCA error"]) > 0.6
    assert fm.best_f1(labels, scores["1-NN"]) > fm.best_f1(labels, scores["L2"])
