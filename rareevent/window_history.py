"""What a scorer keeps of every window for its result, and the metrics measured on it.

A :class:`~rareevent.scoring.StreamScorer` releases windows block by block
and forgets them; with ``keep_windows`` it also records, per block, the
rows' segment starts, labels and times and, per window, its score, flag,
last row and position. At the end of the data :class:`WindowHistory` joins
these into the result's per-window arrays and, with labels, measures them
(precision, recall, events caught, ...). It is kept apart from the scorer,
whose job is the next block, not the whole file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rareevent import windows
from rareevent.load import SensorData
from rareevent.metrics import evaluate

_KEYS = ("error", "flagged", "rows", "positions", "labels", "times", "starts")


class WindowHistory:
    """Every window scored so far and every row read so far.

    A window keeps its score, flag, end row and position; a row where
    segments start, its label and its time.
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {key: [] for key in _KEYS}

    def add_rows(self, rows: SensorData, starts: np.ndarray) -> None:
        """Keep new rows (on the run's grid): where segments start, their labels and times."""
        self._parts["starts"].append(starts)
        if rows.y is not None:
            self._parts["labels"].append(rows.y)
        if rows.time is not None:
            self._parts["times"].append(rows.time)

    def add_windows(
        self,
        error: np.ndarray,
        flagged: np.ndarray,
        rows: np.ndarray,
        positions: np.ndarray,
    ) -> None:
        """Keep scored windows: their scores, flags, last data rows and end positions."""
        for key, value in (
            ("error", error),
            ("flagged", flagged),
            ("rows", rows),
            ("positions", positions),
        ):
            self._parts[key].append(value)

    def result_fields(self, lookback: int, lead: int, gap: int) -> dict[str, Any]:
        """The result's per-window arrays (``rows``, ``error``, ``flagged``, ``time``) and metrics.

        ``metrics`` is measured only with labels: a window takes the label
        of its last row ``lead`` rows ahead, as in training; ``gap`` is the
        alarm policy's cooldown, which joins flagged windows into episodes.
        """
        joined = {
            key: np.concatenate(parts) if parts else None
            for key, parts in self._parts.items()
        }
        ends_at = (
            joined["positions"]
            if joined["positions"] is not None
            else np.empty(0, np.int64)
        )
        error = (
            joined["error"] if joined["error"] is not None else np.empty(0, np.float32)
        )
        flagged = (
            joined["flagged"] if joined["flagged"] is not None else np.empty(0, bool)
        )
        rows = joined["rows"] if joined["rows"] is not None else np.empty(0, np.int64)
        all_time, y = joined["times"], joined["labels"]
        fields: dict[str, Any] = {
            "rows": rows,
            "error": error,
            "flagged": flagged,
            "time": None if all_time is None else all_time[ends_at],
        }
        if y is not None:
            T = lookback
            labels = windows.window_labels(y, T, lead, joined["starts"])[
                ends_at - (T - 1)
            ]
            fields["metrics"] = evaluate(
                y,
                labels,
                flagged,
                error,
                ends_at,
                lead=lead,
                time=all_time,
                starts=joined["starts"],
                gap=gap,
            )
        return fields
