"""Alarm episodes as intervals: start, end, duration and peak over threshold, for
tables, ``--episodes`` and reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

EPISODE_COLUMNS = (
    "series",
    "start",
    "end",
    "start_line",
    "end_line",
    "duration_s",
    "windows",
    "peak_score",
    "peak_over_threshold",
    "top_sensors",
)


def duration_seconds(alarm: dict[str, Any]) -> float | None:
    """Seconds from an episode's first flagged window to its last (by window end); None
    without a datetime time column.
    """
    start, end = alarm.get("start_time"), alarm.get("end_time")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    return (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()


def file_line(row: int) -> int:
    """The file line of 0-based data row ``row`` (line 1 is the header): how people count rows."""
    return row + 2


def duration_text(alarm: dict[str, Any]) -> str:
    """``2h 04min``, ``6min``, ``40s``; rows when the file has no datetime time column."""
    seconds = duration_seconds(alarm)
    if seconds is None:
        return f"{alarm['end_row'] - alarm['start_row']} rows"
    return seconds_text(seconds)


def seconds_text(seconds: float) -> str:
    """``2h 04min``, ``6min``, ``40s``, ``0.5s``."""
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}min"
    if minutes:
        return f"{minutes}min" + (f" {secs}s" if secs else "")
    return f"{secs}s" if whole or seconds == 0 else f"{seconds:.3g}s"


def top_sensors(alarm: dict[str, Any]) -> list[tuple[str, float]]:
    """``[(sensor, share of the error), ...]`` of an episode, largest first.

    They come from the pairs the scorer kept beside the ``top_features``
    text (:class:`rareevent.top_sensors.TopSensors`); the text itself cannot be
    split, as a sensor name may hold ``;`` or ``:``.
    """
    return list(alarm["top_features"].pairs)


def sensors_text(alarm: dict[str, Any]) -> str:
    """An episode's top sensors for a table: ``s1 52%, ns=2;s=Flow 30%``."""
    return ", ".join(f"{name} {share:.0%}" for name, share in top_sensors(alarm))


def sensors_json(alarm: dict[str, Any]) -> str:
    """An episode's top sensors as one JSON object, ``{"s1": 0.52, "ns=2;s=Flow": 0.3}``.

    The episodes CSV keeps them so, in one column: any sensor name survives
    (a ``;`` or ``:`` in a name, as OPC-UA tags have), and the order is the
    order of the shares.
    """
    return json.dumps(dict(top_sensors(alarm)), ensure_ascii=False)


def episode_rows(
    alarms: Sequence[dict[str, Any]], threshold: float, series: str | None = None
) -> list[dict[str, Any]]:
    """One flat row per episode, in time order, with the columns of :data:`EPISODE_COLUMNS`.

    Episodes are read by people: their rows are file lines (line 1 is the
    header), as in the terminal's alarm table and in error messages.
    """
    rows = []
    for alarm in sorted(alarms, key=lambda a: a["start_row"]):
        rows.append(
            {
                "series": series,
                "start": alarm.get("start_time", file_line(alarm["start_row"])),
                "end": alarm.get("end_time", file_line(alarm["end_row"])),
                "start_line": file_line(alarm["start_row"]),
                "end_line": file_line(alarm["end_row"]),
                "start_row": alarm["start_row"],  # to find the alarm; not written
                "duration_s": duration_seconds(alarm),
                "windows": alarm["windows"],
                "peak_score": alarm["peak_error"],
                "peak_over_threshold": alarm["peak_error"] / threshold
                if threshold > 0
                else None,
                "top_sensors": sensors_json(alarm),
            }
        )
    return rows


def write_episodes(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write episode rows as CSV to ``path`` (a header only when there are none);
    callers pass an ``atomic_file`` temporary.
    """
    pd.DataFrame(list(rows), columns=list(EPISODE_COLUMNS)).to_csv(path, index=False)
