"""Stage 1: read a sensor CSV and check it, once, at the boundary.

Everything after this module works on clean numbers: a float64 feature
matrix, optional 0/1 labels and an optional strictly increasing time axis.
Every problem found here is a :class:`RareEventError` naming the file, the
column and the line (line 1 is the header), so a user can open the file and
go straight to it. Checks run sensors first, then labels, then time; within
a check the first offending line is named.

Files are read with pandas' C parser in chunks when asked (``chunk_rows``),
so scoring a long file never holds more than one chunk of raw text.

How cells are read (the decimal mark, the time format) is a :class:`Reading`,
settled once per file before the data is read: from options, from the run
that scores the file, or inferred (the decimal mark from a sample of the
cells, the day/month order from the whole time column).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import os
import re
import stat
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.options import (
    DECIMAL_MARKS,
    TIME_UNITS,
    InputSpec,
    ReadOptions,
    check_encoding,
    check_time_format,
    check_tz,
)

DELIMITERS = (",", ";", "\t")
TIME_NAMES = ("time", "timestamp", "datetime", "date")
LABEL_NAMES = ("y", "label", "anomaly")
SAMPLE_ROWS = 10_000  # rows of text the decimal mark is inferred from
_SNIFF_BYTES = (
    64 * 1024
)  # the most bytes a header (line 1) may take: it is read from them
_OTHER_MARK = {".": ",", ",": "."}
# dd.mm.yyyy / mm/dd/yy ... with an optional time: the shapes whose day/month order must be inferred
_DAY_MONTH = re.compile(
    r"\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?:([ T])(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*"
)
_DAY_MONTH_FIELDS = r"^\s*(\d{1,2})[./-](\d{1,2})[./-]"


@dataclass(frozen=True)
class CsvFormat:
    """What the first bytes of a file tell: its delimiter and header.

    ``counted`` is False for rows that come from no file to count lines in
    (standard input, frames given to a ``StreamScorer``): their lines are
    then ``row + 2``. ``table`` marks a typed table (a Parquet file, a
    group of a fleet, a Spark group): it has rows, counted from 1, not lines.
    """

    path: Path
    delimiter: str
    header: list[str]
    counted: bool = True
    table: bool = False
    encoding: str = "utf-8"

    @property
    def codec(self) -> str:
        """The codec the file is opened with: a UTF-8 byte order mark is skipped."""
        return _codec(self.encoding)


@dataclass(frozen=True)
class Columns:
    """The role of every column used: time axis, label, features (in order)."""

    features: list[str]
    time: str | None = None
    label: str | None = None
    dropped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    assumed: list[dict[str, str]] = field(
        default_factory=list
    )  # roles no option gave: {"column", "as", "message"}


_UTC_OFFSET = (
    r"(?:Z|[+-]\d\d:?\d\d)$"  # an ISO time's offset: 2026-01-31T13:45:00+01:00, ...Z
)


def _codec(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


@dataclass(frozen=True)
class Reading:
    """How the cells of a file are read; saved in run.json so new files are read the same way.

    ``decimal_settled`` is false while the decimal mark is only the default
    (no option, no evidence): then ``1,234`` is refused as ambiguous.
    ``time_format`` is a strftime format (``None``: ISO 8601 or numbers);
    ``date_order`` names the day/month order it holds, ``date_order_assumed``
    says that no value settled it (every first field was at most 12).
    ``tz`` is the zone naive local times are in (they become UTC);
    ``encoding`` the text encoding the file was read in.
    """

    decimal: str = "."
    decimal_settled: bool = False
    time_format: str | None = None
    time_unit: str | None = None
    date_order: str | None = None
    date_order_assumed: bool = False
    tz: str | None = None
    encoding: str = "utf-8"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> Reading:
        """The reading saved in a run; a run from before readings were saved reads files as before."""
        return cls() if value is None else cls(**value)

    def order_note(self, column: str | None) -> str | None:
        """What to tell the user when no date settled the day/month order (``None`` when one did)."""
        if not self.date_order_assumed or self.time_format is None:
            return None
        if self.date_order == "day-first":
            other = (
                self.time_format.replace("%d", "%D")
                .replace("%m", "%d")
                .replace("%D", "%m")
            )
            how = f"`time_format='{other}'`"
        else:
            how = "`dayfirst`"
        return f"no date in column {column!r} has a day above 12, so day and month could be either way: read {self.date_order} ({self.time_format}); pass {how} for the other order"

    def describe(self) -> str | None:
        """One line for the train summary, or ``None`` when the file was read the default way."""
        parts = []
        if self.decimal != ".":
            parts.append(f"decimal mark {self.decimal!r}")
        if self.time_unit:
            parts.append(f"time in {self.time_unit} since 1970")
        if self.time_format:
            order = (
                f", {self.date_order}"
                + (" (assumed: no day above 12)" if self.date_order_assumed else "")
                if self.date_order
                else ""
            )
            parts.append(f"time format {self.time_format}{order}")
        if self.tz:
            parts.append(f"local time in {self.tz}, kept as UTC")
        if self.encoding != "utf-8":
            parts.append(f"encoding {self.encoding}")
        return "; ".join(parts) or None


def reading_record_ok(value: Any) -> bool:
    """Whether a run.json ``reading`` field is well formed (``None``: a run from before readings were saved)."""
    if value is None:
        return True
    fields = set(Reading.__dataclass_fields__)
    if not isinstance(value, dict) or set(value) not in (
        fields,
        fields - {"tz", "encoding"},
    ):  # a run from 0.3.0 has neither
        return False
    return bool(
        value["decimal"] in DECIMAL_MARKS
        and isinstance(value["decimal_settled"], bool)
        and (value["time_format"] is None or _is_time_format(value["time_format"]))
        and (value["time_unit"] is None or value["time_unit"] in TIME_UNITS)
        and value["date_order"] in (None, "day-first", "month-first")
        and isinstance(value["date_order_assumed"], bool)
        and (value.get("tz") is None or _is_tz(value["tz"]))
        and isinstance(value.get("encoding", "utf-8"), str)
        and _is_encoding(value.get("encoding", "utf-8"))
    )


def _is_time_format(value: Any) -> bool:
    """Whether ``value`` writes and reads back a time, as ``--time-format`` must."""
    if not isinstance(value, str):
        return False
    try:
        check_time_format(value)
    except RareEventError:
        return False
    return True


def _is_tz(value: Any) -> bool:
    try:
        return isinstance(value, str) and check_tz(value) == value
    except RareEventError:
        return False


def _is_encoding(value: str) -> bool:
    try:
        return check_encoding(value) == value
    except RareEventError:
        return False


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
    reading: Reading = field(default_factory=Reading)

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


def is_pipe(path: str | Path) -> bool:
    """Whether ``path`` is a pipe (a FIFO, ``<(...)``) or a device: what can be read only once."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def check_not_pipe(path: Path) -> None:
    """Refuse a pipe where the input is read more than once."""
    if is_pipe(path):
        raise RareEventError(
            f"{path}: is a pipe, which can be read only once; this command reads its "
            "input more than once",
            hint="save the data to a file first (rareevent score reads a pipe as it comes)",
        )


