"""How the cells of a file are read: the :class:`Reading` record, and the decimal mark.

A reading (decimal mark, time format or unit, day/month order, time zone,
encoding) is settled once per file, before its data is read: from options,
from the run that scores the file, or inferred from a sample of its cells.
It is saved in run.json (:func:`reading_record_ok` checks a saved one), so
files scored later are read as the training file was.

The decimal mark is inferred here (:func:`decimal_reading`: only ``;`` and
tab files can hold decimal commas), and numbers are read with it, the other
mark being a thousands separator. The time part of a reading is settled by
:func:`rareevent.times.time_reading`. It is separate because every later
step (time parsing, chunked reading, the run record) reads cells through it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.options import (
    DECIMAL_MARKS,
    TIME_UNITS,
    ReadOptions,
    check_encoding,
    check_time_format,
    check_tz,
)
from rareevent.sniffing import CsvFormat

if TYPE_CHECKING:
    from rareevent.columns import Columns

OTHER_MARK = {".": ",", ",": "."}


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
        """The reading saved in a run.

        A run from before readings were saved reads files as before.
        """
        return cls() if value is None else cls(**value)

    def order_note(self, column: str | None) -> str | None:
        """What to tell the user when no date settled the day/month order.

        ``None`` when one did.
        """
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
        return (
            f"no date in column {column!r} has a day above 12, so day and month could be "
            f"either way: read {self.date_order} ({self.time_format}); "
            f"pass {how} for the other order"
        )

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
    """Whether a run.json ``reading`` field is well formed.

    ``None`` (a run from before readings were saved) is.
    """
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


def to_numbers(series: pd.Series, reading: Reading) -> tuple[pd.Series, np.ndarray]:
    """A text column as numbers under the reading's decimal mark, and which cells are ambiguous.

    Vectorised. The other mark is a thousands separator, read only in whole
    groups of three digits (``1.234,5``, ``1.234.567``). A lone group without
    a decimal part (``1,234``) reads either way: it is ambiguous until the
    decimal mark is settled by an option, by other cells or by the run.
    """
    text = series.astype(object)
    thousands = OTHER_MARK[reading.decimal]
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


def decimal_reading(
    sample: pd.DataFrame | None,
    fmt: CsvFormat,
    columns: Columns,
    options: ReadOptions,
    base: Reading,
) -> Reading:
    """Settle the decimal mark: ``--decimal``, else the sample's cells, else ``base``.

    ``base`` is the run's mark, or the default. Only ``;`` and tab files can
    hold decimal commas unquoted, so only they are looked at; ``,`` files
    keep the decimal point. A cell votes for a mark when it can only be read
    with it (``0,5``, ``1.234,5`` for ','; ``0.5`` for '.'); ``1,234`` votes
    for neither. The zone (``--tz``, else the run's) and the file's encoding
    travel with the reading.
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
    for mark, other in OTHER_MARK.items():
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
