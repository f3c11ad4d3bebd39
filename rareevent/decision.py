"""The decision stage: from window scores to alarms, a step apart from the model.

The model gives every window a score; this stage decides which windows
raise an alarm (telemanom keeps the same split in its ``errors.py``). It
is fed the scores in time order, any number at a time, and carries its
state between calls, so a window's decision depends only on the windows
before it: ``score``, ``--follow``, ``--jobs``, Spark and any
``--chunk-rows`` give the same alarms.

It is set by an :class:`~rareevent.options.AlarmPolicy`:

* **The threshold**: the run's own (chosen on the validation part, from
  its PR curve when it had labels), another value or strategy
  (``--threshold``), times ``--margin``. A window is flagged only when its
  own score reaches it.
* **Judging the scores against the data being scored**
  (``--shortest-event``, the shortest event worth an alarm), after Hundman
  et al., "Detecting Spacecraft Anomalies Using LSTMs and Nonparametric
  Dynamic Thresholding" (KDD 2018), section 3.2, made causal. It decides
  which of those windows belong to an alarm:

  - the scores are smoothed by an exponentially weighted mean whose span is
    half the shortest event (so the smoothing never outlasts it), restarted
    after a gap;
  - a trailing history of smoothed scores (it starts as the run's
    validation scores, so the first rows are judged against normal data)
    gives, every ``batch`` windows, the paper's epsilon: the
    ``mean + z * sd`` whose removal most reduces the history's mean and
    spread, over (sequences² + values above);
  - windows in an alarm stay out of the history, so an event does not raise
    the bar against the events after it, and a long one not against itself
    (an anomaly-dense file); an alarm that outlasts two histories is taken
    as the new normal and enters it;
  - an alarm opens where the smoothed score reaches the threshold, the
    epsilon and 13% above the highest quiet window of the history (the
    paper's pruning, judged as the alarm opens), and stays open while it
    reaches the bar it opened at.
* **The alarm policy**: ``min_duration`` (a window alarms only once the
  condition has held that many windows in a row, like Grafana's ``for:``)
  and ``cooldown`` (flagged windows at most that many windows apart are one
  episode; the flags themselves are unchanged).

A run trained by this version settles ``shortest_event`` and ``cooldown``
from its data (:func:`settle`); how the defaults were chosen is in the
documentation's scorecard.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rareevent.errors import RareEventError
from rareevent.options import AUTO_SPAN, AlarmPolicy, parse_span
from rareevent.windows import segments

if TYPE_CHECKING:
    from rareevent.record import RunRecord

Z_STEPS = np.arange(2.5, 12.0, 0.5)  # the paper's candidate z, up to its sd limit of 12
Z_LIMIT = 12.0
HISTORY_BATCHES = 30  # the paper's history: 30 batches
MIN_BATCH = 70  # the paper's batch: windows between two re-computations of epsilon
PRUNE = 0.13  # the paper's pruning: a new alarm stands 13% above the quiet history
MAX_SEQUENCES = 5  # the paper's guard: an epsilon that cuts more sequences is not taken
RELEASE = 2  # histories after which an open alarm is taken as the new normal


@dataclass(frozen=True)
class Decision:
    """An :class:`AlarmPolicy` made concrete for one run: every length in windows.

    ``threshold`` already holds ``margin``; ``event`` is the shortest
    event in windows (0: the threshold alone decides).
    """

    threshold: float
    event: int = 0
    min_duration: int = 1
    cooldown: int = 0

    @property
    def adaptive(self) -> bool:
        return self.event > 0

    @property
    def threshold_alone(self) -> bool:
        """Whether the flags are ``score >= threshold`` and nothing more."""
        return not self.adaptive and self.min_duration == 1 and self.cooldown == 0

    def to_record(self) -> dict[str, Any]:
        """What the outputs echo: the threshold and every span, in windows."""
        return {
            "threshold": self.threshold,
            "shortest_event": self.event,
            "min_duration": self.min_duration,
            "cooldown": self.cooldown,
        }

    @property
    def span(self) -> int:
        """The smoothing span, in windows: half the shortest event."""
        return max(round(self.event / 2), 1)

    @property
    def batch(self) -> int:
        """Windows between two re-computations of the history's epsilon."""
        return max(self.event, MIN_BATCH)

    @property
    def history(self) -> int:
        """Windows in the trailing history."""
        return HISTORY_BATCHES * self.batch


