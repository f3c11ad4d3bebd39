"""Many inputs, never mixed: several files, a glob, Parquet tables and a ``--group``
column as named series.

A fleet is a list of :class:`Series`: one per file, or with ``--group`` one
per value of that column in each file. Each series is checked on its own
(its own time order, its own fill), so windows never cross from one series
into the next, and every error names the file, the group and the line (a
Parquet table's row). All files of a fleet must carry the same columns.

Parquet is read with pyarrow. A group of a Parquet file is read on its own
(a filter on the group column), so scoring one asset never loads the fleet.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.load import (
    SAMPLE_ROWS,
    Columns,
    CsvFormat,
    RawTable,
    Reading,
    SensorData,
    columns_for_model,
    file_line,
    file_sha256,
    read_csv_whole,
    resolve_columns,
    time_reading,
    time_values,
    validate_frame,
)
from rareevent.options import InputSpec, ReadOptions

TABLE_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Series:
    """One series of a fleet: a file, or one group of a file (``group``: the value of
    the group column, as text).
    """

    path: Path
    group: str | None = None
    label: str | None = (
        None  # the output's name for it, when not the file or the group value
    )

    @property
    def name(self) -> str:
        """What outputs and reports call the series: the group value, else the file."""
        return self.label or (self.group if self.group is not None else str(self.path))

    @property
    def where(self) -> str:
        """The start of an error message about this series."""
        return (
            f"{self.path}: group {self.group!r}"
            if self.group is not None
            else str(self.path)
        )


def is_table(path: str | Path) -> bool:
    """Whether ``path`` is read as a Parquet table (by its suffix) rather than as CSV."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def expand(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named by ``inputs``: paths as given, glob patterns (``exports/*.csv``)
    expanded in sorted order.

    A pattern that matches no file, and a file named twice, are errors.
    """
    if not inputs:
        raise RareEventError("no input file given")
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        if any(c in text for c in _GLOB_CHARS) and not Path(text).exists():
            found = sorted(
                Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()
            )
            if not found:
                raise RareEventError(f"{text}: no file matches this pattern")
            files += found
        else:
            files.append(Path(text))
    seen: set[Path] = set()
    for path in files:
        if path.resolve() in seen:
            raise RareEventError(f"{path}: given twice")
        seen.add(path.resolve())
    return files


def fleet_sha256(files: Sequence[Path]) -> str:
    """One digest for the files of a fleet: sha256 over their own digests, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RareEventError(
            "reading Parquet needs pyarrow", hint="pip install pyarrow"
        ) from None
    return pq


def table_header(path: Path, group: str | None = None) -> list[str]:
    """The column names of a Parquet file, read from its footer only; refused where a
    name repeats or the ``group`` column is nested.
    """
    pq = _pyarrow()
    if not path.is_file():
        raise RareEventError(
            f"{path}: file not found"
            if not path.exists()
            else f"{path}: is a folder, not a Parquet file"
        )
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        # pyarrow raises ArrowInvalid, OSError and others for a file that is not Parquet
        raise RareEventError(
            f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:80]})"
        ) from None
    names = list(schema.names)
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise RareEventError(
            f"{path}: column {repeated!r} appears {names.count(repeated)} times: a "
            "column is read by its name",
            hint="rename or remove the copies",
        )
    if (
        group in names and schema.field(group).type.num_fields
    ):  # struct, list, map: no value to name a series by
        raise RareEventError(
            f"{path}: the `group` column {group!r} holds {schema.field(group).type} "
            "values, not plain values like text or numbers"
        )
    return names


def read_table(
    path: Path,
    columns: Sequence[str] | None = None,
    group: str | None = None,
    value: Any = None,
) -> pd.DataFrame:
    """A Parquet file (only ``columns``; only the rows whose ``group`` column equals
    ``value``) as a frame indexed 0, 1, ...
    """
    pq = _pyarrow()
    filters = None if group is None else [(group, "=", value)]
    try:
        frame = pq.read_table(
            path, columns=None if columns is None else list(columns), filters=filters
        ).to_pandas()
    except Exception as exc:  # as in table_header
        raise RareEventError(
            f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:80]})"
        ) from None
    return frame.reset_index(drop=True)


def table_format(path: str | Path, header: Sequence[str]) -> CsvFormat:
    """The format of a typed table (Parquet, a Spark group): no delimiter, rows counted from 1."""
    return CsvFormat(
        path=Path(path), delimiter="", header=list(header), counted=False, table=True
    )


