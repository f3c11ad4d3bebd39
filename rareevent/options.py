"""Options as values: what a user chose about reading, splitting and scoring, each
checked once, when it is made.

A spec is a frozen dataclass passed whole from the command line (or a
notebook) to the library: ``train`` takes a :class:`TrainSpec`, ``score``
a :class:`ScoreSpec`, and both hold an :class:`InputSpec` (the column
roles, the repair of blank cells, and the :class:`ReadOptions`). A bad
value is refused in ``__post_init__``, before any file is read, naming the
parameter as the library spells it; nothing downstream checks it again.
Adding an option is a field here, its declaration in ``cli/options.py``
and the code that uses it.

What was settled about one file (its decimal mark, its time format) is a
:class:`rareevent.load.Reading`, not an option: options say what the user
forced, a reading what the file turned out to be.

This module sits below every stage (it imports no other part of
rareevent but its errors), so each stage can take the spec it needs.
"""

from __future__ import annotations

import codecs
import math
import re
import zoneinfo
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from rareevent.errors import RareEventError

DECIMAL_MARKS = (".", ",")
TIME_UNITS = {"s": 1, "ms": 1000}  # unit -> units per second
FILL_METHODS = ("ffill", "interpolate", "drop")
AGGREGATIONS = ("mean", "last", "max")
DEFAULT_MAX_GAP = "5x"
NO_GAPS = ("none", "off")
MULTIPLE = re.compile(
    r"\s*(\d+(?:\.\d*)?|\.\d+)\s*x\s*", re.IGNORECASE
)  # a max_gap like 5x: a multiple of the median step
CHUNK_ROWS = 100_000


