"""``rareevent score`` over many series: local processes (CSV out) or Spark (a Parquet
folder out).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rareevent.errors import RareEventError

from ..console import consoles, note
from ..options import Engine, check_outputs, output_kind
from ..render import fleet_table, print_paths

if TYPE_CHECKING:
    from rareevent.options import ScoreSpec


def score_many(
    data: list[Path],
    folder: Path,
    spec: ScoreSpec,
    *,
    jobs: int | None,
    engine: str,
    master: str,
    output: Path | None,
    metrics_out: Path | None,
    quiet: bool,
    html: Path | None = None,
    episodes: Path | None = None,
) -> None:
    """``score`` over many series: on local processes (CSV out) or on Spark (a Parquet
    folder out).
    """
    from rareevent.storage import atomic_file

    group = spec.input.group
    if output is not None:
        output_kind(output, ("parquet",) if engine == Engine.spark else ("csv",))
    if metrics_out is not None:
        output_kind(metrics_out, ("json",))
    if engine == Engine.spark and (html is not None or episodes is not None):
        raise RareEventError(
            "--html and --episodes need the alarm episodes, which --engine spark "
            "does not collect; score with --engine local"
        )
    if episodes is not None:
        output_kind(episodes, ("csv",))
    if html is not None:
        from rareevent.html_report import check_output

        check_output(html)
    for path in data:
        check_outputs(
            path,
            {
                "--output": output,
                "--metrics-out": metrics_out,
                "--episodes": episodes,
                "--html": html,
            },
        )
    if engine == Engine.spark:
        score_on_spark(data, folder, spec, master=master, output=output)
        print_paths(quiet, output)
        return
    from rareevent.fleet_score import default_jobs, plan, score_fleet

    planned = plan(data, folder, spec)
    if html:  # each series keeps what its report draws
        planned = [replace(job, report=True) for job in planned]
    with ExitStack() as stack:
        temp = stack.enter_context(atomic_file(output)) if output else None
        metrics_temp = (
            stack.enter_context(atomic_file(metrics_out)) if metrics_out else None
        )
        episodes_temp = stack.enter_context(atomic_file(episodes)) if episodes else None
        html_temp = stack.enter_context(atomic_file(html)) if html else None
        scores = score_fleet(planned, jobs or default_jobs(), temp)
        if metrics_temp is not None:
            metrics_temp.write_text(
                json.dumps(
                    {"run": str(folder), "series": [s.summary() for s in scores]},
                    indent=2,
                    allow_nan=False,
                )
                + "\n",
                encoding="utf-8",
            )
        if episodes_temp is not None:
            from rareevent.episodes import episode_rows, write_episodes

            write_episodes(
                episodes_temp,
                [
                    row
                    for s in scores
                    for row in episode_rows(s.alarms, s.threshold, s.series.name)
                ],
            )
        if html_temp is not None:
            from rareevent.fleet_report import render_fleet
            from rareevent.model import compute_device

            html_temp.write_text(
                render_fleet(folder.name, scores, group or "file", compute_device()),
                encoding="utf-8",
            )
    ignored = sorted({c for s in scores for c in s.ignored})
    if ignored:
        note(f"ignored column(s) not used by the model: {', '.join(ignored)}")
    filled = sum(s.n_filled for s in scores)
    if filled:
        note(f"repaired {filled} blank/NaN cell(s) with --fill {spec.input.fill}")
    consoles.out.print(fleet_table(scores, folder.name, group or "file"))
    if output:
        consoles.out.print(f"windows written to {output}")
    if html:
        consoles.out.print(f"report written to {html}", markup=False)
    print_paths(quiet, output, metrics_out, episodes, html)


def score_on_spark(
    data: list[Path], folder: Path, spec: ScoreSpec, *, master: str, output: Path | None
) -> None:
    """``score --engine spark``: read DATA into Spark, score each group as a task, write Parquet."""
    from rareevent import spark

    group = spec.input.group
    if group is None:
        raise RareEventError(
            "--engine spark needs --group COLUMN: each group is scored as one task"
        )
    if output is None:
        raise RareEventError(
            "--engine spark writes its windows to a Parquet folder: give --output NAME.parquet"
        )
    frame, files = spark.read_files(spark.session(master), data)
    spark.write_parquet(spark.score(frame, folder, spec), output)
    consoles.out.print(
        f"scored {frame.select(group).distinct().count()} group(s) of {files} "
        f"file(s) on Spark ({master}); windows written to {output}"
    )
