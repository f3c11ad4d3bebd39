"""``rareevent score``: one file or stdin here; many series in ``score_fleet``,
``--follow`` in ``score_follow``.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rareevent.errors import RareEventError

from ..console import consoles, errors, note, terms
from ..options import (
    SCORE_OPTIONS,
    Engine,
    FollowFormat,
    QuietOption,
    RunOption,
    RunsDir,
    check_outputs,
    duration_seconds,
    one_csv,
    output_kind,
    score_spec,
    takes,
)
from ..render import estimate_rows, print_paths, print_score_summary, rows_progress
from .score_fleet import score_many
from .score_follow import follow_file

if TYPE_CHECKING:
    from rareevent.options import ScoreSpec


@takes("spec", SCORE_OPTIONS, score_spec)
def score(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="New sensor CSV(s) or Parquet file(s) with the trained feature columns "
            "(labels optional), or a quoted glob; - reads standard input."
        ),
    ],
    # keyword-only from here (Typer calls a command with keywords), so that `spec` needs
    # no default
    *,
    run: RunOption = None,
    runs_dir: RunsDir = Path("runs"),
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write one row per window to this .csv, .json or .parquet file "
            "(--follow: .csv or .jsonl, written as it goes)."
        ),
    ] = None,
    metrics_out: Annotated[
        Path | None,
        typer.Option(
            help="Write the metrics (needs the label column) to this .json file."
        ),
    ] = None,
    spec: ScoreSpec,  # what to read and how (--chunk-rows ... --group), built by takes
    show: Annotated[
        int, typer.Option(min=0, help="Alarm episodes to list (largest peak first).")
    ] = 20,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            help="Worker processes for many series (default: the cores).",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local (processes on this machine) or spark (one task per group; "
            "writes a Parquet folder).",
        ),
    ] = Engine.local,
    master: Annotated[
        str,
        typer.Option(
            "--master",
            help="Spark master with --engine spark: local[*], local[2], spark://HOST:7077, yarn.",
        ),
    ] = "local[*]",
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Tail DATA as another program appends to it: score each line as soon "
            "as its window is complete, until Ctrl-C.",
        ),
    ] = False,
    output_format: Annotated[
        FollowFormat | None,
        typer.Option(
            "--format",
            help="--follow output: csv or jsonl (JSON Lines, with alarm events) "
            "(default: from --output's extension, else csv).",
        ),
    ] = None,
    poll: Annotated[
        str,
        typer.Option(
            help="--follow: how often to look for new lines, like 0.2s or 500ms."
        ),
    ] = "0.2s",
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write a self-contained HTML report (score timeline, every alarm "
            "episode with its sensors' raw traces) to this .html file (needs "
            "rareevent\\[plot]).",
        ),
    ] = None,
    episodes: Annotated[
        Path | None,
        typer.Option(
            "--episodes",
            help="Write one row per alarm episode (series, start, end, duration, peak "
            "score and ÷ threshold, top sensors) to this .csv file.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Score DATA with a saved run: flag windows at or above the threshold and explain each alarm.

    Several files, a glob or --group score every series alone (never a window across
    two), in a stable order.
    """
    consoles.set_output(quiet)
    with errors():
        from rareevent.runs import resolve_run

        if (
            engine == Engine.spark
            or spec.input.group is not None
            or not one_csv(data)
            or _per_group_run(run, runs_dir)
        ):
            score_many(
                data,
                resolve_run(run, runs_dir),
                spec,
                jobs=jobs,
                engine=engine,
                master=master,
                output=output,
                metrics_out=metrics_out,
                quiet=quiet,
                html=html,
                episodes=episodes,
            )
            return
        path = data[0]
        from rareevent.load import is_pipe
        from rareevent.runs import load_scorer, resolve_run
        from rareevent.scoring import score_csv
        from rareevent.storage import atomic_file
        from rareevent.window_stream import file_has_labels
        from rareevent.window_writer import WindowWriter

        stdin = str(path) == "-"
        piped = stdin or (not follow and is_pipe(path))  # a pipe is read once, as stdin
        if html is not None and (follow or piped):
            raise RareEventError(
                "--html reads the scored file a second time for the sensor traces: "
                + (
                    "give a file, without --follow"
                    if follow
                    else "give a file, not standard input"
                    if stdin
                    else f"give a file, not the pipe {path}"
                )
            )
        if follow and episodes is not None:
            raise RareEventError(
                "--episodes is written when the data ends; --follow announces "
                "episodes as they close instead"
            )
        if follow:
            if stdin:
                raise RareEventError(
                    "--follow needs a file to tail, not stdin (-): pipe into "
                    "`rareevent score -` without --follow, or name the file"
                )
            if metrics_out is not None:
                raise RareEventError(
                    "--follow tails a file, and has no end to measure metrics at: "
                    "leave out --metrics-out"
                )
            follow_kind = (
                output_format.value
                if output_format
                else output_kind(output, ("csv", "jsonl"))
                if output
                else "csv"
            )
            seconds = duration_seconds(poll, "--poll")
            check_outputs(path, {"--output": output})
            record, detector = load_scorer(resolve_run(run, runs_dir))
            follow_file(path, record, detector, spec, output, follow_kind, seconds)
        if output_format is not None:
            raise RareEventError(
                "--format is for --follow; without it the output's kind follows --output's "
                "extension (.csv, .json or .parquet)"
            )
        kind = output_kind(output, ("csv", "json", "parquet")) if output else None
        if metrics_out is not None:
            output_kind(metrics_out, ("json",))
        if episodes is not None:
            output_kind(episodes, ("csv",))
        if html is not None:
            from rareevent.html_report import check_output

            check_output(html)
        check_outputs(
            path,
            {
                "--output": output,
                "--metrics-out": metrics_out,
                "--episodes": episodes,
                "--html": html,
            },
        )
        folder = resolve_run(run, runs_dir)
        record, detector = load_scorer(folder)
        label_column = spec.input.label or record.label_column
        if metrics_out is not None and label_column is None:
            raise RareEventError(
                f"--metrics-out needs labels, and run {record.name!r} was trained "
                "without a label column",
                hint="name the file's label column with --label",
            )
        if (
            metrics_out is not None
            and not piped
            and not file_has_labels(path, label_column)
        ):
            raise RareEventError(
                f"{path}: --metrics-out needs the label column {label_column!r}, "
                "which the file does not have"
            )
        total = (
            estimate_rows(path)
            if not piped
            and path.is_file()
            and path.stat().st_size > 4 * spec.chunk_rows
            else None
        )
        progress = rows_progress(path)
        task = progress.add_task("score", total=total)
        with (
            ExitStack() as stack
        ):  # the outputs are renamed into place only when all are complete
            temp = stack.enter_context(atomic_file(output)) if output else None
            metrics_temp = (
                stack.enter_context(atomic_file(metrics_out)) if metrics_out else None
            )
            episodes_temp = (
                stack.enter_context(atomic_file(episodes)) if episodes else None
            )
            html_temp = stack.enter_context(atomic_file(html)) if html else None
            writer = (
                stack.enter_context(WindowWriter(temp, kind)) if temp and kind else None
            )
            collector = _html_collector(html, writer)
            sink = collector or writer
            with progress:
                if piped:
                    from rareevent.follow import score_pipe

                    name = "<stdin>" if stdin else str(path)
                    stream = (
                        sys.stdin.buffer
                        if stdin
                        else stack.enter_context(open(path, "rb"))
                    )
                    result = score_pipe(
                        stream, record, detector, spec, sink=sink, name=name
                    )
                    if metrics_out is not None and result.metrics is None:
                        raise RareEventError(
                            f"{name}: --metrics-out needs the label column "
                            f"{label_column!r}, which the data does not have"
                        )
                else:
                    result = score_csv(
                        path,
                        record,
                        detector,
                        spec,
                        sink=sink,
                        on_progress=lambda n: progress.advance(task, n),
                    )
            summary = {
                "run": record.name,
                "file": str(path),
                "rows": result.n_rows,
                "windows": result.n_windows,
                "flagged": int(result.flagged.sum()),
                "threshold": result.threshold,
                "segments": result.n_segments,
            }
            if result.decision is not None and not result.decision.threshold_alone:
                summary["alarm"] = result.decision.to_record()
            if writer:
                writer.finish(
                    {
                        "alarms": result.alarms,
                        "metrics": result.metrics,
                        "summary": summary,
                    }
                )
            if metrics_temp:
                metrics_temp.write_text(
                    json.dumps(
                        {**summary, "metrics": result.metrics},
                        indent=2,
                        allow_nan=False,
                    )
                    + "\n",
                    encoding="utf-8",
                )
            if episodes_temp:
                from rareevent.episodes import episode_rows, write_episodes

                write_episodes(
                    episodes_temp, episode_rows(result.alarms, result.threshold)
                )
            if html_temp:
                from rareevent.html_report import render, scored_file_report

                page = render(
                    scored_file_report(path, record, detector, result, collector, spec)
                )
                html_temp.write_text(page, encoding="utf-8")
        if result.columns.ignored:
            note(
                f"ignored column(s) not used by the model: {', '.join(result.columns.ignored)}"
            )
        if result.n_filled:
            note(
                f"repaired {result.n_filled} blank/NaN cell(s) with --fill {spec.input.fill}"
            )
        if result.n_segments > 1 and record.gaps:
            note(
                f"{result.n_segments - 1} time gap(s) above the run's --max-gap "
                f"{record.gaps.max_gap} split the file into {result.n_segments} "
                "segments; no window crosses a gap"
            )
        if result.reading.time_format != (record.reading or {}).get(
            "time_format"
        ):  # not the run's reading: inferred from this file
            order_note = result.reading.order_note(result.columns.time)
            if order_note:
                note(terms.text(order_note))
        print_score_summary(summary, result, show, output)
        if html:
            consoles.out.print(f"report written to {html}", markup=False)
        print_paths(quiet, output, metrics_out, episodes, html)


def _html_collector(html: Path | None, then: Any) -> Any:
    """The sink that keeps the windows an HTML report draws and passes them on to
    ``then`` (None without ``--html``).
    """
    if html is None:
        return None
    from rareevent.html_report import WindowCollector

    return WindowCollector(then)


def _per_group_run(run: str | None, runs_dir: Path) -> bool:
    """Whether ``--run`` names a ``--per-group`` folder (the newest run never is one)."""
    from rareevent.fleet import read_fleet
    from rareevent.runs import resolve_run

    if run is None:
        return False
    try:
        return read_fleet(resolve_run(run, runs_dir)) is not None
    except RareEventError:
        return False  # reported where the run is loaded