def sniff(
    path: str | Path, encoding: str | None = None, fallback: str | None = None
) -> CsvFormat:
    """Check that ``path`` is a readable CSV and find its delimiter, header and encoding.

    The text is ``encoding`` when one is given (``--encoding``); otherwise
    UTF-8, or ``fallback`` (the encoding a run's training file had) when the
    bytes are not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise RareEventError(f"{path}: file not found")
    if path.is_dir():
        raise RareEventError(f"{path}: is a folder, not a CSV file")
    check_not_pipe(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise RareEventError(f"{path}: cannot read ({exc.strerror})") from None
    return format_of(
        path,
        head,
        complete=len(head) < _SNIFF_BYTES,
        encoding=encoding,
        fallback=fallback,
    )


def format_of(
    path: Path,
    head: bytes,
    complete: bool,
    counted: bool = True,
    encoding: str | None = None,
    fallback: str | None = None,
) -> CsvFormat:
    """The delimiter and header of a CSV from its first bytes ``head`` (``complete``: the whole file), checked."""
    if not head.strip():
        raise RareEventError(f"{path}: file is empty")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        b"\x00" in head[:2]
        and head[1::2].count(0) + head[::2].count(0) >= len(head) // 3
    ):  # a BOM, or ASCII text with a zero byte beside every character
        raise RareEventError(
            f"{path}: is UTF-16 (or UTF-32) text; rareevent reads UTF-8 and 8-bit encodings",
            hint="convert it to UTF-8 first: iconv -f UTF-16 -t UTF-8 FILE.csv > FILE-utf8.csv",
        )
    if b"\x00" in head:
        raise RareEventError(f"{path}: looks like a binary file, not CSV text")
    encoding = check_encoding(encoding) if encoding else None
    if encoding is not None and encoding not in ("utf-8", "utf-8-sig"):
        encoding = _utf8_over(path, head, complete, encoding)
    if (
        encoding is None
        and fallback
        and check_encoding(fallback) != "utf-8"
        and not _is_utf8(head, complete)
    ):
        encoding = check_encoding(fallback)
    text = (
        _decode(path, head, complete)
        if encoding is None
        else head.decode(_codec(encoding), errors="replace")
    ).lstrip("\ufeff")
    if not complete and "\n" not in text:
        raise RareEventError(
            f"{path}: the header (line 1) is longer than {_SNIFF_BYTES:,} bytes; "
            f"rareevent reads headers of at most {_SNIFF_BYTES:,} bytes",
            hint="drop columns you do not need before exporting, or shorten their names",
        )
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if not first_line.strip():
        raise RareEventError(
            f"{path}: line 1 is blank; the first line must be the header"
        )
    unquoted = re.sub(
        r'"[^"]*"', "", first_line
    )  # a quoted header name may hold any separator
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d])
    header = [
        name.strip()
        for name in next(csv.reader(io.StringIO(text), delimiter=delimiter))
    ]
    if counts[delimiter] == 0 and re.search(r"[|:]", first_line):
        raise RareEventError(
            f"{path}: found only one column {first_line[:40]!r}",
            hint="separate columns with ',', ';' or a tab",
        )
    if any(name == "" for name in header):
        position = header.index("") + 1
        raise RareEventError(
            f"{path}: column {position} of the header (line 1) has no name"
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise RareEventError(
                f"{path}: duplicate column name {name!r} in the header (line 1)"
            )
        seen.add(name)
    return CsvFormat(
        path=path,
        delimiter=delimiter,
        header=header,
        counted=counted,
        encoding=encoding or "utf-8",
    )


def _utf8_over(path: Path, head: bytes, complete: bool, encoding: str) -> str | None:
    """``encoding`` for a file it was named for, or None (UTF-8) when the bytes say UTF-8.

    Text that is not ASCII is almost never valid UTF-8 by chance: when the
    first bytes are, they are read as UTF-8, with a warning, instead of as
    ``StÃ¶rung`` in cp1252. When only the header is, the file mixes two
    encodings, and is refused.
    """
    first = head.split(b"\n", 1)[0]
    if first.isascii() and head.isascii():
        return encoding
    as_named = first.decode(encoding, errors="replace").strip()[:40]
    if _is_utf8(head, complete):
        warnings.warn(
            f"{path}: the file is UTF-8 text, read as UTF-8 and not as {encoding} "
            f"(line 1 would read {as_named!r})",
            stacklevel=2,
        )
        return None
    if not first.isascii() and _is_utf8(first, True):
        raise RareEventError(
            f"{path}: line 1 is UTF-8 text ({as_named!r} as {encoding}), but later bytes "
            f"are not UTF-8: the file mixes encodings",
            hint="re-export the file in one encoding",
        )
    return encoding


def _is_utf8(data: bytes, complete: bool) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not complete and exc.start >= len(data) - 4
    return True


def _encoding_hint(data: bytes) -> str:
    """What to do about bytes that are not UTF-8: name the Windows or Latin-1 encoding they read as."""
    for encoding in ("cp1252", "latin-1"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return f"it reads as {encoding} (Excel's ANSI export on Windows): pass `encoding={encoding}`, or re-export the file as UTF-8"
    return "re-export the file as UTF-8, or pass `encoding=NAME`"


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
            hint=_encoding_hint(data),
        ) from None


def resolve_columns(
    fmt: CsvFormat,
    time: str | None = None,
    label: str | None = None,
    drop: Sequence[str] = (),
    sample: pd.DataFrame | None = None,
) -> Columns:
    """Assign roles for training: named columns, else the conventional names, else (time) the content.

    Without ``time`` and a column of a conventional name, the first column
    whose cells in ``sample`` (the first rows, as text) are all dates or
    times is the time column, whatever its name (``Zeitstempel``); the
    columns say so in ``assumed``.
    """
    header = fmt.header
    lower = {name.lower(): name for name in header}
    for param, names in (
        ("time", [time] if time else []),
        ("label", [label] if label else []),
        ("drop", drop),
    ):
        unknown = [n for n in names if n not in header]
        if unknown:
            raise RareEventError(
                f"{fmt.path}: `{param}` names unknown column {unknown[0]!r}",
                hint=f"columns are {', '.join(header)}",
                param=param,
            )
    assumed = []
    if time is None:
        time = next(
            (lower[n] for n in TIME_NAMES if n in lower and lower[n] not in drop), None
        )
    if time is None and sample is not None:
        time = next(
            (
                name
                for name in header
                if name not in drop and name != label and looks_like_times(sample[name])
            ),
            None,
        )
        if time is not None:
            assumed.append(
                {
                    "column": time,
                    "as": "time",
                    "message": f"column {time!r} holds dates or times: read as the time column (`time={time}`)",
                }
            )
    if label is None:
        label = next(
            (
                lower[n]
                for n in LABEL_NAMES
                if n in lower and lower[n] not in drop and lower[n] != time
            ),
            None,
        )
    if time is not None and time == label:
        raise RareEventError(
            f"{fmt.path}: column {time!r} cannot be both time and label"
        )
    taken = {time, label, *drop}
    features = [name for name in header if name not in taken]
    if not features:
        raise RareEventError(
            f"{fmt.path}: no feature columns left after time, label and `drop`",
            hint="every column other than time and label must be a numeric sensor",
        )
    return Columns(
        features=features, time=time, label=label, dropped=list(drop), assumed=assumed
    )


_ISO_TIME = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?\s*"
)


def looks_like_times(cells: pd.Series) -> bool:
    """Whether every non-blank cell of a text column is a date or time the reader knows (ISO 8601, ``31.01.2026 13:45``, ``01/31/26``)."""
    text = cells.dropna().astype(str)
    if not len(text):
        return False
    return bool(
        text.str.fullmatch(_DAY_MONTH.pattern).all()
        or text.str.fullmatch(_ISO_TIME.pattern).all()
    )


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
    return Columns(
        features=list(trained.features), time=time, label=label, ignored=ignored
    )


def read_frames(
    fmt: CsvFormat,
    columns: Columns,
    chunk_rows: int | None = None,
    reading: Reading | None = None,
    text: bool = False,
    data: str | None = None,
    first_row: int = 0,
) -> Generator[pd.DataFrame, None, None]:
    """Yield the file as raw frames, ``chunk_rows`` rows at a time, indexed by data-row number.

    All columns are parsed (``usecols`` would let pandas drop surplus fields
    of a ragged row silently); numbers with the reading's decimal mark, the
    time column (every column with ``text``) kept as text. With ``data``,
    those lines (no header; data row ``first_row`` first) are read instead of the file.
    """
    dtypes: Any = (
        str if text else {name: str for name in (columns.time,) if name is not None}
    )
    done = 0  # rows yielded: where a row with surplus fields is
    try:
        reader = pd.read_csv(
            fmt.path if data is None else io.StringIO(data),
            sep=fmt.delimiter,
            decimal=(reading or Reading()).decimal,
            encoding=fmt.codec,
            header=0 if data is None else None,
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
            # a first row longer than the header only warns, and pandas drops its surplus fields: refuse it like any other long row
            warnings.filterwarnings(
                "error",
                "Length of header or names does not match",
                pd.errors.ParserWarning,
            )
            for frame in reader:
                if first_row:
                    frame.index += first_row
                done += len(frame)
                yield frame
    except pd.errors.ParserWarning:
        raise _long_row(fmt, data, first_row + done, first_row) from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, record, saw = match.groups()
            row = (
                int(record) - (2 if data is None else 1) + first_row
            )  # pandas counts the lines it read, the header among them
            raise RareEventError(
                f"{fmt.path}: line {file_line(fmt, row)} has {saw} fields, the header has {expected}",
                hint="every row needs one value per column",
            ) from None
        raise RareEventError(
            f"{fmt.path}: cannot parse as CSV: {str(exc).strip()}"
        ) from None
    except OSError as exc:
        raise RareEventError(f"{fmt.path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        line, block = _first_bad_utf8_line(fmt.path)
        raise RareEventError(
            f"{fmt.path}: line {line} is not UTF-8 text", hint=_encoding_hint(block)
        ) from None


def _long_row(
    fmt: CsvFormat, data: str | None, row: int, first_row: int
) -> RareEventError:
    """The ragged-row error for data row ``row``, which has more fields than the header."""
    line = file_line(fmt, row)
    if data is None:
        _check_field_count(
            fmt, line
        )  # raises with the number of fields where the file can be read by line
        saw = "more"
    else:
        saw = str(
            len(
                next(
                    itertools.islice(
                        csv.reader(io.StringIO(data), delimiter=fmt.delimiter),
                        row - first_row,
                        None,
                    ),
                    [],
                )
            )
        )
    return RareEventError(
        f"{fmt.path}: line {line} has {saw} fields, the header has {len(fmt.header)}",
        hint="every row needs one value per column",
    )


def file_line(fmt: CsvFormat, row: int) -> int:
    """The line an editor shows for the start of 0-based data row ``row``.

    ``row + 2`` unless a quoted cell before it spans lines: the records
    before it are counted with the csv module, so this is for error messages only.
    A table's row ``row`` is its row ``row + 1``.
    """
    if fmt.table:
        return row + 1
    if not fmt.counted:
        return row + 2
    with open(fmt.path, encoding=fmt.codec, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=fmt.delimiter, skipinitialspace=True)
        try:
            for _ in itertools.islice(
                reader, row + 1
            ):  # the header and the rows before
                pass
        except (
            csv.Error
        ):  # a cell beyond the csv module's size limit: count one line per row
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
    text = _line_text(fmt.path, line, fmt.encoding) if fmt.counted else None
    if text is None:
        return
    fields = next(csv.reader([text], delimiter=fmt.delimiter), [])
    if text.strip() and len(fields) != len(fmt.header):
        raise RareEventError(
            f"{fmt.path}: line {line} has {len(fields)} fields, the header has {len(fmt.header)}",
            hint="every row needs one value per column",
        )


def _line_text(path: Path, line: int, encoding: str = "utf-8") -> str | None:
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
    return (
        parts[index].decode(encoding, "replace").rstrip("\r")
        if buffer and index < len(parts)
        else None
    )


def _first_bad_utf8_line(path: Path) -> tuple[int, bytes]:
    """Line number of the first byte that is not valid UTF-8, and the block holding it, read block by block."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for block in _blocks(path):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            return line + (block[: max(exc.start - pending, 0)]).count(b"\n"), block
        line += block.count(b"\n")
    return line, b""


