"""Stage 1: read a sensor CSV and check it, once, at the boundary.

Everything after this module works on clean numbers: a float64 feature
matrix, optional 0/1 labels and an optional strictly increasing time axis.
Every problem found here is a :class:`RareEventError` naming the file, the
column and the line (line 1 is the header), so a user can open the file and
go straight to it. Checks run sensors first, then labels, then time; within
a check the first offending line is named.

Files are read with pandas' C parser in chunks when asked (``chunk_rows``),
so scoring a long file never holds more than one chunk of raw text.
"""

from __future__ import annotations

import csv
import codecs
import hashlib
import io
import itertools
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError

DELIMITERS = (",", ";", "\t")
TIME_NAMES = ("time", "timestamp", "datetime", "date")
LABEL_NAMES = ("y", "label", "anomaly")
FILL_METHODS = ("ffill", "interpolate", "drop")
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class CsvFormat:
    """What the first bytes of a file tell: its delimiter and header."""

    path: Path
    delimiter: str
    header: list[str]


@dataclass(frozen=True)
class Columns:
    """The role of every column used: time axis, label, features (in order)."""

    features: list[str]
    time: str | None = None
    label: str | None = None
    dropped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass
class SensorData:
    """A validated block of rows: ``X`` (n x F float64), ``y``, ``time``.

    ``rows`` holds the 0-based data-row number of every row kept (file line
    ``rows + 2``); ``n_filled`` counts cells repaired by ``fill``.
    """

    path: Path
    columns: Columns
    X: np.ndarray
    y: np.ndarray | None
    time: np.ndarray | None
    rows: np.ndarray
    n_filled: int = 0

    def __len__(self) -> int:
        return len(self.X)


def _blocks(path: Path) -> Iterator[bytes]:
    """The bytes of a file in 1 MiB blocks."""
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    for block in _blocks(path):
        digest.update(block)
    return digest.hexdigest()


