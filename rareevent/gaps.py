"""Time gaps and resampling: where the time axis breaks the rows into segments.

A **gap** is a step between two consecutive rows larger than ``--max-gap``:
a duration (``10min``, ``6h``) for a datetime column, a number in the
column's own unit for a numeric one, or a multiple of the median step
(``5x``) for either. The rule is resolved once, on the training file, to a
number (seconds between dates, units of a numeric column) that is saved in
the run, so scoring splits new data at the same steps whatever its chunks.
The rows after a gap start a new segment (``windows.inside_segments``).

``--resample EVERY --agg mean|last|max`` puts an irregular export on a
regular grid first; grid cells are aligned to 1970-01-01 (0 for numbers) so
that the same rows fall into the same cells however a file is chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.load import SensorData
from rareevent.options import (
    AGGREGATIONS,
    DEFAULT_MAX_GAP,
    MULTIPLE,
    NO_GAPS,
    Resampling,
    positive_gap,
)


def is_dated(time: np.ndarray | None) -> bool:
    """Whether a time axis holds datetimes (else plain numbers, measured in their own unit)."""
    return time is not None and np.issubdtype(np.asarray(time).dtype, np.datetime64)


def _as_number(time: np.ndarray) -> np.ndarray:
    """A time axis as float64: seconds since 1970 for datetimes, the values themselves
    for numbers.
    """
    if is_dated(time):
        return np.asarray(time, dtype="datetime64[ns]").astype(np.int64) / 1e9
    return np.asarray(time, dtype=np.float64)


def steps(time: np.ndarray, previous: Any = None) -> np.ndarray:
    """The step before every row (seconds between dates; column units for numbers);
    ``nan`` for a first row with no ``previous``.
    """
    values = _as_number(time)
    before = (
        np.nan
        if previous is None
        else float(_as_number(np.asarray([previous], dtype=np.asarray(time).dtype))[0])
    )
    return np.diff(np.concatenate([[before], values]))


def resolve_max_gap(
    text: str | None, time: np.ndarray | None, column: str | None, path: Any
) -> float | None:
    """The largest step that is not a gap, as a number (seconds for dates); ``None``: no gap rule.

    ``text`` is ``--max-gap`` (``None``: the default ``5x``, which is
    skipped silently without a time column); ``none``/``off`` turns gaps off.
    """
    explicit = text is not None
    text = DEFAULT_MAX_GAP if text is None else text.strip()
    if text.lower() in NO_GAPS:
        return None
    if time is None:
        if explicit:
            raise RareEventError(
                f"{path}: `max_gap` needs a time column",
                hint="name it with `time`, or leave `max_gap` out",
                param="max_gap",
            )
        return None
    multiple = MULTIPLE.fullmatch(text)
    if multiple:
        factor = positive_gap(text, float(multiple.group(1)))
        step = steps(time)[1:]
        return factor * float(np.median(step)) if step.size else None
    try:
        number = float(text)
    except ValueError:
        number = None
    if is_dated(time):
        if number is not None:
            raise RareEventError(
                f"{path}: `max_gap` {text!r}: time column {column!r} holds dates: "
                "give a duration like 10min or a multiple of the median step like 5x",
                param="max_gap",
            )
        try:
            seconds = pd.Timedelta(text).total_seconds()
        except ValueError:
            raise RareEventError(
                f"max_gap {text!r}: give a duration like 10min or 6h, or a "
                "multiple of the median step like 5x",
                param="max_gap",
            ) from None
        return positive_gap(text, seconds)
    if number is None:
        raise RareEventError(
            f"{path}: `max_gap` {text!r}: time column {column!r} holds plain "
            "numbers: give the step in its own unit (like 50) or a multiple like 5x",
            hint="`time_unit=s|ms` reads epoch numbers as dates, for durations like 10min",
            param="max_gap",
        )
    return positive_gap(text, number)


def gap_starts(
    time: np.ndarray | None, n_rows: int, max_gap: float | None, previous: Any = None
) -> np.ndarray:
    """The per-row ``starts`` mask: row 0 (without ``previous``) and every row after a
    gap begin a segment.
    """
    starts = np.zeros(n_rows, bool)
    if previous is None:
        starts[:1] = True
    if time is not None and max_gap is not None:
        with np.errstate(invalid="ignore"):
            starts |= steps(time, previous) > max_gap
    return starts


def check_time_kind(
    gap_rule: GapSummary | None, time: np.ndarray | None, column: str | None, path: Any
) -> float | None:
    """The run's max-gap for a new file, refusing a time column of the other kind (dates
    against numbers).
    """
    if gap_rule is None or time is None:
        return None
    if is_dated(time) != (gap_rule.unit == "s"):
        run_kind, file_kind = (
            ("dates", "plain numbers")
            if gap_rule.unit == "s"
            else ("plain numbers", "dates")
        )
        raise RareEventError(
            f"{path}: time column {column!r} holds {file_kind}, but the run "
            f"measured gaps between {run_kind}",
            hint="read the time column as the run did (`time`, `time_unit`)",
        )
    return float(gap_rule.max_gap_value)


@dataclass(frozen=True, kw_only=True)
class GapSummary:
    """A run's ``gaps``: the ``max_gap`` rule and what it found in the training data
    (older runs may lack the counts).
    """

    max_gap: str
    max_gap_value: float
    unit: str  # "s" (a dated time column) or "column" (its own numbers)
    segments: int | None = None
    gaps: int | None = None
    longest_gap: float | None = None
    skipped_segments: int | None = None
    skipped_rows: int | None = None


def median_seconds(time: np.ndarray | None) -> float | None:
    """The median step between rows of a dated time column, in seconds (else ``None``)."""
    if time is None or len(time) < 2 or not is_dated(time):
        return None
    step = steps(time)[1:]
    step = step[np.isfinite(step) & (step > 0)]
    return float(np.median(step)) if step.size else None


def summary(
    time: np.ndarray | None,
    starts: np.ndarray,
    lookback: int,
    rule: str | None,
    max_gap: float | None,
) -> GapSummary | None:
    """What the gap rule found in a file, for run.json and the train summary (``None``
    without a rule).
    """
    if max_gap is None:
        return None
    lengths = np.diff(np.append(np.flatnonzero(starts), len(starts)))
    gap_steps = steps(time)[starts] if time is not None else np.empty(0)
    gap_steps = gap_steps[np.isfinite(gap_steps)]
    short = lengths < lookback
    return GapSummary(
        max_gap=rule or DEFAULT_MAX_GAP,
        max_gap_value=float(max_gap),
        unit="s" if is_dated(time) else "column",
        segments=len(lengths),
        gaps=len(gap_steps),
        longest_gap=float(gap_steps.max()) if gap_steps.size else None,
        skipped_segments=int(short.sum()),
        skipped_rows=int(lengths[short].sum()),
    )


def gap_rule_ok(value: Any) -> bool:
    """Whether a run.json ``gaps`` field is well formed (``None``: no gap rule, as for
    runs saved before gaps).
    """
    if value is None:
        return True

    def number(v: object) -> bool:
        return (
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        )

    return (
        isinstance(value, dict)
        and isinstance(value.get("max_gap"), str)
        and number(value.get("max_gap_value"))
        and value["max_gap_value"] > 0
        and value.get("unit") in ("s", "column")
    )


def resample_record_ok(value: Any) -> bool:
    """Whether a run.json ``resample`` field is well formed (``None``: the run did not resample)."""
    return value is None or (
        isinstance(value, dict)
        and isinstance(value.get("every"), str)
        and value.get("agg") in AGGREGATIONS
    )


def run_grid(saved: dict[str, Any] | None) -> Resampling | None:
    """The grid a run put its rows on (its ``resample`` record, which also counts rows),
    or ``None`` when it did not resample.
    """
    return None if not saved else Resampling.from_record(saved)


def grid_step(how: Resampling, time: np.ndarray, column: str | None) -> float:
    """The grid step of ``how`` in the axis' unit (seconds for dates): a duration for
    dates, a number for a numeric column.
    """
    try:
        value = (
            pd.Timedelta(how.every).total_seconds()
            if is_dated(time)
            else float(how.every)
        )
    except ValueError:
        kind = (
            "a duration like 1min"
            if is_dated(time)
            else f"a step in the unit of the numeric time column {column!r}, like 10"
        )
        raise RareEventError(
            f"resample {how.every!r}: give {kind}", param="resample"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise RareEventError(
            f"resample {how.every!r} must be above 0", param="resample"
        )
    return value


def _cells(time: np.ndarray, step: float) -> np.ndarray:
    """The grid cell of every time: ``floor(time / step)``, in integer nanoseconds for
    dates (exact).
    """
    if is_dated(time):
        return np.asarray(time, dtype="datetime64[ns]").astype(np.int64) // int(
            round(step * 1e9)
        )
    return np.floor(np.asarray(time, dtype=np.float64) / step).astype(np.int64)


def _cell_times(cells: np.ndarray, step: float, dated: bool) -> np.ndarray:
    """The start time of grid cells (the inverse of :func:`_cells`)."""
    if dated:
        return (cells * int(round(step * 1e9))).astype("datetime64[ns]")
    return cells * step


def resample(
    data: SensorData,
    how: Resampling,
    fill: str | None,
    after: int | None = None,
    anchor: np.ndarray | None = None,
) -> tuple[SensorData, int]:
    """``data`` on the grid of ``how``: one row per cell from the first cell (or the
    cell after ``after``) to the last.

    Sensors are aggregated with ``how.agg``; a cell's label is 1 when any of
    its rows is an event; its ``rows`` entry is the data-row number of its
    first row (of the row after it, for an empty cell). Empty cells follow
    ``fill`` (``ffill``/``interpolate`` repair them from the cells around,
    ``anchor`` being the sensor values of cell ``after``; ``drop`` leaves
    them out; ``None`` refuses the first one). Returns the new data and the
    count of empty cells.
    """
    columns = data.columns
    if data.time is None:
        raise RareEventError(
            f"{data.path}: `resample` needs a time column",
            hint="name it with `time`",
            param="resample",
        )
    step = grid_step(how, data.time, columns.time)
    cells = _cells(data.time, step)
    first = cells[0] if after is None else after + 1
    grid = np.arange(first, cells[-1] + 1)
    frame = pd.DataFrame(data.X, columns=columns.features)
    grouped = frame.groupby(cells, sort=True)
    values = grouped.agg(how.agg).reindex(grid)
    labels = (
        None
        if data.y is None
        else pd.Series(data.y)
        .groupby(cells, sort=True)
        .max()
        .reindex(grid)
        .fillna(0)
        .to_numpy(np.int8)
    )
    first_rows = pd.Series(data.rows).groupby(cells, sort=True).first().reindex(grid)
    empty = values.iloc[:, 0].isna().to_numpy()
    if empty.any():
        if fill is None:
            when = _cell_times(grid[empty][:1], step, is_dated(data.time))[0]
            raise RareEventError(
                f"{data.path}: no rows in the `resample` {how.every} grid cell at "
                f"{_time_text(when)}",
                hint="repair empty cells with `fill=ffill`, `fill=interpolate` or "
                "`fill=drop` (drop keeps the hole, and a long one is a gap)",
            )
        if fill == "drop":
            values, grid, first_rows = values[~empty], grid[~empty], first_rows[~empty]
            labels = None if labels is None else labels[~empty]
        else:
            head = (
                None
                if anchor is None
                else pd.DataFrame(anchor.reshape(1, -1), columns=values.columns)
            )
            filled = pd.concat([head, values]) if head is not None else values
            filled = (
                filled.interpolate(limit_direction="both")
                if fill == "interpolate"
                else filled.ffill().bfill()
            )
            values = filled.iloc[len(filled) - len(values) :]
    time = _cell_times(grid, step, is_dated(data.time))
    rows = first_rows.bfill().to_numpy(
        np.int64
    )  # an empty cell: the row after it (always in the same chunk)
    resampled = replace(
        data, X=values.to_numpy(np.float64), y=labels, time=time, rows=rows
    )
    return resampled, int(empty.sum())


def regrid(
    data: SensorData, how: Resampling | None, fill: str | None
) -> tuple[SensorData, dict[str, Any] | None]:
    """``data`` resampled by ``how`` (unchanged without one), and the run.json
    ``resample`` record.
    """
    if how is None:
        return data, None
    resampled, empty = resample(data, how, fill)
    return resampled, {
        "every": how.every,
        "agg": how.agg,
        "rows": len(resampled),
        "empty_cells": empty,
    }


class GridChain:
    """Resample a file chunk by chunk with the same cells as in one piece.

    The rows of a chunk's last cell wait for the next chunk (its cell may go
    on there); the grid resumes after the last cell released, and empty
    cells at a chunk's start are repaired from that cell's values.
    """

    def __init__(self, how: Resampling, fill: str | None) -> None:
        self.how, self.fill = how, fill
        self.pending: SensorData | None = None
        self.after: int | None = None
        self.anchor: np.ndarray | None = None
        self.n_empty = 0

    def feed(self, block: SensorData | None) -> SensorData | None:
        """The grid rows complete after ``block`` (``None``: the end of the file
        releases the rest).
        """
        data = (
            self.pending
            if block is None
            else block
            if self.pending is None
            else _concat(self.pending, block)
        )
        if data is None or len(data) == 0:
            return None
        assert data.time is not None, (
            "a run that resampled has a time column, and so do the files it reads"
        )
        cells = _cells(data.time, grid_step(self.how, data.time, data.columns.time))
        cut = len(data) if block is None else int(np.searchsorted(cells, cells[-1]))
        self.pending = None if cut == len(data) else _take(data, slice(cut, None))
        if cut == 0:
            return None
        ready, empty = resample(
            _take(data, slice(0, cut)), self.how, self.fill, self.after, self.anchor
        )
        self.n_empty += empty
        self.after, self.anchor = int(cells[cut - 1]), ready.X[-1]
        return replace(
            ready, n_filled=0 if block is None else block.n_filled
        )  # rows held back were counted when read


def _take(data: SensorData, part: slice) -> SensorData:
    pick = lambda a: None if a is None else a[part]  # noqa: E731
    return replace(
        data, X=data.X[part], y=pick(data.y), time=pick(data.time), rows=data.rows[part]
    )


def _concat(a: SensorData, b: SensorData) -> SensorData:
    join = lambda u, v: None if u is None or v is None else np.concatenate([u, v])  # noqa: E731
    return replace(
        b,
        X=np.concatenate([a.X, b.X]),
        y=join(a.y, b.y),
        time=join(a.time, b.time),
        rows=np.concatenate([a.rows, b.rows]),
        n_filled=b.n_filled,
    )


def _time_text(value: Any) -> str:
    return (
        str(pd.Timestamp(value)) if isinstance(value, np.datetime64) else f"{value:g}"
    )


def describe_gap(value: float | None, unit: str) -> str:
    """A step for people: ``6h 30min`` for seconds between dates, the number otherwise."""
    if value is None:
        return "-"
    if unit != "s":
        return f"{value:g}"
    if value < 60:
        return f"{value:g}s"
    minutes = int(round(value / 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return (
        " ".join(
            f"{n}{name}"
            for n, name in ((days, "d"), (hours, "h"), (minutes, "min"))
            if n
        )
        or "0min"
    )
