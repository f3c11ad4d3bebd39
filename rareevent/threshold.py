"""Stage 5: choose the alarm threshold on validation window scores.

A window is flagged when its score is ``>= threshold``. Strategies:

``f1``             maximum F1 on the validation precision-recall curve
``fbeta:B``        maximum F-beta (B > 1 favours recall, B < 1 precision)
``pr-cross``       the point where precision equals recall (the seed article's choice)
``precision:P``    the highest recall whose precision is at least P
``quantile[:Q]``   the Q-quantile of the normal validation scores (no labels needed)
``pot[:R]``        peaks over threshold: where a generalised Pareto tail, fitted to the
                   highest normal validation scores, leaves probability R (no labels
                   needed; the default without labels)

The label-based strategies need at least one positive validation window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from rareevent.errors import RareEventError

DEFAULT_QUANTILE = 0.995
DEFAULT_RISK = 1e-3
POT_TAIL = 0.2  # the share of the highest normal scores whose excesses the tail is fitted to
LABEL_STRATEGIES = ("f1", "fbeta", "pr-cross", "precision")
MAX_BETA = 100.0  # beyond it F-beta is recall alone: the threshold flags every validation window


@dataclass(frozen=True)
class Strategy:
    """A parsed ``--threshold`` value: ``name`` and its numeric parameter."""

    name: str
    param: float | None = None

    @property
    def needs_labels(self) -> bool:
        return self.name in LABEL_STRATEGIES

    def __str__(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"


def parse_strategy(text: str) -> Strategy:
    """Parse ``f1``, ``fbeta:B``, ``pr-cross``, ``precision:P``, ``quantile[:Q]`` or ``pot[:R]``."""
    name, _, arg = text.strip().lower().partition(":")
    usage = "use f1, fbeta:B, pr-cross, precision:P, quantile[:Q] or pot[:R]"
    if name in ("f1", "pr-cross"):
        if arg:
            raise RareEventError(f"--threshold {text!r}: {name} takes no parameter", hint=usage)
        return Strategy(name)
    if name not in ("fbeta", "precision", "quantile", "pot"):
        raise RareEventError(f"--threshold {text!r}: unknown strategy", hint=usage)
    if not arg:
        if name in ("quantile", "pot"):
            return Strategy(name, DEFAULT_QUANTILE if name == "quantile" else DEFAULT_RISK)
        raise RareEventError(f"--threshold {text!r}: {name} needs a number, e.g. {name}:{'2' if name == 'fbeta' else '0.9'}")
    try:
        value = float(arg)
    except ValueError:
        raise RareEventError(f"--threshold {text!r}: {arg!r} is not a number", hint=usage) from None
    if name == "fbeta" and not 0 < value <= MAX_BETA:
        raise RareEventError(f"--threshold {text!r}: beta must be above 0 and at most {MAX_BETA:g}")
    if name in ("precision", "quantile") and not 0 < value <= 1:
        raise RareEventError(f"--threshold {text!r}: {name} must be in (0, 1]")
    if name == "pot" and not 0 < value < 0.5:
        raise RareEventError(f"--threshold {text!r}: the risk R must be in (0, 0.5), e.g. pot:0.001")
    return Strategy(name, value)


def check_labels(strategy: Strategy, labels: np.ndarray | None) -> None:
    """Refuse a label-based ``strategy`` when the validation windows' ``labels`` hold no positive."""
    if strategy.needs_labels and (labels is None or not np.any(labels)):
        raise RareEventError(
            f"--threshold {strategy} needs at least one positive window in the validation part, and it has none",
            hint="use --threshold pot (or quantile), which needs no labels, or raise --valid-frac so that the validation part holds an event",
        )


def choose_threshold(strategy: Strategy, scores: np.ndarray, labels: np.ndarray | None, normal: np.ndarray) -> float:
    """Pick the threshold from validation ``scores`` (and their 0/1 ``labels``).

    ``normal`` marks the validation windows that are clean normal data: the
    quantile strategy uses only those.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if strategy.name in ("quantile", "pot"):
        if not normal.any():
            raise RareEventError(f"the validation part has no normal window for --threshold {strategy}", hint="raise --valid-frac")
        if strategy.name == "pot":
            return peaks_over_threshold(scores[normal], strategy.param)
        return float(np.quantile(scores[normal], strategy.param))
    check_labels(strategy, labels)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if strategy.name == "pr-cross":
        return float(thresholds[np.argmin(np.abs(precision - recall))])
    if strategy.name == "precision":
        ok = np.flatnonzero(precision >= strategy.param)
        if ok.size == 0:
            raise RareEventError(
                f"--threshold {strategy}: no threshold reaches precision {strategy.param:g} on the validation part",
                hint=f"the best is {precision.max():.3f}; lower P",
            )
        return float(thresholds[ok[np.argmax(recall[ok])]])
    beta2 = 1.0 if strategy.name == "f1" else strategy.param**2
    with np.errstate(divide="ignore", invalid="ignore"):
        fbeta = np.nan_to_num((1 + beta2) * precision * recall / (beta2 * precision + recall))
    return float(thresholds[np.argmax(fbeta)])


def peaks_over_threshold(normal_scores: np.ndarray, risk: float) -> float:
    """The score that normal windows exceed with probability ``risk``, from a fitted tail.

    Peaks over threshold (Siffer et al., "Anomaly Detection in Streams with
    Extreme Value Theory", KDD 2017): a generalised Pareto distribution is
    fitted to the excesses of the highest ``POT_TAIL`` of the scores over
    their ``1 - POT_TAIL`` quantile and inverted at ``risk``. A validation
    part of a few hundred windows cannot show its 0.999 quantile, and its
    empirical 0.995 quantile sits inside the normal tail: later normal data
    crosses it far more often than 1 time in 200 (measured in the README).
    The shape is kept within [-0.5, 0.5] (a few dozen excesses fit it
    loosely), and the result is never below the empirical ``1 - risk``
    quantile.
    """
    from scipy.stats import genpareto

    scores = np.asarray(normal_scores, dtype=np.float64)
    empirical = float(np.quantile(scores, 1 - risk))
    start = float(np.quantile(scores, 1 - POT_TAIL))
    excess = scores[scores > start] - start
    if len(excess) < 5 or not np.ptp(excess) > 0:
        return empirical
    with np.errstate(all="ignore"):
        shape, _, scale = genpareto.fit(excess, floc=0)
    shape = float(np.clip(shape, -0.5, 0.5))
    if not (np.isfinite(scale) and scale > 0):
        return empirical
    tail = risk * len(scores) / len(excess)  # the risk among the excesses
    level = start - scale * np.log(tail) if abs(shape) < 1e-9 else start + scale / shape * (tail**-shape - 1)
    return max(float(level), empirical)
