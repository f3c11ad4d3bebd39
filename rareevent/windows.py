"""Stage 2: cut rows into sliding windows and give each window its label.

Window ``k`` covers rows ``k .. k+T-1`` (``T`` = lookback) and is identified
by its *end row* ``k+T-1``. ``n`` rows give ``n-T+1`` windows: unlike the
seed article's ``temporalize``, whose loop yields ``n-T-1`` and never starts
a window at row 0 or 1, every window is kept. All functions are vectorised; windows are a
strided view of the rows, so no copy is made until a subset is selected.

Rows may fall into **segments** (a time gap, and later a file or group
border, starts a new one): ``starts`` is a per-row boolean mask, True where
a row begins a segment. A window is kept only when its rows lie in one
segment (:func:`inside_segments`); the other windows are never trained on,
scored or smoothed across; :func:`one_segment` is the mask of rows with no
border at all.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rareevent.errors import RareEventError
from rareevent.options import SplitSpec


def n_windows(n_rows: int, lookback: int) -> int:
    """How many windows ``n_rows`` rows give (0 when too few)."""
    return max(n_rows - lookback + 1, 0)


def sliding_windows(X: np.ndarray, lookback: int) -> np.ndarray:
    """Return the ``(n-T+1, T, F)`` view of all windows of the ``(n, F)`` rows."""
    if lookback < 1:
        raise RareEventError(f"lookback must be at least 1, got {lookback}")
    if len(X) < lookback:
        raise RareEventError(
            f"{len(X)} rows give no window of lookback {lookback}: at least "
            f"{lookback} rows are needed"
        )
    # window k is the contiguous block X[k:k+T]: this view copies at memory speed when materialised
    return sliding_window_view(X, (lookback, X.shape[1]))[:, 0]


def window_labels(
    y: np.ndarray, lookback: int, lead: int = 0, starts: np.ndarray | None = None
) -> np.ndarray:
    """Label of every window: 1 when an event row lies in ``[end, end+lead]``.

    With ``lead=0`` a window takes the label of its last row. With ``lead=L``
    (early warning) a window is also positive when an event begins within the
    ``L`` rows after its last row. Event rows themselves stay positive: an
    alarm during the event is late but still correct, and the time axis is
    not shifted (the rare-event article drops those rows instead).
    ``starts`` (per row, as ``y``) stops the look-ahead at the next segment
    start: an event after a time gap, or in the next series, does not label
    the windows before it. ``None`` is one segment.
    """
    y = np.asarray(y, dtype=np.int8)
    rows = np.arange(len(y))
    events = np.flatnonzero(y)
    next_event = np.append(events, len(y))[
        np.searchsorted(events, rows)
    ]  # first event row at or after each row
    later = (
        np.zeros(0, np.int64)
        if starts is None
        else np.flatnonzero(np.asarray(starts, dtype=bool)[1:]) + 1
    )
    segment_last = (
        np.append(later, len(y))[np.searchsorted(later, rows, side="right")] - 1
    )  # last row of each row's segment
    return (next_event <= np.minimum(rows + lead, segment_last)).astype(np.int8)[
        lookback - 1 :
    ]


def clean_windows(
    y: np.ndarray, lookback: int, lead: int = 0, starts: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of windows fit to train on: no event row in ``[start, end+lead]``.

    Stricter than ``window_labels == 0``: a window whose last row is normal
    but which still holds rows of an event that just ended is not normal.
    The look-ahead past ``end`` stops at the next segment start (``starts``,
    as in :func:`window_labels`).
    """
    y = np.asarray(y, dtype=np.int8)
    return (sliding_window_view(y, lookback).max(axis=1) == 0) & (
        window_labels(y, lookback, lead, starts) == 0
    )


def one_segment(n_rows: int) -> np.ndarray:
    """The ``starts`` mask of rows that form a single segment: only row 0 starts one."""
    starts = np.zeros(n_rows, bool)
    starts[:1] = True
    return starts


