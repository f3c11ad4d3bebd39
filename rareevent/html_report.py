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

This module writes the report's text (the header table, metrics, episode
summaries and sections) and gathers what a report is drawn from for
``score --html`` and ``report``; the plot model is built in
:mod:`rareevent.report_model` and the page (template, script, Content
Security Policy) in :mod:`rareevent.report_page`. The names other code
imports from here are re-exported (``name as name``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rareevent import gaps
from rareevent.episodes import duration_text, episode_rows, file_line, sensors_text
from rareevent.errors import RareEventError
from rareevent.load import Reading, SensorData, load_csv
from rareevent.options import InputSpec, ScoreSpec
from rareevent.record import RunView
from rareevent.report_model import (
    CONTEXT_ROWS as CONTEXT_ROWS,
    PR_POINTS as PR_POINTS,
    TIMELINE_BUCKETS as TIMELINE_BUCKETS,
    TRACE_BUCKETS as TRACE_BUCKETS,
    Axis as Axis,
    ReportInput,
    _covered_text as _covered_text,
    build_model,
    log_ticks as log_ticks,
    minmax_indices as minmax_indices,
    train_band as train_band,
)
from rareevent.report_page import (
    _SCRIPT as _SCRIPT,
    BODY,
    PLOTLY_BUNDLE as PLOTLY_BUNDLE,
    page,
    plotly_js as plotly_js,
    script_json,
    script_policy as script_policy,
)
from rareevent.storage import atomic_file
from rareevent.window_stream import trained_columns


def read_raw(path: str | Path, record: RunView, spec: InputSpec) -> SensorData:
    """The file's rows read and validated as ``score`` reads them, unscaled: what the episode
    traces show.

    They are on the run's ``--resample`` grid, as the model read them.
    """
    data = load_csv(
        path,
        spec,
        trained=trained_columns(record, spec),
        base=Reading.from_record(record.reading),
    )
    return gaps.regrid(data, gaps.run_grid(record.resample), spec.fill)[0]


def html_table(
    header: Sequence[str] | None, rows: Sequence[Sequence[Any]], cls: str = ""
) -> str:
    """An HTML table of ``rows`` under ``header``, every cell escaped."""
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


def cell_text(value: Any, digits: int = 3) -> str:
    """A table cell's text: ``-`` for nothing, ``digits`` significant digits for a float."""
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
            f"{record.arch}, lookback {record.lookback}, "
            f"units {','.join(map(str, record.units))}, score {record.score_kind}",
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
        [label, *(cell_text(part.get(key)) for part in parts.values())]
        for key, label in METRIC_ROWS
    ]
    return "<h2>Metrics</h2>" + html_table(["metric", *parts], rows, "metrics")


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
        f'<div class="sensor-plot{" context" if trace["context"] else ""}" '
        f'data-sensor="{html.escape(trace["name"])}"></div>'
        for trace in episode["traces"]
    )
    verdict = episode["verdict"]
    mark = f' <span class="{verdict}">{verdict}</span>' if verdict else ""
    return (
        f'<section class="episode" id="{episode["id"]}" data-index="{index}"'
        + (f' data-verdict="{verdict}">' if verdict else ">")
        + f"<h3>Episode {index + 1}: {html.escape(str(row['start']))}{mark}</h3>"
        + html_table(None, facts, "facts")
        + f'<div class="traces">{plots}</div></section>'
    )


def render(report: ReportInput, extra_sections: str = "") -> str:
    """The whole page as text."""
    body, data = report_body(report, "report", extra_sections)
    return page(
        report.title,
        html_table(None, _header(report), "header") + f'<div id="report">{body}</div>',
        [("report", data)],
    )


def report_body(
    report: ReportInput, root: str, extra_sections: str = ""
) -> tuple[str, str]:
    """The timeline, metrics, PR curve and episodes of one scored series, and their JSON."""
    model = build_model(report, prefix="" if root == "report" else f"{root}-")
    rows = episode_rows(report.alarms, report.threshold)
    by_start = {alarm["start_row"]: alarm for alarm in report.alarms}
    labelled = report.data.y is not None
    summary = html_table(
        ["#", "start", "end", "duration", "lines", "peak ÷ threshold", "top sensors"]
        + (["labelled event"] if labelled else []),
        [
            [
                f"{i + 1}",
                row["start"],
                row["end"],
                duration_text(by_start[row["start_row"]]),
                f"{row['start_line']}-{row['end_line']}",
                cell_text(row["peak_over_threshold"]),
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
    body = BODY.format(
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
    """A ``score`` sink that keeps what a report draws of every window, then hands the windows
    to ``then``.

    It keeps a window's row, time, error, flag and label.
    """

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


def scored_file_report(
    path: str | Path,
    record: RunView,
    detector: Any,
    result: Any,
    collector: WindowCollector,
    spec: ScoreSpec,
) -> ReportInput:
    """The report of ``score``: the file just scored and its raw rows.

    ``result`` is the scoring's result, ``collector`` holds its windows.
    """
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
    """The report of ``report RUN``: the run's own input file scored again.

    With the run's splits, metrics and validation PR curve.
    """
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
        record, detector, data, collector.frame(), result.alarms, result.threshold,
        compute_device(),
        title=f"run {record.name} on its input file {source.name}",
        metrics={key: record.metrics.get(key) for key in ("valid", "test")},
        pr=pr, pr_part="validation part", policy=policy_text(result.decision),
        splits={key: (bounds[0], bounds[1]) for key, bounds in (record.splits or {}).items()},
    )  # fmt: skip
