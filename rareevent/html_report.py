"""A self-contained HTML report of scored data (optional extra ``rareevent[plot]``).

One file, with plotly.js and a small renderer inlined, that opens offline
and makes no network request. It shows the score timeline against time
(decimated with min/max buckets, so a 1M-row file stays fast and a
one-window spike stays visible), one section per alarm episode with the
raw traces of its top sensors beside what the model expected, and with
labels hit/miss marks, the metrics and the PR curve. Python builds a compact
JSON model of each report on the page; the inlined script draws it, the
episode plots in view first and the others in the background, so a report
with hundreds of episodes opens as fast as one with ten and prints whole.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent import expected, gaps, windows
from rareevent.episodes import (
    duration_text,
    episode_rows,
    file_line,
    seconds_text,
    sensors_text,
    top_sensors,
)
from rareevent.errors import RareEventError
from rareevent.load import Reading, SensorData, load_csv
from rareevent.options import InputSpec, ScoreSpec
from rareevent.record import RunView
from rareevent.storage import atomic_file

TIMELINE_BUCKETS = (
    1500  # min and max of each: at most 3,000 points, whatever the file's length
)
TRACE_BUCKETS = 300  # per sensor and episode
CONTEXT_ROWS = (30, 400)  # rows drawn on each side of an episode: at least, at most
PR_POINTS = 400
PLOTLY_BUNDLE = (
    "plotly-basic.min.js"  # plotly.js 4.1.1, npm plotly.js-basic-dist-min (MIT)
)


def plotly_js() -> str:
    """plotly.js gzipped and in base64, to inline; without plotly, one line naming the extra.

    The report draws scatter traces only, so it inlines plotly.js' basic
    partial bundle, shipped in ``rareevent/assets`` (1.2 MB of script
    against the full bundle's 4.6 MB: the browser parses a quarter of it).
    The page unpacks it with the browser's own ``DecompressionStream``: no request is made.
    """
    try:
        import plotly  # noqa: F401  (the extra that draws the reports)
    except ImportError:
        raise RareEventError(
            "an HTML report needs plotly", hint="pip install 'rareevent[plot]'"
        ) from None

    return base64.b64encode(gzip.compress(_plotly_bundle(), 6, mtime=0)).decode("ascii")


def _plotly_bundle() -> bytes:
    """The plotly.js source the page runs (the renderer adds it as an inline script)."""
    from importlib.resources import files

    return files("rareevent").joinpath("assets", PLOTLY_BUNDLE).read_bytes()


def minmax_indices(values: np.ndarray, buckets: int) -> np.ndarray:
    """Indices that keep the smallest and largest value of each of ``buckets`` equal runs of ``values``, in order.

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
    """``indices`` with ``None`` between two that a break (``breaks[i]``: a gap just before item ``i``) separates."""
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
    base: float = 0.0  # x values are offsets from it, in units of ``unit`` milliseconds for dates: shorter numbers in the page
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
        """Offsets from ``base`` of rows at ``time`` (or the file lines of ``rows`` without a time)."""
        return (
            np.asarray(rows, np.float64) + file_line(0)
            if self.kind == "row" or time is None
            else (self.values_of(time) - self.base) / self.unit
        )


@dataclass
class ReportInput:
    """What a report is drawn from: the run, the scored windows, the raw rows and what is known about them."""

    record: RunView
    detector: Any
    data: SensorData  # the file's rows as validated for scoring: raw (unscaled) values
    scored: pd.DataFrame  # one row per window: row, [time], error, flagged, [label] (as ``score --output`` writes)
    alarms: list[dict[str, Any]]
    threshold: float
    device: str
    title: str
    metrics: dict[str, dict[str, Any] | None] = field(
        default_factory=dict
    )  # part name -> metrics (None parts skipped)
    pr: tuple[np.ndarray, np.ndarray] | None = (
        None  # window labels and scores for the PR curve
    )
    pr_part: str = ""
    policy: str = (
        ""  # the alarm policy beyond the threshold (empty: the threshold alone)
    )
    splits: dict[str, tuple[int, int]] | None = (
        None  # a run's own file: row bounds of train/valid/test
    )


def read_raw(path: str | Path, record: RunView, spec: InputSpec) -> SensorData:
    """The file's rows read and validated as ``score`` reads them, on the run's ``--resample`` grid as the model read them, unscaled: what the episode traces show."""
    from rareevent.scoring import trained_columns

    data = load_csv(
        path,
        spec,
        trained=trained_columns(record, spec),
        base=Reading.from_record(record.reading),
    )
    return gaps.regrid(data, gaps.run_grid(record.resample), spec.fill)[0]


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


def _table(
    header: Sequence[str] | None, rows: Sequence[Sequence[Any]], cls: str = ""
) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or ())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table class="{cls}">'
        + (f"<thead><tr>{head}</tr></thead>" if head else "")
        + f"<tbody>{body}</tbody></table>"
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) >= 1e-3 or value == 0
            else f"{value:.2e}"
        )
    return str(value)


