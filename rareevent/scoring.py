"""Stage 6: score new rows with a saved run, in bounded memory, as a file or as a stream.

A :class:`StreamScorer` holds every piece of state carried from one frame
of rows to the next (its :class:`WindowStream`: validation, grid and gap
carries, the row buffer; then the smoothing carry, open alarm episodes and
the running counts), so a file read in chunks and rows arriving one by
one are scored alike; ``score_csv`` is a loop that feeds it a file's
chunks. The buffer keeps the last ``T-1`` rows across frame borders. For a
file, windows are released in whole blocks of ``PREDICT_BATCH``, so the
model always sees the same blocks whatever the chunk size, and the output
is identical for any ``chunk_rows``. Rows after a time gap (the run's
``--max-gap``) start a new segment: the windows that would join rows
across it are dropped (they are still part of the blocks the model sees,
so the blocks stay the same) and the smoothing starts afresh, wherever the
chunk borders fall. What is kept for the whole file is compact: one error,
flag and label per window (nothing per window with ``keep_windows=False``),
and the per-sensor errors of the open alarm episode only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from rareevent import gaps, windows
from rareevent.decision import Decision, decider_for
from rareevent.detector import PREDICT_BATCH, Detector, require_bottleneck
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
from rareevent.metrics import evaluate
from rareevent.options import InputSpec, ScoreSpec
from rareevent.pipeline import WriteBehind, read_ahead
from rareevent.record import RunRecord, RunView
from rareevent.writing import ParquetSink, csv_text

TOP_FEATURES = 3
_SHARE_TEXT = [f"{i / 100:.2f}" for i in range(101)]

WindowSink = Callable[[pd.DataFrame], None]
ProgressCallback = Callable[[int], None]


@dataclass(repr=False)
class ScoreResult:
    """Everything learned about a scored file; per-window arrays are in time order.

    Its ``repr`` is the summary (counts), not the per-window arrays.

    Attributes
    ----------
    path : Path
        The scored file (``<stdin>``, or the ``source`` of a ``StreamScorer``).
    threshold : float
        The run's threshold.
    n_rows, n_filled, n_segments : int
        Rows read, blank cells repaired by ``fill``, segments between time gaps.
    n_windows : int
        Windows scored.
    rows : ndarray of int64
        Per window: the 0-based data row of its last row.
    error : ndarray of float32
        Per window: its (smoothed) score.
    flagged : ndarray of bool
        Per window: at or above the threshold.
    time : ndarray or None
        Per window: the time of its last row (``None`` without a time column).
    alarms : list of dict
        The alarm episodes: start, end, rows, windows, peak and top sensors.
    metrics : dict or None
        With labels: precision, recall, F1, PR-AUC, events caught, ...
    """

    path: Path
    columns: Columns
    threshold: float
    reading: Reading = field(default_factory=Reading)
    n_rows: int = 0
    n_filled: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    error: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    flagged: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    time: np.ndarray | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    n_segments: int = 1
    decision: Decision | None = None  # how the flags were decided

    @property
    def n_windows(self) -> int:
        return len(self.error)

    def __repr__(self) -> str:
        flagged = (
            int(self.flagged.sum()) if len(self.flagged) else None
        )  # None: the windows were not kept
        return f"ScoreResult(path={str(self.path)!r}, rows={self.n_rows}, windows={self.n_windows}, flagged={flagged}, segments={self.n_segments}, alarms={len(self.alarms)})"


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
        """The columns that open every per-window output: ``row`` (end row) and, with a time column, ``time``."""
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
                f"{self.fmt.path}: {self.n_rows} data rows give no window of lookback {T}: at least {T} rows are needed"
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
        """Validate a frame, carrying the order check and the fill across frames (``None``: nothing left of it yet)."""
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
        """Validated rows (``None``: none) through the run's grid, if any, into the buffer; ``end`` releases the last cell."""
        if self.grid is not None and (block is not None or end):
            block = self.grid.feed(block)
        return [] if block is None or len(block) == 0 else [self._push(block)]

    def _push(self, block: SensorData) -> WindowBlock:
        """Add rows (on the grid) to the buffer, mark where segments start, release the windows now ready."""
        if self._buffer is None:
            self._max_gap = gaps.check_time_kind(
                self.gap_rule, block.time, self.columns.time, self.fmt.path
            )
        starts = gaps.gap_starts(
            block.time, len(block), self._max_gap, self._gap_previous
        )
        if self.n_rows:  # a frame border is no gap: without a time column (nothing carried) the segment goes on
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
    _model_columns(
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


def _model_columns(fmt: CsvFormat, record: RunView, spec: InputSpec) -> Columns:
    """The run's columns found in a file's header; ``spec.time``/``spec.label`` name the file's own when they differ."""
    for role, name in (("time", spec.time), ("label", spec.label)):
        if name is not None and name not in fmt.header:
            raise RareEventError(
                f"{fmt.path}: {role} names unknown column {name!r}",
                hint=f"columns are {', '.join(fmt.header)}",
            )
    return columns_for_model(fmt, trained_columns(record, spec))


def trained_columns(record: RunView, spec: InputSpec | None = None) -> Columns:
    """The run's columns: its features, and its time and label columns unless ``spec`` names a file's own."""
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
    """The run's columns in ``fmt``, and how to read its cells: the options, else the run's reading where it fits, else inferred.

    ``sample`` (text) is what the decimal mark is inferred from;
    ``column_values`` gives the time column's text, read only when the
    day/month order must be inferred.
    """
    columns = _model_columns(fmt, record, spec)
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
    """Take ``ready`` windows off the front of ``buffer``; ``first`` windows were released before."""
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


def _top_order(feature_errors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` sensors with the largest share of each row's error, and those shares in hundredths."""
    k = min(k, feature_errors.shape[1])
    total = feature_errors.sum(axis=1, keepdims=True)
    shares = np.divide(
        feature_errors, total, out=np.zeros_like(feature_errors), where=total > 0
    )
    order = np.empty((len(shares), k), np.int64)
    remaining = shares.copy()
    for i in range(
        k
    ):  # k passes of argmax (first index on ties) instead of sorting every sensor
        order[:, i] = remaining.argmax(axis=1)
        np.put_along_axis(remaining, order[:, i : i + 1], -np.inf, axis=1)
    hundredths = np.rint(np.take_along_axis(shares, order, axis=1) * 100).astype(
        np.int64
    )
    return order, hundredths


def top_features(
    feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES
) -> pd.api.extensions.ExtensionArray:
    """``name:share;name:share;...`` of the ``k`` sensors with the largest shares of a row's error.

    A pandas string array held by pyarrow: the texts are joined by pyarrow
    (table lookups, no format call or Python string per window) and reach
    the output writers without a conversion.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    order, hundredths = _top_order(feature_errors, k)
    name_text, share_text = (
        pa.array(names, pa.string()),
        pa.array(_SHARE_TEXT, pa.string()),
    )
    pairs = [
        pc.binary_join_element_wise(
            name_text.take(order[:, i]), share_text.take(hundredths[:, i]), ":"
        )
        for i in range(order.shape[1])
    ]
    return pd.array(pc.binary_join_element_wise(*pairs, ";"), pd.StringDtype("pyarrow"))


class TopSensors(str):
    """An episode's ``top_features`` text (``name:0.52;...``, as in the window CSV) and its pairs.

    The text is what the JSON output and the console show, unchanged; the
    pairs ``[(sensor, share), ...]`` are what episodes and reports read, as
    the text cannot be split back: a sensor name may hold ``;`` or ``:``
    (OPC-UA tags like ``ns=2;s=Flow``).
    """

    pairs: list[tuple[str, float]]

    @classmethod
    def of(
        cls, feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES
    ) -> TopSensors:
        """The top sensors of one row of summed errors."""
        row = feature_errors.reshape(1, -1)
        text = cls(top_features(row, names, k)[0])
        order, hundredths = _top_order(row, k)
        text.pairs = [
            (names[int(i)], int(h) / 100)
            for i, h in zip(order[0], hundredths[0], strict=True)
        ]
        return text


def score_csv(
    path: str | Path,
    record: RunView,
    detector: Detector,
    spec: ScoreSpec | None = None,
    *,
    sink: WindowSink | None = None,
    on_progress: ProgressCallback | None = None,
) -> ScoreResult:
    """Score every window of ``path`` with a loaded run: its frames through a :class:`StreamScorer`.

    ``sink`` receives a DataFrame of per-window output (``row``, ``time``,
    ``error``, ``flagged``, ``top_features``, ``label``: the label of the
    window's last row) block by block. ``spec.input.time`` and ``spec.input.label``
    name the file's time and 0/1 event columns when they differ from the
    run's (or the run had none): a run trained on normal data alone can so
    be measured on a labelled incident file.

    Parameters
    ----------
    path : str or Path
        The CSV to score; it must carry every trained sensor, by name.
    record : RunView
        The run's metadata, as ``load_run`` returns it.
    detector : RareEventDetector
        The run's detector, as ``load_run`` returns it.
    spec : ScoreSpec, optional
        Columns that differ from the run's, blank-cell repair, reading
        options and rows per chunk (default: the file is read as the run
        read its training file).
    sink : callable, optional
        Receives each block of windows as a DataFrame.
    on_progress : callable, optional
        Called with the count of rows read since its last call.

    Returns
    -------
    ScoreResult
        The windows, alarm episodes and, with labels, the metrics.

    Raises
    ------
    RareEventError
        The file cannot be read as the run's input (a missing sensor, a
        value that is not a number, time going backwards, ...), named with
        its line.

    Examples
    --------
    >>> from rareevent import load_run
    >>> from rareevent.options import ScoreSpec
    >>> from rareevent.scoring import score_csv
    >>> record, detector = load_run("runs/pump-ae")
    >>> result = score_csv("sample_data/pump_sensors.csv", record, detector,
    ...                    ScoreSpec(chunk_rows=10_000))
    >>> result.n_windows, result.metrics["events"]
    (30000, 20)
    """
    spec = spec or ScoreSpec()
    fmt, _, reading, frames = open_csv(path, record, spec)
    scorer = StreamScorer(detector, record, str(path), spec, batch=PREDICT_BATCH)
    scorer.begin(fmt, reading)
    if sink is None:
        return score_frames(scorer, read_ahead(frames), None, on_progress)
    with WriteBehind(sink) as behind:  # reading, scoring and writing side by side
        return score_frames(scorer, read_ahead(frames), behind, on_progress)


def score_frames(
    scorer: StreamScorer,
    frames: Iterable[pd.DataFrame],
    sink: WindowSink | None = None,
    on_progress: ProgressCallback | None = None,
) -> ScoreResult:
    """Feed ``frames`` to ``scorer`` to their end; ``sink`` gets the windows, ``on_progress`` the count of new rows."""
    done = 0
    for out in _to_the_end(scorer, frames):
        if sink is not None and len(out.columns):
            sink(out)
        if on_progress is not None and scorer.n_rows > done:
            on_progress(scorer.n_rows - done)
            done = scorer.n_rows
    return scorer.close()


def _to_the_end(
    scorer: StreamScorer, frames: Iterable[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """What ``scorer`` releases for each frame, then at the end of the data."""
    for frame in frames:
        yield scorer.update(frame)
    yield scorer.flush()


class AlarmEpisodes:
    """Alarm episodes built as windows arrive: runs of flagged windows, ended by a gap or a quiet spell.

    An episode ends at a time gap, or once more than ``gap`` windows in a
    row are not flagged (the alarm policy's cooldown: 0, the first one);
    its last window is its last flagged one. An open episode keeps the
    per-sensor errors of its own flagged windows only, so its top sensors
    are summed exactly as over the whole file at once.
    """

    def __init__(self, names: list[str], gap: int = 0) -> None:
        self.names, self.gap = names, gap
        self.alarms: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._features: list[np.ndarray] = []
        self._peak = -np.inf
        self._quiet = 0  # windows not flagged since the open episode's last flagged one
        self._broken = False  # a time gap since then

    def add(
        self,
        flagged: np.ndarray,
        breaks: np.ndarray,
        error: np.ndarray,
        feature_errors: np.ndarray,
        rows: np.ndarray,
        time: np.ndarray | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Take the next windows in time order; return the episodes they opened and those they closed."""
        opened: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        done = 0  # windows of this block accounted for
        for start, end in windows.segments(flagged, breaks):  # runs of flagged windows
            self._pass(breaks[done : start + 1], start - done, closed)
            if self._open is None:
                self._open = {
                    "start_row": int(rows[start]),
                    "error": float(error[start]),
                } | ({} if time is None else {"start_time": _time_text(time[start])})
                opened.append(dict(self._open))
            self._features.append(feature_errors[start : end + 1])
            self._peak = max(self._peak, float(error[start : end + 1].max()))
            self._open["end_row"] = int(rows[end])
            if time is not None:
                self._open["end_time"] = _time_text(time[end])
            self._quiet, self._broken, done = 0, False, end + 1
        self._pass(breaks[done:], len(flagged) - done, closed)
        return opened, closed

    def _pass(
        self, breaks: np.ndarray, quiet: int, closed: list[dict[str, Any]]
    ) -> None:
        """Windows between flagged ones: ``quiet`` not flagged, a gap where ``breaks``."""
        if self._open is None:
            return
        self._quiet += quiet
        self._broken = self._broken or bool(np.any(breaks))
        if self._broken or self._quiet > self.gap:
            closed.append(self._close())

    @property
    def open_episode(self) -> dict[str, Any] | None:
        """Where the episode still open began (``None``: none is open)."""
        return (
            None
            if self._open is None
            else {
                key: self._open[key]
                for key in ("start_row", "start_time")
                if key in self._open
            }
        )

    def end(self) -> list[dict[str, Any]]:
        """Close the open episode at the end of the data (the episodes closed: none or one)."""
        return [self._close()] if self._open is not None else []

    def _close(self) -> dict[str, Any]:
        assert self._open is not None
        features = np.concatenate(self._features)
        summed = np.add.reduceat(features, [0], axis=0)
        alarm = {
            "start_row": self._open["start_row"],
            "end_row": self._open["end_row"],
            "windows": len(features),
            "peak_error": self._peak,
            "top_features": TopSensors.of(summed, self.names),
        }
        if "start_time" in self._open:
            alarm["start_time"], alarm["end_time"] = (
                self._open["start_time"],
                self._open["end_time"],
            )
        self.alarms.append(alarm)
        self._open, self._features, self._peak = None, [], -np.inf
        self._quiet, self._broken = 0, False
        return alarm


class StreamScorer:
    """Score rows as they arrive: every piece of state carried from one frame to the next lives here.

    ``update(frame)`` takes raw rows with the file's columns (strings or
    numbers, as read from CSV), validates them as ``score`` validates a
    file (errors name ``source``, the column and the line) and returns the
    windows they complete, with the columns of ``score``'s output. The
    episodes an update opened and closed are in ``opened`` and ``closed``.
    ``flush()`` ends the data: it releases the rows held back (a trailing
    blank under ``--fill interpolate``, the last ``--resample`` cell).
    ``close()`` returns the :class:`ScoreResult`.

    ``record`` is a run's :class:`~rareevent.record.RunView` (``load_run``; ``from_run`` reads one): its
    time and label columns, reading, gap and resampling rules. Without it,
    a detector fitted in a notebook reads frames of its sensor columns.
    ``spec`` names the frames' time and label columns where they differ
    from the run's, the repair of blank cells and the reading options.

    ``batch`` releases windows in whole multiples of it (``score_csv`` uses
    ``PREDICT_BATCH``); with ``keep_windows=False`` no per-window history is
    kept, so memory stays flat on an endless stream: the result then holds
    counts and alarms, but no per-window arrays and no metrics.

    Parameters
    ----------
    detector : RareEventDetector
        A fitted detector.
    record : RunView, optional
        The run's metadata (``load_run``). Without it, frames hold the
        detector's sensor columns only.
    source : str, default="<data>"
        The name errors and the result give the data.
    spec : ScoreSpec, optional
        Columns that differ from the run's, blank-cell repair and reading
        options.
    batch : int, default=1
        Release windows in whole multiples of this.
    keep_windows : bool, default=True
        Keep every window for the result; False keeps counts and alarms only.

    Examples
    --------
    Batches of any size give the windows of the same rows in one piece:

    >>> import pandas as pd
    >>> from rareevent import StreamScorer, load_run
    >>> record, detector = load_run("runs/pump-ae")
    >>> scorer = StreamScorer(detector, record)
    >>> rows = pd.read_csv("sample_data/pump_sensors.csv", nrows=2000)
    >>> [len(scorer.update(rows.iloc[start : start + 500]))
    ...  for start in range(0, 2000, 500)]
    [500, 500, 500, 500]
    >>> scorer.close().n_windows
    2000
    """

    def __init__(
        self,
        detector: Detector,
        record: RunView | None = None,
        source: str = "<data>",
        spec: ScoreSpec | None = None,
        *,
        batch: int = 1,
        keep_windows: bool = True,
    ) -> None:
        if (
            record is None
        ):  # a detector fitted in a notebook: its sensor columns only, no time or label column
            from rareevent.runs import run_view

            record = run_view(RunRecord(name="detector"), detector)
        self.spec = spec or ScoreSpec()
        self.record, self.detector, self.source = record, detector, source
        self.batch, self.keep_windows = batch, keep_windows
        self.names = [
            record.features[i] for i in detector.target_features_
        ]  # errors are kept for the scored sensors only
        self.decider = decider_for(detector, record, self.spec.alarm)
        self.episodes = AlarmEpisodes(self.names, self.decider.decision.cooldown)
        self.opened: list[dict[str, Any]] = []
        self.closed: list[dict[str, Any]] = []
        self.n_rows = self.n_filled = self.n_windows = self.n_flagged = (
            self.n_segments
        ) = 0
        self.stream: WindowStream | None = None
        self._fmt: CsvFormat | None = None
        self._reading: Reading | None = None
        self._seen = 0  # raw rows taken: the next frame's first data-row number
        self._previous_raw: np.ndarray | None = None
        self._segment_starts: list[
            int
        ] = []  # positions (among the rows on the grid) where a segment begins
        self._last_begun = 0
        self._history: dict[str, list[np.ndarray]] = {
            key: []
            for key in (
                "error",
                "flagged",
                "rows",
                "positions",
                "labels",
                "times",
                "starts",
            )
        }
        self._result: ScoreResult | None = None

    @classmethod
    def from_run(cls, folder: str | Path, **kwargs: Any) -> StreamScorer:
        """A scorer for a saved run folder; ``kwargs`` as for the constructor.

        Parameters
        ----------
        folder : str or Path
            A run folder, read with ``load_run``.
        **kwargs
            ``source``, ``spec``, ``batch``, ``keep_windows``.

        Returns
        -------
        StreamScorer
            A scorer with the run's detector and metadata.
        """
        from rareevent.runs import load_run

        record, detector = load_run(folder)
        return cls(detector, record, **kwargs)

    def begin(self, fmt: CsvFormat, reading: Reading | None = None) -> None:
        """Name the source's format (its path, delimiter, header) and, when settled, its reading.

        Without this call the first frame's columns are the header and
        errors name lines as ``row + 2``; without ``reading`` the first frame
        settles it, as a sample, with the options and the run's reading.
        """
        self._fmt, self._reading = fmt, reading

    @property
    def lookback(self) -> int:
        return int(self.detector.lookback)

    def update(self, frame: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Take new raw rows; return the windows they complete.

        The episodes these rows opened and closed are then in ``opened`` and
        ``closed``.

        Parameters
        ----------
        frame : DataFrame or ndarray
            A DataFrame with the file's columns (matched by name), or a 2-D
            numpy array of the trained sensor columns in the detector's
            order (``feature_names_in_``), without time or label column.

        Returns
        -------
        DataFrame
            The completed windows, with the columns of ``score``'s output
            (``row``, ``time``, ``error``, ``flagged``, ``top_features``,
            ``label``); a frame without columns when none is complete.

        Raises
        ------
        RareEventError
            A row that ``score`` would refuse (named by its line), or a
            scorer whose data has ended.
        """
        if self.stream is not None and self.stream.ended:
            raise RareEventError(
                f"{self.source}: the data has ended (flush or close was called); start a new scorer"
            )
        if not isinstance(frame, pd.DataFrame):
            frame = self._sensor_frame(frame)
        index = frame.index
        if not (
            isinstance(index, pd.RangeIndex)
            and index.start == self._seen
            and index.step == 1
        ):
            frame = frame.set_axis(pd.RangeIndex(self._seen, self._seen + len(frame)))
        self._seen += len(frame)
        return self._score(self._started(frame).feed(frame))

    def _sensor_frame(self, rows: Any) -> pd.DataFrame:
        """A numpy batch as a frame of the trained sensor columns; refused where the stream reads more columns."""
        features = list(self.record.features)
        array = np.asarray(rows)
        if array.ndim != 2 or array.shape[1] != len(features):
            raise RareEventError(
                f"{self.source}: a numpy batch must have shape (rows, {len(features)}), the sensor columns {', '.join(features)} in this order; got shape {array.shape}"
            )
        if self.stream is not None and (
            self.stream.columns.time or self.stream.columns.label
        ):
            raise RareEventError(
                f"{self.source}: the frames so far carried time or label columns, a numpy batch holds sensors only",
                hint="pass DataFrames with the same columns",
            )
        return pd.DataFrame(array, columns=features)

    def flush(self) -> pd.DataFrame:
        """End the data: the windows of the rows held back; the open episode closes.

        Returns
        -------
        DataFrame
            The windows of the rows held back (a trailing blank under
            ``fill="interpolate"``, the last resampling cell); empty when
            there are none or the data had ended already.

        Raises
        ------
        RareEventError
            No data row came, or fewer rows than the lookback (no window at all).
        """
        if self.stream is None and self._fmt is None:
            raise RareEventError(f"{self.source}: has no data rows")
        stream = self._started(None)
        if stream.ended:
            return pd.DataFrame()
        out = self._score(stream.end())
        self.closed += self.episodes.end()
        return out

    def _started(self, frame: pd.DataFrame | None) -> WindowStream:
        """The window stream, started on the first frame (its header and reading settled then)."""
        if self.stream is None:
            fmt = self._fmt
            if fmt is None:
                assert frame is not None
                fmt = CsvFormat(
                    path=Path(self.source),
                    delimiter=",",
                    header=[str(name) for name in frame.columns],
                    counted=False,
                )
            if self._reading is None:
                columns, reading = self.settle(
                    fmt,
                    None
                    if frame is None
                    else frame.where(frame.isna(), frame.astype(str)),
                )
            else:
                columns, reading = (
                    _model_columns(fmt, self.record, self.spec.input),
                    self._reading,
                )
            self.stream = WindowStream(
                fmt, columns, reading, self.record, self.spec.input.fill, self.batch
            )
        return self.stream

    def settle(
        self, fmt: CsvFormat, sample: pd.DataFrame | None
    ) -> tuple[Columns, Reading]:
        """The run's columns in ``fmt`` and the reading of its cells, settled from the options, the run and ``sample`` (text: the first rows)."""
        return settle_reading(
            fmt,
            self.record,
            self.spec.input,
            sample,
            lambda columns, _: [] if sample is None else [sample[columns.time]],
        )

    def _score(self, steps: list[WindowBlock]) -> pd.DataFrame:
        self.opened, self.closed = [], []
        frames = [frame for frame in map(self._score_step, steps) if frame is not None]
        if not frames:
            return pd.DataFrame()
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def _score_step(self, step: WindowBlock) -> pd.DataFrame | None:
        """Score one released block and record it; its per-window output (``None``: it released no window)."""
        block, detector = step.rows, self.detector
        position = self.n_rows  # of the block's first row among the rows on the grid
        self.n_rows += len(block)
        self.n_filled += block.n_filled
        self.n_segments += int(step.starts.sum())
        self._segment_starts.extend((position + np.flatnonzero(step.starts)).tolist())
        if self.keep_windows:
            self._history["starts"].append(step.starts)
            if block.y is not None:
                self._history["labels"].append(block.y)
            if block.time is not None:
                self._history["times"].append(block.time)
        if step.n == 0:
            return None
        assert step.X is not None and step.ends is not None, (
            "_release fills every field of a step with windows"
        )
        raw, feature_errors = detector.score_windows(step.X)
        raw, feature_errors = raw[step.keep], feature_errors[step.keep]
        score = (
            detector.smooth_scores(raw, self._previous_raw, step.resets)
            if len(raw)
            else raw
        )  # a step may hold only windows across a gap
        self._previous_raw = detector.carry_scores(self._previous_raw, raw, step.resets)
        positions = step.positions(self.lookback)
        breaks = self._breaks(positions)
        flagged = self.decider(score, breaks)
        opened, closed = self.episodes.add(
            flagged,
            breaks,
            score,
            feature_errors,
            step.ends,
            step.end_time,
        )
        self.opened += opened
        self.closed += closed
        self.n_windows += len(score)
        self.n_flagged += int(flagged.sum())
        if self.keep_windows:
            for key, value in (
                ("error", score),
                ("flagged", flagged),
                ("rows", step.ends),
                ("positions", positions),
            ):
                self._history[key].append(value)
        out = step.key_columns() | {
            "error": score,
            "flagged": flagged.astype(np.int8),
            "top_features": top_features(feature_errors, self.names),
        }
        if step.end_label is not None:
            out["label"] = step.end_label
        return pd.DataFrame(out)

    def _breaks(self, positions: np.ndarray) -> np.ndarray:
        """Per window (end positions ``positions``): True where a segment began since the window before it (as :func:`windows.window_breaks`)."""
        begun = np.searchsorted(
            np.asarray(self._segment_starts), positions, side="right"
        )
        breaks = (
            np.diff(
                np.concatenate(
                    [
                        [
                            begun[0]
                            if self.n_windows == 0 and len(begun)
                            else self._last_begun
                        ],
                        begun,
                    ]
                )
            )
            > 0
        )
        if len(begun):
            self._last_begun = int(begun[-1])
        return breaks

    def close(self) -> ScoreResult:
        """The result of the whole stream (flushed first when that was not done).

        Returns
        -------
        ScoreResult
            Counts, alarm episodes and, with ``keep_windows`` and labels,
            the per-window arrays and metrics. Calling it again returns the
            same result.
        """
        if self._result is not None:
            return self._result
        self.flush()
        assert self.stream is not None
        result = ScoreResult(
            path=Path(self.source),
            columns=self.stream.columns,
            threshold=self.decider.decision.threshold,
            reading=self.stream.reading,
            decision=self.decider.decision,
        )
        result.n_rows, result.n_filled, result.n_segments = (
            self.n_rows,
            self.n_filled,
            self.n_segments,
        )
        result.alarms = self.episodes.alarms
        if self.keep_windows:
            joined = {
                key: np.concatenate(parts) if parts else None
                for key, parts in self._history.items()
            }
            ends_at = (
                joined["positions"]
                if joined["positions"] is not None
                else np.empty(0, np.int64)
            )
            result.error = (
                joined["error"]
                if joined["error"] is not None
                else np.empty(0, np.float32)
            )
            result.flagged = (
                joined["flagged"]
                if joined["flagged"] is not None
                else np.empty(0, bool)
            )
            result.rows = (
                joined["rows"] if joined["rows"] is not None else np.empty(0, np.int64)
            )
            all_time, y = joined["times"], joined["labels"]
            result.time = None if all_time is None else all_time[ends_at]
            if y is not None:
                T = self.lookback
                labels = windows.window_labels(
                    y, T, self.detector.lead, joined["starts"]
                )[ends_at - (T - 1)]
                result.metrics = evaluate(
                    y,
                    labels,
                    result.flagged,
                    result.error,
                    ends_at,
                    lead=self.detector.lead,
                    time=all_time,
                    starts=joined["starts"],
                    gap=self.decider.decision.cooldown,
                )
        self._result = result
        return result


def _time_text(value: Any) -> str | float:
    """A time for JSON: ISO 8601 text for datetimes (as in the windows), the number otherwise."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    return float(value)


def _as_json_dumps(text: str) -> str:
    """pandas' JSON text with each ``\\/`` written ``/``, as ``json.dumps`` writes it.

    Window records (pandas) and event records (``json.dumps``) then spell a
    name like ``m\\u00b3/h`` alike. A plain replacement is safe: pandas writes
    every backslash of a value as ``\\\\`` and every slash as ``\\/``, so
    each ``\\/`` in its output is an escaped slash.
    """
    return text.replace("\\/", "/")


class WindowWriter:
    """Stream per-window output as blocks arrive: ``.csv``, ``.json``, or ``.jsonl`` (JSON Lines).

    The JSON form is one object: ``{"windows": [...], "alarms": [...],
    "metrics": ..., "summary": ...}``; its tail is written by :meth:`finish`.
    JSON Lines (``score --follow``) hold one window per line, and events
    (an alarm opened or closed, the summary) as lines of their own:
    ``{"event": "alarm_opened", ...}``. ``target`` is a path (opened here)
    or an open text handle (stdout, a followed output). Used as a context
    manager, a file opened here is closed however the block ends.
    """

    KINDS = ("csv", "json", "jsonl", "parquet")

    def __init__(self, target: Path | IO[str], kind: str) -> None:
        if kind not in self.KINDS:
            raise RareEventError(
                f"{target}: `output` must end in {' or '.join('.' + k for k in self.KINDS)}",
                param="output",
            )
        self.kind = kind
        self.owned = isinstance(target, Path)
        # held open between batches, closed by finish() or on leaving the with-block
        self.handle: IO[str]
        self.parquet: ParquetSink | None = None
        if kind == "parquet":
            if not isinstance(target, Path):
                raise RareEventError(
                    "Parquet output is written to a file, not a stream"
                )
            self.parquet, self.owned = ParquetSink(target), False
        elif isinstance(target, Path):
            self.handle = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115
        else:
            self.handle = target
        self.first = True
        if kind == "json":
            self.handle.write('{"windows": [')

    def lines(self, frame: pd.DataFrame) -> list[str]:
        """The text of ``frame``'s windows, one line each (``.csv``: the header first, once; ``.jsonl``), for a caller that interleaves events."""
        if self.kind == "csv":
            text = csv_text(frame, header=self.first)
            self.first = False
            return text.splitlines(keepends=True)
        text = (
            _as_json_dumps(
                frame.to_json(
                    orient="records",
                    lines=True,
                    date_format="iso",
                    date_unit="s",
                    double_precision=15,
                )
            )
            if len(frame)
            else ""
        )
        return [line + "\n" for line in text.splitlines()]

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.parquet is not None:
            self.parquet(frame)
            return
        if self.kind == "csv":
            self.handle.write(csv_text(frame, header=self.first))
            self.first = False
            return
        if self.kind != "json":
            self.handle.write("".join(self.lines(frame)))
            return
        body = _as_json_dumps(
            frame.to_json(
                orient="records", date_format="iso", date_unit="s", double_precision=15
            )
        )[1:-1]
        if body:
            self.handle.write(("" if self.first else ",") + body)
        self.first = False

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """An event line of JSON Lines: ``{"event": name, **fields}``."""
        self.handle.write(json.dumps({"event": name, **fields}, allow_nan=False) + "\n")

    def finish(self, tail: dict[str, Any] | None = None) -> None:
        """End the output (the JSON object with ``tail``'s keys) and close a file opened here."""
        if self.parquet is not None:
            self.parquet.close()
            return
        if self.kind == "json":
            self.handle.write("]")
            for key, value in (tail or {}).items():
                self.handle.write(
                    f", {json.dumps(key)}: {json.dumps(value, allow_nan=False)}"
                )
            self.handle.write("}\n")
        if self.owned:
            self.handle.close()

    def __enter__(self) -> WindowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close a file opened here when ``finish`` was not reached (an error or Ctrl-C on the way)."""
        if self.parquet is not None:
            self.parquet.close()
        if self.owned:
            self.handle.close()


def encode_csv(
    path: str | Path,
    record: RunView,
    detector: Detector,
    sink: WindowSink,
    spec: ScoreSpec | None = None,
) -> tuple[int, int]:
    """Send the encoded vector of every window of ``path`` to ``sink``.

    Returns the number of windows and of repaired (filled) cells.
    """
    require_bottleneck(detector.arch)
    total = filled = 0
    spec = spec or ScoreSpec()
    fmt, columns, reading, frames = open_csv(path, record, spec)
    for step in WindowStream(
        fmt, columns, reading, record, spec.input.fill, PREDICT_BATCH
    ).blocks(frames):
        filled += step.rows.n_filled
        if step.n == 0:
            continue
        assert step.X is not None, "_release fills every field of a step with windows"
        codes = detector.encode(step.X)[step.keep]
        sink(
            pd.DataFrame(
                step.key_columns()
                | {f"e{i}": codes[:, i] for i in range(codes.shape[1])}
            )
        )
        total += len(codes)
    return total, filled
