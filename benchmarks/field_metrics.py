"""The field's metrics and simple baselines, as QuoVadisTAD (Sarfraz et al., ICML 2024) computes them.

Written from the description of their public evaluation code
(github ssarfraz/QuoVadisTAD, ``quovadis_tad/evaluation/`` and
``baselines/simple_baselines.py``), not copied from it:

- ``best_f1``: point-wise F1 at the best threshold on the scores.
- ``best_f1_t``: the range-based F1 of Tatbul et al. (NeurIPS 2018) at the
  best threshold, with their parameters: existence weight alpha 0, a flat
  bias (the overlap of a range is the share of its rows the other side
  marks), the recall-consistent cardinality factor of Wagner et al. (2023),
  ``((length - 1) / length) ** (overlaps - 1)``, for recall and precision,
  and precision weighted by the length of each predicted range. A threshold
  ``t`` predicts the rows whose score is strictly above it.
- ``baseline_scores``: their four simple baselines on MinMax-scaled rows
  (scaler fit on the training rows): sensor range deviation (a row outside
  [0, 1] anywhere), the L2 norm of the row, the Euclidean distance to the
  nearest training row, and the PCA error (per-sensor absolute
  reconstruction error, 10 components, or ``max(2, sensors // 5)`` when
  there are fewer than 10 sensors), the last normalised per sensor and
  smoothed, then maxed over sensors, with the normalisation (median/IQR,
  mean/std or none) that scores best on the test labels: their "optimal"
  protocol, an oracle choice that favours the baseline.

One deliberate difference: their precision loop stops at the first
predicted range after the last labelled range, so later false ranges do not
count against them; here every predicted range counts, as in Tatbul et al.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances_chunked, precision_recall_curve
from sklearn.preprocessing import MinMaxScaler

from rareevent.windows import segments

SMOOTH = 5  # their smoothing half-width: row i gets the mean of the raw scores at rows i-5 .. i+3


def best_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    """Point-wise F1 at the best threshold (a row is predicted when its score is at or above it)."""
    precision, recall, _ = precision_recall_curve(
        np.asarray(labels, dtype=bool), scores
    )
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(f1.max())


def _cardinality(overlaps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Wagner et al.'s recall-consistent factor: 1 for one overlap, less for a range split into many."""
    return ((lengths - 1) / lengths) ** np.maximum(overlaps - 1, 0)


def _overlap_counts(ranges: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each ``[start, end]`` (inclusive) of ``ranges``: how many of ``others`` (sorted, disjoint) it touches."""
    return np.searchsorted(others[:, 0], ranges[:, 1], side="right") - np.searchsorted(
        others[:, 1], ranges[:, 0], side="left"
    )


def _share(marks: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """The flat-bias overlap: the share of each range's rows that ``marks`` sets."""
    total = np.concatenate([[0], np.cumsum(marks, dtype=np.int64)])
    return (total[ranges[:, 1] + 1] - total[ranges[:, 0]]) / (
        ranges[:, 1] - ranges[:, 0] + 1
    )


def range_precision_recall(
    labels: np.ndarray, predictions: np.ndarray
) -> tuple[float, float]:
    """Tatbul et al.'s range-based precision and recall with QuoVadisTAD's parameters (see the module docstring)."""
    labels = np.asarray(labels, dtype=bool)
    predictions = np.asarray(predictions, dtype=bool)
    if not labels.any() and not predictions.any():
        return 1.0, 1.0
    if not labels.any() or not predictions.any():
        return 0.0, 0.0
    real = segments(labels)
    predicted = segments(predictions)
    real_lengths = real[:, 1] - real[:, 0] + 1
    predicted_lengths = predicted[:, 1] - predicted[:, 0] + 1
    recall = _cardinality(_overlap_counts(real, predicted), real_lengths) * _share(
        predictions, real
    )
    precision = _cardinality(
        _overlap_counts(predicted, real), predicted_lengths
    ) * _share(labels, predicted)
    return float(
        np.sum(precision * predicted_lengths) / predicted_lengths.sum()
    ), float(recall.mean())


def f1_t(labels: np.ndarray, predictions: np.ndarray) -> float:
    """The range-based F1 of one set of predictions."""
    precision, recall = range_precision_recall(labels, predictions)
    return (
        2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    )


def best_f1_t(labels: np.ndarray, scores: np.ndarray) -> float:
    """The range-based F1 at the best threshold: every distinct score, predicting the rows strictly above it."""
    scores = np.asarray(scores, dtype=float)
    return max(f1_t(labels, scores > t) for t in np.unique(scores))


def smooth(scores: np.ndarray, half: int = SMOOTH) -> np.ndarray:
    """Their smoothing: row ``i >= half`` gets the mean of rows ``i - half`` to ``i + half - 2`` (fewer at the end); earlier rows 0."""
    scores = np.asarray(scores, dtype=float)
    total = np.concatenate(
        [np.zeros((1, *scores.shape[1:])), np.cumsum(scores, axis=0)]
    )
    n = len(scores)
    out = np.zeros_like(scores)
    rows = np.arange(half, n)
    stop = np.minimum(rows + half - 1, n)
    out[half:] = (total[stop] - total[rows - half]) / (stop - (rows - half)).reshape(
        -1, *([1] * (scores.ndim - 1))
    )
    return out


def _normalised(errors: np.ndarray, how: str | None) -> np.ndarray:
    if how == "median-iqr":
        q1, median, q3 = np.percentile(errors, [25, 50, 75], axis=0)
        return (errors - median) / (np.abs(q3 - q1) + 1e-2)
    if how == "mean-std":
        std = errors.std(axis=0)
        return (errors - errors.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return errors


def pca_error_scores(
    train: np.ndarray, test: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """The PCA error baseline's row scores, with the per-sensor normalisation that gives the best point-wise F1 on ``labels``."""
    sensors = train.shape[1]
    components = 10 if sensors >= 10 else min(max(2, sensors // 5), sensors)
    pca = PCA(n_components=components, svd_solver="full").fit(train)
    errors = np.abs(test - pca.inverse_transform(pca.transform(test)))
    candidates = [
        smooth(_normalised(errors, how)).max(axis=1)
        for how in ("median-iqr", "mean-std", None)
    ]
    return max(candidates, key=lambda s: best_f1(labels, s))


def baseline_scores(
    train: np.ndarray, test: np.ndarray, labels: np.ndarray
) -> dict[str, np.ndarray]:
    """Row scores of the four simple baselines on ``test`` (MinMax scaler and models fit on ``train``)."""
    scaler = MinMaxScaler().fit(train)
    train = scaler.transform(train)
    test = scaler.transform(test)
    nearest = np.concatenate(
        [chunk.min(axis=1) for chunk in pairwise_distances_chunked(test, train)]
    )
    return {
        "range": ((test < 0) | (test > 1)).any(axis=1).astype(float),
        "L2": np.linalg.norm(test, axis=1),
        "1-NN": nearest,
        "PCA error": pca_error_scores(train, test, labels),
    }
