"""Time parsing: a time column's cells as datetimes (UTC) or numbers, checked.

Times are ISO 8601 (an offset becomes UTC), plain numbers or numbers of a
unit since 1970, a strftime format, or wall-clock times of a zone (``tz``)
whose repeated autumn hour is resolved by file order. Every problem names
the file, the column and the line: a blank, unreadable or out-of-range time,
a UTC offset on some times but not on others, times that do not increase
strictly (across chunk borders too).

:func:`time_reading` settles how a file's times are read (the time part of
its :class:`~rareevent.reading.Reading`): the run's format where it fits,
else dates like ``31.01.2026`` get a format whose day/month order comes from
the whole column. It is separate from the chunked reader
(:mod:`rareevent.frames`), which calls it for the time column of each frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.options import TIME_UNITS, ReadOptions
from rareevent.reading import Reading, to_numbers
from rareevent.sniffing import DAY_MONTH, CsvFormat, FileLines

if TYPE_CHECKING:
    from rareevent.columns import Columns

# an ISO time's offset: 2026-01-31T13:45:00+01:00, ...Z
_UTC_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)$"

_DAY_MONTH_FIELDS = r"^\s*(\d{1,2})[./-](\d{1,2})[./-]"


@dataclass(frozen=True)
class TimeKind:
    """Whether the first time of a file carries a UTC offset, and that time's text."""

    aware: bool
    text: str


def check_time_kind(
    frame: pd.DataFrame,
    fmt: CsvFormat,
    name: str,
    reading: Reading,
    first: TimeKind | None,
) -> TimeKind | None:
    """The kind of the file's first time (``first``, else this frame's), checked on ``frame``.

    A frame is one chunk of a file, or rows appended to a followed file:
    each is checked against the file's first time, so that the same file
    is refused whatever its chunk size (a per-chunk check would take a
    chunk that starts with naive times as naive). As within one frame, it
    holds only for ISO times without ``--tz`` (see :func:`_check_offsets`).
    """
    series = frame[name]
    if (
        reading.time_format is not None
        or reading.tz is not None
        or (
            not pd.api.types.is_object_dtype(series)
            and not pd.api.types.is_string_dtype(series)
        )
    ):
        return first
    present = series.notna().to_numpy()
    if not present.any():
        return first
    aware = series.astype(str).str.contains(_UTC_OFFSET).to_numpy() & present
    if first is None:
        at = int(present.argmax())
        first = TimeKind(bool(aware[at]), str(series.iloc[at]))
    differs = present & (aware != first.aware)
    if differs.any():
        row = int(differs.argmax())
        lines = FileLines(fmt, frame.index.to_numpy(dtype=np.int64))
        has = "has no UTC offset, unlike" if first.aware else "has a UTC offset, unlike"
        raise RareEventError(
            f"{fmt.path}: time {str(series.iloc[row])[:30]!r} in column {name!r} at line "
            f"{lines[row]} {has} the first time {first.text[:30]!r}",
            hint="give every time the same form",
        )
    return first


def checked_times(
    series: pd.Series,
    path: Path,
    name: str,
    lines: FileLines,
    previous: object | None,
    reading: Reading,
) -> np.ndarray:
    """A frame's time cells as values (``reading``'s format and zone), checked in order.

    ``previous`` is the last time of the frame before, so order is checked across frames.
    """
    return _check_order(
        _time_values(series, path, name, lines, reading, previous),
        path,
        name,
        lines,
        previous,
        reading.tz,
    )


def time_values(
    frame: pd.DataFrame, fmt: CsvFormat, name: str, reading: Reading
) -> np.ndarray:
    """The times of column ``name`` of a frame read from ``fmt`` (dates, or numbers).

    In row order, and not checked for order.
    """
    return _time_values(
        frame[name], fmt.path, name, FileLines(fmt, np.arange(len(frame))), reading
    )


