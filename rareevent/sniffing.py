"""Format sniffing: what a CSV file is, told from its first bytes before any data is read.

:func:`sniff` finds a file's delimiter, header and text encoding (a
:class:`CsvFormat`) and refuses what cannot be read as CSV text: a missing
file, a folder, a pipe where the input is read more than once, UTF-16 or
binary bytes, bytes that are not UTF-8 (naming the 8-bit encoding they read
as), a blank or overlong header, nameless or repeated column names.

It also holds what the later steps need of the file itself: the line an
editor shows for a data row (:func:`file_line`, for error messages), the
file's sha256, and the shapes of date and time text (:func:`looks_like_times`)
that the column roles and the time parser both recognise. It is separate
because it needs nothing of the data: the reading (:mod:`rareevent.reading`),
the time parser (:mod:`rareevent.times`), the column roles
(:mod:`rareevent.columns`) and the chunked reader (:mod:`rareevent.frames`)
all build on it.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rareevent.errors import RareEventError
from rareevent.options import check_encoding

if TYPE_CHECKING:
    import pandas as pd

DELIMITERS = (",", ";", "\t")

# the most bytes a header (line 1) may take: it is read from them
_SNIFF_BYTES = 64 * 1024


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


def _codec(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def file_blocks(path: Path) -> Iterator[bytes]:
    """The bytes of a file in 1 MiB blocks."""
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    for block in file_blocks(path):
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
    """The delimiter and header of a CSV from its first bytes ``head``, checked.

    ``complete``: ``head`` is the whole file.
    """
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


def encoding_hint(data: bytes) -> str:
    """What to do about bytes that are not UTF-8.

    It names the Windows or Latin-1 encoding they read as.
    """
    for encoding in ("cp1252", "latin-1"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return (
            f"it reads as {encoding} (Excel's ANSI export on Windows): "
            f"pass `encoding={encoding}`, or re-export the file as UTF-8"
        )
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
            hint=encoding_hint(data),
        ) from None


def first_bad_utf8_line(path: Path) -> tuple[int, bytes]:
    """Line number of the first byte that is not valid UTF-8, and the block holding it.

    The file is read block by block.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for block in file_blocks(path):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            return line + (block[: max(exc.start - pending, 0)]).count(b"\n"), block
        line += block.count(b"\n")
    return line, b""


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


class FileLines:
    """Editor lines of the rows of a frame, by position, counted only when an error needs one."""

    def __init__(self, fmt: CsvFormat, rows: np.ndarray) -> None:
        self.fmt, self.rows = fmt, rows

    def __getitem__(self, position: int) -> int:
        return file_line(self.fmt, int(self.rows[position]))


# dd.mm.yyyy / mm/dd/yy ... with an optional time: the shapes whose day/month order must be
# inferred
DAY_MONTH = re.compile(
    r"\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})"
    r"(?:([ T])(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*"
)

ISO_TIME = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?\s*"
)


def looks_like_times(cells: pd.Series) -> bool:
    """Whether every non-blank cell of a text column is a date or time the reader knows.

    The reader knows ISO 8601, ``31.01.2026 13:45`` and ``01/31/26``.
    """
    text = cells.dropna().astype(str)
    if not len(text):
        return False
    return bool(
        text.str.fullmatch(DAY_MONTH.pattern).all()
        or text.str.fullmatch(ISO_TIME.pattern).all()
    )
