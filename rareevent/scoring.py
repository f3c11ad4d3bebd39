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

The stages the scorer drives live in modules of their own: the window
stream (:mod:`rareevent.window_stream`), the top sensors
(:mod:`rareevent.top_sensors`), alarm episodes
(:mod:`rareevent.alarm_episodes`), the per-window history kept for the
result (:mod:`rareevent.window_history`) and the output writer
(:mod:`rareevent.window_writer`). The names other code imports from here
are re-exported (``name as name``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent.alarm_episodes import AlarmEpisodes
from rareevent.decision import Decision, decider_for
from rareevent.detector import Detector
from rareevent.errors import RareEventError
from rareevent.load import Columns, CsvFormat, Reading
from rareevent.model import PREDICT_BATCH
from rareevent.options import ScoreSpec
from rareevent.pipeline import WriteBehind, read_ahead
from rareevent.record import RunRecord, RunView
from rareevent.top_sensors import (
    TOP_FEATURES as TOP_FEATURES,
    TopSensors as TopSensors,
    top_features,
)
from rareevent.window_history import WindowHistory
from rareevent.window_scores import require_bottleneck
from rareevent.window_stream import (
    WindowBlock,
    WindowStream,
    file_has_labels as file_has_labels,
    model_columns,
    open_csv,
    settle_reading,
    trained_columns as trained_columns,
)
from rareevent.window_writer import WindowWriter as WindowWriter

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
        return (
            f"ScoreResult(path={str(self.path)!r}, rows={self.n_rows}, "
            f"windows={self.n_windows}, flagged={flagged}, "
            f"segments={self.n_segments}, alarms={len(self.alarms)})"
        )


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
    """Feed ``frames`` to ``scorer`` to their end.

    ``sink`` gets the windows, ``on_progress`` the count of new rows.
    """
    done = 0
    for out in to_the_end(scorer, frames):
        if sink is not None and len(out.columns):
            sink(out)
        if on_progress is not None and scorer.n_rows > done:
            on_progress(scorer.n_rows - done)
            done = scorer.n_rows
    return scorer.close()


def to_the_end(
    scorer: StreamScorer, frames: Iterable[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """What ``scorer`` releases for each frame, then at the end of the data."""
    for frame in frames:
        yield scorer.update(frame)
    yield scorer.flush()


class StreamScorer:
    """Score rows as they arrive: every piece of state carried from one frame to the
    next lives here.

    ``update(frame)`` takes raw rows with the file's columns (strings or
    numbers, as read from CSV), validates them as ``score`` validates a
    file (errors name ``source``, the column and the line) and returns the
    windows they complete, with the columns of ``score``'s output. The
    episodes an update opened and closed are in ``opened`` and ``closed``.
    ``flush()`` ends the data: it releases the rows held back (a trailing
    blank under ``--fill interpolate``, the last ``--resample`` cell).
    ``close()`` returns the :class:`ScoreResult`.

    ``record`` is a run's :class:`~rareevent.record.RunView` (``load_run``;
    ``from_run`` reads one): its time and label columns, reading, gap and
    resampling rules. Without it, a detector fitted in a notebook reads
    frames of its sensor columns. ``spec`` names the frames' time and label
    columns where they differ from the run's, the repair of blank cells and
    the reading options.

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
        if record is None:
            # a detector fitted in a notebook: its sensor columns only, no time or label column
            from rareevent.runs import run_view

            record = run_view(RunRecord(name="detector"), detector)
        self.spec = spec or ScoreSpec()
        self.record, self.detector, self.source = record, detector, source
        self.batch, self.keep_windows = batch, keep_windows
        # errors are kept for the scored sensors only
        self.names = [record.features[i] for i in detector.target_features_]
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
        # positions (among the rows on the grid) where a segment begins
        self._segment_starts: list[int] = []
        self._last_begun = 0
        self._history = WindowHistory() if keep_windows else None
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
        """A numpy batch as a frame of the trained sensor columns.

        Refused where the stream reads more columns.
        """
        features = list(self.record.features)
        array = np.asarray(rows)
        if array.ndim != 2 or array.shape[1] != len(features):
            raise RareEventError(
                f"{self.source}: a numpy batch must have shape (rows, {len(features)}), "
                f"the sensor columns {', '.join(features)} in this order; "
                f"got shape {array.shape}"
            )
        if self.stream is not None and (
            self.stream.columns.time or self.stream.columns.label
        ):
            raise RareEventError(
                f"{self.source}: the frames so far carried time or label columns, "
                "a numpy batch holds sensors only",
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
                    model_columns(fmt, self.record, self.spec.input),
                    self._reading,
                )
            self.stream = WindowStream(
                fmt, columns, reading, self.record, self.spec.input.fill, self.batch
            )
        return self.stream

    def settle(
        self, fmt: CsvFormat, sample: pd.DataFrame | None
    ) -> tuple[Columns, Reading]:
        """The run's columns in ``fmt`` and the reading of its cells, settled from the
        options, the run and ``sample`` (text: the first rows)."""
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
        """Score one released block and record it.

        Returns its per-window output (``None``: it released no window).
        """
        block, detector = step.rows, self.detector
        position = self.n_rows  # of the block's first row among the rows on the grid
        self.n_rows += len(block)
        self.n_filled += block.n_filled
        self.n_segments += int(step.starts.sum())
        self._segment_starts.extend((position + np.flatnonzero(step.starts)).tolist())
        if self._history is not None:
            self._history.add_rows(block, step.starts)
        if step.n == 0:
            return None
        assert step.X is not None and step.ends is not None, (
            "_release fills every field of a step with windows"
        )
        raw, feature_errors = detector.score_windows(step.X)
        raw, feature_errors = raw[step.keep], feature_errors[step.keep]
        # a step may hold only windows across a gap
        score = (
            detector.smooth_scores(raw, self._previous_raw, step.resets)
            if len(raw)
            else raw
        )
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
        if self._history is not None:
            self._history.add_windows(score, flagged, step.ends, positions)
        out = step.key_columns() | {
            "error": score,
            "flagged": flagged.astype(np.int8),
            "top_features": top_features(feature_errors, self.names),
        }
        if step.end_label is not None:
            out["label"] = step.end_label
        return pd.DataFrame(out)

    def _breaks(self, positions: np.ndarray) -> np.ndarray:
        """Per window (end positions ``positions``): True where a segment began since
        the window before it (as :func:`windows.window_breaks`)."""
        begun = np.searchsorted(
            np.asarray(self._segment_starts), positions, side="right"
        )
        before = begun[0] if self.n_windows == 0 and len(begun) else self._last_begun
        breaks = np.diff(np.concatenate([[before], begun])) > 0
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
        kept = (
            {}
            if self._history is None
            else self._history.result_fields(
                self.lookback, self.detector.lead, self.decider.decision.cooldown
            )
        )
        self._result = ScoreResult(
            path=Path(self.source),
            columns=self.stream.columns,
            threshold=self.decider.decision.threshold,
            reading=self.stream.reading,
            n_rows=self.n_rows,
            n_filled=self.n_filled,
            alarms=self.episodes.alarms,
            n_segments=self.n_segments,
            decision=self.decider.decision,
            **kept,
        )
        return self._result


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
