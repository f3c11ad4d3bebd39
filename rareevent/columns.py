"""Column roles: which column of a file is the time axis, which the label, which the features.

For training, roles come from the options (``time``, ``label``, ``drop``),
else from conventional names (``time``, ``timestamp`` ...; ``y``, ``label``,
``anomaly``), else, for the time axis, from the content: the first column
whose sampled cells are all dates or times (``Zeitstempel``) is taken, and
:attr:`Columns.assumed` says so. A file scored by a trained model is matched
to the model's columns by name (:func:`columns_for_model`).

Roles are settled from the header and a text sample before any number is
read, so the chunked reader (:mod:`rareevent.frames`) takes them as given.
Whether an unnamed 0/1 feature column is really an event label is decided
later, from its values, by :mod:`rareevent.roles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from rareevent.errors import RareEventError
from rareevent.sniffing import CsvFormat, looks_like_times

TIME_NAMES = ("time", "timestamp", "datetime", "date")

LABEL_NAMES = ("y", "label", "anomaly")


@dataclass(frozen=True)
class Columns:
    """The role of every column used: time axis, label, features (in order)."""

    features: list[str]
    time: str | None = None
    label: str | None = None
    dropped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    # roles no option gave: {"column", "as", "message"}
    assumed: list[dict[str, str]] = field(default_factory=list)


def resolve_columns(
    fmt: CsvFormat,
    time: str | None = None,
    label: str | None = None,
    drop: Sequence[str] = (),
    sample: pd.DataFrame | None = None,
) -> Columns:
    """Assign roles for training: named columns, else conventional names, else (time) the content.

    Without ``time`` and a column of a conventional name, the first column
    whose cells in ``sample`` (the first rows, as text) are all dates or
    times is the time column, whatever its name (``Zeitstempel``); the
    columns say so in ``assumed``.
    """
    header = fmt.header
    lower = {name.lower(): name for name in header}
    for param, names in (
        ("time", [time] if time else []),
        ("label", [label] if label else []),
        ("drop", drop),
    ):
        unknown = [n for n in names if n not in header]
        if unknown:
            raise RareEventError(
                f"{fmt.path}: `{param}` names unknown column {unknown[0]!r}",
                hint=f"columns are {', '.join(header)}",
                param=param,
            )
    assumed = []
    if time is None:
        time = next(
            (lower[n] for n in TIME_NAMES if n in lower and lower[n] not in drop), None
        )
    if time is None and sample is not None:
        time = next(
            (
                name
                for name in header
                if name not in drop and name != label and looks_like_times(sample[name])
            ),
            None,
        )
        if time is not None:
            assumed.append(
                {
                    "column": time,
                    "as": "time",
                    "message": f"column {time!r} holds dates or times: "
                    f"read as the time column (`time={time}`)",
                }
            )
    if label is None:
        label = next(
            (
                lower[n]
                for n in LABEL_NAMES
                if n in lower and lower[n] not in drop and lower[n] != time
            ),
            None,
        )
    if time is not None and time == label:
        raise RareEventError(
            f"{fmt.path}: column {time!r} cannot be both time and label"
        )
    taken = {time, label, *drop}
    features = [name for name in header if name not in taken]
    if not features:
        raise RareEventError(
            f"{fmt.path}: no feature columns left after time, label and `drop`",
            hint="every column other than time and label must be a numeric sensor",
        )
    return Columns(
        features=features, time=time, label=label, dropped=list(drop), assumed=assumed
    )


def columns_for_model(fmt: CsvFormat, trained: Columns) -> Columns:
    """Match a new file to a trained model's columns by name."""
    missing = [name for name in trained.features if name not in fmt.header]
    if missing:
        raise RareEventError(
            f"{fmt.path}: missing trained feature column(s) {', '.join(missing)}",
            hint="the file must carry every sensor the model was trained on, by name",
        )
    time = trained.time if trained.time in fmt.header else None
    label = trained.label if trained.label in fmt.header else None
    used = {*trained.features, time, label}
    ignored = [name for name in fmt.header if name not in used]
    return Columns(
        features=list(trained.features), time=time, label=label, ignored=ignored
    )