def _time_span(data: SensorData) -> str:
    if data.time is None or not len(data):
        if not len(data):
            return "-"
        return (
            f"lines {file_line(int(data.rows[0]))} to {file_line(int(data.rows[-1]))}"
        )
    first, last = data.time[0], data.time[-1]
    if gaps.is_dated(data.time):
        first, last = pd.Timestamp(first), pd.Timestamp(last)
        return f"{first} to {last} ({last - first})"
    return f"{first} to {last}"


def _header(report: ReportInput) -> list[tuple[str, str]]:
    record = report.record
    trained_on = (record.versions or {}).get("device")
    return [
        ("run", record.name),
        ("data file", str(report.data.path)),
        ("rows", f"{len(report.data):,} ({len(report.scored):,} windows scored)"),
        ("time span", _time_span(report.data)),
        (
            "architecture",
            f"{record.arch}, lookback {record.lookback}, units {','.join(map(str, record.units))}, score {record.score_kind}",
        ),
        (
            "threshold",
            f"{report.threshold:.6g} ({record.threshold_strategy}"
            + (f", margin {record.margin:g}" if record.margin != 1 else "")
            + ")",
        ),
        (
            "device",
            f"scored on {report.device}"
            + (f", trained on {trained_on}" if trained_on else ""),
        ),
        *([("alarm policy", report.policy)] if report.policy else []),
        ("alarm episodes", str(len(report.alarms))),
    ]


def policy_text(decision: Any) -> str:
    """The alarm policy a scoring used, beyond its threshold, in windows."""
    if decision is None or decision.threshold_alone:
        return ""
    parts = [
        f"{name} {value} window(s)"
        for name, value in (
            ("shortest event", decision.event),
            ("min duration", decision.min_duration),
            ("cooldown", decision.cooldown),
        )
        if value > (1 if name == "min duration" else 0)
    ]
    return ", ".join(parts)


METRIC_ROWS = (
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("pr_auc", "PR-AUC"),
    ("roc_auc", "ROC-AUC"),
    ("events", "events"),
    ("events_detected", "events caught"),
    ("false_alarms", "false alarm episodes"),
)


def _metrics_html(metrics: dict[str, dict[str, Any] | None]) -> str:
    parts = {name: part for name, part in metrics.items() if part}
    if not parts:
        return ""
    rows = [
        [label, *(_fmt(part.get(key)) for part in parts.values())]
        for key, label in METRIC_ROWS
    ]
    return "<h2>Metrics</h2>" + _table(["metric", *parts], rows, "metrics")


_VERDICTS = {
    "hit": "hit: its flagged windows overlap a labelled event",
    "miss": "miss: no labelled event in the rows its flagged windows cover",
}


def _episode_html(
    index: int, row: dict[str, Any], alarm: dict[str, Any], episode: dict[str, Any]
) -> str:
    facts = [
        ("start", row["start"]),
        ("end", row["end"]),
        ("duration", duration_text(alarm)),
        (
            "lines",
            f"{row['start_line']}-{row['end_line']} ({row['windows']} window(s))",
        ),
        ("rows its windows cover", episode["covered"]),
        (
            "peak score",
            f"{row['peak_score']:.4g} = {row['peak_over_threshold']:.2f} × threshold"
            if row["peak_over_threshold"] is not None
            else f"{row['peak_score']:.4g}",
        ),
        (
            "top sensors (share of the error)",
            sensors_text(alarm),
        ),
    ]
    if episode["verdict"]:
        facts.insert(0, ("labelled event", _VERDICTS[episode["verdict"]]))
    plots = "".join(
        f'<div class="sensor-plot{" context" if trace["context"] else ""}" data-sensor="{html.escape(trace["name"])}"></div>'
        for trace in episode["traces"]
    )
    verdict = episode["verdict"]
    mark = f' <span class="{verdict}">{verdict}</span>' if verdict else ""
    return (
        f'<section class="episode" id="{episode["id"]}" data-index="{index}"'
        + (f' data-verdict="{verdict}">' if verdict else ">")
        + f"<h3>Episode {index + 1}: {html.escape(str(row['start']))}{mark}</h3>"
        + _table(None, facts, "facts")
        + f'<div class="traces">{plots}</div></section>'
    )


