"""Every option declared once, the choices the parser checks, and the builders from
option values to library values.

The specs come from ``rareevent.options``, which loads no pandas, and their
defaults are the options' defaults. Other library imports happen inside the
builders so that ``rareevent --help`` never loads TensorFlow, pandas or scikit-learn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

import typer

from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, LSTM_ARCHS
from rareevent.options import (
    CHUNK_ROWS,
    AlarmPolicy,
    InputSpec,
    ReadOptions,
    Resampling,
    ScoreSpec,
    SplitSpec,
    TrainSpec,
)
from rareevent.selection import AUTO, CANDIDATES

from . import recipe
from .console import errors

# the fixed value sets of options, as the parser's choices (tests/test_cli_conventions.py
# checks them against the library's); the architectures' come from the registry, which
# mypy cannot read (auto: chosen by train, never a run's arch)
Arch = StrEnum(  # type: ignore[misc]
    "Arch", {**{name: name for name in ARCHITECTURES}, AUTO: AUTO}
)
LstmArch = StrEnum("LstmArch", {name: name for name in LSTM_ARCHS})  # type: ignore[misc]
ARCH_HELP = ", ".join(f"{name} ({spec.help})" for name, spec in ARCHITECTURES.items())
AUTO_HELP = (
    f"{AUTO} (with labels: the default unless one of {', '.join(CANDIDATES)} is clearly "
    "better on validation; without: the default)"
)
# parameters train does not pass as given: context names are resolved against the file's
# columns; the rest are not options
NOT_PASSED = {"context", "validation_fraction", "warm_start"}
Activation = StrEnum("Activation", {"tanh": "tanh", "relu": "relu"})
ScoreKind = StrEnum(
    "ScoreKind", {"mean": "mean", "last": "last", "max": "max", "tail": "tail"}
)
Fill = StrEnum("Fill", {"ffill": "ffill", "interpolate": "interpolate", "drop": "drop"})
Engine = StrEnum("Engine", {"local": "local", "spark": "spark"})
FollowFormat = StrEnum("FollowFormat", {"csv": "csv", "jsonl": "jsonl"})


def complete_run(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run names in ``--runs-dir`` (as typed so far, else ``runs``) that start with ``incomplete``.

    A folder holding a ``run.json`` is a run; found with a glob rather than
    ``rareevent.runs.list_runs``, whose imports (pandas, scikit-learn) would
    cost seconds on every Tab.
    """
    runs_dir = Path(ctx.params.get("runs_dir") or "runs")
    names = (found.parent.name for found in runs_dir.glob("*/run.json"))
    return sorted(
        name
        for name in names
        if name.startswith(incomplete) and not name.startswith(".")
    )


RunsDir = Annotated[
    Path, typer.Option("--runs-dir", help="Folder holding the run folders.")
]
RunOption = Annotated[
    str | None,
    typer.Option(
        help="Run folder or run name (default: the newest run).",
        autocompletion=complete_run,
    ),
]
FillOption = Annotated[
    Fill | None,
    typer.Option(
        "--fill", help="Repair blank/NaN sensor cells (default: refuse them)."
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print only errors and the path of what was written."
    ),
]
DecimalOption = Annotated[
    str | None,
    typer.Option(
        "--decimal",
        help="Decimal mark of the numbers, ',' or '.' (default: detected in ';' and tab "
        "files; score and encode: the run's).",
    ),
]
TimeFormatOption = Annotated[
    str | None,
    typer.Option(
        "--time-format",
        help="strftime format of the time column, e.g. '%d.%m.%Y %H:%M' (default: ISO "
        "8601, or dates whose day/month order is inferred from the whole column).",
    ),
]
DayfirstOption = Annotated[
    bool, typer.Option("--dayfirst", help="Read dates like 01.02.2026 day first.")
]
TimeUnitOption = Annotated[
    str | None,
    typer.Option(
        "--time-unit", help="Read a numeric time column as s or ms since 1970."
    ),
]
TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="Time zone of times without an offset, like Europe/Berlin: they become "
        "UTC, the repeated autumn hour in file order (default: the run's; else "
        "times are taken as they are).",
    ),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of the file, like cp1252 or latin-1 (default: UTF-8; score: "
        "also the run's).",
    ),
]
MaxGapOption = Annotated[
    str | None,
    typer.Option(
        "--max-gap",
        help="A time step above this is a gap that no window crosses: a duration like "
        "10min, a number in a numeric time column's unit, a multiple of the median "
        "step like 5x, or none (default: 5x).",
    ),
]
ResampleOption = Annotated[
    str | None,
    typer.Option(
        "--resample",
        help="Put the rows on a regular grid of this step (like 1min) before windowing; "
        "empty cells follow --fill.",
    ),
]
AggOption = Annotated[
    str,
    typer.Option(
        "--agg",
        help="How --resample combines the rows of a grid cell: mean, last or max.",
    ),
]
GroupOption = Annotated[
    str | None,
    typer.Option(
        "--group",
        help="Column naming the series of a long table (an asset id): one series per "
        "value, no window crosses two.",
    ),
]