def validate_frame(
    frame: pd.DataFrame,
    fmt: CsvFormat,
    columns: Columns,
    fill: str | None = None,
    previous_time: object | None = None,
    anchor: np.ndarray | None = None,
    reading: Reading | None = None,
) -> SensorData:
    """Turn one raw frame into checked arrays.

    The frame's index is the 0-based data-row number in the file (pandas
    keeps counting across chunks), so row ``r`` is file line ``r + 2``
    (more after a quoted cell that spans lines: see :func:`file_line`).
    ``previous_time`` and ``anchor`` (the last time value and float64
    feature row of the block before) carry order checks and
    ``ffill``/``interpolate`` repairs across chunk borders. ``reading``
    (default: decimal point, ISO or numeric times) says how cells are read.
    """
    path = fmt.path
    reading = reading or Reading()
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():  # blank lines carry no reading; the index keeps line numbers exact
        frame = frame[~blank]
    rows = frame.index.to_numpy(dtype=np.int64)
    X = pd.DataFrame(
        {
            name: _numeric_column(frame[name], path, name, _Lines(fmt, rows), reading)
            for name in columns.features
        },
        index=frame.index,
    )
    n_filled = 0
    missing = X.isna().to_numpy()
    if missing.any():
        short = np.flatnonzero(missing[:, -1])
        if (
            short.size
        ):  # pandas pads a row with too few fields with NaN: tell it from a blank cell
            _check_field_count(fmt, file_line(fmt, int(rows[short[0]])))
        if fill is None:
            row, col = np.argwhere(missing)[0]
            raise RareEventError(
                f"{path}: blank or NaN value in column {columns.features[col]!r} at line {file_line(fmt, int(rows[row]))}",
                hint="repair with `fill=ffill`, `fill=interpolate` or `fill=drop`",
            )
        n_filled = int(missing.sum())
        if fill == "drop":
            keep = ~missing.any(axis=1)
            X, frame, rows = X[keep], frame[keep], rows[keep]
        else:
            if anchor is not None:
                X = pd.concat(
                    [pd.DataFrame(anchor, columns=X.columns), X], ignore_index=True
                )
            X = (
                X.interpolate(limit_direction="both")
                if fill == "interpolate"
                else X.ffill().bfill()
            )
            if anchor is not None:
                X = X.iloc[1:]
            empty = X.columns[X.isna().all().to_numpy()]
            if len(empty):
                raise RareEventError(
                    f"{path}: column {empty[0]!r} has no value to fill from",
                    hint="`drop` the column",
                )
    values = X.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "infinite value" if np.isinf(values[row, col]) else "value out of range"
        raise RareEventError(
            f"{path}: {kind} in column {columns.features[col]!r} at line {file_line(fmt, int(rows[row]))}"
        )
    lines = _Lines(fmt, rows)
    y = (
        _labels(frame[columns.label], path, columns.label, lines)
        if columns.label
        else None
    )
    time = (
        _times(frame[columns.time], path, columns.time, lines, previous_time, reading)
        if columns.time
        else None
    )
    return SensorData(
        path=path,
        columns=columns,
        X=values,
        y=y,
        time=time,
        rows=rows,
        n_filled=n_filled,
        reading=reading,
    )


