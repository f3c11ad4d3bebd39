"""Stage 6: score a new CSV with a saved run, in bounded memory.

The file is read ``chunk_rows`` rows at a time. Rows wait in a small buffer
until a whole block of ``PREDICT_BATCH`` windows can be formed, so the model
always sees the same blocks whatever the chunk size, and the output is
identical for any ``chunk_rows``. The buffer keeps the last ``T-1`` rows
across chunk borders. What is kept for the whole file is compact: one error,
flag and label per window, and the per-sensor errors of flagged windows only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent import windows
from rareevent.detector import PREDICT_BATCH, RareEventDetector, require_bottleneck
from rareevent.errors import RareEventError
from rareevent.load import Columns, SensorData, columns_for_model, read_frames, sniff, validate_frame
from rareevent.metrics import evaluate

DEFAULT_CHUNK_ROWS = 100_000
TOP_FEATURES = 3

WindowSink = Callable[[pd.DataFrame], None]
ProgressCallback = Callable[[int], None]


@dataclass
class ScoreResult:
    """Everything learned about a scored file; per-window arrays are in time order."""

    path: Path
    columns: Columns
    threshold: float
    n_rows: int = 0
    n_filled: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    error: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    flagged: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    time: np.ndarray | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None

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

    def extend(self, block: SensorData) -> None:
        self.X = np.concatenate([self.X, block.X])
        self.rows = np.concatenate([self.rows, block.rows])
        if self.y is not None and block.y is not None:
            self.y = np.concatenate([self.y, block.y])
        if self.time is not None and block.time is not None:
            self.time = np.concatenate([self.time, block.time])

    def drop_first(self, n: int) -> None:
        self.X, self.rows = self.X[n:], self.rows[n:]
        self.y = None if self.y is None else self.y[n:]
        self.time = None if self.time is None else self.time[n:]


def iter_blocks(path: str | Path, trained: Columns, lookback: int, chunk_rows: int, fill: str | None) -> Iterator[tuple[SensorData, _Buffer, int]]:
    """Yield ``(chunk, buffer, n_windows_ready)`` as validated rows arrive.

    ``n_windows_ready`` is a multiple of ``PREDICT_BATCH`` except at the end
    of the file, where every remaining window is released.
    """
    if chunk_rows < 1:
        raise RareEventError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    fmt = sniff(path)
    columns = columns_for_model(fmt, trained)
    buffer: _Buffer | None = None
    first_row = 0
    previous_time = None
    anchor: np.ndarray | None = None
    for frame in read_frames(fmt, columns, chunk_rows):
        block = validate_frame(frame, fmt, columns, first_row, fill=fill, previous_time=previous_time, anchor=anchor)
        first_row += len(frame)
        if len(block) == 0:
            continue
        previous_time = None if block.time is None else block.time[-1]
        anchor = block.X[-1:]
        if buffer is None:
            buffer = _Buffer(block.X, block.y, block.time, block.rows)
        else:
            buffer.extend(block)
        ready = windows.n_windows(len(buffer.X), lookback) // PREDICT_BATCH * PREDICT_BATCH
        yield block, buffer, ready
    if buffer is None:
        raise RareEventError(f"{fmt.path}: has a header but no data rows")
    if len(buffer.X) < lookback and first_row < lookback:
        raise RareEventError(f"{fmt.path}: {first_row} data rows give no window of lookback {lookback}: at least {lookback} rows are needed")
    yield SensorData(fmt.path, columns, buffer.X[:0], None, None, buffer.rows[:0]), buffer, windows.n_windows(len(buffer.X), lookback)


def file_has_labels(path: str | Path, record: dict[str, Any]) -> bool:
    """Whether ``path`` carries the run's label column (read from its header only)."""
    return record["label_column"] is not None and record["label_column"] in sniff(path).header