def render(report: ReportInput, extra_sections: str = "") -> str:
    """The whole page as text."""
    body, data = report_body(report, "report", extra_sections)
    return page(
        report.title,
        _table(None, _header(report), "header") + f'<div id="report">{body}</div>',
        [("report", data)],
    )


def page(title: str, body: str, reports: Sequence[tuple[str, str]]) -> str:
    """A page of ``body`` with plotly, the renderer and each report's JSON (by its root's id)."""
    scripts = "".join(
        (
            '<script id="report-data" type="application/json">'
            if root == "report"
            else f'<script class="report-data" data-for="{root}" type="application/json">'
        )
        + data  # script_json: no "<" in it
        + "</script>"
        for root, data in reports
    )
    return (
        _PAGE.format(title=html.escape(title), style=_STYLE)
        .replace("/*CSP*/", script_policy())
        .replace("/*PLOTLY*/", plotly_js())
        .replace("/*RENDER*/", _SCRIPT)
        .replace(
            "/*BODY*/", body + scripts
        )  # last: no marker is looked for in the data
    )


def report_body(
    report: ReportInput, root: str, extra_sections: str = ""
) -> tuple[str, str]:
    """The timeline, metrics, PR curve and episodes of one scored series, and their JSON."""
    model = build_model(report, prefix="" if root == "report" else f"{root}-")
    rows = episode_rows(report.alarms, report.threshold)
    by_start = {alarm["start_row"]: alarm for alarm in report.alarms}
    labelled = report.data.y is not None
    summary = _table(
        ["#", "start", "end", "duration", "lines", "peak ÷ threshold", "top sensors"]
        + (["labelled event"] if labelled else []),
        [
            [
                f"{i + 1}",
                row["start"],
                row["end"],
                duration_text(by_start[row["start_row"]]),
                f"{row['start_line']}-{row['end_line']}",
                _fmt(row["peak_over_threshold"]),
                sensors_text(by_start[row["start_row"]]),
            ]
            + ([episode["verdict"]] if labelled else [])
            for i, (row, episode) in enumerate(
                zip(rows, model["episodes"], strict=True)
            )
        ],
        "episodes",
    )
    sections = "".join(
        _episode_html(i, row, by_start[row["start_row"]], episode)
        for i, (row, episode) in enumerate(zip(rows, model["episodes"], strict=True))
    )
    single = root == "report"
    pr = (
        '<h3 class="plot-title">precision-recall ('
        + html.escape(model["pr"]["part"])
        + ")</h3>"
        + f'<div{" id=pr" if single else ""} class="plot small pr-plot"></div>'
        if model["pr"]
        else ""
    )
    body = _BODY.format(
        timeline=f'<div{" id=timeline" if single else ""} class="plot timeline"></div>',
        extra=extra_sections,
        metrics=_metrics_html(report.metrics),
        pr=pr,
        summary=summary if rows else "<p>No alarm episodes.</p>",
        episodes=sections,
        band=html.escape(model["band_source"]),
        points=model["timeline"]["points"],
        windows=model["timeline"]["windows"],
    )
    return body, script_json(model)


# what may not appear raw inside a <script> element: "</script>", "<!--" and "<script" change how
# the HTML parser reads the element's end (Django's json_script escapes the same three)
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe as the text of a ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e`` and
    ``\\u0026`` (``JSON.parse`` reads them back unchanged), so no text in the
    data, a sensor named ``<!--`` or ``</script>`` included, can end the
    element early or turn the rest of the page into a comment.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)


