"""``rareevent report``: compare saved runs, or one run's recipe, plot or HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from rareevent.errors import RareEventError

from .. import recipe
from ..console import consoles, errors, warn
from ..options import NOT_SETTINGS, RunsDir, complete_run
from ..render import candidates_table, print_comparison, print_runs_table, series_table


def report(
    ctx: typer.Context,
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run folders or names (default: every run in --runs-dir).",
            autocompletion=complete_run,
        ),
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Draw the error over time and the PR curve of one run to this .png "
            "(needs rareevent\\[plot])."
        ),
    ] = None,
    show_recipe: Annotated[
        bool,
        typer.Option(
            "--recipe",
            help="Print the TOML recipe that trains one run again (rareevent train --config).",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write a self-contained HTML report of one run on its own input file "
            "(timeline with the splits, every alarm episode with its sensors' raw "
            "traces, metrics, PR curve) to this .html file (needs "
            "rareevent\\[plot]).",
        ),
    ] = None,
) -> None:
    """Compare saved runs: test metrics, events caught, false alarms, and each two
    architectures trained on the same file.
    """
    with errors():
        from rareevent.report import collect, comparisons
        from rareevent.runs import RUN_FILE, read_run, resolve_run

        if show_recipe:
            if (runs and len(runs) > 1) or plot is not None or as_json:
                raise RareEventError(
                    "--recipe prints the recipe of one run; name a single RUN, "
                    "without --plot or --json"
                )
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            app = ctx.find_root().command
            assert isinstance(app, TyperGroup)  # an app of several commands is a group
            train_params = app.commands[
                "train"
            ].params  # the app's, as main registered it
            typer.echo(
                recipe.recipe_text(
                    read_run(folder),
                    folder / RUN_FILE,
                    leave_out={
                        recipe.recipe_key(p)
                        for p in train_params
                        if p.name in NOT_SETTINGS
                    },
                ),
                nl=False,
            )
            return
        if html is not None:
            from rareevent.html_report import check_output, run_report, write
            from rareevent.runs import load_run

            if (runs and len(runs) > 1) or plot is not None or as_json:
                raise RareEventError(
                    "--html reports one run; name a single RUN, without --plot or --json"
                )
            check_output(html)
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            write(run_report(folder, *load_run(folder)), html)
            consoles.out.print(f"report of {folder.name} written to {html}")
            return
        if plot is not None:
            from rareevent.plot import plot_run

            if runs and len(runs) > 1:
                raise RareEventError("--plot draws one run; name a single RUN")
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            plot_run(folder, read_run(folder), plot)
            consoles.out.print(f"plot of {folder.name} written to {plot}")
            return
        summaries, skipped = collect(runs or [], runs_dir)
        pairs = comparisons(summaries)
        if as_json:
            typer.echo(
                json.dumps(
                    {"runs": summaries, "comparisons": pairs, "skipped": skipped},
                    indent=2,
                    allow_nan=False,
                )
            )
            return
        for message in skipped:
            warn(f"skipped: {message}")
        print_runs_table(summaries)
        for row in summaries:
            if len(row["series"] or []) > 1:
                consoles.out.print(series_table(row))
            if row["candidates"]:
                consoles.out.print(
                    candidates_table(row["name"], row["candidates"], row["arch"])
                )
        for pair in pairs:
            print_comparison(pair)
