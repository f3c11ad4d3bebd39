"""The HTML page of a fleet's ``score``: the series table, then each series as a file's report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from rareevent.html_report import ReportInput, cell_text, html_table, page, report_body


def render_fleet(run: str, scores: Sequence[Any], column: str, device: str) -> str:
    """The page of a fleet's ``score``: the per-series table, then each series as a file's report.

    Each series (scored with ``ScoreJob.report``) gets its score timeline,
    metrics and alarm episodes with their sensor traces.
    """
    from rareevent.fleet_score import loaded_run

    rows = [
        [s.series.name, f"{s.n_rows:,}", f"{s.n_windows:,}", f"{s.n_flagged:,}",
         len(s.alarms), cell_text((s.metrics or {}).get("f1")), _caught(s.metrics)]
        for s in scores
    ]  # fmt: skip
    sections, reports = [], []
    for i, s in enumerate(scores):
        if s.drawn is None:
            continue
        windows, data, folder = s.drawn
        record, detector = loaded_run(folder)
        report = ReportInput(
            record, detector, data, windows, s.alarms, s.threshold, device,
            title=f"{column} {s.series.name}", metrics={"series": s.metrics},
        )  # fmt: skip
        root = f"series-{i + 1}"
        body, model = report_body(report, root)
        reports.append((root, model))
        sections.append(
            f'<section class="series" id="{root}" data-series="{html.escape(s.series.name)}">'
            f"<h2>{html.escape(column)} {html.escape(s.series.name)}: "
            f"{len(s.alarms)} alarm episode(s)</h2>"
            f'<p class="note">{html.escape(str(s.series.path))}, run {html.escape(s.run)}, '
            f"threshold {s.threshold:.6g}</p>{body}</section>"
        )
    header = [
        ("run", run),
        ("series", f"{len(scores)} ({sum(1 for s in scores if s.alarms)} with alarms)"),
        ("rows", f"{sum(s.n_rows for s in scores):,}"),
        ("device", f"scored on {device}"),
    ]
    series_table = html_table(
        [column, "rows", "windows", "flagged", "alarms", "F1", "events caught"],
        rows,
        "series",
    )
    return page(
        f"{len(scores)} series scored with run {run}",
        html_table(None, header, "header")
        + "<h2>Series</h2>"
        + series_table
        + "".join(sections),
        reports,
    )


def _caught(metrics: dict[str, Any] | None) -> str:
    if not metrics or metrics.get("events") is None:
        return "-"
    return f"{metrics['events_detected']} of {metrics['events']}"
