"""Read a CSV as it is written: ``score --follow`` tails a file, ``score -`` reads standard input.

A :class:`CsvTail` hands over the complete lines written since the last
read, parsed as raw frames with the file's columns (a partly written last
line waits for its newline). The file's reading (decimal mark, time
format) is settled from the first lines, as ``score`` settles it from a
file's first rows, and so is its text encoding: ``--encoding`` when
given, else UTF-8, else the encoding the run was trained on when the
first lines are not UTF-8 (as ``score`` reads a whole file) or are ASCII. A followed
file that is replaced under its name (rotated) or becomes shorter than
what was read (truncated) is read again from its start; a first line
equal to the header is then skipped.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from rareevent.detector import Detector
from rareevent.errors import RareEventError
from rareevent.load import (
    Columns,
    CsvFormat,
    Reading,
    format_of,
    read_frames,
)
from rareevent.model import PREDICT_BATCH
from rareevent.options import ScoreSpec
from rareevent.record import RunView
from rareevent.scoring import ScoreResult, StreamScorer, WindowSink, score_frames
from rareevent.sniffing import encoding_hint

READ_BYTES = (
    1 << 20
)  # bytes read at most per call: a big existing file is scored in pieces of this size


@dataclass
class Piece:
    """What one read found: new rows (``None``: none yet), and why the file is read from
    its start again.
    """

    frame: pd.DataFrame | None = None
    restarted: str | None = None


class CsvTail:
    """The rows of a CSV as they are written, from a file (``path``) or from a pipe (``stream``).

    ``settle(fmt, sample)`` turns the header and a text sample of the first
    rows into the columns and reading to parse every row with (see
    :func:`rareevent.window_stream.settle_reading`). ``encoding`` (``--encoding``)
    and ``fallback`` (the run's) choose the text encoding as
    :func:`rareevent.load.sniff` does, from the first lines read; first
    lines in ASCII, which read alike in both, are read as ``fallback``.
    """

    def __init__(
        self,
        path: Path | None,
        settle: Any,
        stream: IO[bytes] | None = None,
        encoding: str | None = None,
        fallback: str | None = None,
        name: str = "<stdin>",
    ) -> None:
        self.path, self.stream, self.settle = path, stream, settle
        self.encoding, self.fallback = encoding, fallback
        self.name = str(path) if path is not None else name
        self.fmt: CsvFormat | None = None
        self.columns: Columns | None = None
        self.reading: Reading | None = None
        self.rows = (
            0  # data rows handed over from the current file: the next row's number
        )
        self.ended = False  # the pipe was closed (a followed file never ends)
        self._handle: IO[bytes] | None = stream
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        self._skip_header = False

    def read(self) -> Piece:
        """The rows completed since the last read (a file that was replaced or truncated
        is read again from its start).
        """
        restarted = self._check_file() if self.path is not None else None
        data = self._read_bytes()
        if not data:
            return Piece(restarted=restarted)
        lines, newline, self._partial = (self._partial + data).rpartition(b"\n")
        if not newline:
            return Piece(restarted=restarted)
        chunk = lines + b"\n"
        if self.fmt is None:  # the header and the encoding, from the first lines
            self.fmt = format_of(
                Path(self.name),
                chunk,
                complete=True,
                counted=self.path is not None,
                # ASCII reads alike in both: lines still to come are read as the run's were
                encoding=self.encoding or (self.fallback if chunk.isascii() else None),
                fallback=self.fallback,
            )
            text = self._decode(chunk, header=True).partition("\n")[2]
        else:
            text = self._decode(chunk, header=self._skip_header)
        if self._skip_header:
            first, _, rest = text.partition("\n")
            if [
                name.strip()
                for name in next(csv.reader([first], delimiter=self.fmt.delimiter), [])
            ] == self.fmt.header:
                text = rest
        self._skip_header = False
        if not text:
            return Piece(restarted=restarted)
        if (
            self.columns is None or self.reading is None
        ):  # both are settled together, from the first rows
            sample = next(
                read_frames(self.fmt, self._columns_to_read(), text=True, data=text),
                None,
            )
            self.columns, self.reading = self.settle(self.fmt, sample)
        frame = next(
            read_frames(
                self.fmt,
                self.columns,
                reading=self.reading,
                data=text,
                first_row=self.rows,
            ),
            None,
        )
        if frame is None or len(frame) == 0:
            return Piece(restarted=restarted)
        self.rows += len(frame)
        return Piece(frame=frame, restarted=restarted)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Every frame of a pipe, until it is closed."""
        while not self.ended:
            piece = self.read()
            if piece.frame is not None:
                yield piece.frame
        if self.fmt is None:
            raise RareEventError(f"{self.name}: file is empty")

    def _columns_to_read(self) -> Columns:
        """Every column, as text: what the reading is settled from."""
        assert self.fmt is not None
        return Columns(features=list(self.fmt.header))

    def _read_bytes(self) -> bytes:
        if self.path is None:
            assert self._handle is not None
            data = self._handle.read(READ_BYTES)
            self.ended = not data
            return (
                data if data else (b"\n" if self._partial else b"")
            )  # a closed pipe's last line needs no newline
        if self._handle is None:
            return b""
        data = (
            self._handle.read(READ_BYTES) or b""
        )  # None: a FIFO with a writer but nothing written yet
        self._offset += len(data)
        return data

    def _check_file(self) -> str | None:
        """Open the file when it appears; start again from its start when it was
        replaced or truncated.
        """
        assert self.path is not None
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return (
                None  # not there yet, or between a rotation's rename and the new file
            )
        except OSError as exc:
            raise RareEventError(f"{self.path}: cannot read ({exc.strerror})") from None
        if self._handle is None:
            self._open(status.st_ino)
            return None
        if status.st_ino != self._inode:
            if os.fstat(self._handle.fileno()).st_size > self._offset:
                # lines written to the old file before it was renamed: read them to its
                # end first
                return None
            reason = "was replaced by a new file"
        elif status.st_size < self._offset and not stat.S_ISFIFO(status.st_mode):
            reason = "was truncated"
        else:
            return None
        self._handle.close()
        self._open(status.st_ino)
        self._partial, self.rows, self._skip_header = b"", 0, True
        return f"{self.path} {reason}: reading it again from its start"

    def _open(self, inode: int) -> None:
        assert self.path is not None
        try:
            # without blocking: a FIFO with no writer yet would otherwise hold
            # open() forever, deaf to Ctrl-C and SIGTERM. Held open between
            # reads, closed on restart or close().
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self._handle = open(fd, "rb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise RareEventError(f"{self.path}: cannot read ({exc.strerror})") from None
        self._inode, self._offset = inode, 0

    def _decode(self, data: bytes, header: bool) -> str:
        """Complete lines in the file's encoding.

        At a file's start (``header``) a UTF-8 byte order mark is skipped.
        """
        assert self.fmt is not None
        try:
            return data.decode(self.fmt.codec if header else self.fmt.encoding)
        except UnicodeDecodeError as exc:
            line = (
                self.rows
                + 2
                + data[: exc.start].count(b"\n")
                - (1 if header and not self._skip_header else 0)
            )
            encoding = "UTF-8" if self.fmt.encoding == "utf-8" else self.fmt.encoding
            raise RareEventError(
                f"{self.name}: line {line} is not {encoding} text",
                hint=encoding_hint(data[exc.start : exc.start + 4096]),
            ) from None

    def close(self) -> None:
        """Close the followed file."""
        if self._handle is not None and self._handle is not self.stream:
            self._handle.close()
        self._handle = None


def _tail(
    path: Path | None,
    settle: Any,
    record: RunView,
    spec: ScoreSpec | None,
    stream: IO[bytes] | None = None,
    name: str = "<stdin>",
) -> CsvTail:
    """A tail whose text is read as ``--encoding`` says, else as UTF-8 or as the run's file was."""
    return CsvTail(
        path,
        settle,
        stream,
        encoding=None if spec is None else spec.input.read.encoding,
        fallback=Reading.from_record(record.reading).encoding,
        name=name,
    )


def score_pipe(
    stream: IO[bytes],
    record: RunView,
    detector: Detector,
    spec: ScoreSpec | None = None,
    sink: WindowSink | None = None,
    name: str = "<stdin>",
) -> ScoreResult:
    """Score a CSV read from a pipe (``score -``, a FIFO) as ``score_csv`` scores a file.

    The pipe is read once, from start to end. The reading is settled from
    the first :data:`READ_BYTES` of the pipe (a file's from its first rows
    and, for the day/month order, its whole time column); errors name
    ``name`` and the line.
    """
    scorer = StreamScorer(detector, record, name, spec, batch=PREDICT_BATCH)
    tail = _tail(None, scorer.settle, record, spec, stream, name)

    def frames() -> Iterator[pd.DataFrame]:
        for frame in tail.frames():
            if scorer.stream is None:
                assert tail.fmt is not None
                scorer.begin(tail.fmt, tail.reading)
            yield frame

    return score_frames(scorer, frames(), sink)


@dataclass
class Update:
    """What one poll of a followed file brought: windows now complete, alarm episodes
    opened and closed.
    """

    windows: pd.DataFrame
    opened: list[dict[str, Any]]
    closed: list[dict[str, Any]]
    restarted: str | None = None
    rows: int = 0  # rows read by this poll


class Follower:
    """Score a CSV that another program appends to, as its lines are written (``score --follow``).

    Each :meth:`poll` scores the lines completed since the last one. A file
    read again from its start (rotated, truncated) ends the data of the old
    one (its last windows and open episode are released) and starts afresh:
    no window spans the two files, and rows are numbered in the new one.
    No per-window history is kept, so memory stays flat however long it runs.
    """

    def __init__(
        self,
        path: Path,
        record: RunView,
        detector: Detector,
        spec: ScoreSpec | None = None,
    ) -> None:
        self.path, self.record, self.detector, self.spec = path, record, detector, spec
        self.scorer = self._new_scorer()
        self.tail = _tail(
            path, lambda fmt, sample: self.scorer.settle(fmt, sample), record, spec
        )
        self.n_closed = 0  # alarm episodes closed
        self.restarts = 0
        self._next: Piece | None = (
            None  # rows read with a restart, scored at the next poll
        )
        self._done = {
            "rows": 0,
            "windows": 0,
            "flagged": 0,
        }  # counts of the files read before the current one

    def _new_scorer(self) -> StreamScorer:
        return StreamScorer(
            self.detector, self.record, str(self.path), self.spec, keep_windows=False
        )

    def poll(self) -> Update:
        """Score what was written since the last poll.

        When the file was read again from its start, this update ends the
        old file (``restarted`` says why) and the next one brings the new rows.
        """
        piece, self._next = (
            (self._next, None) if self._next is not None else (self.tail.read(), None)
        )
        if piece.restarted is not None:
            windows = self.scorer.flush() if self._has_windows() else pd.DataFrame()
            update = (
                Update(windows, self.scorer.opened, self.scorer.closed, piece.restarted)
                if len(windows.columns)
                else Update(windows, [], [], piece.restarted)
            )
            self._count(self.scorer)
            self.scorer = self._new_scorer()
            self.restarts += 1
            self._next = Piece(frame=piece.frame)
        elif piece.frame is not None:
            if self.scorer.stream is None:
                assert self.tail.fmt is not None
                self.scorer.begin(self.tail.fmt, self.tail.reading)
            update = Update(
                self.scorer.update(piece.frame),
                self.scorer.opened,
                self.scorer.closed,
                rows=len(piece.frame),
            )
        else:
            update = Update(pd.DataFrame(), [], [])
        self.n_closed += len(update.closed)
        return update

    @property
    def pending(self) -> bool:
        """Whether rows read with a restart wait for the next poll."""
        return self._next is not None

    def _has_windows(self) -> bool:
        """Whether the file read so far gave a window (else its few rows are dropped,
        with no window to release).
        """
        stream = self.scorer.stream
        return stream is not None and stream.n_rows >= self.scorer.lookback

    def _count(self, scorer: StreamScorer) -> None:
        """Add the counts of a file that was read to its end."""
        for key, value in (
            ("rows", scorer.n_rows),
            ("windows", scorer.n_windows),
            ("flagged", scorer.n_flagged),
        ):
            self._done[key] += value

    def summary(self) -> dict[str, Any]:
        """Counts so far over every file read: rows, windows, flagged, alarm episodes
        (closed and still open), restarts.
        """
        scorer = self.scorer
        return {
            "file": str(self.path),
            "run": self.record.name,
            "rows": self._done["rows"] + scorer.n_rows,
            "windows": self._done["windows"] + scorer.n_windows,
            "flagged": self._done["flagged"] + scorer.n_flagged,
            "threshold": float(self.detector.threshold_),
            "alarm_episodes": self.n_closed,
            "open_episode": scorer.episodes.open_episode,
            "restarts": self.restarts,
        }

    def close(self) -> None:
        self.tail.close()