def resolve(
    policy: AlarmPolicy,
    threshold: float,
    validation_scores: np.ndarray | None,
    step_seconds: float | None,
) -> Decision:
    """Make ``policy`` concrete: the threshold it names, and its spans in windows.

    ``threshold`` is the run's own; ``validation_scores`` are the run's
    validation window scores (a strategy is chosen on them); ``step_seconds``
    is the run's median step between rows, which turns durations like
    ``10min`` into windows (``None``: the time column holds no dates, so
    only row counts are understood).
    """
    chosen = threshold
    if policy.threshold is not None:
        chosen = _threshold(policy.threshold, validation_scores)
    chosen *= policy.margin if policy.margin is not None else 1.0
    if not math.isfinite(chosen):
        raise RareEventError(
            f"threshold {chosen!r} is not a finite number", param="threshold"
        )
    return Decision(
        threshold=float(chosen),
        event=span_windows(policy.shortest_event, "shortest_event", step_seconds, 0),
        min_duration=max(
            span_windows(policy.min_duration, "min_duration", step_seconds, 1), 1
        ),
        cooldown=span_windows(policy.cooldown, "cooldown", step_seconds, 0),
    )


def _threshold(value: float | str, validation_scores: np.ndarray | None) -> float:
    """A number as it is; a strategy chosen on the run's normal validation scores."""
    if not isinstance(value, str):
        return float(value)
    from rareevent.threshold import choose_threshold, parse_strategy

    strategy = parse_strategy(value)
    if strategy.needs_labels:
        raise RareEventError(
            f"threshold {value!r} needs the validation labels, which a run does not keep",
            hint="give a number, or quantile[:Q] or pot[:R], which need no labels",
            param="threshold",
        )
    if validation_scores is None or len(validation_scores) == 0:
        raise RareEventError(
            f"threshold {value!r}: the run keeps no validation scores to choose it on",
            hint="give the threshold as a number",
            param="threshold",
        )
    scores = np.asarray(validation_scores, dtype=np.float64)
    return choose_threshold(strategy, scores, None, np.isfinite(scores))


def span_windows(
    value: int | str | None, name: str, step_seconds: float | None, default: int
) -> int:
    """A span in windows: a row count as it is, a duration over the run's step."""
    if value is None:
        return default
    if value == AUTO_SPAN:
        raise RareEventError(
            f"{name} 'auto' is settled when a run is trained",
            hint=f"give {name} in rows (like 10), as a duration (like 10min) or off",
            param=name,
        )
    rows, seconds = parse_span(value, name)
    if seconds is None:
        return rows
    if step_seconds is None or not step_seconds > 0:
        raise RareEventError(
            f"{name} {value!r} is a duration, but the run's time column holds no dates",
            hint=f"give {name} in rows, like 10",
            param=name,
        )
    return max(int(math.ceil(seconds / step_seconds)), 1)


