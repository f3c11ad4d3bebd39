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

The work is done by one module per job, and this one re-exports their names,
so ``from rareevent.load import ...`` keeps working:

- :mod:`rareevent.sniffing`: the file's format (delimiter, header, encoding);
- :mod:`rareevent.reading`: the :class:`Reading` record and the decimal mark;
- :mod:`rareevent.times`: time parsing, and how a file's times are read;
- :mod:`rareevent.columns`: the column roles (time axis, label, features);
- :mod:`rareevent.frames`: chunked reading, and the checks of each frame.

Here they are put together to read a whole file (:func:`load_csv`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rareevent.columns import (
    LABEL_NAMES as LABEL_NAMES,
    TIME_NAMES as TIME_NAMES,
    Columns as Columns,
    columns_for_model as columns_for_model,
    resolve_columns as resolve_columns,
)
from rareevent.errors import RareEventError
from rareevent.frames import (
    SAMPLE_ROWS as SAMPLE_ROWS,
    SensorData as SensorData,
    read_frames as read_frames,
    text_sample as text_sample,
    validate_frame as validate_frame,
)
from rareevent.options import InputSpec as InputSpec, ReadOptions as ReadOptions
from rareevent.reading import (
    Reading as Reading,
    decimal_reading as decimal_reading,
    reading_record_ok as reading_record_ok,
)
from rareevent.sniffing import (
    DELIMITERS as DELIMITERS,
    CsvFormat as CsvFormat,
    check_not_pipe as check_not_pipe,
    file_line as file_line,
    file_sha256 as file_sha256,
    format_of as format_of,
    is_pipe as is_pipe,
    looks_like_times as looks_like_times,
    sniff as sniff,
)
from rareevent.times import (
    TimeKind as TimeKind,
    check_time_kind as check_time_kind,
    time_reading as time_reading,
    time_values as time_values,
)


def load_csv(
    path: str | Path,
    spec: InputSpec | None = None,
    trained: Columns | None = None,
    base: Reading | None = None,
) -> SensorData:
    """Read and validate a whole training CSV, inferring its reading where ``spec.read`` is open.

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
    """The whole of a CSV as one raw frame, with its column roles and settled reading.

    See :func:`load_csv`.
    """
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