def check_tz(tz: str) -> str:
    """An IANA time zone name (``Europe/Berlin``), or the error naming ``tz``."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise RareEventError(
            f"tz {tz!r} is not a time zone name",
            hint="use an IANA name like Europe/Berlin or UTC",
            param="tz",
        ) from None
    return tz


# codecs Python calls text encodings that are not how a CSV file is written: domain names and
# escape sequences; read as a file's text they garble it or stop with a traceback
_NOT_FILE_TEXT = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_ASCII_PROBE = '\n\r\t,;.:-+0123456789 azAZ"_'


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding (``cp1252``), or the error naming ``encoding``.

    Files are read as lines of bytes, so only encodings that write the
    ASCII characters of a CSV (digits, separators, line ends) as ASCII are
    taken: UTF-8 and the 8-bit and East Asian encodings. UTF-16 and UTF-32
    are refused with the fix; codecs that are no text encoding at all
    (``rot13``, ``base64``, ``hex``, ``idna``) by name.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise RareEventError(
            f"encoding {encoding!r} is not a text encoding Python knows",
            hint="use utf-8, cp1252 or latin-1",
            param="encoding",
        ) from None
    if codec.name.startswith(("utf-16", "utf-32")):
        raise RareEventError(
            f"encoding {encoding!r}: rareevent reads UTF-8 and 8-bit encodings, not {codec.name}",
            hint=f"convert the file to UTF-8 first: iconv -f {codec.name.upper()} -t UTF-8 "
            "FILE.csv > FILE-utf8.csv",
            param="encoding",
        )
    if not _reads_ascii(codec):
        raise RareEventError(
            f"encoding {encoding!r} ({codec.name}) is not a text encoding a CSV file is written in",
            hint="use utf-8, cp1252 or latin-1",
            param="encoding",
        )
    return codec.name


def _reads_ascii(codec: codecs.CodecInfo) -> bool:
    """Whether ``codec`` is a text encoding that reads ASCII bytes as the same characters."""
    if not getattr(codec, "_is_text_encoding", True) or codec.name in _NOT_FILE_TEXT:
        return False
    try:
        return codec.decode(_ASCII_PROBE.encode("ascii"))[0] == _ASCII_PROBE
    except (UnicodeError, TypeError, ValueError):
        return False


def check_time_format(time_format: str) -> None:
    """A ``--time-format`` must write and read back a time: catches typos like ``%Q`` or
    a format without ``%``.
    """
    # here, not at the top: the CLI reads this module's defaults without loading pandas
    import pandas as pd

    if "%" not in time_format:
        raise RareEventError(
            f"time_format {time_format!r} has no % code",
            hint="use codes like %d.%m.%Y %H:%M",
            param="time_format",
        )
    try:
        pd.to_datetime(
            pd.Series([pd.Timestamp("2026-01-31 13:45:56").strftime(time_format)]),
            format=time_format,
        )
    except (ValueError, TypeError):
        raise RareEventError(
            f"time_format {time_format!r} is not a strftime format pandas can read",
            hint="use codes like %d.%m.%Y %H:%M",
            param="time_format",
        ) from None


def check_fill(fill: str | None) -> None:
    """Refuse an unknown ``--fill`` method."""
    if fill is not None and fill not in FILL_METHODS:
        raise RareEventError(
            f"fill {fill!r}: use one of {', '.join(FILL_METHODS)}", param="fill"
        )


def positive_gap(text: str, value: float) -> float:
    """``value``, the number a ``max_gap`` of ``text`` stands for, when it is finite and above 0."""
    if not math.isfinite(value):
        raise RareEventError(
            f"max_gap {text!r} is not a finite number: give a duration like 10min, "
            "a number or a multiple like 5x",
            param="max_gap",
        )
    if value <= 0:
        raise RareEventError(f"max_gap {text!r} must be above 0", param="max_gap")
    return value


def check_max_gap(text: str | None) -> None:
    """Refuse a ``--max-gap`` that is none of its forms, before any file is read (its
    unit is checked against the time column later).
    """
    if text is None or text.strip().lower() in NO_GAPS:
        return
    multiple = MULTIPLE.fullmatch(text)
    if multiple:
        positive_gap(text, float(multiple.group(1)))
        return
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        positive_gap(text, number)
        return
    import pandas as pd  # as in check_time_format

    try:
        seconds = pd.Timedelta(text.strip()).total_seconds()
    except ValueError:
        raise RareEventError(
            f"max_gap {text!r}: give a duration like 10min or 6h, a number in the "
            "unit of a numeric time column, a multiple of the median step like 5x, "
            "or none",
            param="max_gap",
        ) from None
    positive_gap(text, seconds)


def check_fractions(valid_frac: float, test_frac: float) -> None:
    """Refuse split fractions that leave no validation part or too little to train on."""
    for name, frac in (("valid_frac", valid_frac), ("test_frac", test_frac)):
        if not 0.0 <= frac < 1.0:
            raise RareEventError(f"{name} must be in [0, 1), got {frac}", param=name)
    if valid_frac <= 0.0:
        raise RareEventError(
            "valid_frac must be above 0: the threshold and early stopping need a validation part",
            param="valid_frac",
        )
    if valid_frac + test_frac >= 0.9 - 1e-9:
        parts = (
            "`valid_frac`" if test_frac == 0 else "`valid_frac` + `test_frac`"
        )  # `update` has no test part, and no --test-frac
        raise RareEventError(
            f"{parts} = {valid_frac + test_frac:g} leaves too little to train on: keep it below 0.9"
        )


class Spec:
    """What every spec shares: a JSON-ready record for ``run.json`` and back.

    ``NESTED`` names the fields that hold another spec (or ``None``); a
    record may hold more keys than the spec has fields (a run's ``resample``
    also counts its rows), and those are left out when it is read back.
    """

    NESTED: ClassVar[dict[str, type[Spec]]] = {}

    def to_record(self) -> dict[str, Any]:
        own = fields(self)  # type: ignore[arg-type]  # every subclass is a dataclass
        return {f.name: _recorded(getattr(self, f.name)) for f in own}

    @classmethod
    def from_record(cls, value: dict[str, Any] | None) -> Self:
        value = value or {}
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # subclasses: dataclasses
        given = {key: item for key, item in value.items() if key in known}
        for key, kind in cls.NESTED.items():
            if key in given:
                given[key] = (
                    None if given[key] is None else kind.from_record(given[key])
                )
        return cls(**given)


def _recorded(value: Any) -> Any:
    if isinstance(value, Spec):
        return value.to_record()
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ReadOptions(Spec):
    """What the user forced about reading cells; ``None`` or False: inferred.

    Unknown values and contradictory options are refused when it is made.

    Parameters
    ----------
    decimal : {",", "."}, optional
        The decimal mark (``--decimal``).
    time_format : str, optional
        The strftime format of the time column (``--time-format``).
    dayfirst : bool, default=False
        Read dates like ``01.02.2026`` day first (``--dayfirst``).
    time_unit : {"s", "ms"}, optional
        Read a numeric time column as seconds or milliseconds since 1970.
    tz : str, optional
        The IANA time zone of times without an offset (``--tz``).
    encoding : str, optional
        The text encoding of the file, like ``"cp1252"`` (``--encoding``).

    Raises
    ------
    RareEventError
        An unknown value, or ``time_format``, ``dayfirst`` and ``time_unit``
        given together.
    """

    decimal: str | None = None
    time_format: str | None = None
    dayfirst: bool = False
    time_unit: str | None = None
    tz: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.decimal is not None and self.decimal not in DECIMAL_MARKS:
            raise RareEventError(
                f"decimal {self.decimal!r}: use ',' or '.'", param="decimal"
            )
        if self.time_unit is not None and self.time_unit not in TIME_UNITS:
            raise RareEventError(
                f"time_unit {self.time_unit!r}: use one of {', '.join(TIME_UNITS)}",
                param="time_unit",
            )
        given = [
            name
            for name, on in (
                ("time_format", self.time_format is not None),
                ("dayfirst", self.dayfirst),
                ("time_unit", self.time_unit is not None),
            )
            if on
        ]
        if len(given) > 1:
            raise RareEventError(
                f"`{given[0]}` and `{given[1]}` contradict each other: give one of them"
            )
        if self.time_format is not None:
            check_time_format(self.time_format)
        if self.tz is not None:
            check_tz(self.tz)
        if self.encoding is not None:
            check_encoding(self.encoding)


@dataclass(frozen=True)
class InputSpec(Spec):
    """How to take a file's columns: their roles (time, label, dropped, the group of a
    fleet), blank-cell repair, and the reading options.

    For scoring, ``time`` and ``label`` name the file's columns where they
    differ from the run's (``None``: the run's); ``drop`` is for training.

    Parameters
    ----------
    time : str, optional
        The time column (default: ``time``, ``timestamp``, ``datetime`` or
        ``date``, else the first column of dates).
    label : str, optional
        The 0/1 event column (default: ``y``, ``label`` or ``anomaly``).
    drop : sequence of str, default=()
        Columns to leave out.
    group : str, optional
        The column whose values name the series of a fleet.
    fill : {"ffill", "interpolate", "drop"}, optional
        Repair blank cells (default: refuse them).
    read : ReadOptions, default=ReadOptions()
        How cells are read.

    Raises
    ------
    RareEventError
        An unknown ``fill``.
    """

    time: str | None = None
    label: str | None = None
    drop: tuple[str, ...] = ()
    group: str | None = None
    fill: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    NESTED: ClassVar[dict[str, type[Spec]]] = {"read": ReadOptions}

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "drop", tuple(self.drop)
        )  # a list given is kept as a tuple: the spec stays hashable and frozen
        check_fill(self.fill)


@dataclass(frozen=True)
class Resampling(Spec):
    """``--resample EVERY --agg HOW``: the grid step (a duration for dates, column units
    for numbers) and how a cell's rows combine.

    The step's unit is checked against the time column when the file is read
    (:func:`rareevent.gaps.grid_step`).
    """

    every: str
    agg: str = "mean"

    def __post_init__(self) -> None:
        if self.agg not in AGGREGATIONS:
            raise RareEventError(
                f"agg {self.agg!r}: use one of {', '.join(AGGREGATIONS)}", param="agg"
            )


@dataclass(frozen=True)
class SplitSpec(Spec):
    """How training rows are split in time order and cut into segments.

    Parameters
    ----------
    valid_frac : float, default=0.2
        The share of the rows, after the training part, that chooses the
        threshold and stops training early.
    test_frac : float, default=0.2
        The share of the rows, at the end, that measures the run (may be 0).
    max_gap : str, optional
        A time step larger than this is a gap: ``"10min"``, a number in the
        time column's unit, a multiple of the median step (``"5x"``, the
        default) or ``"none"``.
    resample : Resampling, optional
        Put the rows on a regular grid first.

    Raises
    ------
    RareEventError
        Fractions that leave too little to train on, or a malformed ``max_gap``.
    """

    valid_frac: float = 0.2
    test_frac: float = 0.2
    max_gap: str | None = None
    resample: Resampling | None = None
    NESTED: ClassVar[dict[str, type[Spec]]] = {"resample": Resampling}

    def __post_init__(self) -> None:
        check_fractions(self.valid_frac, self.test_frac)
        check_max_gap(self.max_gap)


@dataclass(frozen=True)
class TrainSpec(Spec):
    """What ``train`` reads and how it splits it.

    Parameters
    ----------
    input : InputSpec, default=InputSpec()
        Column roles, blank-cell repair and reading options.
    split : SplitSpec, default=SplitSpec()
        The part fractions, the gap rule and the grid.
    context : str or sequence of str, optional
        Context columns: names or glob patterns, ``"auto"`` or ``"none"``
        (default: the detector's ``context``).

    Examples
    --------
    >>> from rareevent.options import InputSpec, ReadOptions, SplitSpec, TrainSpec
    >>> spec = TrainSpec(InputSpec(label="label", read=ReadOptions(decimal=",")),
    ...                  SplitSpec(valid_frac=0.2, test_frac=0.1, max_gap="10min"))
    >>> spec.split.test_frac
    0.1
    >>> SplitSpec(valid_frac=0)
    Traceback (most recent call last):
    ...
    rareevent.errors.RareEventError: valid_frac must be above 0: the threshold and early
    stopping need a validation part
    """

    input: InputSpec = field(default_factory=InputSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    context: str | tuple[str, ...] | None = None
    NESTED: ClassVar[dict[str, type[Spec]]] = {"input": InputSpec, "split": SplitSpec}

    def __post_init__(self) -> None:
        if self.context is not None and not isinstance(self.context, str):
            object.__setattr__(self, "context", tuple(self.context))


SPAN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)
SPAN_UNITS = {
    "s": 1,
    "sec": 1,
    "min": 60,
    "h": 3600,
    "d": 86_400,
}  # a duration's unit -> seconds; no unit: rows
MAX_SPAN_ROWS = 100_000  # the most rows a span may cover (as a detector's lookback)
OFF = "off"
AUTO_SPAN = "auto"  # training settles it from the data (rareevent.decision.settle)


def parse_span(value: int | str, name: str) -> tuple[int, float | None]:
    """A span: rows (``10``) or a duration (``10min``, ``90s``, ``2h``, ``1d``).

    Returns ``(rows, None)`` for a row count, ``(0, seconds)`` for a duration;
    ``off`` is 0 rows. A bad value names ``name``.
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        if 0 <= value <= MAX_SPAN_ROWS:
            return value, None
    elif isinstance(value, str):
        if value.strip().lower() == OFF:
            return 0, None
        match = SPAN.fullmatch(value)
        if match is not None:
            number, unit = float(match.group(1)), match.group(2).lower()
            if not unit and number.is_integer() and number <= MAX_SPAN_ROWS:
                return int(number), None
            if unit in SPAN_UNITS and number > 0:
                return 0, number * SPAN_UNITS[unit]
    raise RareEventError(
        f"{name} {value!r}: give rows (like 10, at most {MAX_SPAN_ROWS:,}), "
        "a duration (like 90s, 10min, 2h, 1d) or off",
        param=name,
    )


@dataclass(frozen=True)
class AlarmPolicy(Spec):
    """How window scores become alarms (``rareevent.decision``); ``None``: the run's own.

    ``threshold``: a number, or an unlabelled strategy (``quantile:Q``,
    ``pot:R``) chosen on the run's validation scores. ``margin`` multiplies
    it. ``min_duration``: windows (or a duration) the condition must hold
    before a window alarms. ``cooldown``: windows (or a duration) an alarm
    stays up after the condition clears, so closer episodes merge.
    ``shortest_event``: the shortest event worth an alarm, which sets the
    time scale on which scores are judged against the data being scored
    (``off``: the threshold alone decides). ``auto`` (the training default
    of both ``shortest_event`` and ``cooldown``) is settled when a run is
    trained: the shortest labelled event of the training rows, or 100 rows.
    """

    threshold: float | str | None = None
    margin: float | None = None
    min_duration: int | str | None = None
    cooldown: int | str | None = None
    shortest_event: int | str | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(
                self.threshold, (int, float, str)
            ):
                raise RareEventError(
                    f"threshold must be a number or a strategy, got {self.threshold!r}",
                    param="threshold",
                )
            if not isinstance(self.threshold, str) and not (
                math.isfinite(self.threshold) and self.threshold >= 0
            ):
                raise RareEventError(
                    f"threshold must be a finite number of 0 or more, got {self.threshold!r}",
                    param="threshold",
                )
        if self.margin is not None and (
            isinstance(self.margin, bool)
            or not isinstance(self.margin, (int, float))
            or not 0 < self.margin <= 1000
        ):
            raise RareEventError(
                f"margin must be above 0 and at most 1000, got {self.margin!r}",
                param="margin",
            )
        for name in ("min_duration", "cooldown", "shortest_event"):
            value = getattr(self, name)
            if value is not None and not (
                value == AUTO_SPAN and name in ("cooldown", "shortest_event")
            ):
                parse_span(value, name)
        if isinstance(self.threshold, str):
            from rareevent.threshold import parse_strategy  # a strategy's own checks

            parse_strategy(self.threshold)

    def over(self, base: AlarmPolicy) -> AlarmPolicy:
        """This policy where it says something, ``base`` (a run's default) elsewhere."""
        return AlarmPolicy(
            **{
                f.name: getattr(base, f.name)
                if getattr(self, f.name) is None
                else getattr(self, f.name)
                for f in fields(self)
            }
        )


@dataclass(frozen=True)
class ScoreSpec(Spec):
    """What ``score`` reads and how: the input and the rows read per chunk.

    Parameters
    ----------
    input : InputSpec, default=InputSpec()
        Columns that differ from the run's, blank-cell repair and reading
        options (default: the file is read as the run read its training file).
    chunk_rows : int
        Rows read per chunk; memory stays bounded by it, and the output is
        the same for any value.

    Raises
    ------
    RareEventError
        ``chunk_rows`` is not a whole number above 0.
    """

    input: InputSpec = field(default_factory=InputSpec)
    chunk_rows: int = CHUNK_ROWS
    alarm: AlarmPolicy = field(default_factory=AlarmPolicy)
    NESTED: ClassVar[dict[str, type[Spec]]] = {"input": InputSpec, "alarm": AlarmPolicy}

    def __post_init__(self) -> None:
        if (
            isinstance(self.chunk_rows, bool)
            or not isinstance(self.chunk_rows, int)
            or self.chunk_rows < 1
        ):
            raise RareEventError(
                f"chunk_rows must be a whole number of rows above 0, got {self.chunk_rows!r}",
                param="chunk_rows",
            )
