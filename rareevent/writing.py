"""Per-window output at pyarrow's speed: CSV text through ``pyarrow.csv``, and Parquet.

``csv_text`` writes the bytes ``DataFrame.to_csv`` writes (``index=False``,
``"\\n"`` line ends), which the golden test pins: each column is first put
in pandas' own text (floats through numpy's ``astype(str)`` as pandas does,
times in pandas' format for the block's resolution), and pyarrow writes the
cells unquoted. A column of another kind, or a cell that would need quotes
(a sensor or series name holding a comma, a quote or a line end), sends
the block through ``to_csv`` itself.

``ParquetSink`` writes the same columns, typed, to a ``.parquet`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_DAY_NS = 86_400 * 10**9
_FRACTION_UNITS = (("ns", 1_000), ("us", 1_000_000), ("ms", 10**9))  # finest first


def csv_text(frame: pd.DataFrame, header: bool) -> str:
    """``frame.to_csv(header=header, index=False, lineterminator="\\n")``, byte for byte."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    # one column: csv quotes an empty cell there ('""'); no rows: to_csv's header alone
    simple = len(frame) > 0 and frame.shape[1] > 1
    cells = [_cells(frame.iloc[:, i]) for i in range(frame.shape[1])] if simple else []
    if not simple or any(c is None for c in cells):
        return frame.to_csv(header=header, index=False, lineterminator="\n")
    names = [str(name) for name in frame.columns]
    if header and any(set(name) & set(',"\r\n') or not name for name in names):
        return frame.to_csv(header=header, index=False, lineterminator="\n")
    head = ",".join(names) + "\n" if header else ""
    table = pa.table(cells, names=[f"c{i}" for i in range(len(cells))])
    sink = pa.BufferOutputStream()
    try:
        pa_csv.write_csv(
            table,
            sink,
            pa_csv.WriteOptions(include_header=False, quoting_style="none"),
        )
    except (
        pa.ArrowInvalid
    ):  # a cell holds a comma, a quote or a line end: quoted by csv
        return frame.to_csv(header=header, index=False, lineterminator="\n")
    return head + sink.getvalue().to_pybytes().decode("utf-8")


def _cells(column: pd.Series) -> Any:
    """A column as pyarrow cells printed as ``to_csv`` prints it (``None``: left to ``to_csv``)."""
    import pyarrow as pa

    dtype = column.dtype
    if not isinstance(dtype, np.dtype):
        if pd.api.types.is_string_dtype(dtype) and not column.isna().any():
            return pa.array(column.array, pa.string())  # no copy when pyarrow holds it
        return None
    values = column.to_numpy()
    if dtype.kind in "iu":
        return pa.array(values)
    if dtype.kind == "f":
        return _floats(values)
    if dtype.kind == "M":
        return _times(values)
    if dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return pa.array(values, pa.string())
    return None


def _floats(values: np.ndarray) -> Any:
    """Floats as ``to_csv`` writes them: numpy's ``astype(str)``, a missing value an empty cell.

    pyarrow's cast prints the same shortest digits, and in the same
    positional form for non-integral values between 1e-4 and 1e6 (about 10
    times faster); the other values (0.0, 1e-05, 2.5e+07, nan) are printed
    by numpy.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    size = np.abs(values)
    other = ~((size > 1e-4) & (size < 1e6) & (values != np.trunc(values)))
    text = pa.array(values).cast(pa.string())
    if not other.any():
        return text
    rest = values[other]
    return pc.replace_with_mask(
        text, pa.array(other), pa.array(rest.astype(str), mask=np.isnan(rest))
    )


def _times(values: np.ndarray) -> Any:
    """Naive datetimes as pandas writes them: dates alone when all fall at midnight, else the
    seconds and as many decimals as the finest value needs (``None``: NaT, left to pandas)."""
    import pyarrow as pa

    if (
        np.isnat(values).any()
        or values.min().astype("M8[Y]").astype(np.int64) < 1000 - 1970
    ):
        return None  # pandas writes no zeros before a year under 1000
    ns = values.astype("M8[ns]").view(np.int64)
    if not (ns % _DAY_NS).any():
        return pa.array(np.datetime_as_string(values, unit="D"))
    unit = next((u for u, step in _FRACTION_UNITS if (ns % step).any()), "s")
    text = np.datetime_as_string(values, unit=unit)  # type: ignore[call-overload]
    return pa.array(np.char.replace(text, "T", " "))


class ParquetSink:
    """Blocks of windows into one Parquet file, typed; the first block's columns fix the schema."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self._writer: Any = None

    def __call__(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.target, table.schema)
        else:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        """Finish the file (a second call does nothing); without a block: a file of no columns."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.target, pa.schema([]))
        self._writer.close()
