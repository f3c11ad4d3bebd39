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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rareevent.errors import RareEventError

DEFAULT_QUANTILE = 0.995
DEFAULT_RISK = 1e-3
POT_TAIL = (
    0.2  # the share of the highest normal scores whose excesses the tail is fitted to
)
MAX_BETA = 100.0  # beyond it F-beta is recall alone: the threshold flags every validation window
USAGE = "use f1, fbeta:B, pr-cross, precision:P, quantile[:Q] or pot[:R]"


@dataclass(frozen=True)
class Strategy:
    """A parsed ``threshold`` value: ``name`` and its numeric parameter."""

    name: str
    param: float | None = None

    @property
    def needs_labels(self) -> bool:
        return STRATEGIES[self.name].needs_labels

    def __str__(self) -> str:
        return self.name if self.param is None else f"{self.name}:{self.param:g}"


@dataclass(frozen=True)
class StrategySpec:
    """One entry of ``STRATEGIES``.

    ``choose(strategy, scores, labels, normal)`` picks the threshold (labels
    are checked before it is called when ``needs_labels``). ``param``: whether
    the strategy takes a number (``none``, ``required``, ``optional`` with
    ``default``), ``valid`` the check of that number and ``rule`` its wording.
    """

    choose: Callable[[Strategy, np.ndarray, np.ndarray | None, np.ndarray], float]
    needs_labels: bool
    param: str = "none"
    default: float | None = None
    valid: Callable[[float], bool] = lambda value: True
    rule: str = ""
    example: str = ""


def parse_strategy(text: str) -> Strategy:
    """Parse ``f1``, ``fbeta:B``, ``pr-cross``, ``precision:P``, ``quantile[:Q]`` or ``pot[:R]``."""
    name, _, arg = text.strip().lower().partition(":")
    spec = STRATEGIES.get(name)
    if spec is None:
        raise RareEventError(
            f"threshold {text!r}: unknown strategy", hint=USAGE, param="threshold"
        )
    if spec.param == "none":
        if arg:
            raise RareEventError(
                f"threshold {text!r}: {name} takes no parameter",
                hint=USAGE,
                param="threshold",
            )
        return Strategy(name)
    if not arg:
        if spec.param == "optional":
            return Strategy(name, spec.default)
        raise RareEventError(
            f"threshold {text!r}: {name} needs a number, e.g. {name}:{spec.example}",
            param="threshold",
        )
    try:
        value = float(arg)
    except ValueError:
        raise RareEventError(
            f"threshold {text!r}: {arg!r} is not a number",
            hint=USAGE,
            param="threshold",
        ) from None
    if not spec.valid(value):
        raise RareEventError(f"threshold {text!r}: {spec.rule}", param="threshold")
    return Strategy(name, value)


def check_labels(strategy: Strategy, labels: np.ndarray | None) -> None:
    """Refuse a label-based ``strategy`` when the validation windows' ``labels`` hold no
    positive.
    """
    if strategy.needs_labels and (labels is None or not np.any(labels)):
        raise RareEventError(
            f"threshold {strategy} needs at least one positive window in the "
            "validation part, and it has none",
            hint="use `threshold=pot` (or quantile), which needs no labels, or raise "
            "`validation_fraction` so that the validation part holds an event",
            param="threshold",
        )