def epsilon(history: np.ndarray) -> float:
    """The paper's threshold on ``history``: the ``mean + z * sd`` whose removal helps most.

    For each candidate ``z``, the values at or above the cut are removed;
    the cut's worth is the relative drop of the mean and the spread, over
    (sequences above² + values above). A cut that removes half the history
    or more, or more than ``MAX_SEQUENCES`` sequences, is not taken; with no
    cut taken, the epsilon is ``mean + 12 sd``. ``-inf`` when the history
    has no spread (nothing in it can stand out).
    """
    n = len(history)
    if n == 0:
        return -math.inf
    mean, sd = float(history.mean()), float(history.std())
    if not sd > 0 or not mean > 0:
        return -math.inf
    cuts = mean + Z_STEPS * sd
    ordered = np.sort(history)
    below = np.searchsorted(ordered, cuts, side="left")  # values under each cut
    n_above = n - below
    # a sequence above a cut starts where a value reaches it and the one before did not
    both = np.sort(np.minimum(history[1:], history[:-1]))
    sequences = n_above - (len(both) - np.searchsorted(both, cuts, side="left"))
    sums = np.concatenate([[0.0], np.cumsum(ordered)])
    squares = np.concatenate([[0.0], np.cumsum(np.square(ordered))])
    with np.errstate(invalid="ignore", divide="ignore"):
        kept_mean = sums[below] / below
        kept_sd = np.sqrt(np.maximum(squares[below] / below - kept_mean**2, 0.0))
        worth = ((mean - kept_mean) / mean + (sd - kept_sd) / sd) / (
            sequences**2 + n_above
        )
    usable = (n_above > 0) & (n_above < n / 2) & (sequences <= MAX_SEQUENCES)
    if not usable.any():
        return mean + Z_LIMIT * sd
    candidates = np.flatnonzero(usable)
    values = worth[candidates]
    best = candidates[np.flatnonzero(values == values.max())[-1]]  # ties: the higher z
    return float(cuts[best])


