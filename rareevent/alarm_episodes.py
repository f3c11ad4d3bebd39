"""Alarm episodes built as windows are scored: the streaming side of episodes.

:class:`AlarmEpisodes` takes flagged windows in time order, block by block,
and keeps only what an open episode needs (its start, peak and the
per-sensor errors of its flagged windows), so an endless stream is scored
in flat memory. It is kept apart from :mod:`rareevent.episodes`, which
describes closed episodes for tables and reports (durations, lines, text)
and holds no state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rareevent import windows
from rareevent.top_sensors import TopSensors


class AlarmEpisodes:
    """Alarm episodes built as windows arrive: flagged runs ended by a gap or a quiet spell.

    An episode ends at a time gap, or once more than ``gap`` windows in a
    row are not flagged (the alarm policy's cooldown: 0, the first one);
    its last window is its last flagged one. An open episode keeps the
    per-sensor errors of its own flagged windows only, so its top sensors
    are summed exactly as over the whole file at once.
    """

    def __init__(self, names: list[str], gap: int = 0) -> None:
        self.names, self.gap = names, gap
        self.alarms: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._features: list[np.ndarray] = []
        self._peak = -np.inf
        self._quiet = 0  # windows not flagged since the open episode's last flagged one
        self._broken = False  # a time gap since then

    def add(
        self,
        flagged: np.ndarray,
        breaks: np.ndarray,
        error: np.ndarray,
        feature_errors: np.ndarray,
        rows: np.ndarray,
        time: np.ndarray | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Take the next windows in time order.

        Returns the episodes they opened and those they closed.
        """
        opened: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        done = 0  # windows of this block accounted for
        for start, end in windows.segments(flagged, breaks):  # runs of flagged windows
            self._pass(breaks[done : start + 1], start - done, closed)
            if self._open is None:
                self._open = {
                    "start_row": int(rows[start]),
                    "error": float(error[start]),
                } | ({} if time is None else {"start_time": _time_text(time[start])})
                opened.append(dict(self._open))
            self._features.append(feature_errors[start : end + 1])
            self._peak = max(self._peak, float(error[start : end + 1].max()))
            self._open["end_row"] = int(rows[end])
            if time is not None:
                self._open["end_time"] = _time_text(time[end])
            self._quiet, self._broken, done = 0, False, end + 1
        self._pass(breaks[done:], len(flagged) - done, closed)
        return opened, closed

    def _pass(
        self, breaks: np.ndarray, quiet: int, closed: list[dict[str, Any]]
    ) -> None:
        """Windows between flagged ones: ``quiet`` not flagged, a gap where ``breaks``."""
        if self._open is None:
            return
        self._quiet += quiet
        self._broken = self._broken or bool(np.any(breaks))
        if self._broken or self._quiet > self.gap:
            closed.append(self._close())

    @property
    def open_episode(self) -> dict[str, Any] | None:
        """Where the episode still open began (``None``: none is open)."""
        return (
            None
            if self._open is None
            else {
                key: self._open[key]
                for key in ("start_row", "start_time")
                if key in self._open
            }
        )

    def end(self) -> list[dict[str, Any]]:
        """Close the open episode at the end of the data (the episodes closed: none or one)."""
        return [self._close()] if self._open is not None else []

    def _close(self) -> dict[str, Any]:
        assert self._open is not None
        features = np.concatenate(self._features)
        summed = np.add.reduceat(features, [0], axis=0)
        alarm = {
            "start_row": self._open["start_row"],
            "end_row": self._open["end_row"],
            "windows": len(features),
            "peak_error": self._peak,
            "top_features": TopSensors.of(summed, self.names),
        }
        if "start_time" in self._open:
            alarm["start_time"], alarm["end_time"] = (
                self._open["start_time"],
                self._open["end_time"],
            )
        self.alarms.append(alarm)
        self._open, self._features, self._peak = None, [], -np.inf
        self._quiet, self._broken = 0, False
        return alarm


def _time_text(value: Any) -> str | float:
    """A time for JSON: ISO 8601 text for datetimes (as in the windows), the number otherwise."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    return float(value)