def _sha256_source(code: str) -> str:
    """A CSP hash source for an inline script whose text is ``code``."""
    return _sha256_bytes(code.encode("utf-8"))


def _sha256_bytes(code: bytes) -> str:
    """A CSP hash source for an inline script whose UTF-8 text is ``code``."""
    digest = hashlib.sha256(code).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def script_policy() -> str:
    """The ``script-src`` of the report's Content Security Policy.

    Only two scripts may run: the page's renderer and plotly.js, which the
    renderer unpacks and adds as an inline script; each is allowed by the
    hash of its text, so no script injected into the page (there is no way
    in: every text is escaped) could run either. ``'unsafe-eval'`` stays:
    plotly.js builds some functions at run time.
    """
    return " ".join(
        [_sha256_source(_SCRIPT), _sha256_bytes(_plotly_bundle()), "'unsafe-eval'"]
    )


def write(report: ReportInput, output: str | Path, extra_sections: str = "") -> Path:
    """Write the report to ``output`` (``.html``) atomically."""
    output = Path(output)
    check_output(output)
    text = render(report, extra_sections)
    with atomic_file(output) as temp:
        temp.write_text(text, encoding="utf-8")
    return output


def check_output(output: str | Path) -> None:
    """Refuse an output name that is not ``.html``, and a missing plotly, before any scoring."""
    if Path(output).suffix.lower() not in (".html", ".htm"):
        raise RareEventError(
            f"{output}: a report is written as HTML; give a file name ending in .html"
        )
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise RareEventError(
            "an HTML report needs plotly", hint="pip install 'rareevent[plot]'"
        ) from None


class WindowCollector:
    """A ``score`` sink that keeps what a report draws of every window (row, time, error, flagged, label), then hands the windows to ``then``."""

    def __init__(self, then: Callable[[pd.DataFrame], None] | None = None) -> None:
        self.parts: list[pd.DataFrame] = []
        self.then = then

    def __call__(self, frame: pd.DataFrame) -> None:
        self.parts.append(
            frame[
                [c for c in ("row", "time", "error", "flagged", "label") if c in frame]
            ]
        )
        if self.then is not None:
            self.then(frame)

    def frame(self) -> pd.DataFrame:
        return (
            pd.concat(self.parts, ignore_index=True)
            if self.parts
            else pd.DataFrame(columns=["row", "error", "flagged"])
        )


_STYLE = """<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd} h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} table.header td:first-child,table.facts td:first-child{font-weight:600;background:#fafafa}
.plot{width:100%;height:380px} .plot.small{max-width:520px;height:360px}
.traces{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:.5em} .sensor-plot{height:230px;border:1px solid #eee}
.sensor-plot.context{border-style:dashed} .note{color:#666;font-size:.85em} section.episode{margin-bottom:1.5em}
</style>"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src /*CSP*/; style-src 'unsafe-inline'; img-src data: blob:; font-src data:">
<title>{title}</title>
{style}</head><body>
<h1>{title}</h1>
/*BODY*/
<script id="plotly-js" type="application/octet-stream">/*PLOTLY*/</script>
<script>/*RENDER*/</script>
</body></html>
"""

_BODY = """<h2>Score timeline</h2>
{timeline}
<p class="note">Window score (log scale) against time: red spans are alarm episodes (purple when no labelled event is under them), green spans labelled events, the dashed line the threshold; lines break at time gaps. Drawn from {points:,} of {windows:,} windows (the lowest and highest of each bucket, so single-window spikes stay). Drag to zoom, double-click to reset.</p>
{extra}
{metrics}
{pr}
<h2>Alarm episodes</h2>
{summary}
<p class="note">Each episode shows the raw (unscaled) readings of its top sensors, and of the context columns (dashed frame: read by the model, not scored), around the episode (red: the rows its flagged windows cover), with their normal range (grey band: {band}).</p>
{episodes}
"""

