"""The ``rareevent`` command line: parse options, call the library, print.

Library imports happen inside the commands so that ``rareevent --help``
never loads TensorFlow, pandas or scikit-learn.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rareevent.cli import recipe
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, LSTM_ARCHS
from rareevent.selection import AUTO, CANDIDATES

if TYPE_CHECKING:
    from rareevent.detector import EpochCallback
    from rareevent.training import TrainResult

app = typer.Typer(
    name="rareevent",
    help="Find rare events in multivariate sensor time series with LSTM reconstruction models.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
_typed = typer.core.TyperOption.display_type_rich
# an on/off flag takes no value: its help line shows no `<bool>` type (the one place Typer's help is changed)
typer.core.TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _typed(self, ctx)  # type: ignore[method-assign]
# markup off: column, file and run names print as they are (`Flow [m³/h]`); the few styled lines of our own pass markup=True and escape what they quote
out = Console(highlight=False, markup=False)
_state = {"debug": False, "quiet": False}

EXIT_DATA = 2
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130
UNLIMITED_WIDTH = 100_000  # the console width off a terminal: a table is as wide as its cells

# the fixed value sets of options, as the parser's choices (tests/test_cli_conventions.py checks them against the library's)
Arch = StrEnum("Arch", {**{name: name for name in ARCHITECTURES}, AUTO: AUTO})  # auto: chosen by train, never a run's arch
LstmArch = StrEnum("LstmArch", {name: name for name in LSTM_ARCHS})
ARCH_HELP = ", ".join(f"{name} ({spec.help})" for name, spec in ARCHITECTURES.items())
AUTO_HELP = f"{AUTO} (with labels: the one of {', '.join(CANDIDATES)} with the best validation F1; without: the default)"
# the one mapping from library parameters to options: the option's name where it differs (others: the same name, --with-dashes)
OPTION_OF_PARAM = {"score_kind": "score", "validation_fraction": "valid-frac", "workers": "jobs"}
# parameters train does not pass as given: context names are resolved against the file's columns; the rest are not options
NOT_PASSED = {"context", "validation_fraction", "warm_start"}
Activation = StrEnum("Activation", {"tanh": "tanh", "relu": "relu"})
ScoreKind = StrEnum("ScoreKind", {"mean": "mean", "last": "last"})
Fill = StrEnum("Fill", {"ffill": "ffill", "interpolate": "interpolate", "drop": "drop"})
Engine = StrEnum("Engine", {"local": "local", "spark": "spark"})
FollowFormat = StrEnum("FollowFormat", {"csv": "csv", "jsonl": "jsonl"})


def _complete_run(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run names in ``--runs-dir`` (as typed so far, else ``runs``) that start with ``incomplete``.

    A folder holding a ``run.json`` is a run; found with a glob rather than
    ``rareevent.runs.list_runs``, whose imports (pandas, scikit-learn) would
    cost seconds on every Tab.
    """
    runs_dir = Path(ctx.params.get("runs_dir") or "runs")
    names = (found.parent.name for found in runs_dir.glob("*/run.json"))
    return sorted(name for name in names if name.startswith(incomplete) and not name.startswith("."))


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Folder holding the run folders.")]
RunOption = Annotated[str | None, typer.Option(help="Run folder or run name (default: the newest run).", autocompletion=_complete_run)]
FillOption = Annotated[Fill | None, typer.Option("--fill", help="Repair blank/NaN sensor cells (default: refuse them).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the path of what was written.")]
DecimalOption = Annotated[str | None, typer.Option("--decimal", help="Decimal mark of the numbers, ',' or '.' (default: detected in ';' and tab files; score and encode: the run's).")]
TimeFormatOption = Annotated[str | None, typer.Option("--time-format", help="strftime format of the time column, e.g. '%d.%m.%Y %H:%M' (default: ISO 8601, or dates whose day/month order is inferred from the whole column).")]
DayfirstOption = Annotated[bool, typer.Option("--dayfirst", help="Read dates like 01.02.2026 day first.")]
TimeUnitOption = Annotated[str | None, typer.Option("--time-unit", help="Read a numeric time column as s or ms since 1970.")]
TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone of times without an offset, like Europe/Berlin: they become UTC, the repeated autumn hour in file order (default: the run's; else times are taken as they are)."),
]
EncodingOption = Annotated[str | None, typer.Option("--encoding", help="Text encoding of the file, like cp1252 or latin-1 (default: UTF-8; score: also the run's).")]
MaxGapOption = Annotated[
    str | None,
    typer.Option("--max-gap", help="A time step above this is a gap that no window crosses: a duration like 10min, a number in a numeric time column's unit, a multiple of the median step like 5x, or none (default: 5x)."),
]
ResampleOption = Annotated[str | None, typer.Option("--resample", help="Put the rows on a regular grid of this step (like 1min) before windowing; empty cells follow --fill.")]
AggOption = Annotated[str, typer.Option("--agg", help="How --resample combines the rows of a grid cell: mean, last or max.")]
GroupOption = Annotated[str | None, typer.Option("--group", help="Column naming the series of a long table (an asset id): one series per value, no window crosses two.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn every failure into one ``error:`` line and an exit code."""
    try:
        yield
    except RareEventError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _fail(_in_cli_terms(exc), EXIT_DATA)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", EXIT_INTERRUPTED)
    except (typer.Exit, typer.TyperException):
        raise
    except Exception as exc:  # anything else is a bug: one line, traceback with --debug
        if _state["debug"]:
            traceback.print_exc()
        text = " ".join(str(exc).split())[:200]
        _fail(f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)", EXIT_UNEXPECTED)


# a parameter the library marks inside a message, hint or note: `max_gap`, or `fill=drop` with the value to pass
_MARKED_PARAM = re.compile(r"`([a-z][a-z_]*)(?:=([^`]*))?`")


def _option(param: str) -> str:
    """The option that sets a library parameter (``max_gap`` -> ``--max-gap``)."""
    return "--" + OPTION_OF_PARAM.get(param, param).replace("_", "-")


def _cli_options() -> set[str]:
    """Every option of every command (``--max-gap``)."""
    group = typer.main.get_command(app)
    return {name for command in group.commands.values() for param in command.params for name in param.opts}


def _cli_terms(text: str) -> str:
    """Library text with every marked parameter as its option: `` `max_gap` `` -> ``--max-gap``, `` `fill=drop` `` -> ``--fill drop``.

    A marked name that is no option (a column named in backticks, say) stays as it is.
    """
    options = _cli_options()

    def as_option(found: re.Match[str]) -> str:
        option = _option(found[1])
        if option not in options:
            return found[0]
        return option if found[2] is None else f"{option} {found[2]}"

    return _MARKED_PARAM.sub(as_option, text)


def _in_cli_terms(exc: RareEventError) -> str:
    """The error's one line in CLI terms: the parameter it begins with (``margin must be ...``) and every marked one as options."""
    text = _cli_terms(str(exc))
    if exc.param and text.startswith(f"{exc.param} "):
        return _option(exc.param) + text[len(exc.param) :]
    return text


def _warn(message: str) -> None:
    if not _state["quiet"]:
        typer.echo(f"warning: {message}", err=True)


def _note(message: str) -> None:
    if not _state["quiet"]:
        typer.echo(f"note: {message}", err=True)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None, line: str | None = None) -> None:
    """Python warnings (pandas, Keras) as ``warning:`` lines like rareevent's own."""
    _warn(" ".join(str(message).split()))


def _plain() -> bool:
    """Plain text (no colour, no style, no progress bar): ``NO_COLOR`` is set or stdout is not a terminal."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def _set_output(quiet: bool = False) -> None:
    """Set up ``out`` (stdout) for this command: rich on a terminal, plain text otherwise; silent with ``--quiet``.

    Off a terminal (a pipe, a log) nothing limits the line length, so tables print at their full width instead of cropping cells at 80 columns.
    """
    global out
    out = Console(highlight=False, markup=False, color_system=None if _plain() else "auto", quiet=quiet, width=None if sys.stdout.isatty() else UNLIMITED_WIDTH)
    _state["quiet"] = quiet


def _bars(console: Console) -> bool:
    """Whether a progress bar may be drawn on ``console``: a terminal, and no ``NO_COLOR``."""
    return console.is_terminal and not os.environ.get("NO_COLOR")


def _print_version(value: bool) -> None:
    if value:
        from rareevent.model import planned_versions

        with _errors():
            typer.echo(planned_versions())
        raise typer.Exit()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _parse_units(text: str, auto: bool = True) -> tuple[int, int] | str:
    """``--units u1,u2``, or ``auto`` (sized from the training rows) where ``auto`` is allowed."""
    if auto and text.strip() == "auto":
        return "auto"
    try:
        u1, u2 = (int(part) for part in text.split(","))
    except ValueError:
        raise RareEventError(f"--units {text!r}: give two positive integers like 32,16" + (" or auto" if auto else "")) from None
    return u1, u2


def _parse_drop(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def _reading_options(decimal: str | None, time_format: str | None, dayfirst: bool, time_unit: str | None, tz: str | None = None, encoding: str | None = None):  # noqa: ANN202 - a ReadingOptions (pandas is imported lazily)
    from rareevent.load import ReadingOptions

    options = ReadingOptions(decimal=decimal, time_format=time_format, dayfirst=dayfirst, time_unit=time_unit, tz=tz, encoding=encoding)
    options.check()
    return options


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the versions of rareevent, Keras and its backend, the device models run on, and exit.", is_eager=True, callback=_print_version)] = False,
) -> None:
    _state["debug"] = debug
    _set_output()
    warnings.showwarning = _show_warning


def _score_cell(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda metrics: _fmt(metrics.get(key))


# rows shared by the metrics of one run and the table of saved runs (same keys in both)
_SCORE_ROWS = [(label, _score_cell(key)) for label, key in (("precision", "precision"), ("recall", "recall"), ("F1", "f1"), ("PR-AUC", "pr_auc"), ("ROC-AUC", "roc_auc"))]


def _events(metrics: dict[str, Any]) -> str:
    if metrics.get("events") is None:
        return "-"
    unseen = metrics.get("events_unseen") or 0  # in a gap or a segment too short for a window: not missed
    return f"{metrics['events_detected']} of {metrics['events'] - unseen}" + (f" ({unseen} unseen)" if unseen else "")


def _metrics_table(parts: dict[str, dict[str, Any]], title: str = "metrics") -> Table:
    """One column per scored part (valid, test, a scored file): point-wise and event metrics."""
    table = Table(title=title)
    table.add_column("metric", style="bold")
    for name in parts:
        table.add_column(name, justify="right")
    rows = [
        *_SCORE_ROWS,
        ("TP / FP / FN / TN", lambda m: f"{m['tp']} / {m['fp']} / {m['fn']} / {m['tn']}"),
        ("events caught", _events),
        ("mean lead (rows)", lambda m: _fmt(m["mean_lead_rows"], 1)),
        ("false alarm episodes", lambda m: str(m["false_alarms"])),
        ("false alarm rate", _rate),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(m) for m in parts.values()))
    return table


def _rate(metrics: dict[str, Any]) -> str:
    """False alarm episodes per day (datetime axis) or per 1,000 windows."""
    if metrics.get("false_alarms_per_day") is not None:
        return f"{_fmt(metrics['false_alarms_per_day'], 2)}/day"
    if metrics.get("false_alarms_per_1000_windows") is not None:
        return f"{_fmt(metrics['false_alarms_per_1000_windows'], 2)}/1k windows"
    return "-"


def _lead_line(metrics: dict[str, Any]) -> str | None:
    if not metrics.get("lead_rows"):
        return None
    rows = metrics["lead_rows"]
    text = f"lead of each detection in rows before onset (negative: after): {', '.join(map(str, rows))}"
    if metrics.get("lead_seconds"):
        text += f"; in minutes: {', '.join(f'{s / 60:.1f}' for s in metrics['lead_seconds'])}"
    elif metrics.get("lead_time"):
        text += f"; in time-column units: {', '.join(f'{t:g}' for t in metrics['lead_time'])}"
    return text


# train parameters that say where and how to write, not what to train: kept out of the stored settings and the recipe
_NOT_SETTINGS = ("config", "runs_dir", "name", "overwrite", "as_json", "quiet")


def _read_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """``--config``: the recipe's values become the defaults of the other options (read first: it is eager)."""
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **recipe.read_defaults(value, ctx, leave_out=_NOT_SETTINGS)}
    return value