class Decider:
    """The stateful decision stage: ``decider(scores, breaks)`` returns the flags of the
    next windows.

    ``breaks[i]`` is True where a time gap (or a new series) lies between
    window ``i`` and the one before it: smoothing, ``min_duration`` and an
    open alarm start again there. (``cooldown`` is not applied here: it
    merges episodes, and :class:`~rareevent.alarm_episodes.AlarmEpisodes` does that.)

    Judged against the recent scores, an alarm *opens* where the smoothed
    score reaches the threshold and the history's bar, and *stays open*
    while it reaches the bar it opened at; its windows stay out of the
    history until it outlasts ``RELEASE`` histories, so an event does not
    raise the bar against itself (an anomaly-dense file keeps its alarm).
    """

    def __init__(
        self, decision: Decision, validation_scores: np.ndarray | None = None
    ) -> None:
        self.decision = decision
        self.seen = 0  # windows decided so far
        self._level: float | None = None  # the smoothed score of the last window
        self._run = 0  # windows in a row whose condition held
        self._bar = -math.inf  # what the history asks of a new alarm
        self._held = -math.inf  # the bar an open alarm is held to
        self._history = np.empty(0)
        self._flagged = np.empty(0, bool)  # which windows of the history alarmed
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # since the batch began
        if decision.adaptive and validation_scores is not None:
            valid = np.asarray(validation_scores, dtype=np.float64)
            valid = valid[np.isfinite(valid)]
            level = _ewma(valid, decision.span, None)[0]
            self._remember(level, level >= decision.threshold)  # as they would alarm

    def __call__(self, scores: np.ndarray, breaks: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        d = self.decision
        if not d.adaptive and d.min_duration == 1:
            self.seen += len(scores)
            return scores >= d.threshold  # the threshold alone: nothing carried
        breaks = np.asarray(breaks, dtype=bool)
        flags = np.zeros(len(scores), dtype=bool)
        start = 0
        while start < len(scores):  # pieces that share one epsilon
            stop = len(scores)
            if d.adaptive:
                stop = min(stop, start + d.batch - self.seen % d.batch)
            flags[start:stop] = self._piece(scores[start:stop], breaks[start:stop])
            start = stop
        return flags

    def _piece(self, scores: np.ndarray, breaks: np.ndarray) -> np.ndarray:
        d = self.decision
        level = scores
        if d.adaptive:
            level, self._level = _ewma(scores, d.span, self._level, breaks)
        opening = max(d.threshold, self._bar)
        flags = np.zeros(len(scores), dtype=bool)
        young = np.zeros(len(scores), dtype=bool)  # in an alarm not yet released
        release = RELEASE * d.history
        run, held = self._run, self._held
        for i, value in enumerate(level.tolist()):  # sequential by nature
            if breaks[i]:
                run = 0
            if run < d.min_duration or run > release:
                held = opening  # not in an alarm (or in one taken as the new normal)
            run = run + 1 if value >= held else 0
            flags[i] = run >= d.min_duration
            young[i] = flags[i] and run <= release
        flags &= scores >= d.threshold  # a window alarms on its own score too
        self._run, self._held = run, held
        self.seen += len(scores)
        if d.adaptive:
            self._remember(level, young, self.seen % d.batch == 0)
        return flags

    def _remember(
        self, values: np.ndarray, alarmed: np.ndarray, batch_end: bool = True
    ) -> None:
        """Add windows to the history; at a batch's end, the bar for new alarms.

        The bar is the epsilon of the history's quiet windows (those in no
        alarm), and ``PRUNE`` above the highest of them.
        """
        self._pending.append((values, alarmed))
        if not batch_end:
            return
        keep = self.decision.history
        self._history = np.concatenate([self._history, *(v for v, _ in self._pending)])
        self._flagged = np.concatenate([self._flagged, *(f for _, f in self._pending)])
        self._history, self._flagged = self._history[-keep:], self._flagged[-keep:]
        self._pending = []
        if not len(self._history):
            return
        quiet = self._history[~self._flagged]
        highest = float(quiet.max()) if len(quiet) else -math.inf
        self._bar = max(epsilon(quiet), (1 + PRUNE) * highest)


def _ewma(
    scores: np.ndarray,
    span: int,
    level: float | None,
    breaks: np.ndarray | None = None,
) -> tuple[np.ndarray, float | None]:
    """Exponentially weighted mean of ``scores`` (span ``span``), carried from
    ``level``, restarted at breaks.
    """
    alpha = 2.0 / (span + 1.0)
    out = np.empty(len(scores))
    restart = np.zeros(len(scores), bool) if breaks is None else breaks
    for i, value in enumerate(scores.tolist()):  # sequential by nature
        level = (
            value if level is None or restart[i] else level + alpha * (value - level)
        )
        out[i] = level
    return out, level


LEGACY_POLICY = AlarmPolicy(
    margin=1.0, min_duration=1, cooldown=0, shortest_event="off"
)  # what a run saved before the decision stage keeps: its threshold alone
DEFAULT_POLICY = AlarmPolicy(
    margin=1.0, min_duration=1, cooldown=AUTO_SPAN, shortest_event=AUTO_SPAN
)  # what `train` gives a run; `settle` makes its spans concrete
FALLBACK_EVENT = 100  # rows: the paper's smoothing span (105), for runs without labels


def settle(policy: AlarmPolicy, labels: np.ndarray | None) -> AlarmPolicy:
    """``policy`` with its ``auto`` spans made concrete for a run trained on ``labels``.

    The shortest event worth an alarm is the shortest run of labelled rows
    in the training data (train and validation parts); without labels (or
    none labelled), ``FALLBACK_EVENT`` rows. An ``auto`` cooldown is the same
    span: alarms closer than the shortest event merge.
    """
    event = FALLBACK_EVENT
    if labels is not None and np.any(labels):
        runs = segments(np.asarray(labels, dtype=bool))
        event = int((runs[:, 1] - runs[:, 0] + 1).min())
    auto = {
        name: event
        for name in ("shortest_event", "cooldown")
        if getattr(policy, name) == AUTO_SPAN
    }
    return dataclasses.replace(policy, **auto)


def decider_for(
    detector: Any, record: RunRecord | None, policy: AlarmPolicy | None = None
) -> Decider:
    """The decision stage of a run: ``policy`` over the run's own (``run.json``'s ``alarm``)."""
    base = LEGACY_POLICY if record is None or record.alarm is None else record.alarm
    chosen = (policy or AlarmPolicy()).over(base)
    validation = getattr(detector, "validation_scores_", None)
    decision = resolve(
        chosen,
        float(detector.threshold_),
        validation,
        None if record is None else record.time_step,
    )
    return Decider(decision, validation)