def _numeric_column(
    series: pd.Series, path: Path, name: str, lines: _Lines, reading: Reading
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    coerced, ambiguous = _to_numbers(series, reading)
    bad = coerced.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value, line = str(series.iloc[row]), lines[row]
        if ambiguous[row]:
            mark = _OTHER_MARK[reading.decimal]
            raise RareEventError(
                f"{path}: ambiguous number {value[:30]!r} in column {name!r} at line {line}: {mark!r} may be a thousands separator or the decimal mark",
                hint=f"pass `decimal={reading.decimal}` to read {mark!r} as a thousands separator, or `decimal={mark}` to read it as the decimal mark",
            )
        raise RareEventError(
            f"{path}: non-numeric value {value[:30]!r} in column {name!r} at line {line}",
            hint=_non_numeric_hint(value, reading, bad.mean() > 0.5, name),
        )
    return coerced.astype(np.float64)


def _to_numbers(series: pd.Series, reading: Reading) -> tuple[pd.Series, np.ndarray]:
    """A text column as numbers under the reading's decimal mark, vectorised; and which cells are ambiguous.

    The other mark is a thousands separator, read only in whole groups of
    three digits (``1.234,5``, ``1.234.567``). A lone group without a decimal
    part (``1,234``) reads either way: it is ambiguous until the decimal mark
    is settled by an option, by other cells or by the run.
    """
    text = series.astype(object)
    thousands = _OTHER_MARK[reading.decimal]
    sep, dec = re.escape(thousands), re.escape(reading.decimal)
    ambiguous = np.zeros(len(text), bool)
    has_thousands = (
        text.str.contains(thousands, regex=False).fillna(False).to_numpy(bool)
    )
    if has_thousands.any():
        grouped = (
            text.str.fullmatch(rf"[+-]?\d{{1,3}}(?:{sep}\d{{3}})+(?:{dec}\d+)?")
            .fillna(False)
            .to_numpy(bool)
        )
        if not reading.decimal_settled:
            ambiguous = (
                text.str.fullmatch(rf"[+-]?\d{{1,3}}{sep}\d{{3}}")
                .fillna(False)
                .to_numpy(bool)
            )
        # cells with the thousands mark outside whole groups, or ambiguous ones, are not numbers
        text = text.where(~has_thousands | (grouped & ~ambiguous)).str.replace(
            thousands, "", regex=False
        )
    if reading.decimal != ".":
        text = text.str.replace(reading.decimal, ".", regex=False)
    return pd.to_numeric(text, errors="coerce"), ambiguous


def _non_numeric_hint(
    value: str, reading: Reading, mostly_text: bool, name: str
) -> str | None:
    """Suggest ``--decimal`` for a number with the other decimal mark, ``--time`` for a date, ``--drop`` for a text column."""
    if looks_like_times(pd.Series([value])):
        return f"column {name!r} holds dates: pass `time={name}` to make it the time column"
    other = _OTHER_MARK[reading.decimal]
    if pd.notna(
        _to_numbers(pd.Series([value]), Reading(decimal=other, decimal_settled=True))[
            0
        ].iloc[0]
    ):
        return f"the file is read with decimal mark {reading.decimal!r}; pass `decimal={other}` if {other!r} is its decimal mark"
    return "use `drop` to exclude text columns" if mostly_text else None


def _labels(series: pd.Series, path: Path, name: str, lines: _Lines) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RareEventError(
            f"{path}: label column {name!r} must be 0 or 1, found {str(series.iloc[row])[:30]!r} at line {lines[row]}",
            hint="pass `label=NAME` for the 0/1 event column, or `drop` it",
        )
    return values.astype(np.int8)


def _times(
    series: pd.Series,
    path: Path,
    name: str,
    lines: _Lines,
    previous: object | None,
    reading: Reading,
) -> np.ndarray:
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
    """The times of column ``name`` of a frame read from ``fmt`` (dates, or numbers), in row order and not checked for order."""
    return _time_values(
        frame[name], fmt.path, name, _Lines(fmt, np.arange(len(frame))), reading
    )


def _time_values(
    series: pd.Series,
    path: Path,
    name: str,
    lines: _Lines,
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
                f"{path}: blank time in column {name!r} at line {lines[int(np.flatnonzero(np.isnat(values))[0])]}"
            )
        return values
    if reading.time_format is not None:
        numeric = None
    else:  # the default reading costs what it did before readings existed
        numeric = (
            pd.to_numeric(series, errors="coerce")
            if reading.decimal == "."
            else _to_numbers(series, reading)[0]
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
            f"{path}: cannot read time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]} as a number of {reading.time_unit} since 1970"
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
            where = f"{path}: cannot parse time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]}"
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
    lines: _Lines,
    tz: str,
    previous: object | None,
) -> np.ndarray:
    """Times as UTC: ``parsed`` holds UTC for cells with an offset and wall-clock times of ``tz`` for the rest.

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
                f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]} does not exist in {tz}: the clock skips that hour in spring"
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
    """For each position in ``ambiguous`` (wall times of a repeated hour, in file order): whether it is the first, summer-time pass.

    Within one repeated hour, the first step that does not increase is the
    clock going back. ``previous`` (the UTC time before ``wall``, from the
    chunk before) continues an hour that chunk began.
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
    lines: _Lines,
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
    lines: _Lines,
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
            f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]} is out of range as {unit} since 1970",
            hint=f"is it `time_unit={other}`?",
        )
    return pd.to_datetime(pd.Series(values), unit=unit).to_numpy(dtype="datetime64[ns]")


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
        lines = _Lines(fmt, frame.index.to_numpy(dtype=np.int64))
        has = "has no UTC offset, unlike" if first.aware else "has a UTC offset, unlike"
        raise RareEventError(
            f"{fmt.path}: time {str(series.iloc[row])[:30]!r} in column {name!r} at line "
            f"{lines[row]} {has} the first time {first.text[:30]!r}",
            hint="give every time the same form",
        )
    return first