@overload
def parse_units(text: str, auto: Literal[False]) -> tuple[int, int]: ...
@overload
def parse_units(text: str, auto: bool = True) -> tuple[int, int] | str: ...
def parse_units(text: str, auto: bool = True) -> tuple[int, int] | str:
    """``--units u1,u2``, or ``auto`` (sized from the training rows) where ``auto`` is allowed."""
    if auto and text.strip() == "auto":
        return "auto"
    try:
        u1, u2 = (int(part) for part in text.split(","))
    except ValueError:
        raise RareEventError(
            f"--units {text!r}: give two positive integers like 32,16"
            + (" or auto" if auto else "")
        ) from None
    return u1, u2


def parse_drop(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


ValidFracOption = Annotated[
    float,
    typer.Option(
        help="Fraction of rows (after train) for validation and the threshold."
    ),
]
TestFracOption = Annotated[
    float,
    typer.Option(help="Fraction of rows at the end held out for testing (0 allowed)."),
]
ChunkRowsOption = Annotated[
    int, typer.Option(min=1, help="Rows read per chunk; memory stays bounded by it.")
]

# option groups: each declared once, in the order --help shows them, as {parameter:
# (annotation, default)}; `takes` hands a command one value built from a group
READ_OPTIONS: dict[
    str, tuple[Any, Any]
] = {  # how to read a file's cells: a ReadOptions
    "decimal": (DecimalOption, None),
    "time_format": (TimeFormatOption, None),
    "dayfirst": (DayfirstOption, False),
    "time_unit": (TimeUnitOption, None),
    "tz": (TzOption, None),
    "encoding": (EncodingOption, None),
}
TRAIN_OPTIONS: dict[
    str, tuple[Any, Any]
] = {  # what train reads and how it splits it: a TrainSpec
    "valid_frac": (
        ValidFracOption,
        SplitSpec.valid_frac,
    ),  # the library's defaults: declared once, in the spec
    "test_frac": (TestFracOption, SplitSpec.test_frac),
    "time": (
        Annotated[
            str | None,
            typer.Option(
                "--time",
                help="Time column (default: time/timestamp/datetime/date if present).",
            ),
        ],
        None,
    ),
    "label": (
        Annotated[
            str | None,
            typer.Option(
                help="0/1 event column (default: y/label/anomaly if present)."
            ),
        ],
        None,
    ),
    "drop": (
        Annotated[str | None, typer.Option(help="Comma-separated columns to ignore.")],
        None,
    ),
    "context": (
        Annotated[
            str,
            typer.Option(
                help="Context columns (read by the model, never scored): auto (0/1 "
                "flags and modes), none, or names/glob patterns like "
                "'cmd*,setpoint'."
            ),
        ],
        "auto",
    ),
    "fill": (FillOption, None),
    **READ_OPTIONS,
    "max_gap": (MaxGapOption, None),
    "resample": (ResampleOption, None),
    "agg": (AggOption, Resampling.agg),
    "group": (GroupOption, None),
}
SPAN_HELP = "rows (10) or a duration (90s, 10min, 2h)"
ALARM_OPTIONS: dict[
    str, tuple[Any, Any]
] = {  # how scores become alarms: an AlarmPolicy (unset: the run's own)
    "threshold": (
        Annotated[
            str | None,
            typer.Option(
                "--threshold",
                help="Alarm threshold: a number, or quantile[:Q] or pot[:R] chosen on the "
                "run's validation scores (default: the run's).",
            ),
        ],
        None,
    ),
    "margin": (
        Annotated[
            float | None,
            typer.Option(help="Multiply the threshold by this (default: 1)."),
        ],
        None,
    ),
    "min_duration": (
        Annotated[
            str | None,
            typer.Option(
                help=f"Alarm only once the score has stayed high this long: {SPAN_HELP}."
            ),
        ],
        None,
    ),
    "cooldown": (
        Annotated[
            str | None,
            typer.Option(
                help=f"Keep an alarm up this long after the score falls, so closer "
                f"episodes merge: {SPAN_HELP}."
            ),
        ],
        None,
    ),
    "shortest_event": (
        Annotated[
            str | None,
            typer.Option(
                help=f"The shortest event worth an alarm: scores are judged against the "
                f"recent scores on that time scale: {SPAN_HELP}, or off (the threshold "
                "alone)."
            ),
        ],
        None,
    ),
}
SCORE_OPTIONS: dict[str, tuple[Any, Any]] = {  # what score reads and how: a ScoreSpec
    "chunk_rows": (ChunkRowsOption, CHUNK_ROWS),
    "fill": (FillOption, None),
    "time": (
        Annotated[
            str | None,
            typer.Option("--time", help="Time column of DATA (default: the run's)."),
        ],
        None,
    ),
    "label": (
        Annotated[
            str | None,
            typer.Option(
                help="0/1 event column of DATA, for metrics (default: the run's label column)."
            ),
        ],
        None,
    ),
    **READ_OPTIONS,
    "group": (GroupOption, None),
    **ALARM_OPTIONS,
}
ENCODE_OPTIONS = {
    name: SCORE_OPTIONS[name] for name in ("chunk_rows", "fill", *READ_OPTIONS)
}  # encode reads a file as score does: its columns are the run's
ALARM_DEFAULT_OPTIONS = {
    name: ALARM_OPTIONS[name] for name in ("min_duration", "cooldown", "shortest_event")
}  # update makes them the run's own (its --threshold and --margin re-choose the threshold)
UPDATE_OPTIONS = {
    "fill": (FillOption, None),
    "tz": READ_OPTIONS["tz"],
    "encoding": READ_OPTIONS["encoding"],
}  # the rest of the reading is the run's


SAVE_OPTIONS: dict[
    str, tuple[Any, Any]
] = {  # where train and update save their run and how they report it: a Saving
    "runs_dir": (RunsDir, Path("runs")),
    "name": (
        Annotated[
            str | None, typer.Option(help="Run name (default: time stamp and arch).")
        ],
        None,
    ),
    "overwrite": (
        Annotated[
            bool,
            typer.Option(
                help="Replace an existing run of the same name (never the run an update "
                "starts from)."
            ),
        ],
        False,
    ),
    "as_json": (
        Annotated[
            bool,
            typer.Option(
                "--json",
                help="Print the run summary (metrics, threshold, paths) as JSON on "
                "stdout; progress goes to stderr.",
            ),
        ],
        False,
    ),
}


@dataclasses.dataclass(frozen=True)
class Saving:
    """Where a command that saves a run (``train``, ``update``) writes it; whether as JSON."""

    runs_dir: Path
    name: str | None
    overwrite: bool
    as_json: bool


def input_spec(**values: Any) -> InputSpec:
    """The input spec of a command's option values: column roles, ``--fill``, reading options."""
    read = ReadOptions(**_own(ReadOptions, values))
    if "drop" in values:
        values["drop"] = parse_drop(values["drop"])
    return InputSpec(**values, read=read)


def _own(spec: type, values: dict[str, Any]) -> dict[str, Any]:
    """Take ``spec``'s own fields out of ``values`` (what is left belongs to a spec inside it)."""
    return {
        f.name: values.pop(f.name) for f in dataclasses.fields(spec) if f.name in values
    }


def train_spec(**values: Any) -> TrainSpec:
    """``train``'s TrainSpec: the split (``--resample`` with ``--agg`` make its grid),
    the context columns, and the input.
    """
    resample, agg = values.pop("resample"), values.pop("agg")
    if resample is None and agg != Resampling.agg:
        raise RareEventError(
            f"--agg {agg} needs --resample: it says how the rows of a grid cell are combined"
        )
    split = SplitSpec(
        **_own(SplitSpec, values),
        resample=None if resample is None else Resampling(resample, agg),
    )
    return TrainSpec(**_own(TrainSpec, values), split=split, input=input_spec(**values))


def score_spec(**values: Any) -> ScoreSpec:
    """``score``'s and ``encode``'s ScoreSpec: its own options (rows per chunk, ...),
    the alarm policy and the input.
    """
    alarm = alarm_policy(**_own(AlarmPolicy, values))
    return ScoreSpec(**_own(ScoreSpec, values), alarm=alarm, input=input_spec(**values))


def alarm_policy(**values: Any) -> AlarmPolicy:
    """An AlarmPolicy from the options' text: a threshold that reads as a number is one."""
    threshold = values.get("threshold")
    if isinstance(threshold, str):
        with contextlib.suppress(ValueError):  # else a strategy, checked by the policy
            values["threshold"] = float(threshold)
    return AlarmPolicy(**values)


Command = TypeVar("Command", bound=Callable[..., None])


def takes(
    param: str, declared: dict[str, tuple[Any, Any]], build: Callable[..., Any]
) -> Callable[[Command], Command]:
    """Give a command the ``declared`` options in place of its parameter ``param``, and
    pass ``build(**their values)`` whole as ``param``.

    Typer builds a command's options from its signature, so the wrapper
    shows the declared options where ``param`` stood and builds the value
    (a spec, checked when it is made) before the command runs; a bad value
    is one ``error:`` line, exit 2. ``ctx.params`` keeps the options one
    by one, as the recipe stores them.
    """

    def decorate(command: Command) -> Command:
        signature = inspect.signature(
            command
        )  # as written: the specs are imported for type checking only (no pandas on --help)
        parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            if (
                parameter.name != param
            ):  # evaluated, as Typer's own reading of a signature does (eval_str)
                annotation = parameter.annotation
                parameters.append(
                    parameter.replace(
                        annotation=eval(annotation, command.__globals__)
                        if isinstance(annotation, str)
                        else annotation
                    )
                )
                continue
            parameters += [
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=annotation,
                )
                for name, (annotation, default) in declared.items()
            ]

        @functools.wraps(command)
        def with_value(**values: Any) -> None:
            given = {name: values.pop(name) for name in declared}
            with errors():
                value = build(**given)
            command(**values, **{param: value})

        # a function's signature as inspect.signature reads it, as Typer does
        with_value.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters
        )
        with_value.__annotations__ = {
            parameter.name: parameter.annotation for parameter in parameters
        }
        return with_value  # type: ignore[return-value]  # the same call, options as keywords

    return decorate


