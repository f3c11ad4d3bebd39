"""What the commands print: tables, summaries and progress bars (all through
``consoles.out`` unless said otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rareevent.episodes import file_line
from rareevent.model import ARCHITECTURES

from .console import bars, consoles

if TYPE_CHECKING:
    from rich.progress import Progress

    from rareevent.gaps import GapSummary
    from rareevent.progress import EpochCallback
    from rareevent.record import RunRecord, RunView


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def score_cell(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda metrics: fmt(metrics.get(key))


# rows shared by the metrics of one run and the table of saved runs (same keys in both)
SCORE_ROWS = [
    (label, score_cell(key))
    for label, key in (
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("PR-AUC", "pr_auc"),
        ("ROC-AUC", "roc_auc"),
    )
]


def events_text(metrics: dict[str, Any]) -> str:
    if metrics.get("events") is None:
        return "-"
    unseen = (
        metrics.get("events_unseen") or 0
    )  # in a gap or a segment too short for a window: not missed
    return f"{metrics['events_detected']} of {metrics['events'] - unseen}" + (
        f" ({unseen} unseen)" if unseen else ""
    )


def rate_text(metrics: dict[str, Any]) -> str:
    """False alarm episodes per day (datetime axis) or per 1,000 windows."""
    if metrics.get("false_alarms_per_day") is not None:
        return f"{fmt(metrics['false_alarms_per_day'], 2)}/day"
    if metrics.get("false_alarms_per_1000_windows") is not None:
        return f"{fmt(metrics['false_alarms_per_1000_windows'], 2)}/1k windows"
    return "-"


def metrics_table(parts: dict[str, dict[str, Any]], title: str = "metrics") -> Table:
    """One column per scored part (valid, test, a scored file): point-wise and event metrics."""
    table = Table(title=title)
    table.add_column("metric", style="bold")
    for name in parts:
        table.add_column(name, justify="right")
    rows = [
        *SCORE_ROWS,
        (
            "TP / FP / FN / TN",
            lambda m: f"{m['tp']} / {m['fp']} / {m['fn']} / {m['tn']}",
        ),
        ("events caught", events_text),
        ("mean lead (rows)", lambda m: fmt(m["mean_lead_rows"], 1)),
        ("false alarm episodes", lambda m: str(m["false_alarms"])),
        ("false alarm rate", rate_text),
        ("event precision", lambda m: fmt(m.get("event_precision"))),  # older runs: -
        ("event F0.5", lambda m: fmt(m.get("event_f05"))),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(m) for m in parts.values()))
    return table


def lead_line(metrics: dict[str, Any]) -> str | None:
    if not metrics.get("lead_rows"):
        return None
    rows = metrics["lead_rows"]
    text = (
        "lead of each detection in rows before onset (negative: after): "
        f"{', '.join(map(str, rows))}"
    )
    if metrics.get("lead_seconds"):
        text += f"; in minutes: {', '.join(f'{s / 60:.1f}' for s in metrics['lead_seconds'])}"
    elif metrics.get("lead_time"):
        text += f"; in time-column units: {', '.join(f'{t:g}' for t in metrics['lead_time'])}"
    return text


def gap_text(gap_info: GapSummary) -> str:
    """``2 segments, 1 gap (longest 6:00:00; --max-gap 5x = 0:10:00)`` for the train summary."""
    from rareevent.gaps import describe_gap

    text = f"{gap_info.segments} segment(s), {gap_info.gaps} gap(s)"
    if gap_info.longest_gap is not None:
        text += f" (longest {describe_gap(gap_info.longest_gap, gap_info.unit)})"
    return (
        text
        + f"; --max-gap {gap_info.max_gap} = {describe_gap(gap_info.max_gap_value, gap_info.unit)}"
    )


def alarm_text(policy: Any) -> str:
    """A run's alarm policy in a line: its time scale, cooldown and minimum duration."""
    if policy.shortest_event in (None, "off", 0):
        return "the threshold alone"
    parts = [f"shortest event {_span(policy.shortest_event)}"]
    if policy.cooldown not in (None, 0, "0"):
        parts.append(f"cooldown {_span(policy.cooldown)}")
    if policy.min_duration not in (None, 1, "1"):
        parts.append(f"min duration {_span(policy.min_duration)}")
    return ", ".join(parts)


def _span(value: Any) -> str:
    return (
        f"{value} rows"
        if isinstance(value, int) or str(value).isdigit()
        else str(value)
    )


def why_no_test(record: RunRecord) -> str:
    """The real reason a run has no test metrics."""
    if record.parent:
        return (
            "update keeps no test part (its newest rows validate the threshold); score "
            "a later file with labels to measure it"
        )
    if record.label_column is None:
        return "no label column (name one with --label COL)"
    if not record.test_frac:
        return "--test-frac 0"
    return "the test part holds no labelled window"