_SCRIPT = r"""
(function () {
  var packed = atob(document.getElementById('plotly-js').textContent);
  var bytes = new Uint8Array(packed.length);
  for (var i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function (code) {
    var script = document.createElement('script');
    script.textContent = code;
    document.head.appendChild(script);
    window.rareeventPlotlyMs = performance.now();
    draw();
  });
})();
function draw() {  // every report on the page: one for a file, one per series for a fleet
  window.rareevent = {plots: 0, episodes: 0, rendered: {}, plotlyMs: window.rareeventPlotlyMs};
  var sections = [], timelines = [];
  document.querySelectorAll('#report-data, script.report-data').forEach(function (data) {
    var root = document.getElementById(data.getAttribute('data-for') || 'report');
    var drawn = drawReport(JSON.parse(data.textContent), root);
    sections = sections.concat(drawn.sections);
    timelines.push(drawn.timeline);
  });
  window.rareevent.episodes = sections.length;
  function episode(section) { section.drawEpisode(); }
  if ('IntersectionObserver' in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) { if (entry.isIntersecting) { seen.unobserve(entry.target); episode(entry.target); } });
    }, {rootMargin: '400px'});
    sections.forEach(function (s) { seen.observe(s); });
  }
  window.rareevent.drawAll = function (limit) { sections.slice(0, limit || sections.length).forEach(episode); };
  // the sections out of view are drawn too, one at a time in the background once the timelines
  // are up, so that a print, a PDF or a headless screenshot shows every chart, and opening the
  // page stays as fast
  var next = 0;
  function background() {
    while (next < sections.length && sections[next].drawing) next += 1;
    if (next < sections.length) { episode(sections[next]); setTimeout(background, 0); }
  }
  Promise.all(timelines).then(function () { setTimeout(background, 0); });
  window.addEventListener('beforeprint', function () { window.rareevent.drawAll(); });
}
function drawReport(R, root) {
  var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['sendDataToCloud']};
  var dated = R.axis.kind === 'date';
  var base = R.axis.base, unit = R.axis.unit;
  function X(v) { return v === null ? null : v * unit + base; }
  function xs(values) { return values.map(X); }
  function rect(x0, x1, colour, opacity, layer) {
    return {type: 'rect', xref: 'x', yref: 'paper', x0: X(x0), x1: X(x1), y0: 0, y1: 1, fillcolor: colour,
            opacity: opacity, line: {width: 1, color: colour}, layer: layer || 'below'};
  }
  function xaxis(extra) {
    var axis = {type: dated ? 'date' : 'linear', title: {text: dated ? '' : R.axis.name}};
    for (var k in extra) axis[k] = extra[k];
    return axis;
  }
  function done() { window.rareevent.plots += 1; }
  function spans(name, list, colour) {  // many spans as one filled trace (hundreds of layout shapes would slow every redraw)
    var x = [], y = [];
    list.forEach(function (span) { x.push(X(span[0]), X(span[0]), X(span[1]), X(span[1]), X(span[0]), null); y.push(0, 1, 1, 0, 0, null); });
    return {type: 'scatter', mode: 'lines', name: name, x: x, y: y, yaxis: 'y2', fill: 'toself', fillcolor: colour, line: {width: 1, color: colour},
            hoverinfo: 'skip', visible: list.length ? true : 'legendonly', showlegend: list.length > 0};
  }
  function timeline() {
    var t = R.timeline;
    var shapes = [];
    R.splits.forEach(function (s) { shapes.push({type: 'line', xref: 'x', yref: 'paper', x0: X(s[1]), x1: X(s[1]), y0: 0, y1: 1, line: {color: '#888', width: 1, dash: 'dot'}}); });
    shapes.push({type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: R.threshold, y1: R.threshold, line: {color: '#ff7f0e', width: 1.5, dash: 'dash'}});
    var annotations = R.splits.map(function (s) { return {x: X(s[1]), y: 1, xref: 'x', yref: 'paper', text: s[0], showarrow: false, xanchor: 'left', yanchor: 'top', font: {size: 11, color: '#666'}}; });
    annotations.push({x: 1, y: R.threshold, xref: 'paper', yref: 'y', text: 'threshold ' + R.threshold.toPrecision(4), showarrow: false, xanchor: 'right', yanchor: 'bottom', font: {size: 11, color: '#ff7f0e'}});
    function judged(verdict) { return R.episodes.filter(function (e) { return e.verdict === verdict; }).map(function (e) { return e.span; }); }
    var labelled = R.episodes.some(function (e) { return e.verdict; });
    var alarms = labelled
      ? [spans('alarms on a labelled event (hit)', judged('hit'), 'rgba(214,39,40,0.35)'),
         spans('alarms without a labelled event (miss)', judged('miss'), 'rgba(148,103,189,0.35)')]
      : [spans('alarm episodes', R.episodes.map(function (e) { return e.span; }), 'rgba(214,39,40,0.3)')];
    var traces = alarms.concat([
      spans('labelled events', R.events, 'rgba(44,160,44,0.25)'),
      {type: 'scatter', mode: 'lines', name: 'window score', x: xs(t.x), y: t.y, line: {width: 1, color: '#1f77b4'}, connectgaps: false},
      {type: 'scatter', mode: 'markers', name: 'alarm windows', x: xs(t.alarm_x), y: t.alarm_y, marker: {size: 4, color: '#d62728'}}
    ]);
    var yaxis = {type: 'log', title: {text: 'score'}};
    if (t.ticks.length) { yaxis.tickvals = t.ticks; yaxis.ticktext = t.ticks.map(String); }
    var layout = {margin: {l: 60, r: 20, t: 10, b: 40}, xaxis: xaxis({rangeslider: {visible: false}}), yaxis: yaxis,
                  yaxis2: {overlaying: 'y', range: [0, 1], visible: false, fixedrange: true},
                  shapes: shapes, annotations: annotations, legend: {orientation: 'h', y: 1.08}, hovermode: 'closest'};
    return Plotly.newPlot(root.querySelector('.timeline'), traces, layout, config).then(function () { window.rareevent.timelineMs = window.rareevent.timelineMs || performance.now(); done(); });
  }
  function pr() {
    if (!R.pr) return;
    var p = R.pr;
    Plotly.newPlot(root.querySelector('.pr-plot'), [
      {type: 'scatter', mode: 'lines', name: 'PR curve', x: p.recall, y: p.precision, line: {color: '#1f77b4'}},
      {type: 'scatter', mode: 'markers', name: 'chosen threshold', x: [p.at[0]], y: [p.at[1]], marker: {size: 10, color: '#ff7f0e'}}
    ], {margin: {l: 50, r: 20, t: 30, b: 40},
        xaxis: {title: {text: 'recall'}, range: [0, 1.02]}, yaxis: {title: {text: 'precision'}, range: [0, 1.02]}, legend: {x: 0.02, y: 0.05}}, config).then(done);
  }
  function yrange(t) {  // the readings and the whole normal band in view, so a reader sees how far outside it they go
    var band = t.expected ? t.expected.filter(function (v) { return v !== null; }).map(function (v) { return v - t.error; })
      .concat(t.expected.filter(function (v) { return v !== null; }).map(function (v) { return v + t.error; })) : t.band;
    var values = t.y.filter(function (v) { return v !== null; }).concat(band);
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values), pad = 0.06 * (high - low || 1);
    return [low - pad, high + pad];
  }
  function episode(section) {
    if (section.drawing) return;
    section.drawing = true;
    var e = R.episodes[+section.getAttribute('data-index')];
    var divs = section.querySelectorAll('.sensor-plot');
    var x = xs(e.x);
    var drawn = e.traces.map(function (t, i) {
      var title = t.context ? t.name + ' (context)' : t.name + ' (' + Math.round(t.share * 100) + '% of the error)';
      var shapes = [rect(e.span[0], e.span[1], '#d62728', 0.15)];
      var data = [{type: 'scatter', mode: 'lines', name: t.name, x: x, y: t.y, connectgaps: false,
                   line: {width: 1.2, color: t.context ? '#7f7f7f' : '#1f77b4', dash: t.context ? 'dot' : 'solid'}}];
      if (t.expected) {  // expected ± normal error: the band follows the setpoint
        var off = function (sign) { return t.expected.map(function (v) { return v === null ? null : v + sign * t.error; }); };
        data.unshift({type: 'scatter', mode: 'lines', name: 'normal low', x: x, y: off(-1), line: {width: 0}, hoverinfo: 'skip', connectgaps: false},
                     {type: 'scatter', mode: 'lines', name: 'normal high', x: x, y: off(1), line: {width: 0}, fill: 'tonexty',
                      fillcolor: 'rgba(136,136,136,0.25)', hoverinfo: 'skip', connectgaps: false});
        data.push({type: 'scatter', mode: 'lines', name: 'expected', x: x, y: t.expected, connectgaps: false, line: {width: 1.2, color: '#ff7f0e', dash: 'dash'}});
      } else {
        shapes.push({type: 'rect', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: t.band[0], y1: t.band[1], fillcolor: '#888', opacity: 0.22, line: {width: 1, color: '#555', dash: 'dot'}, layer: 'below'});
      }
      return Plotly.newPlot(divs[i], data,
        {title: {text: title, font: {size: 12}}, margin: {l: 50, r: 10, t: 30, b: 30}, showlegend: false, xaxis: xaxis({gridcolor: '#eee'}), yaxis: {range: yrange(t), gridcolor: '#eee'}, plot_bgcolor: '#fff', shapes: shapes},
        {displaylogo: false, responsive: true, displayModeBar: false}).then(done);
    });
    Promise.all(drawn).then(function () { section.setAttribute('data-rendered', '1'); });
  }
  var drawn = timeline();
  pr();
  var sections = Array.prototype.slice.call(root.querySelectorAll('section.episode'));
  sections.forEach(function (s) { s.drawEpisode = function () { episode(s); }; });
  return {sections: sections, timeline: drawn};
}
"""


