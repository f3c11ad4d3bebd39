"""``rareevent train``: one CSV, a fleet of series, or one run per group."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rareevent.errors import RareEventError
from rareevent.selection import AUTO, CANDIDATES, baseline_advice, choice_note

from .. import recipe
from ..console import OPTION_OF_PARAM, bars, consoles, errors, note, terms, warn
from ..options import (
    ARCH_HELP,
    AUTO_HELP,
    NOT_PASSED,
    NOT_SETTINGS,
    SAVE_OPTIONS,
    TRAIN_OPTIONS,
    Activation,
    Arch,
    QuietOption,
    Saving,
    ScoreKind,
    one_csv,
    parse_units,
    read_config,
    takes,
    train_spec,
)
from ..render import epoch_progress, print_per_group, print_train_summary, train_summary
from ..signals import interrupt_at_batch_end

if TYPE_CHECKING:
    from rareevent.options import TrainSpec
    from rareevent.training import TrainResult


@takes("saving", SAVE_OPTIONS, Saving)
@takes("spec", TRAIN_OPTIONS, train_spec)
def train(
    ctx: typer.Context,
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Sensor CSV (',', ';' or tab separated) or Parquet file(s), or a "
            "quoted glob like 'exports/*.csv'; may come from the recipe."
        ),
    ],
    # keyword-only from here (Typer calls a command with keywords), so that `spec` needs
    # no default
    *,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML recipe: options from its \\[train] table; the command line overrides them.",
            is_eager=True,
            callback=read_config,
        ),
    ] = None,
    arch: Annotated[Arch, typer.Option(help=f"{ARCH_HELP}, {AUTO_HELP}.")] = Arch["ae"],
    lookback: Annotated[
        int | None,
        typer.Option(
            help="Rows per window (T) (default: 1; --arch forecast: horizon + 4)."
        ),
    ] = None,
    horizon: Annotated[
        int,
        typer.Option(
            help="--arch forecast: predict the window's last H rows from the lookback - "
            "H rows before them."
        ),
    ] = 1,
    lead: Annotated[
        int,
        typer.Option(
            help="Early warning: a window is positive when an event starts within this "
            "many rows after it."
        ),
    ] = 0,
    units: Annotated[
        str,
        typer.Option(
            help="LSTM units u1,u2 (1 to 4096 each), or auto: the bottleneck as wide as "
            "the principal components holding 99% of the targets' variance, the "
            "first layer twice that."
        ),
    ] = "32,16",
    activation: Annotated[
        Activation, typer.Option(help="LSTM activation.")
    ] = Activation.tanh,
    score: Annotated[
        ScoreKind,
        typer.Option(
            "--score",
            help="Window score: mean (squared error over the window), last (last row "
            "only), max (the worst row) or tail (a mean weighted to the newest rows).",
        ),
    ] = ScoreKind.mean,
    smooth: Annotated[
        int,
        typer.Option(
            help="Alarm on the mean score of the last K windows (1: no smoothing)."
        ),
    ] = 1,
    threshold: Annotated[
        str | None,
        typer.Option(
            help="f1, fbeta:B, pr-cross, precision:P, quantile[:Q] or pot[:R]; default f1 "
            "with labels, pot without."
        ),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(
            help="Multiply the chosen threshold by this (above 1: fewer false alarms on "
            "data that drifts after validation)."
        ),
    ] = 1.0,
    epochs: Annotated[
        int,
        typer.Option(help="Most training epochs (early stopping usually ends sooner)."),
    ] = 40,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Windows per training batch (default: about 100 steps per epoch, "
            "16..128 on a CPU, 16..2048 on a GPU)."
        ),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(help="Adam learning rate (default: 1e-3 x sqrt(batch/16))."),
    ] = None,
    patience: Annotated[
        int, typer.Option(help="Epochs without validation improvement before stopping.")
    ] = 5,
    spec: TrainSpec,  # the input and split options (--valid-frac ... --group), built by takes
    seed: Annotated[
        int,
        typer.Option(
            help="Random seed (same data and seed give the same threshold on CPU)."
        ),
    ] = 0,
    normalize: Annotated[
        bool,
        typer.Option(
            help="Divide each sensor's error by its typical (median) error on normal "
            "validation windows."
        ),
    ] = False,
    mask_rate: Annotated[
        float,
        typer.Option(
            help="ae and plain: hide each target sensor of a training window with this "
            "probability (0: never); the model rebuilds it from the others, and "
            "each sensor is scored hidden."
        ),
    ] = 0.0,
    per_group: Annotated[
        bool,
        typer.Option(
            "--per-group",
            help="With --group: train one run per group value, saved as "
            "runs/NAME/<group>/ with a summary.",
        ),
    ] = False,
    saving: Saving,  # --runs-dir, --name, --overwrite and --json, built by takes
    quiet: QuietOption = False,
) -> None:
    """Train a detector on the normal windows of DATA and save it as a run."""
    consoles.set_output(quiet)
    with errors(), ExitStack() as stack:
        from rareevent.estimator import RareEventDetector
        from rareevent.model import default_lookback
        from rareevent.runs import reserve_run
        from rareevent.training import default_run_name, train as run_training

        options = {**ctx.params, "units": parse_units(units)}
        if (
            arch == AUTO
        ):  # the default architecture trains when there are no labels to choose by
            options["arch"] = RareEventDetector().arch
        if lookback is None:
            options["lookback"] = default_lookback(options["arch"], horizon)
        params = [
            key for key in RareEventDetector().get_params() if key not in NOT_PASSED
        ]
        detector = RareEventDetector(
            **{key: options[OPTION_OF_PARAM.get(key, key)] for key in params}
        )
        group = spec.input.group
        name = saving.name or default_run_name(arch)
        if per_group and group is None:
            raise RareEventError(
                "--per-group needs --group COLUMN: the column whose values each get a run"
            )
        if arch == AUTO and not (one_csv(data) and group is None):
            raise RareEventError(
                "--arch auto trains one CSV file; for several series, --group or "
                "--per-group name an architecture"
            )
        stack.enter_context(
            reserve_run(saving.runs_dir, name, saving.overwrite)
        )  # before minutes of training, not after
        if per_group:
            from rareevent.fleet import train_per_group

            announce = (
                None
                if quiet or saving.as_json
                else lambda value: consoles.out.print(f"training group {value}")
            )
            folder, summary = train_per_group(
                data,
                detector,
                spec,
                runs_dir=saving.runs_dir,
                name=name,
                overwrite=saving.overwrite,
                on_group=announce,
            )
            print_per_group(folder, summary, saving.as_json, quiet)
            return
        bar_console = Console(stderr=True) if saving.as_json else consoles.out
        with (
            interrupt_at_batch_end(),
            epoch_progress(
                f"training {arch}",
                epochs,
                bar_console,
                disable=quiet or not bars(bar_console),
            ) as on_epoch,
        ):
            if one_csv(data) and group is None:
                result = run_training(
                    data[0],
                    detector,
                    spec,
                    name=name,
                    on_epoch=on_epoch,
                    candidates=CANDIDATES if arch == AUTO else (),
                )
            else:
                from rareevent.fleet import train_fleet

                result = train_fleet(data, detector, spec, name=name, on_epoch=on_epoch)
        result.record = replace(
            result.record, settings=recipe.settings(ctx, leave_out=NOT_SETTINGS)
        )
        save_and_summarize(result, spec.input.fill, saving, quiet)


def save_and_summarize(
    result: TrainResult, fill: str | None, saving: Saving, quiet: bool = False
) -> None:
    """Warn about what training noticed, save the run folder and print its summary
    (train and update).

    The summary is rich tables, the JSON of ``--json``, or with ``--quiet`` the
    run folder's path alone.
    """
    from rareevent.runs import run_view
    from rareevent.training import save

    record = run_view(result.record, result.detector)
    if record.constant_features:
        warn(
            "constant column(s) in the normal training rows: "
            f"{', '.join(record.constant_features)}; kept neutral (scaled to 0)"
        )
    if record.trending_features:
        warn(
            f"sensor(s) {', '.join(record.trending_features)} trend steadily over "
            "the training rows; they may leave their training range later and raise "
            "false alarms (consider a longer training period, --margin, or --drop)"
        )
    if record.filled_cells:
        note(f"repaired {record.filled_cells} blank/NaN cell(s) with --fill {fill}")
    resampled = record.resample
    if resampled and resampled["empty_cells"]:
        note(
            f"--resample {resampled['every']}: {resampled['empty_cells']} empty "
            f"grid cell(s) handled with --fill {fill}"
        )
    gap_info = record.gaps
    if gap_info and gap_info.skipped_segments:
        note(
            f"skipped {gap_info.skipped_segments} segment(s) shorter than the lookback "
            f"({gap_info.skipped_rows} rows between time gaps give no window)"
        )
    beaten = baseline_advice(record, record.arch)
    if beaten:
        warn(beaten)
    if record.candidates:
        note(choice_note(record.candidates, record.arch))
    order_note = result.data.reading.order_note(record.time_column)
    if order_note:
        note(terms.text(order_note))
    for assumed in record.assumed or []:
        (note if assumed["as"] == "time" else warn)(terms.text(assumed["message"]))
    path = save(result, saving.runs_dir, overwrite=saving.overwrite)
    if saving.as_json:
        typer.echo(json.dumps(train_summary(record, path), indent=2, allow_nan=False))
    elif quiet:
        typer.echo(str(path))
    else:
        print_train_summary(record, path, result.data.reading.describe())
