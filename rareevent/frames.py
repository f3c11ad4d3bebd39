"""Chunked reading: a CSV's rows as raw frames, and each frame checked into numbers.

:func:`read_frames` reads a file with pandas' C parser, ``chunk_rows`` rows
at a time when asked, so scoring a long file never holds more than one
chunk of raw text; a row with more fields than the header is refused with
its line. :func:`validate_frame` turns one raw frame into
:class:`SensorData`: float64 features (blank cells refused, or repaired by
``fill``), 0/1 labels and a strictly increasing time axis. Checks run
sensors first, then labels, then time; within a check the first offending
line is named. Order checks and repairs carry across chunk borders.

It puts together the format (:mod:`rareevent.sniffing`), the column roles
(:mod:`rareevent.columns`), the reading (:mod:`rareevent.reading`) and the
time parser (:mod:`rareevent.times`).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent.columns import Columns
from rareevent.errors import RareEventError
from rareevent.reading import OTHER_MARK, Reading, to_numbers
from rareevent.sniffing import (
    CsvFormat,
    FileLines,
    encoding_hint,
    file_blocks,
    file_line,
    first_bad_utf8_line,
    looks_like_times,
)
from rareevent.times import checked_times

SAMPLE_ROWS = 10_000  # rows of text the decimal mark is inferred from


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
            # a first row longer than the header only warns, and pandas drops its
            # surplus fields: refuse it like any other long row
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
                f"{fmt.path}: line {file_line(fmt, row)} has {saw} fields, "
                f"the header has {expected}",
                hint="every row needs one value per column",
            ) from None
        raise RareEventError(
            f"{fmt.path}: cannot parse as CSV: {str(exc).strip()}"
        ) from None
    except OSError as exc:
        raise RareEventError(f"{fmt.path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        line, block = first_bad_utf8_line(fmt.path)
        raise RareEventError(
            f"{fmt.path}: line {line} is not UTF-8 text", hint=encoding_hint(block)
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
    for block in file_blocks(path):
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
            name: _numeric_column(
                frame[name], path, name, FileLines(fmt, rows), reading
            )
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
                f"{path}: blank or NaN value in column {columns.features[col]!r} "
                f"at line {file_line(fmt, int(rows[row]))}",
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
            f"{path}: {kind} in column {columns.features[col]!r} "
            f"at line {file_line(fmt, int(rows[row]))}"
        )
    lines = FileLines(fmt, rows)
    y = (
        _labels(frame[columns.label], path, columns.label, lines)
        if columns.label
        else None
    )
    time = (
        checked_times(
            frame[columns.time], path, columns.time, lines, previous_time, reading
        )
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
    series: pd.Series, path: Path, name: str, lines: FileLines, reading: Reading
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(np.float64)
    coerced, ambiguous = to_numbers(series, reading)
    bad = coerced.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value, line = str(series.iloc[row]), lines[row]
        if ambiguous[row]:
            mark = OTHER_MARK[reading.decimal]
            raise RareEventError(
                f"{path}: ambiguous number {value[:30]!r} in column {name!r} at line {line}: "
                f"{mark!r} may be a thousands separator or the decimal mark",
                hint=f"pass `decimal={reading.decimal}` to read {mark!r} as a thousands "
                f"separator, or `decimal={mark}` to read it as the decimal mark",
            )
        raise RareEventError(
            f"{path}: non-numeric value {value[:30]!r} in column {name!r} at line {line}",
            hint=_non_numeric_hint(value, reading, bad.mean() > 0.5, name),
        )
    return coerced.astype(np.float64)


def _non_numeric_hint(
    value: str, reading: Reading, mostly_text: bool, name: str
) -> str | None:
    """Suggest ``--decimal``, ``--time`` or ``--drop`` for a cell that is not a number.

    ``--decimal`` for a number with the other decimal mark, ``--time`` for a
    date, ``--drop`` for a text column.
    """
    if looks_like_times(pd.Series([value])):
        return f"column {name!r} holds dates: pass `time={name}` to make it the time column"
    other = OTHER_MARK[reading.decimal]
    if pd.notna(
        to_numbers(pd.Series([value]), Reading(decimal=other, decimal_settled=True))[
            0
        ].iloc[0]
    ):
        return (
            f"the file is read with decimal mark {reading.decimal!r}; "
            f"pass `decimal={other}` if {other!r} is its decimal mark"
        )
    return "use `drop` to exclude text columns" if mostly_text else None


def _labels(series: pd.Series, path: Path, name: str, lines: FileLines) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RareEventError(
            f"{path}: label column {name!r} must be 0 or 1, "
            f"found {str(series.iloc[row])[:30]!r} at line {lines[row]}",
            hint="pass `label=NAME` for the 0/1 event column, or `drop` it",
        )
    return values.astype(np.int8)


def text_sample(fmt: CsvFormat, columns: Columns) -> pd.DataFrame | None:
    """The first ``SAMPLE_ROWS`` data rows as text, to infer the reading from.

    ``None`` when the file has no data rows.
    """
    frames = read_frames(fmt, columns, SAMPLE_ROWS, text=True)
    try:
        return next(frames, None)
    finally:
        frames.close()