def _time_values(
    series: pd.Series,
    path: Path,
    name: str,
    lines: FileLines,
    reading: Reading,
    previous: object | None = None,
) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(
        series
    ):  # a typed table's timestamps: nothing to parse
        parsed = (
            series.dt.tz_convert("UTC").dt.tz_localize(None)
            if isinstance(series.dtype, pd.DatetimeTZDtype)
            else series
        )
        values = parsed.to_numpy(dtype="datetime64[ns]")
        if np.isnat(values).any():
            raise RareEventError(
                f"{path}: blank time in column {name!r} "
                f"at line {lines[int(np.flatnonzero(np.isnat(values))[0])]}"
            )
        return values
    if reading.time_format is not None:
        numeric = None
    else:  # the default reading costs what it did before readings existed
        numeric = (
            pd.to_numeric(series, errors="coerce")
            if reading.decimal == "."
            else to_numbers(series, reading)[0]
        )
    if numeric is not None and numeric.notna().all():
        values = numeric.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RareEventError(
                f"{path}: infinite time in column {name!r} at line {lines[row]}"
            )
        if reading.time_unit is not None:
            values = _epoch_times(values, series, path, name, lines, reading.time_unit)
    elif numeric is not None and reading.time_unit is not None:
        row = int(np.flatnonzero(numeric.isna().to_numpy())[0])
        raise RareEventError(
            f"{path}: cannot read time {str(series.iloc[row])[:30]!r} in column {name!r} "
            f"at line {lines[row]} as a number of {reading.time_unit} since 1970"
        )
    else:
        if (
            reading.time_format is None and reading.tz is None
        ):  # with --tz a time without offset is in that zone: mixing is fine
            _check_offsets(series, path, name, lines)
        parsed, expected = _parse_datetimes(
            series, path, name, reading.time_format, local=reading.tz is not None
        )
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            where = (
                f"{path}: cannot parse time {str(series.iloc[row])[:30]!r} "
                f"in column {name!r} at line {lines[row]}"
            )
            if expected is None:
                raise RareEventError(
                    where,
                    hint="use ISO times like 2024-01-31 13:45:00 or plain numbers, or `time=NAME`",
                )
            raise RareEventError(
                f"{where}: it does not match {expected}",
                hint="a time column holds one format; `time_format=FORMAT` sets it",
            )
        if reading.tz is not None:
            return _localized(parsed, series, path, name, lines, reading.tz, previous)
        return parsed.to_numpy(dtype="datetime64[ns]")
    return values


def _localized(
    parsed: pd.Series,
    series: pd.Series,
    path: Path,
    name: str,
    lines: FileLines,
    tz: str,
    previous: object | None,
) -> np.ndarray:
    """Times as UTC, from ``parsed``: UTC where a cell has an offset, else wall times of ``tz``.

    A wall-clock time of the repeated autumn hour is resolved by file order:
    until the clock goes back (the first step in that hour that does not
    increase) it is summer time, after it standard time. ``previous`` (the
    last UTC time of the chunk before) carries that across chunk borders.
    A time in the skipped spring hour does not exist and is refused.
    """
    values = parsed.to_numpy(dtype="datetime64[ns]")
    local = ~series.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", na=False).to_numpy()
    if not local.any():
        return values
    wall = pd.DatetimeIndex(values[local])
    probe = wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    missing = np.flatnonzero(probe.isna())
    summer = np.zeros(len(wall), bool)
    if missing.size:
        exists = (
            wall[missing].tz_localize(tz, ambiguous=True, nonexistent="NaT").notna()
        )
        if not exists.all():
            row = int(np.flatnonzero(local)[missing[np.argmin(exists)]])
            raise RareEventError(
                f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} "
                f"at line {lines[row]} does not exist in {tz}: "
                "the clock skips that hour in spring"
            )
        summer[missing] = _first_pass(wall, missing, tz, previous)
    aware = wall.tz_localize(tz, ambiguous=summer | ~probe.isna(), nonexistent="raise")
    values[local] = (
        aware.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
    )
    return values


def _first_pass(
    wall: pd.DatetimeIndex, ambiguous: np.ndarray, tz: str, previous: object | None
) -> np.ndarray:
    """Whether each position in ``ambiguous`` is the first, summer-time pass of its hour.

    ``ambiguous`` holds the positions of wall times of a repeated hour, in
    file order. Within one repeated hour, the first step that does not
    increase is the clock going back. ``previous`` (the UTC time before
    ``wall``, from the chunk before) continues an hour that chunk began.
    """
    ticks = wall.asi8[ambiguous]
    summer = np.ones(len(ticks), bool)
    blocks = np.split(
        np.arange(len(ticks)), np.flatnonzero(np.diff(ambiguous) > 1) + 1
    )  # one per repeated hour
    before = (
        pd.Timestamp(previous).tz_localize("UTC").tz_convert(tz)
        if isinstance(previous, np.datetime64)
        else None
    )
    carried = (
        before is not None
        and ambiguous[0] == 0
        and before.tz_localize(None).floor("h") == wall[0].floor("h")
    )
    for k, block in enumerate(blocks):
        values, lead = ticks[block], 0
        if k == 0 and carried and before is not None:
            if not before.dst():  # the chunk before is already past the clock change
                summer[block] = False
                continue
            values, lead = np.r_[before.tz_localize(None).value, values], 1
        turned = np.flatnonzero(np.diff(values) <= 0)
        if turned.size:
            summer[block[turned[0] + 1 - lead :]] = False
    return summer