# train parameters that say where and how to write, not what to train: kept out of the
# stored settings and the recipe
NOT_SETTINGS = ("config", "runs_dir", "name", "overwrite", "as_json", "quiet")


def read_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """``--config``: the recipe's values become the defaults of the other options (read
    first: it is eager).
    """
    if value is not None:
        ctx.default_map = {
            **(ctx.default_map or {}),
            **recipe.read_defaults(value, ctx, leave_out=NOT_SETTINGS),
        }
    return value


def one_csv(data: list[Path]) -> bool:
    """Whether DATA is one CSV file named as it is (no pattern, no Parquet): trained as always."""
    from rareevent.series import expand, is_table

    return len(data) == 1 and expand(data) == data and not is_table(data[0])


def output_kind(output: Path, allowed: tuple[str, ...]) -> str:
    kind = output.suffix.lower().lstrip(".")
    if kind not in allowed:
        raise RareEventError(
            f"{output}: output must end in {' or '.join('.' + a for a in allowed)}"
        )
    return kind


def check_outputs(data: Path, outputs: dict[str, Path | None]) -> None:
    """Refuse an output that is the input file (by its path, a symbolic or a hard link),
    lies inside a run folder, or two outputs naming one file (one would replace the
    other).
    """
    from rareevent.storage import check_not_in_run

    seen: dict[Path, str] = {}
    for option, target in outputs.items():
        if target is None:
            continue
        resolved = Path(target).resolve()
        if resolved == Path(data).resolve() or (
            os.path.exists(target)
            and os.path.exists(data)
            and os.path.samefile(target, data)
        ):
            raise RareEventError(
                f"{target}: is the input file; choose another output name"
            )
        check_not_in_run(target)
        if resolved in seen:
            raise RareEventError(
                f"{target}: {seen[resolved]} and {option} name the same file; choose two names"
            )
        seen[resolved] = option


# an hour between looks at a followed file is no longer following it; 1e20 s overflows sleep()
MAX_POLL_SECONDS = 3600.0


def duration_seconds(text: str, option: str) -> float:
    """A short duration (``0.2s``, ``500ms``, ``1``: seconds) as seconds, at most
    ``MAX_POLL_SECONDS``.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise RareEventError(
            f"{option} {text!r}: give a duration above 0 like 0.2s or 500ms"
        )
    seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if seconds > MAX_POLL_SECONDS:
        raise RareEventError(
            f"{option} {text!r} is too long: give at most {MAX_POLL_SECONDS:g}s"
        )
    return seconds
