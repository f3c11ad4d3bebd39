"""Point-wise and event-level detection metrics.

Everything here works on per-window vectors in time order: ``labels``
(0/1), ``flags`` (0/1), ``scores`` and ``ends`` (the row each window ends
at). Events are runs of consecutive positive *rows*; an event counts as
detected when an alarm fires between ``lead`` rows before its first row (but
not before the segment it begins in: no alarm across a time gap or from
another series) and its last row, and the lead time is how many rows (and seconds, with a
datetime column; units of the column, with a numeric one) the first such
alarm came before the event's first row (negative: after it had started).
False alarms are counted per day with a datetime column, else per 1,000
windows. Event precision and event F0.5 score alarms as telemanom (Hundman et
al., KDD 2018) does: an event detected is one true alarm however many episodes
touch it, an episode that touches no event (its earliest alarm row to its
last) one false alarm; precision is detected / (detected + false alarms),
recall detected / events, and F0.5 weighs precision over recall (beta 0.5).
Alarms that flicker inside an event therefore do not raise the precision.
With segments (``starts``: rows after a time gap begin a new one) the days
count only the time covered by data, not the gaps; an event no
scored window could alarm for (it lies where no window ends, as in a
segment too short for one) is *unseen*, not missed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rareevent.windows import segments, window_breaks

SECONDS_PER_DAY = 86_400.0
EVENT_BETA = 0.5


def point_metrics(
    labels: np.ndarray, flags: np.ndarray, scores: np.ndarray
) -> dict[str, float | int | None]:
    """Precision, recall, F1, PR-AUC, ROC-AUC and the confusion matrix (None where undefined)."""
    labels = np.asarray(labels, dtype=bool)
    flags = np.asarray(flags, dtype=bool)
    tp = int(np.sum(labels & flags))
    fp = int(np.sum(~labels & flags))
    fn = int(np.sum(labels & ~flags))
    tn = int(np.sum(~labels & ~flags))
    precision = tp / (tp + fp) if tp + fp else None  # undefined without alarms
    recall = tp / (tp + fn) if tp + fn else None  # undefined without events
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    both_classes = 0 < labels.sum() < labels.size
    if (
        both_classes
    ):  # imported here: scoring a file without labels needs no scikit-learn
        from sklearn.metrics import average_precision_score, roc_auc_score
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "pr_auc": float(average_precision_score(labels, scores))
        if both_classes
        else None,
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def event_metrics(
    row_labels: np.ndarray,
    flags: np.ndarray,
    ends: np.ndarray,
    lead: int = 0,
    time: np.ndarray | None = None,
    first_row: int = 0,
    starts: np.ndarray | None = None,
    gap: int = 0,
) -> dict[str, object]:
    """Events, events detected, lead times and false alarm episodes.

    Flagged windows at most ``gap`` windows apart are one alarm episode
    (the alarm policy's cooldown), as ``score`` groups them.

    ``row_labels[i]`` (and ``time[i]``, ``starts[i]``) belong to row
    ``first_row + i``; ``ends`` are the end rows of the windows that
    ``flags`` refer to, in the same row numbering.
    """
    flags = np.asarray(flags, dtype=bool)
    ends = np.asarray(ends, dtype=np.int64)
    events = segments(np.asarray(row_labels, dtype=bool)) + first_row
    reach = _earliest_alarm_rows(events, lead, first_row, starts)
    alarm_rows = ends[flags]
    lo = np.searchsorted(alarm_rows, reach)
    hi = np.searchsorted(alarm_rows, events[:, 1] + 1)
    detected = hi > lo
    seen = np.searchsorted(ends, events[:, 1] + 1) > np.searchsorted(
        ends, reach
    )  # some window could alarm for it
    first_alarm = alarm_rows[lo[detected]]
    onset = events[detected, 0]
    lead_rows = (onset - first_alarm).tolist()
    dated = time is not None and np.issubdtype(np.asarray(time).dtype, np.datetime64)
    lead_seconds = lead_time = None
    if time is not None:
        deltas = time[onset - first_row] - time[first_alarm - first_row]
        if dated:
            lead_seconds = (deltas / np.timedelta64(1, "s")).astype(float).tolist()
        else:
            lead_time = np.asarray(
                deltas, dtype=float
            ).tolist()  # in the time column's own unit
    episodes = segments(
        flags,
        None if starts is None else window_breaks(starts, ends - first_row),
        gap,
    )
    false_alarms = int(np.sum(~_overlaps(ends[episodes], events, reach)))
    precision, f05 = event_scores(
        len(events) - int((~seen).sum()),
        int(detected.sum()),
        false_alarms,
    )
    days = (
        _covered_seconds(time, starts) / SECONDS_PER_DAY
        if time is not None and dated and len(time) > 1
        else 0.0
    )
    if days > 0:
        rate = {"false_alarms_per_day": false_alarms / days}
    else:
        rate = {
            "false_alarms_per_1000_windows": 1000.0 * false_alarms / max(len(flags), 1)
        }
    return {
        "events": len(events),
        "events_detected": int(detected.sum()),
        "events_unseen": int((~seen).sum()),
        "lead_rows": lead_rows,
        "lead_seconds": lead_seconds,
        "lead_time": lead_time,
        "mean_lead_rows": float(np.mean(lead_rows)) if lead_rows else None,
        "alarm_episodes": len(episodes),
        "false_alarms": false_alarms,
        "event_precision": precision,
        "event_f05": f05,
        **rate,
    }


def event_scores(
    events: int, detected: int, false_alarms: int
) -> tuple[float | None, float | None]:
    """Event precision, detected / (detected + false alarm episodes), and event F0.5.

    Precision is undefined without alarms, recall without events; F0.5 is
    undefined when both are, and 0 when either is 0 or undefined (alarms and
    no event, or events and no alarm).
    """
    alarms = detected + false_alarms
    precision = detected / alarms if alarms else None
    recall = detected / events if events else None
    if precision is None and recall is None:
        return None, None
    if not precision or not recall:
        return precision, 0.0
    beta2 = EVENT_BETA**2
    return precision, (1 + beta2) * precision * recall / (beta2 * precision + recall)


def _covered_seconds(time: np.ndarray, starts: np.ndarray | None) -> float:
    """Seconds covered by data: the steps between rows, less those that cross a gap
    (into a row that ``starts`` a segment).
    """
    step = np.diff(time) / np.timedelta64(1, "s")
    if starts is not None:
        step = step[~np.asarray(starts, dtype=bool)[1:]]
    return float(step.sum())


def _earliest_alarm_rows(
    events: np.ndarray, lead: int, first_row: int, starts: np.ndarray | None
) -> np.ndarray:
    """Per event: the first row an alarm may end at to count for it, ``lead`` rows
    before its onset but not before its segment's first row.
    """
    reach = events[:, 0] - lead
    if starts is None:
        return reach
    begun = np.concatenate(
        [
            [first_row],
            np.flatnonzero(np.asarray(starts, dtype=bool)[1:]) + 1 + first_row,
        ]
    )
    return np.maximum(
        reach, begun[np.searchsorted(begun, events[:, 0], side="right") - 1]
    )


def _overlaps(
    episodes: np.ndarray, events: np.ndarray, reach: np.ndarray
) -> np.ndarray:
    """For each ``[start, end]`` episode: does it touch any event's ``[reach, end]``
    (``reach``: its earliest alarm row)?
    """
    if len(episodes) == 0:
        return np.zeros(0, dtype=bool)
    if len(events) == 0:
        return np.zeros(len(episodes), dtype=bool)
    hi = events[:, 1]
    # first event whose end is at or after the episode start; it overlaps when its start
    # is before the episode end
    idx = np.searchsorted(hi, episodes[:, 0])
    idx_ok = idx < len(events)
    result = np.zeros(len(episodes), dtype=bool)
    result[idx_ok] = reach[idx[idx_ok]] <= episodes[idx_ok, 1]
    return result


def evaluate(
    row_labels: np.ndarray,
    window_labels: np.ndarray,
    flags: np.ndarray,
    scores: np.ndarray,
    ends: np.ndarray,
    **where: Any,
) -> dict[str, object]:
    """All metrics of one scored span: point-wise on windows, event-level on rows.

    ``where``: ``lead``, ``time``, ``first_row``, ``starts`` and ``gap``, as
    for :func:`event_metrics`.
    """
    return {
        **point_metrics(window_labels, flags, scores),
        **event_metrics(row_labels, flags, ends, **where),
    }
