"""The window stream: a file's raw frames in, complete windows out, in bounded memory.

Scoring a file, following a growing one and encoding one all read rows the
same way: sniffed and matched to the run's columns (``open_csv``), their
reading settled from the options, the run and the file (``settle_reading``),
validated frame by frame, put on the run's ``--resample`` grid, split at
time gaps, and cut into the windows the model reads. :class:`WindowStream`
holds every piece of state this carries from one frame to the next, so the
windows are the same however the rows are cut. It knows nothing of models
or scores: what is done with a window (scored, encoded) is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent import gaps, windows
from rareevent.errors import RareEventError
from rareevent.load import (
    Columns,
    CsvFormat,
    Reading,
    SensorData,
    TimeKind,
    check_time_kind,
    columns_for_model,
    decimal_reading,
    read_frames,
    sniff,
    text_sample,
    time_reading,
    validate_frame,
)
from rareevent.options import InputSpec, ScoreSpec
from rareevent.record import RunView


@dataclass
class _Buffer:
    """Validated rows not yet fully consumed by windows."""

    X: np.ndarray
    y: np.ndarray | None
    time: np.ndarray | None
    rows: np.ndarray
    starts: np.ndarray

    def extend(self, block: SensorData, starts: np.ndarray) -> None:
        self.X = np.concatenate([self.X, block.X])
        self.rows = np.concatenate([self.rows, block.rows])
        self.starts = np.concatenate([self.starts, starts])
        if self.y is not None and block.y is not None:
            self.y = np.concatenate([self.y, block.y])
        if self.time is not None and block.time is not None:
            self.time = np.concatenate([self.time, block.time])

    def drop_first(self, n: int) -> None:
        self.X, self.rows, self.starts = self.X[n:], self.rows[n:], self.starts[n:]
        self.y = None if self.y is None else self.y[n:]
        self.time = None if self.time is None else self.time[n:]


@dataclass
class WindowBlock:
    """What one step of reading releases: the new rows, and the windows now complete.

    ``rows`` is the validated chunk just read, on the run's grid when it
    was trained with ``--resample`` (for counting, labels, time), and
    ``starts`` marks its rows that begin a segment; ``X`` the rows whose ``n`` windows are ready
    (``n + T - 1`` rows), ``first`` the index of the first of them in the
    file, ``keep`` which lie inside one segment and ``resets`` which begin
    one. ``ends``/``end_time``/``end_label`` describe the kept windows' last rows.
    """

    rows: SensorData
    starts: np.ndarray
    n: int = 0
    first: int = 0
    X: np.ndarray | None = None
    keep: np.ndarray | None = None
    resets: np.ndarray | None = None
    ends: np.ndarray | None = None
    end_time: np.ndarray | None = None
    end_label: np.ndarray | None = None

    def key_columns(self) -> dict[str, Any]:
        """The columns that open every per-window output.

        ``row`` (the end row) and, with a time column, ``time``.
        """
        return (
            {"row": self.ends}
            if self.end_time is None
            else {"row": self.ends, "time": self.end_time}
        )

    def positions(self, lookback: int) -> np.ndarray:
        """The end position (among the file's validated rows) of every kept window."""
        return (self.first + lookback - 1 + np.arange(self.n))[self.keep]


class WindowStream:
    """Raw frames in, complete windows out: every piece of state carried from one frame to the next.

    Validation carries the time-order check and the fill anchor across
    frames, and with ``--fill interpolate`` holds a frame's trailing rows
    with blanks back until a complete row follows, so they are interpolated
    towards it exactly as in one piece. A run trained with ``--resample``
    holds the last grid cell back (its rows may go on in the next frame).
    The run's gap rule marks the rows that start a segment, and the buffer
    keeps the rows not yet at the end of a released window (``T-1`` or
    more). Windows are released in whole multiples of ``batch``: with
    ``PREDICT_BATCH`` the model sees the same blocks however a file is cut.
    """

    def __init__(
        self,
        fmt: CsvFormat,
        columns: Columns,
        reading: Reading,
        record: RunView,
        fill: str | None,
        batch: int = 1,
    ) -> None:
        self.fmt, self.columns, self.reading, self.fill = fmt, columns, reading, fill
        self.lookback = record.lookback
        self.batch = batch
        self.gap_rule = record.gaps
        grid = gaps.run_grid(record.resample)
        self.grid = None if grid is None else gaps.GridChain(grid, fill)
        self.n_rows = (
            0  # rows pushed into windows (on the run's grid), for the few-rows check
        )
        self.released = 0
        self.ended = False
        self._buffer: _Buffer | None = None
        self._max_gap: float | None = None
        self._gap_previous: Any = (
            None  # last time on the grid: where the next gap check starts
        )
        self._order_previous: Any = (
            None  # last time read: where the next order check starts
        )
        self._anchor: np.ndarray | None = None
        self._pending: pd.DataFrame | None = None
        self._time_kind: TimeKind | None = None  # the first time's: offset or not

    def blocks(self, frames: Iterable[pd.DataFrame]) -> Iterator[WindowBlock]:
        """The windows of ``frames`` to their end, block by block."""
        for frame in frames:
            yield from self.feed(frame)
        yield from self.end()

    def feed(self, frame: pd.DataFrame) -> list[WindowBlock]:
        """The windows ``frame`` (raw rows, indexed by data-row number) completes."""
        return self._on_grid(self._validated(frame))

    def end(self) -> list[WindowBlock]:
        """The end of the data: release every row held back, and the windows left in the buffer."""
        self.ended = True
        pending, self._pending = self._pending, None
        steps = (
            []
            if pending is None
            else self._on_grid(self._validated(pending, final=True))
        )
        steps += self._on_grid(None, end=True)
        T = self.lookback
        if self.n_rows < T:
            raise RareEventError(
                f"{self.fmt.path}: {self.n_rows} data rows give no window of lookback {T}: "
                f"at least {T} rows are needed"
                if self.n_rows
                else f"{self.fmt.path}: has no data rows"
                + (" left after `fill=drop`" if self.fill == "drop" else "")
            )
        assert self._buffer is not None
        buffer = self._buffer
        empty = SensorData(
            self.fmt.path, self.columns, buffer.X[:0], None, None, buffer.rows[:0]
        )
        steps.append(
            _release(
                empty,
                buffer.starts[:0],
                buffer,
                T,
                windows.n_windows(len(buffer.X), T),
                self.released,
            )
        )
        return steps

    def _validated(self, frame: pd.DataFrame, final: bool = False) -> SensorData | None:
        """Validate a frame, carrying the order check and the fill across frames.

        ``None``: nothing is left of it yet.
        """
        if self._pending is not None:
            frame = pd.concat([self._pending, frame])
            self._pending = None
        if self.fill == "interpolate" and not final:
            complete = np.flatnonzero(
                ~frame[self.columns.features].isna().any(axis=1).to_numpy()
            )
            cut = int(complete[-1]) + 1 if complete.size else 0
            if cut < len(frame):
                self._pending, frame = frame.iloc[cut:], frame.iloc[:cut]
        if len(frame) == 0:
            return None
        if (
            self.columns.time is not None
        ):  # one kind of time in a file, whatever its chunks
            self._time_kind = check_time_kind(
                frame, self.fmt, self.columns.time, self.reading, self._time_kind
            )
        block = validate_frame(
            frame,
            self.fmt,
            self.columns,
            fill=self.fill,
            previous_time=self._order_previous,
            anchor=self._anchor,
            reading=self.reading,
        )
        if len(block) == 0:
            return None
        self._order_previous = None if block.time is None else block.time[-1]
        self._anchor = block.X[-1:]
        return block

    def _on_grid(
        self, block: SensorData | None, end: bool = False
    ) -> list[WindowBlock]:
        """Validated rows (``None``: none) through the run's grid, if any, into the buffer.

        ``end`` releases the last cell.
        """
        if self.grid is not None and (block is not None or end):
            block = self.grid.feed(block)
        return [] if block is None or len(block) == 0 else [self._push(block)]

    def _push(self, block: SensorData) -> WindowBlock:
        """Add rows (on the grid) to the buffer, mark segment starts, release the ready windows."""
        if self._buffer is None:
            self._max_gap = gaps.check_time_kind(
                self.gap_rule, block.time, self.columns.time, self.fmt.path
            )
        starts = gaps.gap_starts(
            block.time, len(block), self._max_gap, self._gap_previous
        )
        # a frame border is no gap: without a time column (nothing carried) the segment goes on
        if self.n_rows:
            starts[0] &= self._gap_previous is not None
        self.n_rows += len(block)
        self._gap_previous = None if block.time is None else block.time[-1]
        if self._buffer is None:
            self._buffer = _Buffer(block.X, block.y, block.time, block.rows, starts)
        else:
            self._buffer.extend(block, starts)
        ready = (
            windows.n_windows(len(self._buffer.X), self.lookback)
            // self.batch
            * self.batch
        )
        step = _release(
            block, starts, self._buffer, self.lookback, ready, self.released
        )
        self.released += step.n
        return step


def open_csv(
    path: str | Path, record: RunView, spec: ScoreSpec
) -> tuple[CsvFormat, Columns, Reading, Iterator[pd.DataFrame]]:
    """Sniff a file, match it to the run's columns, settle its reading, and return its raw frames.

    The file is read as the run read its training file, unless ``spec.input.read``
    says otherwise; what the run leaves open is inferred from this file.
    """
    fmt = sniff(
        path, spec.input.read.encoding, Reading.from_record(record.reading).encoding
    )
    model_columns(
        fmt, record, spec.input
    )  # a file without the run's columns is refused before any row is read
    sample = text_sample(fmt, Columns(features=fmt.header))
    columns, reading = settle_reading(
        fmt,
        record,
        spec.input,
        sample,
        lambda columns, reading: (
            frame[columns.time]
            for frame in read_frames(fmt, columns, spec.chunk_rows, reading)
        ),
    )
    return fmt, columns, reading, read_frames(fmt, columns, spec.chunk_rows, reading)


def model_columns(fmt: CsvFormat, record: RunView, spec: InputSpec) -> Columns:
    """The run's columns found in a file's header.

    ``spec.time``/``spec.label`` name the file's own when they differ.
    """
    for role, name in (("time", spec.time), ("label", spec.label)):
        if name is not None and name not in fmt.header:
            raise RareEventError(
                f"{fmt.path}: {role} names unknown column {name!r}",
                hint=f"columns are {', '.join(fmt.header)}",
            )
    return columns_for_model(fmt, trained_columns(record, spec))


def trained_columns(record: RunView, spec: InputSpec | None = None) -> Columns:
    """The run's columns: its features, and its time and label columns.

    ``spec`` names a file's own time and label columns where they differ.
    """
    spec = spec or InputSpec()
    return Columns(
        features=record.features,
        time=spec.time or record.time_column,
        label=spec.label or record.label_column,
    )


def settle_reading(
    fmt: CsvFormat,
    record: RunView,
    spec: InputSpec,
    sample: pd.DataFrame | None,
    column_values: Callable[[Columns, Reading], Iterable[pd.Series]],
) -> tuple[Columns, Reading]:
    """The run's columns in ``fmt``, and how to read its cells.

    The reading comes from the options, else the run's reading where it
    fits, else it is inferred.

    ``sample`` (text) is what the decimal mark is inferred from;
    ``column_values`` gives the time column's text, read only when the
    day/month order must be inferred.
    """
    columns = model_columns(fmt, record, spec)
    base = Reading.from_record(record.reading)
    reading = decimal_reading(sample, fmt, columns, spec.read, base)
    return columns, time_reading(
        sample,
        fmt,
        columns,
        reading,
        spec.read,
        base,
        lambda: column_values(columns, reading),
    )


def _release(
    block: SensorData,
    starts: np.ndarray,
    buffer: _Buffer,
    T: int,
    ready: int,
    first: int,
) -> WindowBlock:
    """Take ``ready`` windows off the front of ``buffer``; ``first`` were released before."""
    if ready == 0:
        return WindowBlock(rows=block, starts=starts, first=first)
    row_starts = buffer.starts[: ready + T - 1]
    keep = windows.inside_segments(row_starts, T)
    ends = np.arange(T - 1, T - 1 + ready)[keep]
    released = WindowBlock(
        rows=block,
        starts=starts,
        n=ready,
        first=first,
        X=buffer.X[: ready + T - 1],
        keep=keep,
        resets=windows.window_resets(row_starts, T)[keep],
        ends=buffer.rows[ends],
        end_time=None if buffer.time is None else buffer.time[ends],
        end_label=None if buffer.y is None else buffer.y[ends],
    )
    buffer.drop_first(ready)
    return released


def file_has_labels(path: str | Path, label: str | None) -> bool:
    """Whether ``path`` carries the label column ``label`` (read from its header only)."""
    return label is not None and label in sniff(path).header