@app.command()
def train(
    ctx: typer.Context,
    data: Annotated[list[Path], typer.Argument(help="Sensor CSV (',', ';' or tab separated) or Parquet file(s), or a quoted glob like 'exports/*.csv'; may come from the recipe.")],
    config: Annotated[Path | None, typer.Option("--config", help="TOML recipe: options from its \\[train] table; the command line overrides them.", is_eager=True, callback=_read_config)] = None,
    arch: Annotated[Arch, typer.Option(help=f"{ARCH_HELP}, {AUTO_HELP}.")] = Arch.ae,
    lookback: Annotated[int, typer.Option(help="Rows per window (T).")] = 5,
    horizon: Annotated[int, typer.Option(help="--arch forecast: predict the window's last H rows from the lookback - H rows before them.")] = 1,
    lead: Annotated[int, typer.Option(help="Early warning: a window is positive when an event starts within this many rows after it.")] = 0,
    units: Annotated[str, typer.Option(help="LSTM units u1,u2 (1 to 4096 each), or auto: the bottleneck as wide as the principal components holding 99% of the targets' variance, the first layer twice that.")] = "32,16",
    activation: Annotated[Activation, typer.Option(help="LSTM activation.")] = Activation.tanh,
    score: Annotated[ScoreKind, typer.Option("--score", help="Window score: mean (squared error over the window) or last (last step only).")] = ScoreKind.mean,
    smooth: Annotated[int, typer.Option(help="Alarm on the mean score of the last K windows (1: no smoothing).")] = 1,
    threshold: Annotated[str | None, typer.Option(help="f1, fbeta:B, pr-cross, precision:P or quantile[:Q]; default f1 with labels, quantile without.")] = None,
    margin: Annotated[float, typer.Option(help="Multiply the chosen threshold by this (above 1: fewer false alarms on data that drifts after validation).")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Most training epochs (early stopping usually ends sooner).")] = 40,
    batch_size: Annotated[int | None, typer.Option(help="Windows per training batch (default: about 100 steps per epoch, 16..128 on a CPU, 16..2048 on a GPU).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Adam learning rate (default: 1e-3 x sqrt(batch/16)).")] = None,
    patience: Annotated[int, typer.Option(help="Epochs without validation improvement before stopping.")] = 5,
    valid_frac: Annotated[float, typer.Option(help="Fraction of rows (after train) for validation and the threshold.")] = 0.2,
    test_frac: Annotated[float, typer.Option(help="Fraction of rows at the end held out for testing (0 allowed).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed (same data and seed give the same threshold on CPU).")] = 0,
    time: Annotated[str | None, typer.Option("--time", help="Time column (default: time/timestamp/datetime/date if present).")] = None,
    label: Annotated[str | None, typer.Option(help="0/1 event column (default: y/label/anomaly if present).")] = None,
    drop: Annotated[str | None, typer.Option(help="Comma-separated columns to ignore.")] = None,
    context: Annotated[
        str, typer.Option(help="Context columns (read by the model, never scored): auto (0/1 flags and modes), none, or names/glob patterns like 'cmd*,setpoint'.")
    ] = "auto",
    normalize: Annotated[bool, typer.Option(help="Divide each sensor's error by its typical (median) error on normal validation windows.")] = False,
    mask_rate: Annotated[float, typer.Option(help="ae and plain: hide each target sensor of a training window with this probability (0: never); the model rebuilds it from the others, and each sensor is scored hidden.")] = 0.0,
    fill: FillOption = None,
    decimal: DecimalOption = None,
    time_format: TimeFormatOption = None,
    dayfirst: DayfirstOption = False,
    time_unit: TimeUnitOption = None,
    tz: TzOption = None,
    encoding: EncodingOption = None,
    max_gap: MaxGapOption = None,
    resample: ResampleOption = None,
    agg: AggOption = "mean",
    group: GroupOption = None,
    per_group: Annotated[bool, typer.Option("--per-group", help="With --group: train one run per group value, saved as runs/NAME/<group>/ with a summary.")] = False,
    runs_dir: RunsDir = Path("runs"),
    name: Annotated[str | None, typer.Option(help="Run name (default: time stamp and arch).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary (metrics, threshold, paths) as JSON on stdout; progress goes to stderr.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Train a detector on the normal windows of DATA and save it as a run."""
    _set_output(quiet)
    with _errors(), ExitStack() as stack:
        from rareevent.detector import RareEventDetector
        from rareevent.gaps import Resampling
        from rareevent.runs import reserve_run
        from rareevent.training import default_run_name
        from rareevent.training import train as run_training

        options = {**ctx.params, "units": _parse_units(units)}
        if arch == AUTO:  # the default architecture trains when there are no labels to choose by
            options["arch"] = RareEventDetector().arch
        params = [key for key in RareEventDetector().get_params() if key not in NOT_PASSED]
        detector = RareEventDetector(**{key: options[OPTION_OF_PARAM.get(key, key)] for key in params})
        reading = _reading_options(decimal, time_format, dayfirst, time_unit, tz, encoding)
        if resample is None and agg != "mean":
            raise RareEventError(f"--agg {agg} needs --resample: it says how the rows of a grid cell are combined")
        name = name or default_run_name(arch)
        if per_group and group is None:
            raise RareEventError("--per-group needs --group COLUMN: the column whose values each get a run")
        if arch == AUTO and not (_one_csv(data) and group is None):
            raise RareEventError("--arch auto trains one CSV file; for several series, --group or --per-group name an architecture")
        stack.enter_context(reserve_run(runs_dir, name, overwrite))  # before minutes of training, not after
        options = dict(
            time=time,
            label=label,
            drop=_parse_drop(drop),
            fill=fill,
            context=context,
            reading=reading,
            valid_frac=valid_frac,
            test_frac=test_frac,
            max_gap=max_gap,
            resample=None if resample is None else Resampling(resample, agg),
        )
        if per_group:
            from rareevent.fleet import train_per_group

            announce = None if quiet or as_json else lambda value: out.print(f"training group {value}")
            folder, summary = train_per_group(data, detector, group=group, runs_dir=runs_dir, name=name, overwrite=overwrite, on_group=announce, **options)
            _print_per_group(folder, summary, as_json, quiet)
            return
        bar_console = Console(stderr=True) if as_json else out
        with _interrupt_at_batch_end(), _epoch_progress(f"training {arch}", epochs, bar_console, disable=quiet or not _bars(bar_console)) as on_epoch:
            if _one_csv(data) and group is None:
                result = run_training(data[0], detector, name=name, on_epoch=on_epoch, candidates=CANDIDATES if arch == AUTO else (), **options)
            else:
                from rareevent.fleet import train_fleet

                result = train_fleet(data, detector, group=group, name=name, on_epoch=on_epoch, **options)
        result.record["settings"] = recipe.settings(ctx, leave_out=_NOT_SETTINGS)
        _save_and_summarize(result, fill, runs_dir, overwrite, as_json=as_json, quiet=quiet)


def _one_csv(data: list[Path]) -> bool:
    """Whether DATA is one CSV file named as it is (no pattern, no Parquet): trained as always."""
    from rareevent.series import expand, is_table

    return len(data) == 1 and expand(data) == data and not is_table(data[0])


def _print_per_group(folder: Path, summary: dict[str, Any], as_json: bool, quiet: bool) -> None:
    """The summary of a ``--per-group`` training: one line per group."""
    if as_json:
        typer.echo(json.dumps({**summary, "path": str(folder)}, indent=2, allow_nan=False))
        return
    if quiet:
        typer.echo(str(folder))
        return
    table = Table(title=f"per-group run {summary['name']}: {len(summary['runs'])} group(s) in {folder}")
    for column in (summary["group_column"], "rows", "threshold", "test F1", "test PR-AUC", "events caught"):
        table.add_column(column, justify="left" if column == summary["group_column"] else "right")
    for value, run in summary["runs"].items():
        part = run["metrics"].get("test") or run["metrics"].get("valid")
        table.add_row(value, f"{run['rows']:,}", f"{run['threshold']:.4g}", *((_fmt(part["f1"]), _fmt(part["pr_auc"]), _events(part)) if part else ("-", "-", "-")))
    out.print(table)


def _train_summary(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """What ``train --json`` prints: where the run went, its threshold and metrics (run.json and detector.json hold the rest)."""
    from rareevent.detector import DETECTOR_FILE, PCA_FILE, WEIGHTS_FILE
    from rareevent.model import ARCHITECTURES
    from rareevent.runs import RUN_FILE, SCORES_FILE

    keys = ("name", "arch", "threshold", "threshold_strategy", "margin", "score_kind", "smooth", "metrics", "baseline", "windows", "epochs_run", "best_epoch", "train_seconds")
    return {
        **{key: record[key] for key in keys},
        "candidates": record.get("candidates"),
        "path": str(path),
        "files": {
            "run": str(path / RUN_FILE),
            "detector": str(path / DETECTOR_FILE),
            "model": str(path / (WEIGHTS_FILE if ARCHITECTURES[record["arch"]].build else PCA_FILE)),
            "scores": str(path / SCORES_FILE),
        },
        "warnings": {"constant_features": record["constant_features"], "trending_features": record["trending_features"]},
        "context_features": record["context_features"],
        "assumed": record.get("assumed") or [],
        "filled_cells": record["filled_cells"],
        "settings": record.get("settings"),  # update has none: its options are the parent run's
    }


@contextmanager
def _epoch_progress(what: str, epochs: int, console: Console | None = None, disable: bool | None = None) -> Iterator[EpochCallback]:
    """A progress bar over the epochs on ``console`` (default: stdout); yields the per-epoch callback that draws it.

    ``disable`` defaults to "not a terminal, or ``NO_COLOR`` set": logs and pipes get no bar.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or out
    progress = Progress(
        TextColumn("[bold]{task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val_loss {task.fields[val_loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not _bars(console) if disable is None else disable,
    )
    task = progress.add_task("train", total=epochs, what=escape(what), loss="-", val_loss="-")

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        if not progress.live.is_started:  # shown from the first epoch on: a data error prints no empty bar
            progress.start()
        progress.update(task, completed=epoch + 1, loss=f"{logs.get('loss', 0):.4f}", val_loss=f"{logs.get('val_loss', 0):.4f}")

    try:
        yield on_epoch
    finally:
        if progress.live.is_started:
            progress.stop()


# How long a Ctrl-C waits for the end of a training batch before it is raised where it landed.
INTERRUPT_GRACE_S = 2.0


@contextmanager
def _interrupt_at_batch_end() -> Iterator[None]:
    """Ctrl-C or SIGTERM while a model trains stops it at the end of the current batch (exit 130 as before).

    A KeyboardInterrupt raised wherever the signal lands can strike inside
    TensorFlow or rich while they hold a lock, and then the process hangs
    instead of stopping: once in CI, train ignored a Ctrl-C for 30 s. So the
    first signal is only noted, and training raises at the next batch
    boundary (``stop_between_batches``). Outside a batch loop (reading the
    file, the threshold, the PCA baseline) nobody asks: after
    ``INTERRUPT_GRACE_S`` the interrupt is raised where it lands, as before,
    and a block that ends first raises it on leaving, so that nothing after
    it (saving the run) runs. A second signal is raised at once. Where the
    real-time timer is taken (by a program that embeds the app) or outside
    the main thread, signals are left as they are.
    """
    import threading

    from rareevent.detector import stop_between_batches

    if threading.current_thread() is not threading.main_thread() or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        yield
        return
    requested: list[int] = []
    raised: list[bool] = []

    def on_signal(signum: int, frame: object) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
        signal.setitimer(signal.ITIMER_REAL, INTERRUPT_GRACE_S)

    def raise_once() -> bool:
        """Whether the noted request is raised now; never twice (an alarm already due must not strike the clean-up)."""
        if not requested or raised:
            return False
        signal.setitimer(signal.ITIMER_REAL, 0)
        raised.append(True)
        return True

    def on_alarm(signum: int, frame: object) -> None:
        if raise_once():
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum, handler in ((signal.SIGINT, on_signal), (signal.SIGTERM, on_signal), (signal.SIGALRM, on_alarm))}
    try:
        with stop_between_batches(raise_once):
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # the timer was free on entry: only this block armed it
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if requested:
        raise KeyboardInterrupt  # the block ended before a batch end or the alarm took the signal


def _save_and_summarize(result: TrainResult, fill: str | None, runs_dir: Path, overwrite: bool, as_json: bool = False, quiet: bool = False) -> None:
    """Warn about what training noticed, save the run folder and print its summary (train and update).

    The summary is rich tables, the JSON of ``--json``, or with ``--quiet`` the run folder's path alone.
    """
    from rareevent.runs import run_view
    from rareevent.training import save

    record = run_view(result.record, result.detector)
    if record["constant_features"]:
        _warn(f"constant column(s) in the normal training rows: {', '.join(record['constant_features'])}; kept neutral (scaled to 0)")
    if record["trending_features"]:
        _warn(
            f"sensor(s) {', '.join(record['trending_features'])} trend steadily over the training rows; they may leave their "
            "training range later and raise false alarms (consider a longer training period, --margin, or --drop)"
        )
    if record["filled_cells"]:
        _note(f"repaired {record['filled_cells']} blank/NaN cell(s) with --fill {fill}")
    resampled = record.get("resample")
    if resampled and resampled["empty_cells"]:
        _note(f"--resample {resampled['every']}: {resampled['empty_cells']} empty grid cell(s) handled with --fill {fill}")
    gap_info = record.get("gaps")
    if gap_info and gap_info["skipped_segments"]:
        _note(f"skipped {gap_info['skipped_segments']} segment(s) shorter than the lookback ({gap_info['skipped_rows']} rows between time gaps give no window)")
    beaten = _baseline_wins(record)
    if beaten:
        _warn(beaten)
    order_note = result.data.reading.order_note(record["time_column"])
    if order_note:
        _note(_cli_terms(order_note))
    for assumed in record.get("assumed") or []:
        (_note if assumed["as"] == "time" else _warn)(_cli_terms(assumed["message"]))
    path = save(result, runs_dir, overwrite=overwrite)
    if as_json:
        typer.echo(json.dumps(_train_summary(record, path), indent=2, allow_nan=False))
    elif quiet:
        typer.echo(str(path))
    else:
        _print_train_summary(record, path, result.data.reading.describe())


def _baseline_wins(record: dict[str, Any]) -> str | None:
    """A warning when the PCA baseline's alarms beat the trained model's on validation (F1 and false-alarm episodes, each at its own threshold)."""
    from rareevent.selection import baseline_advice

    return baseline_advice(record)


def _candidates_table(name: str, candidates: dict[str, dict[str, Any] | None], chosen: str) -> Table:
    """``--arch auto``: every candidate's validation alarms at its own threshold, the kept one marked."""
    table = Table(title=f"run {name}: --arch auto, validation at each candidate's own threshold (* kept)")
    for column in ("arch", "F1", "PR-AUC", "events caught", "false alarms"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for arch, m in candidates.items():
        cells = (_fmt(m["f1"]), _fmt(m["pr_auc"]), _events(m), str(m["false_alarms"])) if m else ("-",) * 4
        table.add_row(arch + ("*" if arch == chosen else ""), *cells)
    return table


def _print_train_summary(record: dict[str, Any], path: Path, reading: str | None) -> None:
    table = Table(title=f"run {record['name']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if record.get("parent"):
        table.add_row("updated from", f"{record['parent']['name']} ({record['parent']['folder']})")
    n = record["windows"]
    table.add_row("windows", f"train {n['train_normal']} normal, valid {n.get('valid', 0)}, test {n.get('test', 0)}")
    if ARCHITECTURES[record["arch"]].build is None:  # pca: fitted in closed form with numpy; no epochs, batches, units or backend
        table.add_row("fitted", f"in closed form (numpy), {record['train_seconds']:.1f} s")
        model = f"{record['arch']}, lookback {record['lookback']}, {record['parameters']:,} parameters (components and mean)"
    else:
        table.add_row("epochs", f"{record['epochs_run']} run, best {record['best_epoch']} ({record['train_seconds']:.1f} s)")
        table.add_row("ran on", f"{record['versions']['backend']}, {record['versions'].get('device', 'cpu')}, batch {record['batch_size'] or '-'}")
        model = f"{record['arch']}, lookback {record['lookback']}, units {record['units']}, {record['parameters']:,} parameters"
    margin = f" x {record['margin']:g}" if record["margin"] != 1 else ""
    table.add_row("threshold", f"{record['threshold']:.6g} ({record['threshold_strategy']}{margin}, score {record['score_kind']}, smooth {record['smooth']})")
    table.add_row("model", model)
    if record["context_features"]:
        table.add_row("context", f"{', '.join(record['context_features'])} (read, not scored; --context none scores them)")
    if reading:
        table.add_row("read as", reading)
    if record.get("resample"):
        table.add_row("resampled", f"every {record['resample']['every']} ({record['resample']['agg']}): {record['resample']['rows']:,} rows")
    if record.get("gaps"):
        table.add_row("segments", _gap_text(record["gaps"]))
    table.add_row("saved to", str(path))
    out.print(table)
    parts = {part: m for part, m in record["metrics"].items() if m}
    baseline = (record.get("baseline") or {}).get("metrics") or {}
    parts |= {f"{part} (pca baseline)": m for part, m in baseline.items() if m}
    if parts:
        out.print(_metrics_table(parts))
    if record.get("candidates"):
        out.print(_candidates_table(record["name"], record["candidates"], record["arch"]))
    for part, metrics in record["metrics"].items():
        lead = _lead_line(metrics) if metrics else None
        if lead:
            out.print(f"{part}: {lead}")
    if record["metrics"].get("test") is None:
        out.print(f"no test metrics: {_why_no_test(record)}")
    if len(record.get("series") or []) > 1:
        out.print(_series_table(record))


def _why_no_test(record: dict[str, Any]) -> str:
    """The real reason a run has no test metrics."""
    if record.get("parent"):
        return "update keeps no test part (its newest rows validate the threshold); score a later file with labels to measure it"
    if record["label_column"] is None:
        return "no label column (name one with --label COL)"
    if not record["test_frac"]:
        return "--test-frac 0"
    return "the test part holds no labelled window"


def _series_table(record: dict[str, Any]) -> Table:
    """One row per series of a fleet run: its rows and its own test (else validation) metrics."""
    table = Table(title=f"run {record['name']}: per series, test metrics (* validation: no test part)")
    table.add_column(record.get("group_column") or "file", overflow="fold", min_width=12)
    for column in ("rows", "precision", "recall", "F1", "PR-AUC", "events", "false alarms"):
        table.add_column(column, justify="right")
    for series in record["series"]:
        part = "test" if series["metrics"].get("test") else "valid"
        m = series["metrics"].get(part)
        cells = (_fmt(m["precision"]), _fmt(m["recall"]), _fmt(m["f1"]), _fmt(m["pr_auc"]), _events(m), str(m["false_alarms"])) if m else ("-",) * 6
        table.add_row(series["name"] + ("*" if m and part == "valid" else ""), f"{series['rows']:,}", *cells)
    return table


def _gap_text(gap_info: dict[str, Any]) -> str:
    """``2 segments, 1 gap (longest 6:00:00; --max-gap 5x = 0:10:00)`` for the train summary."""
    from rareevent.gaps import describe_gap

    text = f"{gap_info['segments']} segment(s), {gap_info['gaps']} gap(s)"
    if gap_info["longest_gap"] is not None:
        text += f" (longest {describe_gap(gap_info['longest_gap'], gap_info['unit'])})"
    return text + f"; --max-gap {gap_info['max_gap']} = {describe_gap(gap_info['max_gap_value'], gap_info['unit'])}"


@app.command()
def update(
    run: Annotated[str, typer.Argument(help="Run folder or run name to start from (it is only read).")],
    data: Annotated[Path, typer.Argument(help="Newer sensor CSV with the run's feature columns (labels optional).")],
    epochs: Annotated[int, typer.Option(help="Most epochs of continued training (early stopping usually ends sooner).")] = 10,
    valid_frac: Annotated[float, typer.Option(help="Fraction of the newer rows, at their end, for validation and the threshold.")] = 0.2,
    threshold: Annotated[str | None, typer.Option(help="Threshold strategy (as in train); default: the run's.")] = None,
    margin: Annotated[float | None, typer.Option(help="Multiply the chosen threshold by this; default: the run's margin.")] = None,
    fill: FillOption = None,
    runs_dir: RunsDir = Path("runs"),
    name: Annotated[str | None, typer.Option(help="Name of the new run (default: time stamp and arch).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run of the same name (never the run being updated).")] = False,
    tz: TzOption = None,
    encoding: EncodingOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new run's summary (metrics, threshold, paths) as JSON on stdout, as train --json does.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Refit a run's scaler and threshold on newer data, continue training its model, and save a new run."""
    _set_output(quiet)
    with _errors(), ExitStack() as stack:
        from rareevent.runs import read_run, reserve_run, resolve_run
        from rareevent.training import check_update_slot, default_run_name
        from rareevent.training import update as run_update

        folder = resolve_run(run, runs_dir)
        name = name or default_run_name(read_run(folder)["arch"])
        check_update_slot(folder, runs_dir, name, overwrite)  # before training, not after
        stack.enter_context(reserve_run(runs_dir, name, overwrite))
        reading = _reading_options(None, None, False, None, tz, encoding)
        bar_console = Console(stderr=True) if as_json else out
        with _interrupt_at_batch_end(), _epoch_progress(f"updating {folder.name}", epochs, bar_console, disable=quiet or not _bars(bar_console)) as on_epoch:
            result = run_update(folder, data, epochs=epochs, valid_frac=valid_frac, threshold=threshold, margin=margin, fill=fill, name=name, on_epoch=on_epoch, reading=reading)
        _save_and_summarize(result, fill, runs_dir, overwrite, as_json=as_json, quiet=quiet)


@app.command()
def architecture(
    arch: Annotated[LstmArch, typer.Option(help="LSTM autoencoder, plain LSTM stack or forecasting LSTM.")] = LstmArch.ae,
    lookback: Annotated[int, typer.Option(help="Rows per window (T).")] = 5,
    horizon: Annotated[int, typer.Option(help="--arch forecast: rows predicted at the window's end.")] = 1,
    features: Annotated[int, typer.Option(help="Number of sensors (F).")] = 8,
    units: Annotated[str, typer.Option(help="LSTM units u1,u2 (1 to 4096 each).")] = "32,16",
    activation: Annotated[Activation, typer.Option(help="LSTM activation.")] = Activation.tanh,
    context: Annotated[int, typer.Option(help="How many of the features are context (read, not reconstructed).")] = 0,
) -> None:
    """Print the layer table of a model: name, type, output shape, parameters."""
    with _errors():
        from rareevent.model import build_model, check_model_options, layer_table

        u = _parse_units(units, auto=False)
        check_model_options(arch, activation, u, lookback, horizon)
        if features < 1:
            raise RareEventError(f"--features must be at least 1, got {features}")
        if not 0 <= context < features:
            raise RareEventError(f"--context must be in 0..{features - 1} (at least one feature is reconstructed), got {context}")
        model = build_model(arch, lookback, features, u, activation, n_outputs=features - context, horizon=horizon)
        title = f"{arch}: lookback {lookback}, {features} features" + (f" ({context} context)" if context else "")
        table = Table(title=f"{title}, units {u[0]},{u[1]}")
        for column, justify in (("layer", "left"), ("type", "left"), ("output shape", "left"), ("parameters", "right")):
            table.add_column(column, justify=justify)
        table.add_row("window", "Input", str((lookback, features)), "0")
        for layer_name, kind, shape, params in layer_table(model):
            table.add_row(layer_name, kind, shape, f"{params:,}")
        table.add_section()
        table.add_row("total", "", "", f"{model.count_params():,}")
        out.print(table)


def _output_kind(output: Path, allowed: tuple[str, ...]) -> str:
    kind = output.suffix.lower().lstrip(".")
    if kind not in allowed:
        raise RareEventError(f"{output}: output must end in {' or '.join('.' + a for a in allowed)}")
    return kind


def _check_outputs(data: Path, outputs: dict[str, Path | None]) -> None:
    """Refuse an output that is the input file (by its path, a symbolic or a hard link), lies inside a run folder, or two outputs naming one file (one would replace the other)."""
    from rareevent.storage import check_not_in_run

    seen: dict[Path, str] = {}
    for option, target in outputs.items():
        if target is None:
            continue
        resolved = Path(target).resolve()
        if resolved == Path(data).resolve() or (os.path.exists(target) and os.path.exists(data) and os.path.samefile(target, data)):
            raise RareEventError(f"{target}: is the input file; choose another output name")
        check_not_in_run(target)
        if resolved in seen:
            raise RareEventError(f"{target}: {seen[resolved]} and {option} name the same file; choose two names")
        seen[resolved] = option


def _rows_progress(path: Path):  # noqa: ANN202 - a rich Progress
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(f"[bold]scoring {escape(path.name)}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (_bars(console) and _bars(out)),  # plain output (a pipe, NO_COLOR) has no bar anywhere
    )


def _estimate_rows(path: Path) -> int | None:
    """Rows of a file for the progress bar, from the line length of its first MiB (no extra pass).

    ``None`` (a bar without a total) when the file cannot be read: the loader then reports why.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    return max(int(path.stat().st_size * head.count(b"\n") / max(len(head), 1)) - 1, 1)


@app.command()
def score(
    data: Annotated[list[Path], typer.Argument(help="New sensor CSV(s) or Parquet file(s) with the trained feature columns (labels optional), or a quoted glob; - reads standard input.")],
    run: RunOption = None,
    runs_dir: RunsDir = Path("runs"),
    output: Annotated[Path | None, typer.Option(help="Write one row per window to this .csv or .json file (--follow: .csv or .jsonl, written as it goes).")] = None,
    metrics_out: Annotated[Path | None, typer.Option(help="Write the metrics (needs the label column) to this .json file.")] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read per chunk; memory stays bounded by it.")] = 100_000,
    fill: FillOption = None,
    show: Annotated[int, typer.Option(min=0, help="Alarm episodes to list (largest peak first).")] = 20,
    time: Annotated[str | None, typer.Option("--time", help="Time column of DATA (default: the run's).")] = None,
    label: Annotated[str | None, typer.Option(help="0/1 event column of DATA, for metrics (default: the run's label column).")] = None,
    decimal: DecimalOption = None,
    time_format: TimeFormatOption = None,
    dayfirst: DayfirstOption = False,
    time_unit: TimeUnitOption = None,
    tz: TzOption = None,
    encoding: EncodingOption = None,
    group: GroupOption = None,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Worker processes for many series (default: the cores).")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="local (processes on this machine) or spark (one task per group; writes a Parquet folder).")] = Engine.local,
    master: Annotated[str, typer.Option("--master", help="Spark master with --engine spark: local[*], local[2], spark://HOST:7077, yarn.")] = "local[*]",
    follow: Annotated[bool, typer.Option("--follow", help="Tail DATA as another program appends to it: score each line as soon as its window is complete, until Ctrl-C.")] = False,
    output_format: Annotated[FollowFormat | None, typer.Option("--format", help="--follow output: csv or jsonl (JSON Lines, with alarm events) (default: from --output's extension, else csv).")] = None,
    poll: Annotated[str, typer.Option(help="--follow: how often to look for new lines, like 0.2s or 500ms.")] = "0.2s",
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report (score timeline, every alarm episode with its sensors' raw traces) to this .html file (needs rareevent\\[plot]).")] = None,
    episodes: Annotated[Path | None, typer.Option("--episodes", help="Write one row per alarm episode (series, start, end, duration, peak score and ÷ threshold, top sensors) to this .csv file.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Score DATA with a saved run: flag windows at or above the threshold and explain each alarm.

    Several files, a glob or --group score every series alone (never a window across two), in a stable order.
    """
    _set_output(quiet)
    with _errors():
        from rareevent.runs import resolve_run

        if engine == Engine.spark or group is not None or not _one_csv(data) or _per_group_run(run, runs_dir):
            _score_fleet(data, resolve_run(run, runs_dir), group=group, jobs=jobs, engine=engine, master=master, output=output, metrics_out=metrics_out, chunk_rows=chunk_rows, fill=fill, time=time, label=label, reading=_reading_options(decimal, time_format, dayfirst, time_unit, tz, encoding), quiet=quiet, html=html, episodes=episodes)
            return
        data = data[0]
        from rareevent.runs import load_run, resolve_run
        from rareevent.scoring import WindowWriter, file_has_labels, score_csv
        from rareevent.storage import atomic_file

        piped = str(data) == "-"
        if html is not None and (follow or piped):
            raise RareEventError("--html reads the scored file a second time for the sensor traces: give a file, without --follow")
        if follow and episodes is not None:
            raise RareEventError("--episodes is written when the data ends; --follow announces episodes as they close instead")
        if follow:
            if piped:
                raise RareEventError("--follow needs a file to tail, not stdin (-): pipe into `rareevent score -` without --follow, or name the file")
            if metrics_out is not None:
                raise RareEventError("--follow tails a file, and has no end to measure metrics at: leave out --metrics-out")
            kind = output_format.value if output_format else _output_kind(output, ("csv", "jsonl")) if output else "csv"
            seconds = _seconds(poll, "--poll")
            reading = _reading_options(decimal, time_format, dayfirst, time_unit, tz, encoding)
            _check_outputs(data, {"--output": output})
            record, detector = load_run(resolve_run(run, runs_dir))
            _follow(data, record, detector, output, kind, seconds, fill, reading, time, label)
        if output_format is not None:
            raise RareEventError("--format is for --follow; without it the output's kind follows --output's extension (.csv or .json)")
        kind = _output_kind(output, ("csv", "json")) if output else None
        reading = _reading_options(decimal, time_format, dayfirst, time_unit, tz, encoding)
        if metrics_out is not None:
            _output_kind(metrics_out, ("json",))
        if episodes is not None:
            _output_kind(episodes, ("csv",))
        if html is not None:
            from rareevent.html_report import check_output

            check_output(html)
        _check_outputs(data, {"--output": output, "--metrics-out": metrics_out, "--episodes": episodes, "--html": html})
        folder = resolve_run(run, runs_dir)
        record, detector = load_run(folder)
        label_column = label or record["label_column"]
        if metrics_out is not None and label_column is None:
            raise RareEventError(f"--metrics-out needs labels, and run {record['name']!r} was trained without a label column", hint="name the file's label column with --label")
        if metrics_out is not None and not piped and not file_has_labels(data, label_column):
            raise RareEventError(f"{data}: --metrics-out needs the label column {label_column!r}, which the file does not have")
        total = _estimate_rows(Path(data)) if not piped and Path(data).is_file() and Path(data).stat().st_size > 4 * chunk_rows else None
        progress = _rows_progress(Path(data))
        task = progress.add_task("score", total=total)
        with ExitStack() as stack:  # the outputs are renamed into place only when all are complete
            temp = stack.enter_context(atomic_file(output)) if output else None
            metrics_temp = stack.enter_context(atomic_file(metrics_out)) if metrics_out else None
            episodes_temp = stack.enter_context(atomic_file(episodes)) if episodes else None
            html_temp = stack.enter_context(atomic_file(html)) if html else None
            writer = stack.enter_context(WindowWriter(temp, kind)) if temp else None
            collector = _html_collector(html, writer)
            sink = collector or writer
            with progress:
                if piped:
                    from rareevent.follow import score_pipe

                    result = score_pipe(sys.stdin.buffer, record, detector, fill=fill, sink=sink, options=reading, time=time, label=label)
                    if metrics_out is not None and result.metrics is None:
                        raise RareEventError(f"<stdin>: --metrics-out needs the label column {label_column!r}, which the data does not have")
                else:
                    result = score_csv(
                        data,
                        record,
                        detector,
                        chunk_rows=chunk_rows,
                        fill=fill,
                        sink=sink,
                        on_progress=lambda n: progress.advance(task, n),
                        options=reading,
                        time=time,
                        label=label,
                    )
            summary = {"run": record["name"], "file": str(data), "rows": result.n_rows, "windows": result.n_windows, "flagged": int(result.flagged.sum()), "threshold": result.threshold, "segments": result.n_segments}
            if writer:
                writer.finish({"alarms": result.alarms, "metrics": result.metrics, "summary": summary})
            if metrics_temp:
                metrics_temp.write_text(json.dumps({**summary, "metrics": result.metrics}, indent=2, allow_nan=False) + "\n", encoding="utf-8")
            if episodes_temp:
                from rareevent.episodes import episode_rows, write_episodes

                write_episodes(episodes_temp, episode_rows(result.alarms, result.threshold))
            if html_temp:
                from rareevent.html_report import render, scored_file_report

                page = render(scored_file_report(data, record, detector, result, collector, fill=fill, options=reading, time=time, label=label))
                html_temp.write_text(page, encoding="utf-8")
        if result.columns.ignored:
            _note(f"ignored column(s) not used by the model: {', '.join(result.columns.ignored)}")
        if result.n_filled:
            _note(f"repaired {result.n_filled} blank/NaN cell(s) with --fill {fill}")
        if result.n_segments > 1:
            _note(f"{result.n_segments - 1} time gap(s) above the run's --max-gap {record['gaps']['max_gap']} split the file into {result.n_segments} segments; no window crosses a gap")
        if result.reading.time_format != (record.get("reading") or {}).get("time_format"):  # not the run's reading: inferred from this file
            order_note = result.reading.order_note(result.columns.time)
            if order_note:
                _note(_cli_terms(order_note))
        _print_score_summary(summary, result, show, output)
        _print_paths(quiet, output, metrics_out, episodes, html)


def _html_collector(html: Path | None, then: Any) -> Any:
    """The sink that keeps the windows an HTML report draws and passes them on to ``then`` (None without ``--html``)."""
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


def _score_fleet(
    data: list[Path],
    folder: Path,
    *,
    group: str | None,
    jobs: int | None,
    engine: str,
    master: str,
    output: Path | None,
    metrics_out: Path | None,
    chunk_rows: int,
    fill: str | None,
    time: str | None,
    label: str | None,
    reading: Any,
    quiet: bool,
    html: Path | None = None,
    episodes: Path | None = None,
) -> None:
    """``score`` over many series: on local processes (CSV out) or on Spark (a Parquet folder out)."""
    from rareevent.storage import atomic_file

    if output is not None:
        _output_kind(output, ("parquet",) if engine == Engine.spark else ("csv",))
    if metrics_out is not None:
        _output_kind(metrics_out, ("json",))
    if engine == Engine.spark and (html is not None or episodes is not None):
        raise RareEventError("--html and --episodes need the alarm episodes, which --engine spark does not collect; score with --engine local")
    if episodes is not None:
        _output_kind(episodes, ("csv",))
    if html is not None:
        from rareevent.html_report import check_output

        check_output(html)
    for path in data:
        _check_outputs(path, {"--output": output, "--metrics-out": metrics_out, "--episodes": episodes, "--html": html})
    if engine == Engine.spark:
        _score_on_spark(data, folder, group=group, master=master, output=output, fill=fill, time=time, label=label, reading=reading)
        _print_paths(quiet, output)
        return
    from rareevent.fleet_score import default_jobs, plan, score_fleet

    planned = plan(data, folder, group=group, chunk_rows=chunk_rows, fill=fill, options=reading, time=time, label=label)
    with ExitStack() as stack:
        temp = stack.enter_context(atomic_file(output)) if output else None
        metrics_temp = stack.enter_context(atomic_file(metrics_out)) if metrics_out else None
        episodes_temp = stack.enter_context(atomic_file(episodes)) if episodes else None
        html_temp = stack.enter_context(atomic_file(html)) if html else None
        scores = score_fleet(planned, jobs or default_jobs(), temp)
        if metrics_temp is not None:
            metrics_temp.write_text(json.dumps({"run": str(folder), "series": [s.summary() for s in scores]}, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        if episodes_temp is not None:
            from rareevent.episodes import episode_rows, write_episodes

            write_episodes(episodes_temp, [row for s in scores for row in episode_rows(s.alarms, s.threshold, s.series.name)])
        if html_temp is not None:
            from rareevent.html_report import render_fleet
            from rareevent.model import compute_device

            html_temp.write_text(render_fleet(folder.name, scores, group or "file", compute_device()), encoding="utf-8")
    ignored = sorted({c for s in scores for c in s.ignored})
    if ignored:
        _note(f"ignored column(s) not used by the model: {', '.join(ignored)}")
    filled = sum(s.n_filled for s in scores)
    if filled:
        _note(f"repaired {filled} blank/NaN cell(s) with --fill {fill}")
    table = Table(title=f"scored {len(scores)} series with {folder.name}: {sum(s.n_rows for s in scores):,} rows, {sum(s.n_flagged for s in scores):,} windows flagged")
    table.add_column(group or "file", overflow="fold", min_width=8)
    for column in ("rows", "windows", "flagged", "alarms", "F1", "events caught"):
        table.add_column(column, justify="right")
    for s in scores:
        table.add_row(s.series.name, f"{s.n_rows:,}", f"{s.n_windows:,}", f"{s.n_flagged:,}", str(s.n_alarms), *((_fmt(s.metrics["f1"]), _events(s.metrics)) if s.metrics else ("-", "-")))
    out.print(table)
    if output:
        out.print(f"windows written to {output}")
    _print_paths(quiet, output, metrics_out, episodes, html)


def _score_on_spark(data: list[Path], folder: Path, *, group: str | None, master: str, output: Path | None, fill: str | None, time: str | None, label: str | None, reading: Any) -> None:
    """``score --engine spark``: read DATA into Spark, score each group as a task, write Parquet."""
    from rareevent import spark
    from rareevent.series import expand, is_table

    if group is None:
        raise RareEventError("--engine spark needs --group COLUMN: each group is scored as one task")
    if output is None:
        raise RareEventError("--engine spark writes its windows to a Parquet folder: give --output NAME.parquet")
    files = [str(path) for path in expand(data)]
    if len({is_table(path) for path in files}) > 1:
        raise RareEventError("--engine spark reads either CSV or Parquet files, not both at once")
    session = spark.session(master)
    reader = session.read if is_table(files[0]) else session.read.option("header", True)
    frame = reader.parquet(*files) if is_table(files[0]) else reader.csv(files)
    windows = spark.score(frame, folder, group=group, time=time, label=label, fill=fill, options=reading)
    spark.write_parquet(windows, output)
    out.print(f"scored {frame.select(group).distinct().count()} group(s) of {len(files)} file(s) on Spark ({master}); windows written to {output}")


MAX_POLL_SECONDS = 3600.0  # an hour between looks at a followed file is already no longer following it; 1e20 s overflows sleep()


def _seconds(text: str, option: str) -> float:
    """A short duration (``0.2s``, ``500ms``, ``1``: seconds) as seconds, at most ``MAX_POLL_SECONDS``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise RareEventError(f"{option} {text!r}: give a duration above 0 like 0.2s or 500ms")
    seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if seconds > MAX_POLL_SECONDS:
        raise RareEventError(f"{option} {text!r} is too long: give at most {MAX_POLL_SECONDS:g}s")
    return seconds


def _follow(data: Path, record: dict[str, Any], detector: Any, output: Path | None, kind: str, poll: float, fill: str | None, reading: Any, time: str | None, label: str | None) -> NoReturn:
    """``score --follow``: score lines as they are written until Ctrl-C or SIGTERM, then print a summary; exit 130.

    The windows go to ``output`` (else stdout) line by line as they are
    scored, so that file grows as it goes instead of appearing whole;
    alarm episodes are announced on stderr as they open and close (and as
    events in JSON Lines).
    """
    import time as clock

    from rareevent.follow import Follower

    stopped: list[int] = []
    handlers = {signum: signal.signal(signum, lambda number, frame: stopped.append(number)) for signum in (signal.SIGINT, signal.SIGTERM)}
    err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True, color_system=None if os.environ.get("NO_COLOR") else "auto", quiet=_state["quiet"])
    follower = Follower(data, record, detector, fill, reading, time, label)
    lines = _FollowLines(output, kind, err)
    try:
        if not data.exists():
            _note(f"{data}: waiting for the file to appear")
        while not stopped:
            update = follower.poll()
            if update.restarted:
                _warn(f"{update.restarted} (a new segment: no window spans the two)")
            lines.write(update)
            if not update.rows and not update.restarted and not follower.pending:
                clock.sleep(poll)
        summary = follower.summary()
        lines.event("summary", summary)
        lines.finish()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        follower.close()
        lines.close()
    opened = summary["open_episode"]
    err.print(
        f"stopped following [bold]{escape(str(data))}[/]: {summary['rows']:,} rows, {summary['windows']:,} windows, {summary['flagged']:,} flagged "
        f"(threshold {summary['threshold']:.6g}), {summary['alarm_episodes']} alarm episode(s) closed"
        + (f", one open since line {_line(opened['start_row'])}" if opened else "")
        + (f", {summary['restarts']} restart(s) of the file" if summary["restarts"] else ""),
        markup=True,
    )
    raise typer.Exit(EXIT_INTERRUPTED)


class _FollowLines:
    """The windows of ``score --follow`` as CSV or JSON Lines, with each alarm event right after the window it belongs to.

    ``output`` (else stdout) is opened, and so emptied, only when there is
    something to write or at a clean stop: a followed file refused at its
    first lines leaves an existing output as it was. A full disk or a
    file-size limit while writing is "cannot write here", exit 2.
    """

    def __init__(self, output: Path | None, kind: str, err: Console) -> None:
        self.output, self.kind, self.err = output, kind, err
        self.header = kind == "csv"
        self._handle: Any = None if output else sys.stdout

    @property
    def handle(self) -> Any:
        if self._handle is None:
            from rareevent.storage import open_to_write

            self._handle = open_to_write(self.output)
        return self._handle

    def finish(self) -> None:
        """At a clean stop: ``output`` is this run's (empty when nothing was written to it), complete on disk."""
        if self.output is not None:
            from rareevent.storage import write_errors

            with write_errors(self.output):
                self.handle.close()

    def close(self) -> None:
        """Close ``output`` if it was opened; stdout stays open."""
        if self.output is not None and self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass  # a write error is being reported already

    def write(self, update: Any) -> None:
        if len(update.windows) or update.closed or update.opened:
            from rareevent.storage import write_errors

            with write_errors(self.output or "<stdout>"):
                self._write(update)

    def _write(self, update: Any) -> None:
        frame = update.windows
        rows = frame["row"].tolist() if len(frame) else []
        if self.kind == "csv":
            text = frame.to_csv(header=self.header, index=False, lineterminator="\n") if len(frame) else ""
            lines = text.splitlines(keepends=True)
            if self.header and lines:
                self.handle.write(lines.pop(0))
                self.header = False
        else:
            text = frame.to_json(orient="records", lines=True, date_format="iso", date_unit="s", double_precision=15) if len(frame) else ""
            lines = [line + "\n" for line in text.splitlines()]
        items = [(row, 0, line) for row, line in zip(rows, lines)]
        items += [(alarm["end_row"], 1, ("alarm_closed", alarm)) for alarm in update.closed]
        items += [(alarm["start_row"], 2, ("alarm_opened", alarm)) for alarm in update.opened]
        items.sort(key=lambda item: (item[0], item[1]))
        for _, _, item in items:
            if isinstance(item, str):
                self.handle.write(item)
            else:
                self.event(*item)
        self.handle.flush()

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """An alarm event or the summary: a JSON Lines record, and a line on stderr."""
        if self.kind == "jsonl":
            from rareevent.storage import write_errors

            with write_errors(self.output or "<stdout>"):
                self.handle.write(json.dumps({"event": name, **fields}, allow_nan=False) + "\n")
                self.handle.flush()
        when = lambda key: f" ({fields[key]})" if key in fields else ""  # noqa: E731
        if name == "alarm_opened":
            self.err.print(f"[bold red]alarm opened[/] at line {_line(fields['start_row'])}{when('start_time')}: error {fields['error']:.4g}", markup=True)
        elif name == "alarm_closed":
            self.err.print(
                f"[bold]alarm closed[/]: lines {_line(fields['start_row'])}-{_line(fields['end_row'])}{when('end_time')}, {fields['windows']} window(s), "
                f"peak {fields['peak_error']:.4g}, top sensors {escape(fields['top_features'].replace(';', ' '))}",
                markup=True,
            )


def _line(row: int) -> int:
    """The file line of 0-based data row ``row`` (line 1 is the header), as errors count lines; outputs keep ``row``."""
    return row + 2


def _print_paths(quiet: bool, *paths: Path | None) -> None:
    """With ``--quiet``, the files a command wrote: its only output besides errors."""
    for path in paths:
        if quiet and path is not None:
            typer.echo(str(path))


def _print_score_summary(summary: dict[str, Any], result: Any, show: int, output: Path | None) -> None:
    out.print(
        f"scored [bold]{escape(summary['file'])}[/] with run [bold]{escape(summary['run'])}[/]: {summary['rows']:,} rows, "
        f"{summary['windows']:,} windows, {summary['flagged']:,} flagged (threshold {summary['threshold']:.6g}), "
        f"{len(result.alarms)} alarm episode(s)",
        markup=True,
    )
    if result.alarms:
        from rareevent.episodes import duration_text

        table = Table(title=f"alarms (top {min(show, len(result.alarms))} by peak error, in time order)")
        has_time = "start_time" in result.alarms[0]
        for column in ("start", "end", "duration", "lines", "windows", "peak", "top sensors (share of error)"):
            table.add_column(column, justify="right" if column in ("duration", "windows", "peak") else "left")
        shown = sorted(sorted(result.alarms, key=lambda a: -a["peak_error"])[:show], key=lambda a: a["start_row"])
        for alarm in shown:
            table.add_row(
                str(alarm["start_time"]) if has_time else f"line {_line(alarm['start_row'])}",
                str(alarm["end_time"]) if has_time else f"line {_line(alarm['end_row'])}",
                duration_text(alarm),
                f"{_line(alarm['start_row'])}-{_line(alarm['end_row'])}",
                str(alarm["windows"]),
                f"{alarm['peak_error']:.3g}",
                alarm["top_features"].replace(";", " "),
            )
        out.print(table)
    if result.metrics:
        out.print(_metrics_table({"scored file": result.metrics}))
        lead = _lead_line(result.metrics)
        if lead:
            out.print(lead)
    if output:
        out.print(f"windows written to {output}")


@app.command()
def encode(
    data: Annotated[Path, typer.Argument(help="Sensor CSV with the trained feature columns.")],
    run: RunOption = None,
    output: Annotated[Path, typer.Option(help="Write row, time and the encoded vector of every window to this .csv or .json file.")] = ...,
    runs_dir: RunsDir = Path("runs"),
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read per chunk.")] = 100_000,
    fill: FillOption = None,
    decimal: DecimalOption = None,
    time_format: TimeFormatOption = None,
    dayfirst: DayfirstOption = False,
    time_unit: TimeUnitOption = None,
    tz: TzOption = None,
    encoding: EncodingOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write the encoded vector (length u2) of every window of DATA, for use in other models (ae runs only)."""
    _set_output(quiet)
    with _errors():
        from rareevent.detector import require_bottleneck
        from rareevent.runs import load_run, read_run, resolve_run
        from rareevent.scoring import WindowWriter, encode_csv
        from rareevent.storage import atomic_file

        kind = _output_kind(output, ("csv", "json"))
        reading = _reading_options(decimal, time_format, dayfirst, time_unit, tz, encoding)
        _check_outputs(data, {"--output": output})
        folder = resolve_run(run, runs_dir)
        require_bottleneck(read_run(folder)["arch"])  # before Keras is imported
        record, detector = load_run(folder)
        with atomic_file(output) as temp, WindowWriter(temp, kind) as writer:
            n, filled = encode_csv(data, record, detector, writer, chunk_rows=chunk_rows, fill=fill, options=reading)
            writer.finish({"run": record["name"], "units": record["units"][1]})
        if filled:
            _note(f"repaired {filled} blank/NaN cell(s) with --fill {fill}")
        out.print(f"wrote {n:,} encoded windows x {record['units'][1]} values to {output}")
        _print_paths(quiet, output)


@app.command()
def report(
    runs: Annotated[list[str] | None, typer.Argument(help="Run folders or names (default: every run in --runs-dir).", autocompletion=_complete_run)] = None,
    runs_dir: RunsDir = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Draw the error over time and the PR curve of one run to this .png (needs rareevent\\[plot]).")] = None,
    show_recipe: Annotated[bool, typer.Option("--recipe", help="Print the TOML recipe that trains one run again (rareevent train --config).")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report of one run on its own input file (timeline with the splits, every alarm episode with its sensors' raw traces, metrics, PR curve) to this .html file (needs rareevent\\[plot]).")] = None,
) -> None:
    """Compare saved runs: test metrics, events caught, false alarms, and each two architectures trained on the same file."""
    with _errors():
        from rareevent.report import collect, comparisons
        from rareevent.runs import RUN_FILE, read_run, resolve_run

        if show_recipe:
            if (runs and len(runs) > 1) or plot is not None or as_json:
                raise RareEventError("--recipe prints the recipe of one run; name a single RUN, without --plot or --json")
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            train_params = typer.main.get_command(app).commands["train"].params
            typer.echo(recipe.recipe_text(read_run(folder), folder / RUN_FILE, leave_out={recipe.recipe_key(p) for p in train_params if p.name in _NOT_SETTINGS}), nl=False)
            return
        if html is not None:
            from rareevent.html_report import check_output, run_report, write
            from rareevent.runs import load_run

            if (runs and len(runs) > 1) or plot is not None or as_json:
                raise RareEventError("--html reports one run; name a single RUN, without --plot or --json")
            check_output(html)
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            write(run_report(folder, *load_run(folder)), html)
            out.print(f"report of {folder.name} written to {html}")
            return
        if plot is not None:
            from rareevent.plot import plot_run

            if runs and len(runs) > 1:
                raise RareEventError("--plot draws one run; name a single RUN")
            folder = resolve_run(runs[0] if runs else None, runs_dir)
            plot_run(folder, read_run(folder), plot)
            out.print(f"plot of {folder.name} written to {plot}")
            return
        summaries, skipped = collect(runs or [], runs_dir)
        pairs = comparisons(summaries)
        if as_json:
            typer.echo(json.dumps({"runs": summaries, "comparisons": pairs, "skipped": skipped}, indent=2, allow_nan=False))
            return
        for message in skipped:
            _warn(f"skipped: {message}")
        _print_runs_table(summaries)
        for row in summaries:
            if len(row["series"] or []) > 1:
                out.print(_series_table(row))
            if row["candidates"]:
                out.print(_candidates_table(row["name"], row["candidates"], row["arch"]))
        for pair in pairs:
            _print_comparison(pair)


def _print_runs_table(summaries: list[dict[str, Any]]) -> None:
    """One column per run, so a few runs fit an 80-column terminal."""
    from rareevent.report import shown_metrics

    table = Table(title="runs: test metrics (* validation: no test part)")
    table.add_column("", style="bold")
    for row in summaries:
        table.add_column(row["name"] + ("*" if row["metrics_part"] == "valid" else ""), justify="right")

    fields = [
        ("arch", lambda r: r["arch"]),
        ("lookback", lambda r: str(r["lookback"])),
        ("units", lambda r: ",".join(map(str, r["units"]))),
        ("parameters", lambda r: f"{r['parameters']:,}" if r["parameters"] else "-"),
        *([("parent", lambda r: r["parent"] or "-")] if any(r["parent"] for r in summaries) else []),
        ("threshold", lambda r: f"{r['threshold_strategy']} = {r['threshold']:.4g}"),
        *((label, lambda r, cell=cell: cell(shown_metrics(r))) for label, cell in (*_SCORE_ROWS, ("events caught", _events), ("false alarm rate", _rate))),
        ("baseline: pca F1", lambda r: _fmt(shown_metrics(r, baseline=True).get("f1"))),
        ("baseline: pca PR-AUC", lambda r: _fmt(shown_metrics(r, baseline=True).get("pr_auc"))),
        ("training s", lambda r: _fmt(r["train_seconds"], 1)),
    ]
    for label, cell in fields:
        table.add_row(label, *(cell(row) for row in summaries))
    out.print(table)


def _print_comparison(pair: dict[str, Any]) -> None:
    first, second = pair["archs"]
    question = ": does the bottleneck help?" if (first, second) == ("ae", "plain") else ""
    table = Table(title=f"{first} vs {second} on {Path(pair['input_file']).name}{question}")
    table.add_column("metric", style="bold")
    table.add_column(f"{first} ({pair[first]})", justify="right")
    table.add_column(f"{second} ({pair[second]})", justify="right")
    for key, values in pair["metrics"].items():
        table.add_row(key, _fmt(values[first]), _fmt(values[second]))
    out.print(table)
    if pair["better_f1"]:
        out.print(f"higher F1: [bold]{pair['better_f1']}[/]", markup=True)


def main() -> None:
    """Console entry point: usage errors become one ``error:`` line with exit code 2."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="rareevent", standalone_mode=False)
    except typer.Abort:
        typer.echo("error: interrupted; nothing was written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, missing argument
        if not exc.format_message().strip():  # bare `rareevent`: the help was printed
            sys.exit(getattr(exc, "exit_code", EXIT_DATA))
        typer.echo(f"error: {' '.join(exc.format_message().split())} (see --help)", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_DATA))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