def table_reading(
    frame: pd.DataFrame,
    fmt: CsvFormat,
    columns: Columns,
    options: ReadOptions,
    base: Reading,
) -> Reading:
    """How a table's cells are read: numbers are typed (decimal point); typed times as
    they are; text times as a CSV's.
    """
    reading = Reading(decimal=options.decimal or ".", decimal_settled=True)
    if columns.time is None or pd.api.types.is_datetime64_any_dtype(
        frame[columns.time]
    ):
        return reading
    if pd.api.types.is_numeric_dtype(frame[columns.time]):
        return replace(reading, time_unit=options.time_unit or base.time_unit)
    text = frame[columns.time].astype(str)
    return time_reading(
        text.iloc[:SAMPLE_ROWS].to_frame(),
        fmt,
        columns,
        reading,
        options,
        base,
        lambda: [text],
    )


def frame_table(
    frame: pd.DataFrame,
    source: str | Path,
    spec: InputSpec,
    trained: Columns | None = None,
    base: Reading | None = None,
) -> RawTable:
    """An in-memory table (a Parquet file, a Spark group) as a raw table with column
    roles, like a CSV read whole.
    """
    fmt = table_format(source, [str(c) for c in frame.columns])
    frame = frame.set_axis(fmt.header, axis=1)
    if len(frame) == 0:
        raise RareEventError(f"{fmt.path}: has no data rows")
    columns = _columns(fmt, spec, trained, frame.head(SAMPLE_ROWS))
    return RawTable(
        fmt,
        columns,
        frame,
        table_reading(frame, fmt, columns, spec.read, base or Reading()),
    )


def in_time_order(
    frame: pd.DataFrame, fmt: CsvFormat, time: str | None, reading: Reading
) -> pd.DataFrame:
    """``frame``'s rows sorted by their times as ``reading`` reads them (text dates too,
    day-first or not), stable, numbered from 0.
    """
    if time is None:
        return frame
    return frame.iloc[
        np.argsort(time_values(frame, fmt, time, reading), kind="stable")
    ].reset_index(drop=True)


def _columns(
    fmt: CsvFormat, spec: InputSpec, trained: Columns | None, sample: pd.DataFrame
) -> Columns:
    """Column roles of a file of the fleet; the group column is neither a feature nor dropped.

    ``sample`` (the first rows) finds the time column by its content, as for a
    single file (``Zeitstempel``), when no option names it.
    """
    group = spec.group
    if group is not None and group not in fmt.header:
        raise RareEventError(
            f"{fmt.path}: `group` names unknown column {group!r}",
            hint=f"columns are {', '.join(fmt.header)}",
        )
    if trained is not None:
        columns = columns_for_model(fmt, trained)
        return replace(columns, ignored=[c for c in columns.ignored if c != group])
    columns = resolve_columns(
        fmt,
        time=spec.time,
        label=spec.label,
        drop=[*spec.drop, *([group] if group else [])],
        sample=sample,
    )
    return replace(columns, dropped=list(spec.drop))


def read_whole(
    path: Path,
    spec: InputSpec,
    trained: Columns | None = None,
    base: Reading | None = None,
) -> RawTable:
    """A whole CSV or Parquet file as a raw table with column roles (``spec.group``: the
    group column, neither a feature nor dropped).
    """
    if is_table(path):
        table_header(
            path, spec.group
        )  # a missing or broken file, named before pyarrow's own words
        return frame_table(read_table(path), path, spec, trained=trained, base=base)
    if spec.group is not None:
        raw = read_csv_whole(
            path,
            replace(spec, drop=(*spec.drop, spec.group) if trained is None else ()),
            trained=trained,
            base=base,
        )
        return replace(
            raw, columns=_columns(raw.fmt, spec, trained, raw.frame.head(SAMPLE_ROWS))
        )
    return read_csv_whole(path, spec, trained=trained, base=base)


