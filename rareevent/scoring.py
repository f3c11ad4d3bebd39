"""Stage 6: score a new CSV with a saved run, in bounded memory.

The file is read ``chunk_rows`` rows at a time. Rows wait in a small buffer
until a whole block of ``PREDICT_BATCH`` windows can be formed, so the model
always sees the same blocks whatever the chunk size, and the output is
identical for any ``chunk_rows``. The buffer keeps the last ``T-1`` rows
across chunk borders. Rows after a time gap (the run's ``--max-gap``) start
a new segment: the windows that would join rows across it are dropped (they
are still part of the blocks the model sees, so the blocks stay the same)
and the smoothing starts afresh, wherever the chunk borders fall. What is
kept for the whole file is compact: one error, flag and label per window,
and the per-sensor errors of flagged windows only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent import gaps, windows
from rareevent.detector import PREDICT_BATCH, RareEventDetector, require_bottleneck
from rareevent.errors import RareEventError
from rareevent.load import (
    Columns,
    CsvFormat,
    Reading,
    ReadingOptions,
    SensorData,
    check_fill,
    columns_for_model,
    decimal_reading,
    read_frames,
    sniff,
    text_sample,
    time_reading,
    validate_frame,
)
from rareevent.metrics import evaluate

DEFAULT_CHUNK_ROWS = 100_000
TOP_FEATURES = 3
_SHARE_TEXT = np.array([f"{i / 100:.2f}" for i in range(101)], dtype=object)

WindowSink = Callable[[pd.DataFrame], None]
ProgressCallback = Callable[[int], None]


@dataclass
class ScoreResult:
    """Everything learned about a scored file; per-window arrays are in time order."""

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

    @property
    def n_windows(self) -> int:
        return len(self.error)


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
        return {"row": self.ends} if self.end_time is None else {"row": self.ends, "time": self.end_time}

    def positions(self, lookback: int) -> np.ndarray:
        """The end position (among the file's validated rows) of every kept window."""
        return (self.first + lookback - 1 + np.arange(self.n))[self.keep]


def window_blocks(
    path: str | Path,
    record: dict[str, Any],
    chunk_rows: int,
    fill: str | None,
    options: ReadingOptions | None = None,
    time: str | None = None,
    label: str | None = None,
) -> Iterator[WindowBlock]:
    """Read ``path`` in chunks and release windows in whole blocks of ``PREDICT_BATCH``.

    Only the last block of the file may be shorter, so the model sees the
    same blocks whatever ``chunk_rows`` is. With ``--fill interpolate``,
    trailing rows of a chunk that hold a blank wait for the next chunk, so
    they are interpolated towards the next value exactly as in one piece.
    The file is read as the run read its training file, unless ``options``
    say otherwise; what the run leaves open is inferred from this file. A
    run trained with ``--resample`` resamples the file to its grid, and its
    gap rule splits the rows into segments.
    """
    if chunk_rows < 1:
        raise RareEventError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    check_fill(fill)
    options = options or ReadingOptions()
    options.check()
    T = record["lookback"]
    fmt = sniff(path)
    for role, name in (("time", time), ("label", label)):
        if name is not None and name not in fmt.header:
            raise RareEventError(f"{fmt.path}: {role} names unknown column {name!r}", hint=f"columns are {', '.join(fmt.header)}")
    trained = Columns(features=record["features"], time=time or record["time_column"], label=label or record["label_column"])
    columns = columns_for_model(fmt, trained)
    base = Reading.from_record(record.get("reading"))
    sample = text_sample(fmt, columns)
    reading = decimal_reading(sample, fmt, columns, options, base)
    reading = time_reading(sample, fmt, columns, reading, options, base, lambda: (frame[columns.time] for frame in read_frames(fmt, columns, chunk_rows, reading)))
    blocks = _validated(read_frames(fmt, columns, chunk_rows, reading), fmt, columns, fill, reading)
    grid = gaps.Resampling.from_record(record.get("resample"))
    if grid is not None:
        blocks = _on_grid(blocks, gaps.GridChain(grid, fill))
    buffer: _Buffer | None = None
    max_gap: float | None = None
    previous_time = None
    n_kept = released = 0
    for block in blocks:
        if buffer is None:
            max_gap = gaps.check_time_kind(record.get("gaps"), block.time, columns.time, fmt.path)
        starts = gaps.gap_starts(block.time, len(block), max_gap, previous_time)
        n_kept += len(block)
        previous_time = None if block.time is None else block.time[-1]
        if buffer is None:
            buffer = _Buffer(block.X, block.y, block.time, block.rows, starts)
        else:
            buffer.extend(block, starts)
        step = _release(block, starts, buffer, T, windows.n_windows(len(buffer.X), T) // PREDICT_BATCH * PREDICT_BATCH, released)
        released += step.n
        yield step
    if n_kept < T:
        raise RareEventError(
            f"{fmt.path}: {n_kept} data rows give no window of lookback {T}: at least {T} rows are needed"
            if n_kept
            else f"{fmt.path}: has no data rows" + (" left after --fill drop" if fill == "drop" else "")
        )
    assert buffer is not None
    empty = SensorData(fmt.path, columns, buffer.X[:0], None, None, buffer.rows[:0])
    yield _release(empty, buffer.starts[:0], buffer, T, windows.n_windows(len(buffer.X), T), released)


def _validated(frames: Iterator[pd.DataFrame], fmt: CsvFormat, columns: Columns, fill: str | None, reading: Reading) -> Iterator[SensorData]:
    """Validate frames one by one, carrying the order check and the fill across their borders; skip empty ones."""
    previous_time = None
    anchor: np.ndarray | None = None
    for frame in _deferring_blanks(frames, columns.features, fill == "interpolate"):
        block = validate_frame(frame, fmt, columns, fill=fill, previous_time=previous_time, anchor=anchor, reading=reading)
        if len(block) == 0:
            continue
        previous_time = None if block.time is None else block.time[-1]
        anchor = block.X[-1:]
        yield block


def _on_grid(blocks: Iterator[SensorData], chain: gaps.GridChain) -> Iterator[SensorData]:
    """The validated blocks resampled to the run's grid, cell by cell as they complete."""
    for block in _with_end(blocks):
        ready = chain.feed(block)
        if ready is not None and len(ready):
            yield ready


def _with_end(blocks: Iterator[SensorData]) -> Iterator[SensorData | None]:
    """The blocks, then ``None`` for the end of the file."""
    yield from blocks
    yield None


def _deferring_blanks(frames: Iterator[pd.DataFrame], features: list[str], defer: bool) -> Iterator[pd.DataFrame]:
    """Pass frames through; with ``defer``, hold a chunk's trailing rows with blanks until the next chunk."""
    pending: pd.DataFrame | None = None
    for frame in frames:
        if pending is not None:
            frame = pd.concat([pending, frame])
            pending = None
        if defer:
            complete = np.flatnonzero(~frame[features].isna().any(axis=1).to_numpy())
            cut = int(complete[-1]) + 1 if complete.size else 0
            pending, frame = (frame.iloc[cut:], frame.iloc[:cut]) if cut < len(frame) else (None, frame)
        if len(frame):
            yield frame
    if pending is not None and len(pending):
        yield pending


def _release(block: SensorData, starts: np.ndarray, buffer: _Buffer, T: int, ready: int, first: int) -> WindowBlock:
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


def top_features(feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES) -> np.ndarray:
    """``name:share;name:share;...`` of the ``k`` sensors with the largest share of each row's error."""
    k = min(k, feature_errors.shape[1])
    total = feature_errors.sum(axis=1, keepdims=True)
    shares = np.divide(feature_errors, total, out=np.zeros_like(feature_errors), where=total > 0)
    order = np.empty((len(shares), k), np.int64)
    remaining = shares.copy()
    for i in range(k):  # k passes of argmax (first index on ties) instead of sorting every sensor
        order[:, i] = remaining.argmax(axis=1)
        np.put_along_axis(remaining, order[:, i : i + 1], -np.inf, axis=1)
    hundredths = np.rint(np.take_along_axis(shares, order, axis=1) * 100).astype(np.int64)
    labels = np.asarray(names, dtype=object)[order] + ":" + _SHARE_TEXT[hundredths]  # a table lookup, not a format call per window
    joined = labels[:, 0]
    for i in range(1, k):  # one step per reported sensor
        joined = joined + ";" + labels[:, i]
    return joined


def score_csv(
    path: str | Path,
    record: dict[str, Any],
    detector: RareEventDetector,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fill: str | None = None,
    sink: WindowSink | None = None,
    on_progress: ProgressCallback | None = None,
    options: ReadingOptions | None = None,
    time: str | None = None,
    label: str | None = None,
) -> ScoreResult:
    """Score every window of ``path`` with a loaded run.

    ``sink`` receives a DataFrame of per-window output (``row``, ``time``,
    ``error``, ``flagged``, ``top_features``, ``label``: the label of the
    window's last row) block by block. ``time`` and ``label`` name the
    file's time and 0/1 event columns when they differ from the run's (or
    the run had none): a run trained on normal data alone can so be
    measured on a labelled incident file.
    """
    T = detector.lookback
    names = [record["features"][i] for i in detector.target_features_]  # errors are kept for the scored sensors only
    errors, flags, ends, positions, labels_rows, times, starts, flagged_features = [], [], [], [], [], [], [], []
    result: ScoreResult | None = None
    previous_raw: np.ndarray | None = None
    n_rows = n_filled = 0
    for step in window_blocks(path, record, chunk_rows, fill, options, time=time, label=label):
        block = step.rows
        if result is None:
            result = ScoreResult(path=Path(path), columns=block.columns, threshold=detector.threshold_, reading=block.reading)
        n_rows += len(block)
        n_filled += block.n_filled
        starts.append(step.starts)
        if block.y is not None:
            labels_rows.append(block.y)
        if block.time is not None:
            times.append(block.time)
        if on_progress is not None and len(block):
            on_progress(len(block))
        if step.n == 0:
            continue
        raw, feature_errors = detector.score_windows(step.X)
        raw, feature_errors = raw[step.keep], feature_errors[step.keep]
        score = detector.smooth_scores(raw, previous_raw, step.resets)
        previous_raw = detector.carry_scores(previous_raw, raw, step.resets)
        flagged = score >= detector.threshold_
        errors.append(score)
        flags.append(flagged)
        ends.append(step.ends)
        positions.append(step.positions(T))
        flagged_features.append(feature_errors[flagged])
        if sink is not None:
            out = step.key_columns() | {"error": score, "flagged": flagged.astype(np.int8), "top_features": top_features(feature_errors, names)}
            if step.end_label is not None:
                out["label"] = step.end_label
            sink(pd.DataFrame(out))
    assert result is not None  # window_blocks always yields at least once or raises
    result.n_rows, result.n_filled = n_rows, n_filled
    result.error = np.concatenate(errors) if errors else np.empty(0, np.float32)
    result.flagged = np.concatenate(flags) if flags else np.empty(0, bool)
    result.rows = np.concatenate(ends) if ends else np.empty(0, np.int64)
    all_time = np.concatenate(times) if times else None
    ends_at = np.concatenate(positions) if positions else np.empty(0, np.int64)
    result.time = None if all_time is None else all_time[ends_at]
    features = np.concatenate(flagged_features) if flagged_features else np.empty((0, len(names)), np.float32)
    row_starts = np.concatenate(starts)
    result.n_segments = int(row_starts.sum())
    result.alarms = alarm_episodes(result, features, names, windows.window_breaks(row_starts, ends_at))
    if labels_rows:
        y = np.concatenate(labels_rows)
        labels = windows.window_labels(y, T, detector.lead)[ends_at - (T - 1)]
        result.metrics = evaluate(y, labels, result.flagged, result.error, ends_at, lead=detector.lead, time=all_time, starts=row_starts)
    return result


def alarm_episodes(result: ScoreResult, flagged_features: np.ndarray, names: list[str], breaks: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Group consecutive flagged windows into alarm episodes with their top sensors; an episode ends at a ``breaks`` window (a gap)."""
    episodes = windows.segments(result.flagged, breaks)
    if len(episodes) == 0:
        return []
    lengths = episodes[:, 1] - episodes[:, 0] + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    totals = np.add.reduceat(flagged_features, offsets, axis=0)
    peaks = np.maximum.reduceat(result.error[result.flagged], offsets)
    tops = top_features(totals, names)
    alarms = []
    for i, (start, end) in enumerate(episodes):  # one iteration per alarm episode
        alarm = {
            "start_row": int(result.rows[start]),
            "end_row": int(result.rows[end]),
            "windows": int(lengths[i]),
            "peak_error": float(peaks[i]),
            "top_features": str(tops[i]),
        }
        if result.time is not None:
            alarm["start_time"] = _time_text(result.time[start])
            alarm["end_time"] = _time_text(result.time[end])
        alarms.append(alarm)
    return alarms


def _time_text(value: Any) -> str | float:
    """A time for JSON: ISO 8601 text for datetimes (as in the windows), the number otherwise."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    return float(value)


class WindowWriter:
    """Stream per-window output to ``.csv`` or ``.json`` as blocks arrive.

    The JSON form is one object: ``{"windows": [...], "alarms": [...],
    "metrics": ..., "summary": ...}``; its tail is written by :meth:`finish`.
    Used as a context manager, the file is closed however the block ends.
    """

    def __init__(self, path: Path, kind: str) -> None:
        if kind not in ("csv", "json"):
            raise RareEventError(f"{path}: --output must end in .csv or .json")
        self.kind = kind
        self.handle = open(path, "w", encoding="utf-8", newline="")
        self.first = True
        if kind == "json":
            self.handle.write('{"windows": [')

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.kind == "csv":
            frame.to_csv(self.handle, header=self.first, index=False)
        else:
            body = frame.to_json(orient="records", date_format="iso", date_unit="s", double_precision=15)[1:-1]
            if body:
                self.handle.write(("" if self.first else ",") + body)
        self.first = False

    def finish(self, tail: dict[str, Any] | None = None) -> None:
        """Close the file, ending the JSON object with ``tail``'s keys."""
        if self.kind == "json":
            self.handle.write("]")
            for key, value in (tail or {}).items():
                self.handle.write(f", {json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
            self.handle.write("}\n")
        self.handle.close()

    def __enter__(self) -> WindowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the file when ``finish`` was not reached (an error or Ctrl-C on the way)."""
        self.handle.close()


def encode_csv(
    path: str | Path,
    record: dict[str, Any],
    detector: RareEventDetector,
    sink: WindowSink,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fill: str | None = None,
    options: ReadingOptions | None = None,
) -> tuple[int, int]:
    """Send the encoded vector of every window of ``path`` to ``sink``.

    Returns the number of windows and of repaired (filled) cells.
    """
    require_bottleneck(detector.arch)
    total = filled = 0
    for step in window_blocks(path, record, chunk_rows, fill, options):
        filled += step.rows.n_filled
        if step.n == 0:
            continue
        codes = detector.encode(step.X)[step.keep]
        sink(pd.DataFrame(step.key_columns() | {f"e{i}": codes[:, i] for i in range(codes.shape[1])}))
        total += len(codes)
    return total, filled