def scored_file_report(
    path: str | Path,
    record: RunView,
    detector: Any,
    result: Any,
    collector: WindowCollector,
    spec: ScoreSpec,
) -> ReportInput:
    """The report of ``score``: the file just scored (``result``, windows from ``collector``) and its raw rows."""
    from rareevent.model import compute_device

    path = Path(path)
    data = read_raw(path, record, spec.input)
    scored = collector.frame()
    pr = (
        (scored["label"].to_numpy(), scored["error"].to_numpy())
        if "label" in scored
        else None
    )
    return ReportInput(
        record, detector, data, scored, result.alarms, result.threshold, compute_device(),
        title=f"{path.name} scored with run {record.name}",
        metrics={"scored file": result.metrics},
        pr=pr, pr_part="scored file; a window takes its last row's label",
        policy=policy_text(result.decision),
    )  # fmt: skip


def run_report(folder: Path, record: RunView, detector: Any) -> ReportInput:
    """The report of ``report RUN``: the run's own input file scored again, with its splits, metrics and validation PR curve."""
    from rareevent.load import file_sha256
    from rareevent.model import compute_device
    from rareevent.runs import SCORES_FILE
    from rareevent.scoring import score_csv

    source = Path(record.input_file or "")
    if not record.input_file or not source.is_file():
        what = (
            "is not there any more"
            if not record.input_file or not source.exists()
            else "is now a folder"
            if source.is_dir()
            else "is now a pipe or a device, not a file"
        )
        raise RareEventError(
            f"{folder}: the run's input file {source} {what}",
            hint="score a file with `rareevent score DATA --run RUN --html FILE.html`",
        )
    if record.input_sha256 and file_sha256(source) != record.input_sha256:
        raise RareEventError(
            f"{source}: changed since run {record.name!r} was trained on it",
            hint="score it with `rareevent score DATA --run RUN --html FILE.html`",
        )
    collector = WindowCollector()
    spec = ScoreSpec(
        InputSpec(fill=record.fill)
    )  # the run's own file, read as the run read it
    result = score_csv(source, record, detector, spec, sink=collector)
    data = read_raw(source, record, spec.input)
    try:
        scores = pd.read_csv(folder / SCORES_FILE)
    except (OSError, ValueError) as exc:
        raise RareEventError(
            f"{folder / SCORES_FILE}: cannot read the run's scores ({type(exc).__name__})",
            hint="retrain the run",
        ) from None
    valid = (
        scores[scores["split"] == "valid"] if "split" in scores else scores.iloc[0:0]
    )
    pr = (
        (valid["label"].to_numpy(), valid["error"].to_numpy())
        if "label" in valid and "error" in valid
        else None
    )
    return ReportInput(
        record, detector, data, collector.frame(), result.alarms, result.threshold, compute_device(),
        title=f"run {record.name} on its input file {source.name}",
        metrics={key: record.metrics.get(key) for key in ("valid", "test")},
        pr=pr, pr_part="validation part", policy=policy_text(result.decision),
        splits={key: (bounds[0], bounds[1]) for key, bounds in (record.splits or {}).items()},
    )  # fmt: skip