def sniff(path: str | Path) -> CsvFormat:
    """Check that ``path`` is a readable UTF-8 CSV and find its delimiter and header."""
    path = Path(path)
    if not path.exists():
        raise RareEventError(f"{path}: file not found")
    if path.is_dir():
        raise RareEventError(f"{path}: is a folder, not a CSV file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise RareEventError(f"{path}: cannot read ({exc.strerror})") from None
    if not head.strip():
        raise RareEventError(f"{path}: file is empty")
    if b"\x00" in head:
        raise RareEventError(f"{path}: looks like a binary file, not CSV text")
    text = _decode(path, head, complete=len(head) < _SNIFF_BYTES).lstrip("\ufeff")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if not first_line.strip():
        raise RareEventError(f"{path}: line 1 is blank; the first line must be the header")
    unquoted = re.sub(r'"[^"]*"', "", first_line)  # a quoted header name may hold any separator
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d])
    header = [name.strip() for name in next(csv.reader(io.StringIO(text), delimiter=delimiter))]
    if counts[delimiter] == 0 and re.search(r"[|:]", first_line):
        raise RareEventError(
            f"{path}: found only one column {first_line[:40]!r}",
            hint="separate columns with ',', ';' or a tab",
        )
    if any(name == "" for name in header):
        position = header.index("") + 1
        raise RareEventError(f"{path}: column {position} of the header (line 1) has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise RareEventError(f"{path}: duplicate column name {name!r} in the header (line 1)")
        seen.add(name)
    return CsvFormat(path=path, delimiter=delimiter, header=header)


def _decode(path: Path, data: bytes, complete: bool) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(data) - 4:
            # a multi-byte character cut at the end of the sniffed block
            return data[: exc.start].decode("utf-8-sig")
        line = data[: exc.start].count(b"\n") + 1
        raise RareEventError(
            f"{path}: line {line} is not UTF-8 text (byte {exc.start})",
            hint="re-export the file as UTF-8",
        ) from None


def resolve_columns(
    fmt: CsvFormat,
    time: str | None = None,
    label: str | None = None,
    drop: Sequence[str] = (),
) -> Columns:
    """Assign roles for training: named columns, else the conventional names."""
    header = fmt.header
    lower = {name.lower(): name for name in header}
    for option, names in (("--time", [time] if time else []), ("--label", [label] if label else []), ("--drop", drop)):
        unknown = [n for n in names if n not in header]
        if unknown:
            raise RareEventError(
                f"{fmt.path}: {option} names unknown column {unknown[0]!r}",
                hint=f"columns are {', '.join(header)}",
            )
    if time is None:
        time = next((lower[n] for n in TIME_NAMES if n in lower and lower[n] not in drop), None)
    if label is None:
        label = next((lower[n] for n in LABEL_NAMES if n in lower and lower[n] not in drop and lower[n] != time), None)
    if time is not None and time == label:
        raise RareEventError(f"{fmt.path}: column {time!r} cannot be both time and label")
    taken = {time, label, *drop}
    features = [name for name in header if name not in taken]
    if not features:
        raise RareEventError(
            f"{fmt.path}: no feature columns left after time, label and --drop",
            hint="every column other than time and label must be a numeric sensor",
        )
    return Columns(features=features, time=time, label=label, dropped=list(drop))


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
    return Columns(features=list(trained.features), time=time, label=label, ignored=ignored)


def read_frames(fmt: CsvFormat, columns: Columns, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """Yield the file as raw frames, ``chunk_rows`` rows at a time, indexed by data-row number.

    All columns are parsed (``usecols`` would let pandas drop surplus fields
    of a ragged row silently); the time column is kept as text.
    """
    dtypes = {name: str for name in (columns.time,) if name is not None}
    try:
        reader = pd.read_csv(
            fmt.path,
            sep=fmt.delimiter,
            encoding="utf-8-sig",
            header=0,
            names=fmt.header,
            index_col=False,
            dtype=dtypes,
            skip_blank_lines=False,
            skipinitialspace=True,
            chunksize=chunk_rows or 1_000_000_000,
            low_memory=False,
        )
        with reader, warnings.catch_warnings():
            # short rows are reported by validate_frame with their line number
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            yield from reader
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, record, saw = match.groups()
            raise RareEventError(
                f"{fmt.path}: line {file_line(fmt, int(record) - 2)} has {saw} fields, the header has {expected}",
                hint="every row needs one value per column",
            ) from None
        raise RareEventError(f"{fmt.path}: cannot parse as CSV: {str(exc).strip()}") from None
    except OSError as exc:
        raise RareEventError(f"{fmt.path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        line = _first_bad_utf8_line(fmt.path)
        raise RareEventError(f"{fmt.path}: line {line} is not UTF-8 text", hint="re-export the file as UTF-8") from None


def file_line(fmt: CsvFormat, row: int) -> int:
    """The line an editor shows for the start of 0-based data row ``row``.

    ``row + 2`` unless a quoted cell before it spans lines: the records
    before it are counted with the csv module, so this is for error messages only.
    """
    with open(fmt.path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter, skipinitialspace=True)
        try:
            for _ in itertools.islice(reader, row + 1):  # the header and the rows before
                pass
        except csv.Error:  # a cell beyond the csv module's size limit: count one line per row
            return row + 2
        return reader.line_num + 1


class _Lines:
    """Editor lines of the rows of a frame, by position, counted only when an error needs one."""

    def __init__(self, fmt: CsvFormat, rows: np.ndarray) -> None:
        self.fmt, self.rows = fmt, rows

    def __getitem__(self, position: int) -> int:
        return file_line(self.fmt, int(self.rows[position]))


def _check_field_count(fmt: CsvFormat, line: int) -> None:
    """Raise the ragged-row error when ``line`` has fewer fields than the header.

    pandas fills the missing fields of a short row with NaN; this tells a
    broken row from a blank cell, on the error path only.
    """
    text = _line_text(fmt.path, line)
    if text is None:
        return
    fields = next(csv.reader([text], delimiter=fmt.delimiter), [])
    if text.strip() and len(fields) != len(fmt.header):
        raise RareEventError(
            f"{fmt.path}: line {line} has {len(fields)} fields, the header has {len(fmt.header)}",
            hint="every row needs one value per column",
        )


def _line_text(path: Path, line: int) -> str | None:
    """The text of one line of a file, found by counting newlines block by block."""
    seen = 0  # newlines before ``buffer``
    buffer = b""
    for block in _blocks(path):
        if not buffer and seen + block.count(b"\n") < line - 1:
            seen += block.count(b"\n")
            continue
        buffer += block
        parts = buffer.split(b"\n")
        if line - 1 - seen < len(parts) - 1:
            break
    parts = buffer.split(b"\n")
    index = line - 1 - seen
    return parts[index].decode("utf-8", "replace").rstrip("\r") if buffer and index < len(parts) else None


def _first_bad_utf8_line(path: Path) -> int:
    """Line number of the first byte that is not valid UTF-8, read block by block."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for block in _blocks(path):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            return line + (block[: max(exc.start - pending, 0)]).count(b"\n")
        line += block.count(b"\n")
    return line


def validate_frame(
    frame: pd.DataFrame,
    fmt: CsvFormat,
    columns: Columns,
    fill: str | None = None,
    previous_time: object | None = None,
    anchor: np.ndarray | None = None,
) -> SensorData:
    """Turn one raw frame into checked arrays.

    The frame's index is the 0-based data-row number in the file (pandas
    keeps counting across chunks), so row ``r`` is file line ``r + 2``
    (more after a quoted cell that spans lines: see :func:`file_line`).
    ``previous_time`` and ``anchor`` (the last time value and float64
    feature row of the block before) carry order checks and
    ``ffill``/``interpolate`` repairs across chunk borders.
    """
    path = fmt.path
    check_fill(fill)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():  # blank lines carry no reading; the index keeps line numbers exact
        frame = frame[~blank]
    rows = frame.index.to_numpy(dtype=np.int64)
    X = pd.DataFrame({name: _numeric_column(frame[name], path, name, _Lines(fmt, rows)) for name in columns.features}, index=frame.index)
    n_filled = 0
    missing = X.isna().to_numpy()
    if missing.any():
        short = np.flatnonzero(missing[:, -1])
        if short.size:  # pandas pads a row with too few fields with NaN: tell it from a blank cell
            _check_field_count(fmt, file_line(fmt, int(rows[short[0]])))
        if fill is None:
            row, col = np.argwhere(missing)[0]
            raise RareEventError(
                f"{path}: blank or NaN value in column {columns.features[col]!r} at line {file_line(fmt, int(rows[row]))}",
                hint="repair with --fill ffill, --fill interpolate or --fill drop",
            )
        n_filled = int(missing.sum())
        if fill == "drop":
            keep = ~missing.any(axis=1)
            X, frame, rows = X[keep], frame[keep], rows[keep]
        else:
            if anchor is not None:
                X = pd.concat([pd.DataFrame(anchor, columns=X.columns), X], ignore_index=True)
            X = X.interpolate(limit_direction="both") if fill == "interpolate" else X.ffill().bfill()
            if anchor is not None:
                X = X.iloc[1:]
            empty = X.columns[X.isna().all().to_numpy()]
            if len(empty):
                raise RareEventError(f"{path}: column {empty[0]!r} has no value to fill from", hint="--drop the column")
    values = X.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "infinite value" if np.isinf(values[row, col]) else "value out of range"
        raise RareEventError(f"{path}: {kind} in column {columns.features[col]!r} at line {file_line(fmt, int(rows[row]))}")
    y = _labels(frame[columns.label], path, columns.label, _Lines(fmt, rows)) if columns.label else None
    time = _times(frame[columns.time], path, columns.time, _Lines(fmt, rows), previous_time) if columns.time else None
    return SensorData(path=path, columns=columns, X=values, y=y, time=time, rows=rows, n_filled=n_filled)


def _numeric_column(series: pd.Series, path: Path, name: str, lines: _Lines) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RareEventError(
            f"{path}: non-numeric value {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]}",
            hint="use --drop to exclude text columns" if bad.mean() > 0.5 else None,
        )
    return coerced.astype(np.float64)


def _labels(series: pd.Series, path: Path, name: str, lines: _Lines) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RareEventError(
            f"{path}: label column {name!r} must be 0 or 1, found {str(series.iloc[row])[:30]!r} at line {lines[row]}",
            hint="pass --label NAME for the 0/1 event column, or --drop it",
        )
    return values.astype(np.int8)


def _times(series: pd.Series, path: Path, name: str, lines: _Lines, previous: object | None) -> np.ndarray:
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all():
        values = numeric.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RareEventError(f"{path}: infinite time in column {name!r} at line {lines[row]}")
    else:
        parsed = _parse_datetimes(series, path, name)
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise RareEventError(
                f"{path}: cannot parse time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]}",
                hint="use ISO times like 2024-01-31 13:45:00 or plain numbers, or --time NAME",
            )
        values = parsed.to_numpy(dtype="datetime64[ns]")
    order = values if previous is None else np.concatenate([np.asarray([previous], dtype=values.dtype), values])
    try:
        steps = np.diff(order)
    except TypeError:
        raise RareEventError(f"{path}: time column {name!r} mixes numbers and dates") from None
    not_increasing = steps <= steps.dtype.type(0)
    if not_increasing.any():
        step = int(np.flatnonzero(not_increasing)[0])
        row = step if previous is not None else step + 1
        word = "repeats" if steps[step] == steps.dtype.type(0) else "goes backwards"
        raise RareEventError(
            f"{path}: time in column {name!r} {word} at line {lines[row]}",
            hint="rows must be in strictly increasing time order",
        )
    return values


def check_fill(fill: str | None) -> None:
    """Refuse an unknown ``--fill`` method."""
    if fill is not None and fill not in FILL_METHODS:
        raise RareEventError(f"--fill {fill!r}: use one of {', '.join(FILL_METHODS)}")


def _parse_datetimes(series: pd.Series, path: Path, name: str) -> pd.Series:
    """Parse text times: ISO 8601 fast, else pandas' per-value inference; offsets become UTC."""
    try:
        parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=series.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", na=False).any())
        if parsed.isna().any():
            parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RareEventError(f"{path}: cannot parse the times in column {name!r} ({' '.join(str(exc).split())[:80]})") from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def load_csv(
    path: str | Path,
    time: str | None = None,
    label: str | None = None,
    drop: Sequence[str] = (),
    fill: str | None = None,
) -> SensorData:
    """Read and validate a whole training CSV."""
    fmt = sniff(path)
    columns = resolve_columns(fmt, time=time, label=label, drop=drop)
    frame = next(read_frames(fmt, columns), None)
    if frame is None or len(frame) == 0:
        raise RareEventError(f"{fmt.path}: has a header but no data rows")
    return validate_frame(frame, fmt, columns, fill=fill)