def choose_threshold(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    """Pick the threshold from validation ``scores`` (and their 0/1 ``labels``).

    ``normal`` marks the validation windows that are clean normal data: the
    label-free strategies use only those.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if STRATEGIES[strategy.name].needs_labels:
        check_labels(strategy, labels)
    elif not normal.any():
        raise RareEventError(
            f"the validation part has no normal window for threshold {strategy}",
            hint="raise `validation_fraction`",
        )
    chosen = STRATEGIES[strategy.name].choose(strategy, scores, labels, normal)
    if STRATEGIES[strategy.name].needs_labels:
        return chosen
    return _above_ties(chosen, scores[normal])


def _above_ties(chosen: float, normal_scores: np.ndarray) -> float:
    """``chosen``, or just above the normal windows' scores when it would flag every one.

    That happens when they all score the same (sensors constant in
    training: every window reconstructed alike): the threshold then equals
    their score and ``score >= threshold`` would flag 100% of windows of
    data that did not change. The next float32 above the highest normal
    score flags none of them, and any window scoring higher.
    """
    if len(normal_scores) == 0 or chosen > normal_scores.min():
        return chosen
    top = np.float32(normal_scores.max())
    return float(np.nextafter(top, np.float32(np.inf)))


def _curve(
    labels: np.ndarray | None, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and threshold of every point of the precision-recall curve that
    has a threshold.
    """
    assert labels is not None, (
        "choose_threshold checks the labels of a label-based strategy"
    )
    from sklearn.metrics import (
        precision_recall_curve,  # fitting only: scoring needs none
    )

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    return precision[:-1], recall[:-1], thresholds  # the last point has no threshold


def _best_fbeta(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    precision, recall, thresholds = _curve(labels, scores)
    beta2 = 1.0 if strategy.param is None else strategy.param**2
    with np.errstate(divide="ignore", invalid="ignore"):
        fbeta = np.nan_to_num(
            (1 + beta2) * precision * recall / (beta2 * precision + recall)
        )
    return float(thresholds[np.argmax(fbeta)])


def _pr_cross(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    precision, recall, thresholds = _curve(labels, scores)
    return float(thresholds[np.argmin(np.abs(precision - recall))])


def _precision_at_least(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    precision, recall, thresholds = _curve(labels, scores)
    ok = np.flatnonzero(precision >= _number(strategy))
    if ok.size == 0:
        raise RareEventError(
            f"threshold {strategy}: no threshold reaches precision "
            f"{strategy.param:g} on the validation part",
            hint=f"the best is {precision.max():.3f}; lower P",
            param="threshold",
        )
    return float(thresholds[ok[np.argmax(recall[ok])]])


def _number(strategy: Strategy) -> float:
    """The parameter of a strategy that takes one (``parse_strategy`` fills in an
    optional one's default).
    """
    assert strategy.param is not None, f"threshold {strategy} has no parameter"
    return strategy.param


def _quantile(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    return float(np.quantile(scores[normal], _number(strategy)))


def _pot(
    strategy: Strategy,
    scores: np.ndarray,
    labels: np.ndarray | None,
    normal: np.ndarray,
) -> float:
    return peaks_over_threshold(scores[normal], _number(strategy))


def _fraction(value: float) -> bool:
    return 0 < value <= 1


STRATEGIES: dict[str, StrategySpec] = {
    "f1": StrategySpec(_best_fbeta, needs_labels=True),
    "fbeta": StrategySpec(
        _best_fbeta,
        True,
        "required",
        valid=lambda v: 0 < v <= MAX_BETA,
        rule=f"beta must be above 0 and at most {MAX_BETA:g}",
        example="2",
    ),
    "pr-cross": StrategySpec(_pr_cross, needs_labels=True),
    "precision": StrategySpec(
        _precision_at_least,
        True,
        "required",
        valid=_fraction,
        rule="precision must be in (0, 1]",
        example="0.9",
    ),
    "quantile": StrategySpec(
        _quantile,
        False,
        "optional",
        DEFAULT_QUANTILE,
        _fraction,
        "quantile must be in (0, 1]",
        "0.995",
    ),
    "pot": StrategySpec(
        _pot,
        False,
        "optional",
        DEFAULT_RISK,
        lambda v: 0 < v < 0.5,
        "the risk R must be in (0, 0.5), e.g. pot:0.001",
        "0.001",
    ),
}
LABEL_STRATEGIES = tuple(name for name, spec in STRATEGIES.items() if spec.needs_labels)


def peaks_over_threshold(normal_scores: np.ndarray, risk: float) -> float:
    """The score that normal windows exceed with probability ``risk``, from a fitted tail.

    Peaks over threshold (Siffer et al., "Anomaly Detection in Streams with
    Extreme Value Theory", KDD 2017): a generalised Pareto distribution is
    fitted to the excesses of the highest ``POT_TAIL`` of the scores over
    their ``1 - POT_TAIL`` quantile and inverted at ``risk``. A validation
    part of a few hundred windows cannot show its 0.999 quantile, and its
    empirical 0.995 quantile sits inside the normal tail: later normal data
    crosses it far more often than 1 time in 200 (measured in the documentation's Benchmarks).
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
    level = (
        start - scale * np.log(tail)
        if abs(shape) < 1e-9
        else start + scale / shape * (tail**-shape - 1)
    )
    return max(float(level), empirical)