def _check_offsets(series: pd.Series, path: Path, name: str, lines: _Lines) -> None:
    """Refuse ISO times of which some carry a UTC offset and others do not: the naive ones would be read as UTC without a word."""
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
            f"{path}: time {str(series.iloc[row])[:30]!r} in column {name!r} at line {lines[row]} {has} the first time {str(series.iloc[first])[:30]!r}",
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


def text_sample(fmt: CsvFormat, columns: Columns) -> pd.DataFrame | None:
    """The first ``SAMPLE_ROWS`` data rows as text, to infer the reading from (``None``: no data rows)."""
    frames = read_frames(fmt, columns, SAMPLE_ROWS, text=True)
    try:
        return next(frames, None)
    finally:
        frames.close()


def decimal_reading(
    sample: pd.DataFrame | None,
    fmt: CsvFormat,
    columns: Columns,
    options: ReadOptions,
    base: Reading,
) -> Reading:
    """Settle the decimal mark: ``--decimal``, else the sample's cells, else ``base`` (the run's mark, or the default).

    Only ``;`` and tab files can hold decimal commas unquoted, so only they
    are looked at; ``,`` files keep the decimal point. A cell votes for a
    mark when it can only be read with it (``0,5``, ``1.234,5`` for ',';
    ``0.5`` for '.'); ``1,234`` votes for neither. The zone (``--tz``,
    else the run's) and the file's encoding travel with the reading.
    """
    carried = Reading(tz=options.tz or base.tz, encoding=fmt.encoding)
    if options.decimal is not None:
        return replace(carried, decimal=options.decimal, decimal_settled=True)
    if fmt.delimiter == ",":
        return replace(
            carried,
            decimal=".",
            decimal_settled=base.decimal_settled and base.decimal == ".",
        )
    if sample is None:
        return replace(
            carried, decimal=base.decimal, decimal_settled=base.decimal_settled
        )
    cells = (
        pd.concat([sample[name] for name in columns.features], ignore_index=True)
        .dropna()
        .str.strip()
    )
    votes = {}
    for mark, other in _OTHER_MARK.items():
        sep, dec = re.escape(other), re.escape(mark)
        decimal_part = cells.str.fullmatch(
            rf"[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d*){dec}\d+(?:[eE][+-]?\d+)?"
        )
        lone_group = cells.str.fullmatch(rf"[+-]?\d{{1,3}}{dec}\d{{3}}")
        groups_of_other = cells.str.fullmatch(rf"[+-]?\d{{1,3}}(?:{sep}\d{{3}}){{2,}}")
        votes[mark] = int(((decimal_part & ~lone_group) | groups_of_other).sum())
    if votes[","] == votes["."]:
        return replace(
            carried,
            decimal=base.decimal,
            decimal_settled=base.decimal_settled or votes["."] > 0,
        )
    return replace(
        carried, decimal="," if votes[","] > votes["."] else ".", decimal_settled=True
    )