def candidates_table(
    name: str, candidates: dict[str, dict[str, Any] | None], chosen: str
) -> Table:
    """``--arch auto``: every candidate's validation alarms at its own threshold, the
    kept one marked.
    """
    table = Table(
        title=f"run {name}: --arch auto, validation at each candidate's own threshold (* kept)"
    )
    for column in ("arch", "F1", "PR-AUC", "events caught", "false alarms"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for arch, m in candidates.items():
        cells = (
            (fmt(m["f1"]), fmt(m["pr_auc"]), events_text(m), str(m["false_alarms"]))
            if m
            else ("-",) * 4
        )
        table.add_row(arch + ("*" if arch == chosen else ""), *cells)
    return table


def series_table(record: dict[str, Any]) -> Table:
    """One row per series of a fleet run (its ``run.json`` or ``report`` row): its rows
    and its own test (else validation) metrics.
    """
    table = Table(
        title=f"run {record['name']}: per series, test metrics (* validation: no test part)"
    )
    table.add_column(
        record.get("group_column") or "file", overflow="fold", min_width=12
    )
    for column in (
        "rows",
        "precision",
        "recall",
        "F1",
        "PR-AUC",
        "events",
        "false alarms",
    ):
        table.add_column(column, justify="right")
    for series in record["series"]:
        part = "test" if series["metrics"].get("test") else "valid"
        m = series["metrics"].get(part)
        cells = (
            (
                fmt(m["precision"]),
                fmt(m["recall"]),
                fmt(m["f1"]),
                fmt(m["pr_auc"]),
                events_text(m),
                str(m["false_alarms"]),
            )
            if m
            else ("-",) * 6
        )
        table.add_row(
            series["name"] + ("*" if m and part == "valid" else ""),
            f"{series['rows']:,}",
            *cells,
        )
    return table


def print_train_summary(record: RunView, path: Path, reading: str | None) -> None:
    table = Table(title=f"run {record.name}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if record.parent:
        table.add_row("updated from", f"{record.parent.name} ({record.parent.folder})")
    n = record.windows or {}
    table.add_row(
        "windows",
        f"train {n['train_normal']} normal, valid {n.get('valid', 0)}, test {n.get('test', 0)}",
    )
    if (
        not ARCHITECTURES[record.arch].trained_by_epochs
    ):  # pca: fitted in closed form with numpy; no epochs, batches, units or backend
        table.add_row("fitted", f"in closed form (numpy), {record.train_seconds:.1f} s")
        model = (
            f"{record.arch}, lookback {record.lookback}, {record.parameters:,} "
            "parameters (components and mean)"
        )
    else:
        versions = record.versions or {}
        table.add_row(
            "epochs",
            f"{record.epochs_run} run, best {record.best_epoch} ({record.train_seconds:.1f} s)",
        )
        table.add_row(
            "ran on",
            f"{versions['backend']}, {versions.get('device', 'cpu')}, batch "
            f"{record.batch_size or '-'}",
        )
        model = (
            f"{record.arch}, lookback {record.lookback}, units {record.units}, "
            f"{record.parameters:,} parameters"
        )
    margin = f" x {record.margin:g}" if record.margin != 1 else ""
    table.add_row(
        "threshold",
        f"{record.threshold:.6g} ({record.threshold_strategy}{margin}, score "
        f"{record.score_kind}, smooth {record.smooth})",
    )
    table.add_row("model", model)
    if record.context_features:
        table.add_row(
            "context",
            f"{', '.join(record.context_features)} (read, not scored; --context none scores them)",
        )
    if reading:
        table.add_row("read as", reading)
    if record.resample:
        table.add_row(
            "resampled",
            f"every {record.resample['every']} ({record.resample['agg']}): "
            f"{record.resample['rows']:,} rows",
        )
    if record.gaps:
        table.add_row("segments", gap_text(record.gaps))
    if record.alarm is not None:
        table.add_row("alarms", alarm_text(record.alarm))
    table.add_row("saved to", str(path))
    consoles.out.print(table)
    parts = {part: m for part, m in record.metrics.items() if m}
    baseline = {} if record.baseline is None else record.baseline.metrics
    parts |= {f"{part} (pca baseline)": m for part, m in baseline.items() if m}
    if parts:
        consoles.out.print(metrics_table(parts))
    if record.candidates:
        consoles.out.print(
            candidates_table(record.name, record.candidates, record.arch)
        )
    for part, metrics in record.metrics.items():
        lead = lead_line(metrics) if metrics else None
        if lead:
            consoles.out.print(f"{part}: {lead}")
    if record.metrics.get("test") is None:
        consoles.out.print(f"no test metrics: {why_no_test(record)}")
    if len(record.series or ()) > 1:
        consoles.out.print(
            series_table(record.to_json())
        )  # as ``report`` shows a run's JSON row


def train_summary(record: RunView, path: Path) -> dict[str, Any]:
    """What ``train --json`` prints: where the run went, its threshold and metrics
    (run.json and detector.json hold the rest).
    """
    from rareevent.detector_file import DETECTOR_FILE
    from rareevent.model import ARCHITECTURES
    from rareevent.runs import RUN_FILE, SCORES_FILE

    keys = (
        "name",
        "arch",
        "threshold",
        "threshold_strategy",
        "margin",
        "score_kind",
        "smooth",
        "metrics",
        "baseline",
        "windows",
        "epochs_run",
        "best_epoch",
        "train_seconds",
    )
    saved = record.to_json()  # the baseline as run.json holds it
    return {
        **{
            key: saved[key] if key == "baseline" else getattr(record, key)
            for key in keys
        },
        "candidates": record.candidates,
        "path": str(path),
        "files": {
            "run": str(path / RUN_FILE),
            "detector": str(path / DETECTOR_FILE),
            "model": str(path / ARCHITECTURES[record.arch].model.file),
            "scores": str(path / SCORES_FILE),
        },
        "warnings": {
            "constant_features": record.constant_features,
            "trending_features": record.trending_features,
        },
        "context_features": record.context_features,
        "assumed": record.assumed or [],
        "filled_cells": record.filled_cells,
        "settings": record.settings,  # update has none: its options are the parent run's
    }


def print_per_group(
    folder: Path, summary: dict[str, Any], as_json: bool, quiet: bool
) -> None:
    """The summary of a ``--per-group`` training: one line per group."""
    if as_json:
        typer.echo(
            json.dumps({**summary, "path": str(folder)}, indent=2, allow_nan=False)
        )
        return
    if quiet:
        typer.echo(str(folder))
        return
    table = Table(
        title=f"per-group run {summary['name']}: {len(summary['runs'])} group(s) in {folder}"
    )
    for column in (
        summary["group_column"],
        "rows",
        "threshold",
        "test F1",
        "test PR-AUC",
        "events caught",
    ):
        table.add_column(
            column, justify="left" if column == summary["group_column"] else "right"
        )
    for value, run in summary["runs"].items():
        part = run["metrics"].get("test") or run["metrics"].get("valid")
        table.add_row(
            value,
            f"{run['rows']:,}",
            f"{run['threshold']:.4g}",
            *(
                (fmt(part["f1"]), fmt(part["pr_auc"]), events_text(part))
                if part
                else ("-", "-", "-")
            ),
        )
    consoles.out.print(table)


@contextmanager
def epoch_progress(
    what: str, epochs: int, console: Console | None = None, disable: bool | None = None
) -> Iterator[EpochCallback]:
    """``rareevent.progress.epoch_bar`` on ``console`` (default: stdout): the per-epoch callback.

    ``disable`` defaults to "not a terminal, or ``NO_COLOR`` set": logs and pipes get no bar.
    """
    from rareevent.progress import epoch_bar

    console = console or consoles.out
    with epoch_bar(
        what, epochs, console, not bars(console) if disable is None else disable
    ) as on_epoch:
        yield on_epoch


def rows_progress(path: Path) -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(f"[bold]scoring {escape(path.name)}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (
            bars(console) and bars(consoles.out)
        ),  # plain output (a pipe, NO_COLOR) has no bar anywhere
    )


def estimate_rows(path: Path) -> int | None:
    """Rows of a file for the progress bar, from the line length of its first MiB (no extra pass).

    ``None`` (a bar without a total) when the file cannot be read: the loader then reports why.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    return max(int(path.stat().st_size * head.count(b"\n") / max(len(head), 1)) - 1, 1)


def print_paths(quiet: bool, *paths: Path | None) -> None:
    """With ``--quiet``, the files a command wrote: its only output besides errors."""
    for path in paths:
        if quiet and path is not None:
            typer.echo(str(path))


def print_score_summary(
    summary: dict[str, Any], result: Any, show: int, output: Path | None
) -> None:
    consoles.out.print(
        f"scored [bold]{escape(summary['file'])}[/] with run "
        f"[bold]{escape(summary['run'])}[/]: {summary['rows']:,} rows, "
        f"{summary['windows']:,} windows, {summary['flagged']:,} flagged "
        f"(threshold {summary['threshold']:.6g}), "
        f"{len(result.alarms)} alarm episode(s)",
        markup=True,
    )
    if result.alarms:
        from rareevent.episodes import duration_text

        table = Table(
            title=f"alarms (top {min(show, len(result.alarms))} by peak error, in time order)"
        )
        has_time = "start_time" in result.alarms[0]
        for column in (
            "start",
            "end",
            "duration",
            "lines",
            "windows",
            "peak",
            "top sensors (share of error)",
        ):
            table.add_column(
                column,
                justify="right"
                if column in ("duration", "windows", "peak")
                else "left",
            )
        shown = sorted(
            sorted(result.alarms, key=lambda a: -a["peak_error"])[:show],
            key=lambda a: a["start_row"],
        )
        for alarm in shown:
            table.add_row(
                str(alarm["start_time"])
                if has_time
                else f"line {file_line(alarm['start_row'])}",
                str(alarm["end_time"])
                if has_time
                else f"line {file_line(alarm['end_row'])}",
                duration_text(alarm),
                f"{file_line(alarm['start_row'])}-{file_line(alarm['end_row'])}",
                str(alarm["windows"]),
                f"{alarm['peak_error']:.3g}",
                alarm["top_features"].replace(";", " "),
            )
        consoles.out.print(table)
    if result.metrics:
        consoles.out.print(metrics_table({"scored file": result.metrics}))
        lead = lead_line(result.metrics)
        if lead:
            consoles.out.print(lead)
    if output:
        consoles.out.print(f"windows written to {output}")


def fleet_table(scores: list[Any], run_name: str, series_column: str) -> Table:
    """``score`` over many series: one row per series, its windows, alarms and (with
    labels) F1 and events caught.
    """
    table = Table(
        title=f"scored {len(scores)} series with {run_name}: "
        f"{sum(s.n_rows for s in scores):,} rows, "
        f"{sum(s.n_flagged for s in scores):,} windows flagged"
    )
    table.add_column(series_column, overflow="fold", min_width=8)
    for column in ("rows", "windows", "flagged", "alarms", "F1", "events caught"):
        table.add_column(column, justify="right")
    for s in scores:
        table.add_row(
            s.series.name,
            f"{s.n_rows:,}",
            f"{s.n_windows:,}",
            f"{s.n_flagged:,}",
            str(s.n_alarms),
            *(
                (fmt(s.metrics["f1"]), events_text(s.metrics))
                if s.metrics
                else ("-", "-")
            ),
        )
    return table


def print_runs_table(summaries: list[dict[str, Any]]) -> None:
    """One column per run, so a few runs fit an 80-column terminal."""
    from rareevent.report import shown_metrics

    table = Table(title="runs: test metrics (* validation: no test part)")
    table.add_column("", style="bold")
    for row in summaries:
        table.add_column(
            row["name"] + ("*" if row["metrics_part"] == "valid" else ""),
            justify="right",
        )

    fields = [
        ("arch", lambda r: r["arch"]),
        ("lookback", lambda r: str(r["lookback"])),
        ("units", lambda r: ",".join(map(str, r["units"]))),
        ("parameters", lambda r: f"{r['parameters']:,}" if r["parameters"] else "-"),
        *(
            [("parent", lambda r: r["parent"] or "-")]
            if any(r["parent"] for r in summaries)
            else []
        ),
        ("threshold", lambda r: f"{r['threshold_strategy']} = {r['threshold']:.4g}"),
        *(
            (label, lambda r, cell=cell: cell(shown_metrics(r)))
            for label, cell in (
                *SCORE_ROWS,
                ("events caught", events_text),
                ("false alarm rate", rate_text),
            )
        ),
        ("baseline: pca F1", lambda r: fmt(shown_metrics(r, baseline=True).get("f1"))),
        (
            "baseline: pca PR-AUC",
            lambda r: fmt(shown_metrics(r, baseline=True).get("pr_auc")),
        ),
        ("training s", lambda r: fmt(r["train_seconds"], 1)),
    ]
    for label, cell in fields:
        table.add_row(label, *(cell(row) for row in summaries))
    consoles.out.print(table)


def print_comparison(pair: dict[str, Any]) -> None:
    first, second = pair["archs"]
    question = (
        ": does the bottleneck help?" if (first, second) == ("ae", "plain") else ""
    )
    table = Table(
        title=f"{first} vs {second} on {Path(pair['input_file']).name}{question}"
    )
    table.add_column("metric", style="bold")
    table.add_column(f"{first} ({pair[first]})", justify="right")
    table.add_column(f"{second} ({pair[second]})", justify="right")
    for key, values in pair["metrics"].items():
        table.add_row(key, fmt(values[first]), fmt(values[second]))
    consoles.out.print(table)
    if pair["better_f1"]:
        consoles.out.print(f"higher F1: [bold]{pair['better_f1']}[/]", markup=True)