def _check_order(
    values: np.ndarray,
    path: Path,
    name: str,
    lines: FileLines,
    previous: object | None,
    tz: str | None = None,
) -> np.ndarray:
    """``values`` when they increase strictly (from ``previous`` on), else the error.

    The error names the first line out of order.

    ``tz`` is the zone the times were read in (``--tz``): a step back of up
    to an hour then hints at another zone, not at passing one.
    """
    order = (
        values
        if previous is None
        else np.concatenate([np.asarray([previous], dtype=values.dtype), values])
    )
    try:
        steps = np.diff(order)
    except TypeError:
        raise RareEventError(
            f"{path}: time column {name!r} mixes numbers and dates"
        ) from None
    not_increasing = steps <= steps.dtype.type(0)
    if not_increasing.any():
        step = int(np.flatnonzero(not_increasing)[0])
        row = step if previous is not None else step + 1
        word = "repeats" if steps[step] == steps.dtype.type(0) else "goes backwards"
        hint = "rows must be in strictly increasing time order"
        if np.issubdtype(steps.dtype, np.timedelta64) and -np.timedelta64(
            1, "h"
        ) <= steps[step] <= np.timedelta64(0, "h"):
            hint = (
                "if the times are local, this may be the autumn clock change repeating an hour: "
                + (
                    f"the times were read as {tz}; is that the zone the file was written in? "
                    if tz
                    else "pass `tz=ZONE` (like Europe/Berlin); "
                )
                + "else "
                + hint
            )
        raise RareEventError(
            f"{path}: time in column {name!r} {word} at line {lines[row]}", hint=hint
        )
    return values


def _epoch_times(
    values: np.ndarray,
    series: pd.Series,
    path: Path,
    name: str,
    lines: FileLines,
    unit: str,
) -> np.ndarray:
    """Numbers of ``unit`` since 1970 as datetimes; refused outside the years 1678-2261."""
    seconds = values / TIME_UNITS[unit]
    out = (seconds <= pd.Timestamp.min.value / 1e9) | (
        seconds >= pd.Timestamp.max.value / 1e9
    )
    if out.any():
        row = int(np.flatnonzero(out)[0])
        other = "ms" if unit == "s" else "s"
        raise RareEventError(
            f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} "
            f"at line {lines[row]} is out of range as {unit} since 1970",
            hint=f"is it `time_unit={other}`?",
        )
    return pd.to_datetime(pd.Series(values), unit=unit).to_numpy(dtype="datetime64[ns]")


def _check_offsets(series: pd.Series, path: Path, name: str, lines: FileLines) -> None:
    """Refuse ISO times of which some carry a UTC offset and others do not.

    The naive ones would be read as UTC without a word.
    """
    aware = series.str.contains(_UTC_OFFSET, na=False).to_numpy()
    if not aware.any():
        return
    present = series.notna().to_numpy()
    first = int(present.argmax())
    differs = present & (aware != aware[first])
    if differs.any():
        row = int(differs.argmax())
        has = (
            "has no UTC offset, unlike" if aware[first] else "has a UTC offset, unlike"
        )
        raise RareEventError(
            f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} "
            f"at line {lines[row]} {has} the first time {str(series.iloc[first])[:30]!r}",
            hint="give every time the same form",
        )


def _parse_datetimes(
    series: pd.Series,
    path: Path,
    name: str,
    time_format: str | None = None,
    local: bool = False,
) -> tuple[pd.Series, str | None]:
    """Parse text times, and say what a failed value should have looked like.

    With ``time_format``, exactly that format. Otherwise ISO 8601 (offsets
    become UTC): when the first time is ISO, every time must be; else
    pandas' per-value inference, as a last resort for other shapes.
    With ``local`` (``--tz``) cells without an offset keep their wall-clock
    time, for :func:`_localized`; cells with one become UTC.
    """
    if local:
        offset = series.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", na=False)
        if offset.any():
            wall, expected = _parse_datetimes(
                series.where(~offset), path, name, time_format
            )
            utc, _ = _parse_datetimes(series.where(offset), path, name, None)
            return wall.where(~offset, utc), expected
    try:
        if time_format is not None:
            return pd.to_datetime(
                series, errors="coerce", format=time_format
            ), f"the time format {time_format!r}"
        parsed = pd.to_datetime(
            series,
            errors="coerce",
            format="ISO8601",
            utc=series.str.contains(_UTC_OFFSET, na=False).any(),
        )
        expected = (
            "ISO 8601 like the first time"
            if len(parsed) and pd.notna(parsed.iloc[0])
            else None
        )
        if parsed.isna().any() and expected is None:
            parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RareEventError(
            f"{path}: cannot parse the times in column {name!r} ({' '.join(str(exc).split())[:80]})"
        ) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed, expected