def time_reading(
    sample: pd.DataFrame | None,
    fmt: CsvFormat,
    columns: Columns,
    reading: Reading,
    options: ReadOptions,
    base: Reading,
    column_values: Callable[[], Iterable[pd.Series]],
) -> Reading:
    """Settle how the time column is read: the options, else the run's reading (``base``) where it fits, else inferred.

    The run's time format is kept when it reads every time of the sample.
    Otherwise day/month dates (``31.01.2026 13:45``, ``01/31/26``) get a
    strftime format whose order comes from ``column_values`` (the whole time
    column, read only when needed): the first value with a first field above
    12 makes it day-first, one with a second field above 12 month-first; with
    neither, the run's order, else ``.`` and ``-`` dates are read day-first
    and ``/`` dates month-first, and the reading says it was assumed.
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
        _DAY_MONTH.fullmatch(first.iloc[0])
        if first is not None and len(first)
        else None
    )
    if shape is None:
        if options.dayfirst:
            shown = (
                f" (line {first.index[0] + 2}: {first.iloc[0][:30]!r})"
                if first is not None and len(first)
                else ""
            )
            raise RareEventError(
                f"{fmt.path}: `dayfirst`: the times in column {columns.time!r} are not dates like 31.01.2026{shown}",
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
    """The strftime format of a day/month date like ``shape`` (a match of ``_DAY_MONTH``)."""
    _, sep, _, year, tsep, _, _, seconds, fraction = shape.groups()
    day, month = ("%d", "%m") if dayfirst else ("%m", "%d")
    text = f"{day}{sep}{month}{sep}{'%Y' if len(year) == 4 else '%y'}"
    if tsep:
        text += (
            f"{tsep}%H:%M" + (":%S" if seconds else "") + (".%f" if fraction else "")
        )
    return text


def load_csv(
    path: str | Path,
    spec: InputSpec | None = None,
    trained: Columns | None = None,
    base: Reading | None = None,
) -> SensorData:
    """Read and validate a whole training CSV, inferring its reading where ``spec.read`` leaves it open.

    With ``trained`` (a run's columns) the file is matched to them by name,
    as for scoring, instead of taking roles from ``spec``'s time, label and drop;
    ``base`` is then the run's reading, which settles what the file leaves open.
    """
    spec = spec or InputSpec()
    raw = read_csv_whole(path, spec, trained=trained, base=base)
    return validate_frame(
        raw.frame, raw.fmt, raw.columns, fill=spec.fill, reading=raw.reading
    )


@dataclass
class RawTable:
    """A whole file read but not yet checked: its format, column roles, raw cells and reading."""

    fmt: CsvFormat
    columns: Columns
    frame: pd.DataFrame
    reading: Reading


def read_csv_whole(
    path: str | Path,
    spec: InputSpec,
    trained: Columns | None = None,
    base: Reading | None = None,
) -> RawTable:
    """The whole of a CSV as one raw frame, with its column roles and settled reading (see :func:`load_csv`)."""
    base = base or Reading()
    options = spec.read
    fmt = sniff(path, options.encoding, base.encoding)
    sample = text_sample(fmt, Columns(features=fmt.header))
    columns = (
        resolve_columns(
            fmt, time=spec.time, label=spec.label, drop=spec.drop, sample=sample
        )
        if trained is None
        else columns_for_model(fmt, trained)
    )
    reading = decimal_reading(sample, fmt, columns, options, base)
    frame = next(read_frames(fmt, columns, reading=reading), None)
    if frame is None or len(frame) == 0:
        raise RareEventError(f"{fmt.path}: has a header but no data rows")
    reading = time_reading(
        sample, fmt, columns, reading, options, base, lambda: [frame[columns.time]]
    )
    return RawTable(fmt, columns, frame, reading)
