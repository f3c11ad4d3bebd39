"""Writing a score's windows as they arrive: CSV, JSON, JSON Lines or Parquet.

:class:`WindowWriter` chooses the encoder by the output's suffix and frames
the output: the JSON object with its tail (alarms, metrics, summary), the
event lines of JSON Lines. The bytes of each block come from
:mod:`rareevent.writing` (pyarrow's CSV and Parquet writers); this module is
what ``score``, ``score --follow``, ``encode`` and fleets share on top of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pandas as pd

from rareevent.errors import RareEventError
from rareevent.writing import ParquetSink, csv_text


def _as_json_dumps(text: str) -> str:
    """pandas' JSON text with each ``\\/`` written ``/``, as ``json.dumps`` writes it.

    Window records (pandas) and event records (``json.dumps``) then spell a
    name like ``m\\u00b3/h`` alike. A plain replacement is safe: pandas writes
    every backslash of a value as ``\\\\`` and every slash as ``\\/``, so
    each ``\\/`` in its output is an escaped slash.
    """
    return text.replace("\\/", "/")


class WindowWriter:
    """Stream per-window output as blocks arrive: ``.csv``, ``.json``, or ``.jsonl`` (JSON Lines).

    The JSON form is one object: ``{"windows": [...], "alarms": [...],
    "metrics": ..., "summary": ...}``; its tail is written by :meth:`finish`.
    JSON Lines (``score --follow``) hold one window per line, and events
    (an alarm opened or closed, the summary) as lines of their own:
    ``{"event": "alarm_opened", ...}``. ``target`` is a path (opened here)
    or an open text handle (stdout, a followed output). Used as a context
    manager, a file opened here is closed however the block ends.
    """

    KINDS = ("csv", "json", "jsonl", "parquet")

    def __init__(self, target: Path | IO[str], kind: str) -> None:
        if kind not in self.KINDS:
            raise RareEventError(
                f"{target}: `output` must end in {' or '.join('.' + k for k in self.KINDS)}",
                param="output",
            )
        self.kind = kind
        self.owned = isinstance(target, Path)
        # held open between batches, closed by finish() or on leaving the with-block
        self.handle: IO[str]
        self.parquet: ParquetSink | None = None
        if kind == "parquet":
            if not isinstance(target, Path):
                raise RareEventError(
                    "Parquet output is written to a file, not a stream"
                )
            self.parquet, self.owned = ParquetSink(target), False
        elif isinstance(target, Path):
            self.handle = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115
        else:
            self.handle = target
        self.first = True
        if kind == "json":
            self.handle.write('{"windows": [')

    def lines(self, frame: pd.DataFrame) -> list[str]:
        """The text of ``frame``'s windows, one line each, for a caller that interleaves events.

        ``.csv``: the header first, once; ``.jsonl``.
        """
        if self.kind == "csv":
            text = csv_text(frame, header=self.first)
            self.first = False
            return text.splitlines(keepends=True)
        text = (
            _as_json_dumps(
                frame.to_json(
                    orient="records",
                    lines=True,
                    date_format="iso",
                    date_unit="s",
                    double_precision=15,
                )
            )
            if len(frame)
            else ""
        )
        return [line + "\n" for line in text.splitlines()]

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.parquet is not None:
            self.parquet(frame)
            return
        if self.kind == "csv":
            self.handle.write(csv_text(frame, header=self.first))
            self.first = False
            return
        if self.kind != "json":
            self.handle.write("".join(self.lines(frame)))
            return
        body = _as_json_dumps(
            frame.to_json(
                orient="records", date_format="iso", date_unit="s", double_precision=15
            )
        )[1:-1]
        if body:
            self.handle.write(("" if self.first else ",") + body)
        self.first = False

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """An event line of JSON Lines: ``{"event": name, **fields}``."""
        self.handle.write(json.dumps({"event": name, **fields}, allow_nan=False) + "\n")

    def finish(self, tail: dict[str, Any] | None = None) -> None:
        """End the output (the JSON object with ``tail``'s keys) and close a file opened here."""
        if self.parquet is not None:
            self.parquet.close()
            return
        if self.kind == "json":
            self.handle.write("]")
            for key, value in (tail or {}).items():
                self.handle.write(
                    f", {json.dumps(key)}: {json.dumps(value, allow_nan=False)}"
                )
            self.handle.write("}\n")
        if self.owned:
            self.handle.close()

    def __enter__(self) -> WindowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close a file opened here when ``finish`` was not reached (an error, Ctrl-C)."""
        if self.parquet is not None:
            self.parquet.close()
        if self.owned:
            self.handle.close()
