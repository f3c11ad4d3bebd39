"""Stage 2: cut rows into sliding windows and give each window its label.

Window ``k`` covers rows ``k .. k+T-1`` (``T`` = lookback) and is identified
by its *end row* ``k+T-1``. ``n`` rows give ``n-T+1`` windows: unlike the
seed article's ``temporalize``, whose loop yields ``n-T-1`` and never starts
a window at row 0 or 1, every window is kept. All functions are vectorised; windows are a
strided view of the rows, so no copy is made until a subset is selected.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rareevent.errors import RareEventError


def n_windows(n_rows: int, lookback: int) -> int:
    """How many windows ``n_rows`` rows give (0 when too few)."""
    return max(n_rows - lookback + 1, 0)


def sliding_windows(X: np.ndarray, lookback: int) -> np.ndarray:
    """Return the ``(n-T+1, T, F)`` view of all windows of the ``(n, F)`` rows."""
    if lookback < 1:
        raise RareEventError(f"lookback must be at least 1, got {lookback}")
    if len(X) < lookback:
        raise RareEventError(f"{len(X)} rows give no window of lookback {lookback}: at least {lookback} rows are needed")
    # window k is the contiguous block X[k:k+T]: this view copies at memory speed when materialised
    return sliding_window_view(X, (lookback, X.shape[1]))[:, 0]


def window_labels(y: np.ndarray, lookback: int, lead: int = 0) -> np.ndarray:
    """Label of every window: 1 when an event row lies in ``[end, end+lead]``.

    With ``lead=0`` a window takes the label of its last row. With ``lead=L``
    (early warning) a window is also positive when an event begins within the
    ``L`` rows after its last row. Event rows themselves stay positive: an
    alarm during the event is late but still correct, and the time axis is
    not shifted (the rare-event article drops those rows instead).
    """
    y = np.asarray(y, dtype=np.int8)
    ahead = sliding_window_view(np.concatenate([y, np.zeros(lead, np.int8)]), lead + 1).max(axis=1)
    return ahead[lookback - 1 :]


def clean_windows(y: np.ndarray, lookback: int, lead: int = 0) -> np.ndarray:
    """Boolean mask of windows fit to train on: no event row in ``[start, end+lead]``.

    Stricter than ``window_labels == 0``: a window whose last row is normal
    but which still holds rows of an event that just ended is not normal.
    """
    y = np.asarray(y, dtype=np.int8)
    padded = np.concatenate([y, np.zeros(lead, np.int8)])
    return sliding_window_view(padded, lookback + lead).max(axis=1) == 0


def segments(mask: np.ndarray) -> np.ndarray:
    """``(k, 2)`` array of ``[start, end]`` (inclusive) of runs of True in ``mask``."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return np.column_stack([edges[0::2], edges[1::2] - 1]).astype(np.int64)


def check_fractions(valid_frac: float, test_frac: float) -> None:
    """Refuse split fractions that leave no validation part or too little to train on."""
    for name, frac in (("--valid-frac", valid_frac), ("--test-frac", test_frac)):
        if not 0.0 <= frac < 1.0:
            raise RareEventError(f"{name} must be in [0, 1), got {frac}")
    if valid_frac <= 0.0:
        raise RareEventError("--valid-frac must be above 0: the threshold and early stopping need a validation part")
    if valid_frac + test_frac >= 0.9 - 1e-9:
        raise RareEventError(f"--valid-frac + --test-frac = {valid_frac + test_frac:g} leaves too little to train on")


def chronological_split(n_rows: int, valid_frac: float, test_frac: float) -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the train, valid and test parts, in time order."""
    check_fractions(valid_frac, test_frac)
    test_start = n_rows - int(round(n_rows * test_frac))
    valid_start = test_start - int(round(n_rows * valid_frac))
    return {"train": (0, valid_start), "valid": (valid_start, test_start), "test": (test_start, n_rows)}


def rows_needed(lookback: int, valid_frac: float, test_frac: float) -> int:
    """The fewest rows whose chronological split gives train and valid one window each."""
    smallest = min(f for f in (1.0 - valid_frac - test_frac, valid_frac) if f > 0)
    n = max(lookback, int(lookback / smallest) - 2)
    while True:  # a few steps from the estimate: rounding in the split is all that is left
        splits = chronological_split(n, valid_frac, test_frac)
        if all(splits[name][1] - splits[name][0] >= lookback for name in ("train", "valid")):
            return n
        n += 1