def group_values(values: pd.Series, fmt: CsvFormat, group: str) -> list[str]:
    """The values of the ``group`` column as text, sorted; a blank value or one with a
    NUL byte is an error naming its line.
    """
    blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        row = int(values.index[int(np.flatnonzero(blank)[0])])
        raise RareEventError(
            _in_table(
                fmt,
                f"{fmt.path}: blank value in the `group` column {group!r} at line "
                f"{file_line(fmt, row)}",
            )
        )
    nul = values.astype(str).str.contains("\0", regex=False).to_numpy()
    if (
        nul.any()
    ):  # no file or folder name, and few programs reading an output, can hold one
        row = int(values.index[int(np.flatnonzero(nul)[0])])
        raise RareEventError(
            _in_table(
                fmt,
                f"{fmt.path}: value "
                f"{str(values.iloc[int(np.flatnonzero(nul)[0])])[:30]!r} in the "
                f"`group` column {group!r} at line {file_line(fmt, row)} "
                "holds a NUL byte",
            )
        )
    return sorted(values.astype(str).unique())


def groups_of(raw: RawTable, group: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """The rows of each value of the ``group`` column, in sorted order of the values as text."""
    text = raw.frame[group].astype(str)
    for value in group_values(raw.frame[group], raw.fmt, group):
        yield value, raw.frame[(text == value).to_numpy()]


def _in_table(fmt: CsvFormat, message: str) -> str:
    """A table has rows, not lines: say so in its error messages."""
    return message.replace(" at line ", " at row ") if fmt.table else message


@contextmanager
def naming(series: Series, fmt: CsvFormat | None = None) -> Iterator[None]:
    """Errors raised inside name ``series`` (the file, then its group) and, for a table, its row."""
    try:
        yield
    except RareEventError as exc:
        message = exc.message
        prefix = f"{series.path}: "
        if not message.startswith(f"{series.where}: "):
            message = (
                f"{series.where}: "
                f"{message[len(prefix) :] if message.startswith(prefix) else message}"
            )
        raise RareEventError(
            _in_table(fmt, message) if fmt is not None else message, exc.hint
        ) from None


def check_same_columns(
    first: tuple[Path, Columns], other: tuple[Path, Columns]
) -> None:
    """All files of a fleet carry the same sensors, time and label columns."""
    (path_a, a), (path_b, b) = first, other
    if (a.features, a.time, a.label) == (b.features, b.time, b.label):
        return
    missing = [
        c
        for c in [*a.features, a.time, a.label]
        if c and c not in [*b.features, b.time, b.label]
    ]
    extra = [
        c
        for c in [*b.features, b.time, b.label]
        if c and c not in [*a.features, a.time, a.label]
    ]
    what = (
        "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"extra {', '.join(extra)}" if extra else "",
            )
            if part
        )
        or "the same columns in another order or role"
    )
    raise RareEventError(
        f"{path_b}: columns differ from {path_a}: {what}",
        hint="every file of a fleet needs the same columns; train on them separately",
    )


def validate_series(
    series: Series, raw: RawTable, frame: pd.DataFrame, fill: str | None
) -> SensorData:
    """Check one series' rows on their own; a group's ``rows`` become its positions (the
    rows of the asset's own file).
    """
    with naming(series, raw.fmt):
        data = validate_frame(
            frame, raw.fmt, raw.columns, fill=fill, reading=raw.reading
        )
    if series.group is not None:
        data.rows = np.searchsorted(frame.index.to_numpy(np.int64), data.rows).astype(
            np.int64
        )
    if len(data) == 0:
        raise RareEventError(
            f"{series.where}: has no data rows"
            + (" left after `fill=drop`" if fill == "drop" else "")
        )
    return data


def load_series(
    inputs: Sequence[str | Path], spec: InputSpec | None = None
) -> list[tuple[Series, SensorData]]:
    """Read and check every series of ``inputs`` for training: one per file, or per
    value of ``spec.group`` in each file.
    """
    spec = spec or InputSpec()
    found: list[tuple[Series, SensorData]] = []
    first: tuple[Path, Columns] | None = None
    for path in expand(inputs):
        raw = read_whole(path, spec)
        if first is None:
            first = (path, raw.columns)
        else:
            check_same_columns(first, (path, raw.columns))
        if spec.group is None:
            series = Series(path)
            found.append((series, validate_series(series, raw, raw.frame, spec.fill)))
            continue
        for value, frame in groups_of(raw, spec.group):
            series = Series(path, value)
            found.append((series, validate_series(series, raw, frame, spec.fill)))
    names = [series.name for series, _ in found]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        where = [str(series.path) for series, _ in found if series.name == repeated]
        raise RareEventError(
            f"group {repeated!r} appears in {where[0]} and {where[1]}: a series "
            "must come from one file",
            hint="merge the files, or give each asset its own value",
        )
    return found
