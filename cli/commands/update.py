"""``rareevent update``: continue a run's training on newer data, saved as a new run."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rareevent.options import AlarmPolicy

from ..console import bars, consoles, errors
from ..options import (
    ALARM_DEFAULT_OPTIONS,
    SAVE_OPTIONS,
    UPDATE_OPTIONS,
    QuietOption,
    Saving,
    alarm_policy,
    input_spec,
    takes,
)
from ..render import epoch_progress
from ..signals import interrupt_at_batch_end
from .train import save_and_summarize

if TYPE_CHECKING:
    from rareevent.options import InputSpec


@takes("saving", SAVE_OPTIONS, Saving)
@takes("alarm", ALARM_DEFAULT_OPTIONS, alarm_policy)
@takes("spec", UPDATE_OPTIONS, input_spec)
def update(
    run: Annotated[
        str,
        typer.Argument(help="Run folder or run name to start from (it is only read)."),
    ],
    data: Annotated[
        Path,
        typer.Argument(
            help="Newer sensor CSV with the run's feature columns (labels optional)."
        ),
    ],
    epochs: Annotated[
        int,
        typer.Option(
            help="Most epochs of continued training (early stopping usually ends sooner)."
        ),
    ] = 10,
    valid_frac: Annotated[
        float,
        typer.Option(
            help="Fraction of the newer rows, at their end, for validation and the threshold."
        ),
    ] = 0.2,
    threshold: Annotated[
        str | None,
        typer.Option(help="Threshold strategy (as in train); default: the run's."),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            help="Multiply the chosen threshold by this; default: the run's margin."
        ),
    ] = None,
    # keyword-only from here (Typer calls a command with keywords), so that `spec` needs
    # no default
    *,
    spec: InputSpec,  # --fill, --tz and --encoding, built by takes
    alarm: AlarmPolicy,  # the run's new alarm defaults, built by takes
    saving: Saving,  # --runs-dir, --name, --overwrite and --json, built by takes
    quiet: QuietOption = False,
) -> None:
    """Refit a run's scaler and threshold on newer data, continue training its model,
    and save a new run.
    """
    consoles.set_output(quiet)
    with errors(), ExitStack() as stack:
        from rareevent.runs import read_run, reserve_run, resolve_run
        from rareevent.training import (
            check_update_slot,
            default_run_name,
            update as run_update,
        )

        folder = resolve_run(run, saving.runs_dir)
        name = saving.name or default_run_name(read_run(folder).arch)
        check_update_slot(
            folder, saving.runs_dir, name, saving.overwrite
        )  # before training, not after
        stack.enter_context(reserve_run(saving.runs_dir, name, saving.overwrite))
        bar_console = Console(stderr=True) if saving.as_json else consoles.out
        with (
            interrupt_at_batch_end(),
            epoch_progress(
                f"updating {folder.name}",
                epochs,
                bar_console,
                disable=quiet or not bars(bar_console),
            ) as on_epoch,
        ):
            result = run_update(
                folder,
                data,
                spec,
                epochs=epochs,
                valid_frac=valid_frac,
                threshold=threshold,
                margin=margin,
                name=name,
                on_epoch=on_epoch,
                alarm=alarm,
            )
        save_and_summarize(result, spec.fill, saving, quiet)