def inside_segments(starts: np.ndarray, lookback: int) -> np.ndarray:
    """Mask of the ``n-T+1`` windows whose rows all lie in one segment.

    Window ``k`` is kept when no segment starts at rows ``k+1 .. k+T-1``
    (a segment starting at its first row ``k`` is fine). The test is local
    to the window's own rows, so it gives the same answer however the rows
    are cut into chunks.
    """
    starts = np.asarray(starts, dtype=bool)
    n = n_windows(len(starts), lookback)
    if lookback == 1 or n == 0:
        return np.ones(n, bool)
    return cast(
        np.ndarray, ~sliding_window_view(starts[1:], lookback - 1).any(axis=1)
    )  # numpy types any(axis=...) as maybe a scalar


def kept(view: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The windows of ``view`` that ``keep`` selects; the view itself (no copy) when all
    are kept.
    """
    return view if keep.all() else view[keep]


def window_resets(starts: np.ndarray, lookback: int) -> np.ndarray:
    """Per window (``n-T+1``): True where the window's first row starts a segment
    (smoothing starts afresh).
    """
    return np.asarray(starts, dtype=bool)[: n_windows(len(starts), lookback)]


def part_starts(starts: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The ``starts`` mask of rows ``start .. stop-1`` taken on their own: their first
    row begins a segment.
    """
    part = np.array(starts[start:stop], dtype=bool)
    part[:1] = True
    return part


def window_breaks(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per window (end rows ``ends``, increasing): True where a segment began since the
    window before it.
    """
    begun = np.cumsum(np.asarray(starts, dtype=bool))[np.asarray(ends, dtype=np.int64)]
    return (
        np.concatenate([[False], begun[1:] > begun[:-1]])
        if len(begun)
        else np.zeros(0, bool)
    )


def segments(
    mask: np.ndarray, breaks: np.ndarray | None = None, gap: int = 0
) -> np.ndarray:
    """``(k, 2)`` array of ``[start, end]`` (inclusive) of runs of True in ``mask``.

    ``breaks`` (same length) starts a new run at every position where it is
    True: flagged windows on either side of a time gap are two alarm
    episodes, not one. Runs at most ``gap`` positions apart, with no break
    between them, are one (an alarm's cooldown).
    """
    runs = _runs(mask, breaks)
    if gap <= 0 or len(runs) < 2:
        return runs
    broken = np.cumsum(np.zeros(len(mask), bool) if breaks is None else breaks)
    apart = runs[1:, 0] - runs[:-1, 1] - 1
    crossed = broken[runs[1:, 0]] > broken[runs[:-1, 1]]
    joins = (apart <= gap) & ~crossed  # run i + 1 continues run i
    first = np.concatenate([[True], ~joins])
    last = np.concatenate([~joins, [True]])
    return np.column_stack([runs[first, 0], runs[last, 1]]).astype(np.int64)


def _runs(mask: np.ndarray, breaks: np.ndarray | None) -> np.ndarray:
    """Runs of True in ``mask``, each ended at a break."""
    mask = np.asarray(mask, dtype=bool)
    joined = np.zeros(len(mask), bool)  # position i continues the run of position i-1
    joined[1:] = mask[:-1] & mask[1:]
    if breaks is not None:
        joined &= ~np.asarray(breaks, dtype=bool)
    ends = mask.copy()
    ends[:-1] &= ~joined[1:]
    return np.column_stack(
        [np.flatnonzero(mask & ~joined), np.flatnonzero(ends)]
    ).astype(np.int64)


def chronological_split(n_rows: int, split: SplitSpec) -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the train, valid and test parts, in time order."""
    test_start = n_rows - int(round(n_rows * split.test_frac))
    valid_start = test_start - int(round(n_rows * split.valid_frac))
    return {
        "train": (0, valid_start),
        "valid": (valid_start, test_start),
        "test": (test_start, n_rows),
    }


def rows_needed(lookback: int, split: SplitSpec) -> int:
    """The fewest rows whose chronological split gives train and valid one window each."""
    smallest = min(
        f for f in (1.0 - split.valid_frac - split.test_frac, split.valid_frac) if f > 0
    )
    n = max(lookback, int(lookback / smallest) - 2)
    while (
        True
    ):  # a few steps from the estimate: rounding in the split is all that is left
        splits = chronological_split(n, split)
        if all(
            splits[name][1] - splits[name][0] >= lookback for name in ("train", "valid")
        ):
            return n
        n += 1
