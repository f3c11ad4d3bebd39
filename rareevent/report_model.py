"""The HTML report's plot model: what the page's script draws, as compact JSON.

From a :class:`ReportInput` (the run, the scored windows, the raw rows)
this builds the time axis, the score timeline decimated with min/max
buckets (a 1M-row file stays fast and a one-window spike stays visible),
one model per alarm episode (the raw traces of its top sensors, what the
model expected and the normal band), the labelled events and the PR
curve. Numbers are rounded to what a plot shows, so the page stays small.
The page (:mod:`rareevent.report_page`) and the report's text
(:mod:`rareevent.html_report`) are built elsewhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rareevent import expected, gaps, windows
from rareevent.episodes import episode_rows, file_line, seconds_text, top_sensors
from rareevent.load import SensorData
from rareevent.record import RunView

# min and max of each: at most 3,000 points, whatever the file's length
TIMELINE_BUCKETS = 1500
TRACE_BUCKETS = 300  # per sensor and episode
CONTEXT_ROWS = (30, 400)  # rows drawn on each side of an episode: at least, at most
PR_POINTS = 400


def minmax_indices(values: np.ndarray, buckets: int) -> np.ndarray:
    """Indices that keep the smallest and largest value of each of ``buckets`` equal runs of
    ``values``, in order.

    All indices when there are no more than ``2 * buckets`` values.
    """
    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    filled = np.where(np.isfinite(values), values, np.nan)
    keep = []
    for start, stop in itertools.pairwise(edges):
        part = filled[start:stop]
        if np.isnan(part).all():
            keep.append(start)
            continue
        keep += [start + int(np.nanargmin(part)), start + int(np.nanargmax(part))]
    return np.unique(np.asarray(keep, np.int64))


def _with_breaks(indices: np.ndarray, breaks: np.ndarray) -> list[int | None]:
    """``indices`` with ``None`` between two that a break separates.

    ``breaks[i]``: a gap just before item ``i``.
    """
    crossed = np.cumsum(breaks)
    out: list[int | None] = []
    for k, i in enumerate(indices.tolist()):
        if k and crossed[i] != crossed[indices[k - 1]]:
            out.append(None)
        out.append(i)
    return out


def _spans(mask: np.ndarray, x: np.ndarray) -> list[list[float]]:
    """``[x start, x end]`` of every run of True in ``mask``."""
    return [
        [float(x[a]), float(x[b])] for a, b in windows.segments(np.asarray(mask, bool))
    ]


def _number(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


@dataclass
class Axis:
    """The report's time axis: datetimes (shown as dates), a numeric time column, or file lines."""

    kind: str  # "date", "number" or "row"
    name: str
    # x values are offsets from it, in units of ``unit`` milliseconds for dates: shorter
    # numbers in the page
    base: float = 0.0
    unit: float = 1.0

    @classmethod
    def of(cls, time: np.ndarray | None, column: str | None) -> Axis:
        if time is None:
            return cls("row", "line")
        if gaps.is_dated(time):
            values = cls.values_of(time)
            whole_seconds = bool(np.all(values % 1000 == 0))
            return cls(
                "date",
                column or "time",
                float(values[0]) if len(values) else 0.0,
                1000.0 if whole_seconds else 1.0,
            )
        return cls("number", column or "time")

    @staticmethod
    def values_of(time: np.ndarray) -> np.ndarray:
        if gaps.is_dated(time):
            return (
                np.asarray(time, dtype="datetime64[ms]")
                .astype(np.int64)
                .astype(np.float64)
            )
        return np.asarray(time, dtype=np.float64)

    def x(self, time: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        """Offsets from ``base`` of rows at ``time`` (no time: the file lines of ``rows``)."""
        return (
            np.asarray(rows, np.float64) + file_line(0)
            if self.kind == "row" or time is None
            else (self.values_of(time) - self.base) / self.unit
        )


@dataclass
class ReportInput:
    """What a report is drawn from: the run, the scored windows, the raw rows and what is
    known about them."""

    record: RunView
    detector: Any
    data: SensorData  # the file's rows as validated for scoring: raw (unscaled) values
    # one row per window: row, [time], error, flagged, [label] (as ``score --output`` writes)
    scored: pd.DataFrame
    alarms: list[dict[str, Any]]
    threshold: float
    device: str
    title: str
    # part name -> metrics (None parts skipped)
    metrics: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # window labels and scores for the PR curve
    pr: tuple[np.ndarray, np.ndarray] | None = None
    pr_part: str = ""
    # the alarm policy beyond the threshold (empty: the threshold alone)
    policy: str = ""
    # a run's own file: row bounds of train/valid/test
    splits: dict[str, tuple[int, int]] | None = None


def train_band(
    record: RunView, detector: Any
) -> tuple[dict[str, tuple[float, float]], str]:
    """Each feature's training range and how it was measured.

    Runs save the 1st-99th percentile of their normal training rows
    (``train_range``); runs saved before that have only the scaler's mean
    and standard deviation, and get mean ± 2.33 sd (the 1st-99th percentile
    of a normal distribution).
    """
    names = record.features
    saved = record.train_range
    if saved:
        low_p, high_p = saved["percentiles"]
        return {
            name: (lo, hi)
            for name, lo, hi in zip(names, saved["low"], saved["high"], strict=True)
        }, f"percentiles {low_p:g} to {high_p:g} of the normal training rows"
    mean, scale = detector.scaler_.mean_, np.sqrt(detector.scaler_.var_)
    return {
        name: (m - 2.326 * s, m + 2.326 * s)
        for name, m, s in zip(names, mean, scale, strict=True)
    }, "training mean ± 2.33 sd (this run saved no percentiles)"


def _row_breaks(data: SensorData, record: RunView) -> np.ndarray:
    """Per raw row: True where a time step above the run's max gap comes just before it."""
    rule = record.gaps
    if data.time is None or rule is None:
        return np.zeros(len(data), bool)
    starts = gaps.gap_starts(data.time, len(data), float(rule.max_gap_value))
    starts[:1] = False
    return starts


def _timeline(report: ReportInput, axis: Axis) -> dict[str, Any]:
    scored = report.scored
    time = (
        scored["time"].to_numpy() if "time" in scored and axis.kind != "row" else None
    )
    if time is not None and axis.kind == "date":
        time = pd.to_datetime(time).to_numpy()
    x = axis.x(time, scored["row"].to_numpy())
    error = scored["error"].to_numpy(np.float64)
    breaks = np.zeros(len(x), bool)
    rule = report.record.gaps
    if time is not None and rule is not None and len(x) > 1:
        steps = np.diff(Axis.values_of(time)) / (
            1000.0 if axis.kind == "date" else 1.0
        )  # seconds for dates, as the gap rule
        breaks[1:] = steps > float(
            rule.max_gap_value
        )  # consecutive windows end on consecutive rows, except across a gap
    keep = _with_breaks(minmax_indices(error, TIMELINE_BUCKETS), breaks)
    flagged = scored["flagged"].to_numpy() == 1
    kept = [i for i in keep if i is not None]
    return {
        "x": [None if i is None else _number(x[i], 12) for i in keep],
        "y": [None if i is None else _number(error[i], 5) for i in keep],
        "alarm_x": [_number(x[i], 12) for i in kept if flagged[i]],
        "alarm_y": [_number(error[i], 5) for i in kept if flagged[i]],
        "points": len(kept),
        "windows": len(x),
        "ticks": log_ticks(np.append(error, report.threshold)),
    }


def log_ticks(values: np.ndarray) -> list[float]:
    """Labelled ticks of a log score axis: the powers of ten its values span, with 2 and 5
    times them when the values span less than two decades (plotly's own minor labels, a
    small "2" and "5", read as noise)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if not len(positive):
        return []
    low = int(np.floor(np.log10(positive.min())))
    high = int(np.ceil(np.log10(positive.max())))
    steps = (1, 2, 5) if np.log10(positive.max() / positive.min()) < 2 else (1,)
    return [float(f"{m}e{k}") for k in range(low, high + 1) for m in steps]


def _episode(
    report: ReportInput,
    axis: Axis,
    index: int,
    alarm: dict[str, Any],
    band: dict[str, tuple[float, float]],
    breaks: np.ndarray,
    prefix: str = "",
) -> dict[str, Any]:
    data, record = report.data, report.record
    T = int(report.detector.lookback)
    first = int(np.searchsorted(data.rows, alarm["start_row"])) - (
        T - 1
    )  # the first row of the first flagged window
    last = int(np.searchsorted(data.rows, alarm["end_row"]))
    pad = int(np.clip(last - first + 1, *CONTEXT_ROWS))
    lo, hi = max(first - pad, 0), min(last + pad + 1, len(data))
    rows = data.rows[lo:hi]
    x = axis.x(None if data.time is None else data.time[lo:hi], rows)
    part_breaks = breaks[lo:hi].copy()
    part_breaks[:1] = False
    names = record.features
    context = set(record.context_features)
    shown = [(name, share) for name, share in top_sensors(alarm)] + [
        (name, None) for name in names if name in context
    ]
    columns = [names.index(name) for name, _ in shown]
    values = data.X[lo:hi, columns]
    picked = np.unique(
        np.concatenate(
            [minmax_indices(values[:, j], TRACE_BUCKETS) for j in range(len(columns))]
        )
    )  # one x for all: each sensor's extremes kept
    keep = _with_breaks(picked, part_breaks)
    model = _expected(report, lo, hi)
    traces = []
    for j, (name, share) in enumerate(shown):
        trace = {
            "name": name,
            "share": share,
            "context": share is None,
            "y": [None if i is None else float(values[i, j]) for i in keep],
            "band": [_number(band[name][0]), _number(band[name][1])],
        }
        if name in model:
            guess, error = model[name]
            trace["expected"] = [
                None if i is None or not np.isfinite(guess[i]) else _number(guess[i], 7)
                for i in keep
            ]
            trace["error"] = _number(error)
        traces.append(trace)
    covered = slice(max(first, 0), last + 1)
    span = [
        float(x[covered.start - lo]),
        float(x[last - lo]),
    ]  # from the first row of the first flagged window to the last row of the last
    return {
        "id": f"{prefix}episode-{index + 1}",
        "span": span,
        "x": [None if i is None else _number(x[i], 12) for i in keep],
        "traces": traces,
        "verdict": None
        if data.y is None
        else ("hit" if bool(data.y[covered].any()) else "miss"),
        "covered": _covered_text(data, covered),
    }


def _expected(
    report: ReportInput, lo: int, hi: int
) -> dict[str, tuple[np.ndarray, float]]:
    """Per target sensor: what the model expected on rows ``lo:hi`` and its normal error.

    Empty when the run saved no normal error (runs before 0.5): the report
    then draws the training range instead.
    """
    saved = report.record.normal_error
    detector = report.detector
    if not saved or not hasattr(detector, "target_features_"):
        return {}
    start = max(lo - int(detector.lookback) + 1, 0)
    guess = expected.expected_rows(detector, report.data.X[start:hi])[lo - start :]
    names = report.record.features
    errors = dict(zip(saved["features"], saved["error"], strict=True))
    return {
        names[j]: (guess[:, k], float(errors[names[j]]))
        for k, j in enumerate(detector.target_features_)
        if names[j] in errors
    }


def _covered_text(data: SensorData, covered: slice) -> str:
    """The time the rows of an episode's flagged windows span: a one-window episode is no "0s"."""
    rows = data.rows[covered]
    lines = f"lines {file_line(int(rows[0]))}-{file_line(int(rows[-1]))}"
    if data.time is None or not gaps.is_dated(data.time):
        return f"{len(rows)} rows ({lines})"
    first, last = data.time[covered][[0, -1]]
    seconds = (pd.Timestamp(last) - pd.Timestamp(first)).total_seconds()
    return f"{seconds_text(seconds)} ({lines})"


def _pr_curve(report: ReportInput) -> dict[str, Any] | None:
    if report.pr is None:
        return None
    labels, scores = report.pr
    if len(np.unique(labels)) < 2:
        return None
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    at = int(np.argmin(np.abs(thresholds - report.threshold)))
    keep = np.unique(
        np.linspace(0, len(recall) - 1, min(PR_POINTS, len(recall))).astype(np.int64)
    )
    return {
        "recall": [_number(v, 4) for v in recall[keep]],
        "precision": [_number(v, 4) for v in precision[keep]],
        "at": [_number(recall[at], 4), _number(precision[at], 4)],
        "part": report.pr_part,
    }


def build_model(report: ReportInput, prefix: str = "") -> dict[str, Any]:
    """The JSON the page's script draws: timeline, spans, episodes, PR curve."""
    data, record = report.data, report.record
    axis = Axis.of(data.time, data.columns.time)
    band, band_source = train_band(record, report.detector)
    breaks = _row_breaks(data, record)
    rows = episode_rows(report.alarms, report.threshold)
    by_start = {alarm["start_row"]: alarm for alarm in report.alarms}
    raw_x = axis.x(data.time, data.rows)
    model: dict[str, Any] = {
        "axis": {
            "kind": axis.kind,
            "name": axis.name,
            "base": axis.base,
            "unit": axis.unit,
        },
        "threshold": report.threshold,
        "timeline": _timeline(report, axis),
        "events": _spans(data.y == 1, raw_x) if data.y is not None else [],
        "episodes": [
            _episode(report, axis, i, by_start[row["start_row"]], band, breaks, prefix)
            for i, row in enumerate(rows)
        ],
        "pr": _pr_curve(report),
        "band_source": _band_note(record, band_source),
        "splits": [],
    }
    if report.splits:
        for name, (start, stop) in report.splits.items():
            if stop > start:
                model["splits"].append(
                    [name, float(raw_x[start]), float(raw_x[min(stop, len(raw_x)) - 1])]
                )
    return model


def _band_note(record: RunView, train_source: str) -> str:
    """What the grey band of the episode traces is."""
    saved = record.normal_error
    if not saved:
        return f"the training range, {train_source}; this run saved no normal error"
    return (
        "what the model expected (dashed orange) ± its normal error, the "
        f"{saved['percentile']:g}th percentile of |reading - expected| over the normal "
        f"validation rows; for context columns the training range, {train_source}"
    )
