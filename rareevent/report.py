"""Stage 7: summarise saved runs for tables, JSON and comparisons (no printing here)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES
from rareevent.record import RunView
from rareevent.runs import list_runs, read_run, resolve_run

METRIC_KEYS = ("precision", "recall", "f1", "pr_auc", "roc_auc")


def summarize(folder: Path, record: RunView) -> dict[str, Any]:
    """One row of a run: settings, metrics, timing.

    Metrics are nested as ``train --json`` nests them, ``metrics.<part>.<name>``
    (and ``baseline.metrics.<part>.<name>``); ``metrics_part`` names the part
    a table shows (test, else valid).
    """
    metrics = record.metrics
    part = "test" if metrics.get("test") else "valid"
    scored = metrics.get(part) or {}
    saved = record.to_json()  # the baseline and series as run.json holds them
    return {
        "name": folder.name,  # the run as the user calls it, not run.json's name
        "folder": str(folder),
        "parent": record.parent.name if record.parent else None,
        "created": record.created,
        "arch": record.arch,
        "lookback": record.lookback,
        "lead": record.lead,
        "units": record.units,
        "parameters": record.parameters,
        "threshold_strategy": record.threshold_strategy,
        "threshold": record.threshold,
        "metrics_part": part if scored else None,
        "metrics": metrics,
        "train_seconds": record.train_seconds,
        "baseline": saved["baseline"],
        "input_file": record.input_file,
        "input_sha256": record.input_sha256,
        "group_column": record.group_column,
        "series": saved.get("series"),  # a fleet run: every series' rows and metrics
        # --arch auto: every candidate's validation F1, PR-AUC, false alarms
        "candidates": record.candidates,
    }


def shown_metrics(row: dict[str, Any], baseline: bool = False) -> dict[str, Any]:
    """The metrics of ``row`` (a :func:`summarize` row) that tables show: its
    ``metrics_part``; of its PCA baseline with ``baseline``.
    """
    source = (row["baseline"] or {}) if baseline else row
    return (
        ((source.get("metrics") or {}).get(row["metrics_part"]) or {})
        if row["metrics_part"]
        else {}
    )


def collect(
    runs: Sequence[str], runs_dir: str | Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Summaries of the named runs, or of every run in ``runs_dir``.

    Named runs that cannot be read are errors; unreadable folders found by
    listing ``runs_dir`` are skipped and reported in the second return value.
    """
    if runs:
        folders = [
            folder
            for run in runs
            for folder in _run_folders(resolve_run(run, runs_dir))
        ]
        return [summarize(folder, read_run(folder)) for folder in folders], []
    summaries, skipped = [], []
    for folder in list_runs(runs_dir):
        try:
            summaries.append(summarize(folder, read_run(folder)))
        except RareEventError as exc:
            skipped.append(str(exc))
    if not summaries and not skipped:
        raise RareEventError(
            f"{runs_dir}: no runs found",
            hint="train one with `rareevent train DATA.csv`",
        )
    return summaries, skipped


def _run_folders(folder: Path) -> list[Path]:
    """A run folder, or the group runs of a ``--per-group`` folder."""
    from rareevent.fleet import read_fleet

    summary = read_fleet(folder)
    return (
        [folder] if summary is None else [folder / group for group in summary["runs"]]
    )


def comparisons(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every two architectures trained on the same input file: the newest run of each,
    in the registry's order.

    A pair names its runs under their architectures (``pair["ae"]``,
    ``pair["plain"]``, in ``pair["archs"]`` order) and holds each metric for both.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(summaries, key=lambda r: r.get("created") or ""):
        latest[(row["input_sha256"], row["arch"])] = row
    digests = list(dict.fromkeys(digest for digest, _ in latest))
    pairs = []
    for digest in digests:
        for first, second in combinations(
            [arch for arch in ARCHITECTURES if (digest, arch) in latest], 2
        ):
            a, b = latest[(digest, first)], latest[(digest, second)]
            pairs.append(
                {
                    "input_file": a["input_file"],
                    "archs": [first, second],
                    first: a["name"],
                    second: b["name"],
                    "metrics": {
                        **{
                            key: {
                                first: shown_metrics(a).get(key),
                                second: shown_metrics(b).get(key),
                            }
                            for key in (*METRIC_KEYS, "events_detected", "false_alarms")
                        },
                        **{
                            key: {first: a[key], second: b[key]}
                            for key in ("parameters", "train_seconds")
                        },
                    },
                    "better_f1": _better(
                        first,
                        shown_metrics(a).get("f1"),
                        second,
                        shown_metrics(b).get("f1"),
                    ),
                }
            )
    return pairs


def _better(first: str, a: float | None, second: str, b: float | None) -> str | None:
    if a is None or b is None:
        return None
    if abs(a - b) < 1e-9:
        return "tie"
    return first if a > b else second