def time_reading(
    sample: pd.DataFrame | None,
    fmt: CsvFormat,
    columns: Columns,
    reading: Reading,
    options: ReadOptions,
    base: Reading,
    column_values: Callable[[], Iterable[pd.Series]],
) -> Reading:
    """Settle how the time column is read: the options, else the run's, else inferred.

    The run's reading (``base``) is kept where it fits: its time format when
    it reads every time of the sample. Otherwise day/month dates
    (``31.01.2026 13:45``, ``01/31/26``) get a strftime format whose order
    comes from ``column_values`` (the whole time column, read only when
    needed): the first value with a first field above 12 makes it day-first,
    one with a second field above 12 month-first; with neither, the run's
    order, else ``.`` and ``-`` dates are read day-first and ``/`` dates
    month-first, and the reading says it was assumed.
    """
    if options.time_format is not None or options.time_unit is not None:
        return _with_time(
            reading, time_format=options.time_format, time_unit=options.time_unit
        )
    first = (
        None
        if sample is None or columns.time is None
        else sample[columns.time].dropna()
    )
    if not options.dayfirst and (
        base.time_unit is not None
        or (
            base.time_format is not None
            and first is not None
            and _fits(first, base.time_format)
        )
    ):
        return _with_time(
            reading,
            base.time_format,
            base.time_unit,
            base.date_order,
            base.date_order_assumed,
        )
    shape = (
        DAY_MONTH.fullmatch(first.iloc[0]) if first is not None and len(first) else None
    )
    if shape is None:
        if options.dayfirst:
            shown = (
                f" (line {first.index[0] + 2}: {first.iloc[0][:30]!r})"
                if first is not None and len(first)
                else ""
            )
            raise RareEventError(
                f"{fmt.path}: `dayfirst`: the times in column {columns.time!r} "
                f"are not dates like 31.01.2026{shown}",
                hint="`time_format=FORMAT` reads other shapes",
                param="dayfirst",
            )
        return reading
    if options.dayfirst:
        return _with_time(
            reading, _day_month_format(shape, True), None, "day-first", False
        )
    day_row = month_row = None
    for values in column_values():
        fields = values.str.extract(_DAY_MONTH_FIELDS).apply(
            pd.to_numeric, errors="coerce"
        )
        day_row = _first_index(fields[0] > 12, day_row)
        month_row = _first_index(fields[1] > 12, month_row)
    if day_row is None and month_row is None:
        order, assumed = (
            base.date_order
            or ("month-first" if shape.group(2) == "/" else "day-first"),
            base.date_order_assumed or base.date_order is None,
        )
    else:
        order, assumed = (
            "day-first"
            if month_row is None or (day_row is not None and day_row < month_row)
            else "month-first",
            False,
        )
    return _with_time(
        reading, _day_month_format(shape, order == "day-first"), None, order, assumed
    )


def _fits(times: pd.Series, time_format: str) -> bool:
    """Whether every one of ``times`` (text) reads with ``time_format``."""
    return bool(len(times)) and bool(
        pd.to_datetime(times, format=time_format, errors="coerce").notna().all()
    )


def _first_index(mask: pd.Series, earlier: int | None) -> int | None:
    """The smaller of ``earlier`` and the first index label where ``mask`` holds."""
    hits = mask.to_numpy(bool)
    found = int(mask.index[hits.argmax()]) if hits.any() else None
    return (
        found if earlier is None else earlier if found is None else min(earlier, found)
    )


def _with_time(
    reading: Reading,
    time_format: str | None,
    time_unit: str | None,
    date_order: str | None = None,
    assumed: bool = False,
) -> Reading:
    return replace(
        reading,
        time_format=time_format,
        time_unit=time_unit,
        date_order=date_order,
        date_order_assumed=assumed,
    )


def _day_month_format(shape: re.Match[str], dayfirst: bool) -> str:
    """The strftime format of a day/month date like ``shape`` (a match of ``DAY_MONTH``)."""
    _, sep, _, year, tsep, _, _, seconds, fraction = shape.groups()
    day, month = ("%d", "%m") if dayfirst else ("%m", "%d")
    text = f"{day}{sep}{month}{sep}{'%Y' if len(year) == 4 else '%y'}"
    if tsep:
        text += (
            f"{tsep}%H:%M" + (":%S" if seconds else "") + (".%f" if fraction else "")
        )
    return text