def top_features(feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES) -> np.ndarray:
    """``name:share;name:share;...`` of the ``k`` sensors with the largest share of each row's error."""
    k = min(k, feature_errors.shape[1])
    total = feature_errors.sum(axis=1, keepdims=True)
    shares = np.divide(feature_errors, total, out=np.zeros_like(feature_errors), where=total > 0)
    order = np.argsort(-shares, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(shares, order, axis=1)
    labels = np.asarray(names, dtype=object)[order]
    parts = [labels[:, i] + ":" + np.char.mod("%.2f", top[:, i]).astype(object) for i in range(k)]
    joined = parts[0]
    for part in parts[1:]:  # one step per reported sensor
        joined = joined + ";" + part
    return joined


def score_csv(
    path: str | Path,
    record: dict[str, Any],
    detector: RareEventDetector,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fill: str | None = None,
    sink: WindowSink | None = None,
    on_progress: ProgressCallback | None = None,
) -> ScoreResult:
    """Score every window of ``path`` with a loaded run.

    ``sink`` receives a DataFrame of per-window output (``row``, ``time``,
    ``error``, ``flagged``, ``top_features``, ``label``) block by block.
    """
    trained = Columns(features=record["features"], time=record["time_column"], label=record["label_column"])
    T = detector.lookback
    names = list(record["features"])
    errors, flags, ends, labels_rows, times, flagged_features = [], [], [], [], [], []
    result: ScoreResult | None = None
    previous_raw: np.ndarray | None = None
    n_rows = n_filled = 0
    for block, buffer, ready in iter_blocks(path, trained, T, chunk_rows, fill):
        if result is None:
            result = ScoreResult(path=Path(path), columns=block.columns, threshold=detector.threshold_)
        n_rows += len(block)
        n_filled += block.n_filled
        if block.y is not None:
            labels_rows.append(block.y)
        if block.time is not None:
            times.append(block.time)
        if on_progress is not None and len(block):
            on_progress(len(block))
        if ready == 0:
            continue
        raw, feature_errors = detector.score_windows(buffer.X[: ready + T - 1])
        score = detector.smooth_scores(raw, previous_raw)
        if detector.smooth > 1:
            previous_raw = np.concatenate([previous_raw, raw] if previous_raw is not None else [raw])[-(detector.smooth - 1) :]
        flagged = score >= detector.threshold_
        end_index = np.arange(T - 1, T - 1 + ready)
        errors.append(score)
        flags.append(flagged)
        ends.append(buffer.rows[end_index])
        flagged_features.append(feature_errors[flagged])
        if sink is not None:
            out: dict[str, Any] = {"row": buffer.rows[end_index]}
            if buffer.time is not None:
                out["time"] = buffer.time[end_index]
            out.update(error=score, flagged=flagged.astype(np.int8), top_features=top_features(feature_errors, names))
            if buffer.y is not None:
                out["label"] = buffer.y[end_index]
            sink(pd.DataFrame(out))
        buffer.drop_first(ready)
    assert result is not None  # iter_blocks always yields at least once or raises
    result.n_rows, result.n_filled = n_rows, n_filled
    result.error = np.concatenate(errors) if errors else np.empty(0, np.float32)
    result.flagged = np.concatenate(flags) if flags else np.empty(0, bool)
    result.rows = np.concatenate(ends) if ends else np.empty(0, np.int64)
    all_time = np.concatenate(times) if times else None
    result.time = None if all_time is None else all_time[T - 1 :]
    features = np.concatenate(flagged_features) if flagged_features else np.empty((0, len(names)), np.float32)
    result.alarms = alarm_episodes(result, features, names)
    if labels_rows:
        y = np.concatenate(labels_rows)
        positions = np.arange(T - 1, len(y))
        result.metrics = evaluate(y, windows.window_labels(y, T, detector.lead), result.flagged, result.error, positions, lead=detector.lead, time=all_time)
    return result


def alarm_episodes(result: ScoreResult, flagged_features: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Group consecutive flagged windows into alarm episodes with their top sensors."""
    episodes = windows.runs(result.flagged)
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
    if isinstance(value, np.datetime64):
        return str(pd.Timestamp(value))
    return float(value)


class WindowWriter:
    """Stream per-window output to ``.csv`` or ``.json`` as blocks arrive.

    The JSON form is one object: ``{"windows": [...], "alarms": [...],
    "metrics": ..., "summary": ...}``; its tail is written by :meth:`finish`.
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
            body = frame.to_json(orient="records", date_format="iso", double_precision=15)[1:-1]
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


def encode_csv(
    path: str | Path,
    record: dict[str, Any],
    detector: RareEventDetector,
    sink: WindowSink,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fill: str | None = None,
) -> tuple[int, int]:
    """Send the encoded vector of every window of ``path`` to ``sink``.

    Returns the number of windows and of repaired (filled) cells.
    """
    require_bottleneck(detector.arch)
    trained = Columns(features=record["features"], time=record["time_column"], label=record["label_column"])
    T = detector.lookback
    total = filled = 0
    for block, buffer, ready in iter_blocks(path, trained, T, chunk_rows, fill):
        filled += block.n_filled
        if ready == 0:
            continue
        codes = detector.encode(buffer.X[: ready + T - 1])
        end_index = np.arange(T - 1, T - 1 + ready)
        out: dict[str, Any] = {"row": buffer.rows[end_index]}
        if buffer.time is not None:
            out["time"] = buffer.time[end_index]
        out.update({f"e{i}": codes[:, i] for i in range(codes.shape[1])})
        sink(pd.DataFrame(out))
        total += ready
        buffer.drop_first(ready)
    return total, filled
