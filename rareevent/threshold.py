"""Stage 5: choose the alarm threshold on validation window scores.

A window is flagged when its score is ``>= threshold``. Strategies:

``f1``             maximum F1 on the validation precision-recall curve
``fbeta:B``        maximum F-beta (B > 1 favours recall, B < 1 precision)
``pr-cross``       the point where precision equals recall (the seed article's choice)
``precision:P``    the highest recall whose precision is at least P
``quantile[:Q]``   the Q-quantile of the normal validation scores (no labels needed)

The label-based strategies need at least one positive validation window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from rareevent.errors import RareEventError

DEFAULT_QUANTILE = 0.995
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
    """Parse ``f1``, ``fbeta:B``, ``pr-cross``, ``precision:P`` or ``quantile[:Q]``."""
    name, _, arg = text.strip().lower().partition(":")
    usage = "use f1, fbeta:B, pr-cross, precision:P or quantile[:Q]"
    if name in ("f1", "pr-cross"):
        if arg:
            raise RareEventError(f"--threshold {text!r}: {name} takes no parameter", hint=usage)
        return Strategy(name)
    if name not in ("fbeta", "precision", "quantile"):
        raise RareEventError(f"--threshold {text!r}: unknown strategy", hint=usage)
    if not arg:
        if name == "quantile":
            return Strategy(name, DEFAULT_QUANTILE)
        raise RareEventError(f"--threshold {text!r}: {name} needs a number, e.g. {name}:{'2' if name == 'fbeta' else '0.9'}")
    try:
        value = float(arg)
    except ValueError:
        raise RareEventError(f"--threshold {text!r}: {arg!r} is not a number", hint=usage) from None
    if name == "fbeta" and not 0 < value <= MAX_BETA:
        raise RareEventError(f"--threshold {text!r}: beta must be above 0 and at most {MAX_BETA:g}")
    if name in ("precision", "quantile") and not 0 < value <= 1:
        raise RareEventError(f"--threshold {text!r}: {name} must be in (0, 1]")
    return Strategy(name, value)


def check_labels(strategy: Strategy, labels: np.ndarray | None) -> None:
    """Refuse a label-based ``strategy`` when the validation windows' ``labels`` hold no positive."""
    if strategy.needs_labels and (labels is None or not np.any(labels)):
        raise RareEventError(
            f"--threshold {strategy} needs at least one positive window in the validation part, and it has none",
            hint="use --threshold quantile, or raise --valid-frac so that the validation part holds an event",
        )


def choose_threshold(strategy: Strategy, scores: np.ndarray, labels: np.ndarray | None, normal: np.ndarray) -> float:
    """Pick the threshold from validation ``scores`` (and their 0/1 ``labels``).

    ``normal`` marks the validation windows that are clean normal data: the
    quantile strategy uses only those.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if strategy.name == "quantile":
        if not normal.any():
            raise RareEventError("the validation part has no normal window to take a quantile of", hint="raise --valid-frac")
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
