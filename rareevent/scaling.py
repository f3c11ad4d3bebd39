"""Stage 3: standardise features with statistics of normal training rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

Z_LIMIT = 10.0
DISCRETE_MAX_VALUES = 10


def fit_scaler(
    X: np.ndarray, discrete: Sequence[int] | np.ndarray = ()
) -> StandardScaler:
    """Fit a ``StandardScaler`` on ``X`` (the normal training rows).

    Constant columns (see :func:`constant_columns`, which the CLI warns
    about) get ``scale_ == 1``, so they become 0 after centring instead of
    dividing by (nearly) zero and amplifying any later change a million-fold.
    ``discrete`` columns (flags, modes) are divided by at least half their
    range: a flag that is 1 in 0.1% of the rows has a standard deviation of
    0.03 and would otherwise read as z = 30 whenever it is set.
    """
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    scaler = StandardScaler().fit(X)
    constant = constant_columns(scaler)
    scaler.scale_[constant] = (
        1.0  # also for near-constant columns scikit-learn would still divide by
    )
    if len(discrete):
        columns = np.asarray(discrete, dtype=np.int64)
        half_range = (X[:, columns].max(axis=0) - X[:, columns].min(axis=0)) / 2
        scaler.scale_[columns] = np.maximum(scaler.scale_[columns], half_range)
    return scaler


def constant_columns(scaler: StandardScaler) -> np.ndarray:
    """Indices of columns that did not vary in the rows the scaler saw."""
    return np.flatnonzero(
        scaler.var_ <= np.finfo(np.float64).eps * np.maximum(scaler.mean_**2, 1.0)
    )


class Standardization:
    """The fitted scaler as a saved detector scores with it: ``mean_``, ``scale_``, numpy alone."""

    def __init__(self, mean: Sequence[float], scale: Sequence[float]) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.var_ = self.scale_**2
        self.n_features_in_ = len(self.mean_)


def plausible_scale(mean: Sequence[float], scale: Sequence[float]) -> bool:
    """Whether every ``scale`` is one :func:`fit_scaler` can give for its column's ``mean``.

    A column whose spread :func:`constant_columns` would call constant gets
    scale 1 (whatever its mean); any other has a scale above ``sqrt(eps) * max(|mean|, 1)``.
    A smaller one (a tampered ``1e-320``) would turn every reading into an
    overflow and flag every window. Half that bound is allowed, for rounding.
    """
    floor = 0.5 * np.sqrt(np.finfo(np.float64).eps)
    means = np.abs(np.asarray(mean, dtype=np.float64))
    scales = np.asarray(scale, dtype=np.float64)
    return bool(np.all((scales >= floor * np.maximum(means, 1.0)) | (scales == 1.0)))


def scaler_from_arrays(mean: Sequence[float], scale: Sequence[float]) -> StandardScaler:
    """Rebuild a fitted scaler from the ``mean`` and ``scale`` saved in ``detector.json``."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.asarray(mean, dtype=np.float64)
    scaler.scale_ = np.asarray(scale, dtype=np.float64)
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = len(scaler.mean_)
    scaler.n_samples_seen_ = 0
    return scaler


def transform(scaler: StandardScaler | Standardization, X: np.ndarray) -> np.ndarray:
    """Scale ``X`` to float32 without scikit-learn's per-call validation overhead.

    Values are clipped to ``±Z_LIMIT``: a sensor with a tiny training
    variance that later moves would otherwise reach |z| in the hundreds and
    its squared error would outweigh every other sensor's (the measurements
    are in the documentation's "How the defaults were chosen").
    """
    return np.clip((X - scaler.mean_) / scaler.scale_, -Z_LIMIT, Z_LIMIT).astype(
        np.float32
    )


def discrete_columns(
    X: np.ndarray, max_values: int = DISCRETE_MAX_VALUES
) -> np.ndarray:
    """Indices of flag and mode columns: 0/1 flags (constant ones too), or whole numbers
    with 3..``max_values`` values.

    These are typically decided by operators or controllers (commands,
    on/off states, operating modes) rather than measured. A sensor that was
    constant at some other value in training is not among them: it is a
    measurement that did not move.
    """
    X = np.asarray(X, dtype=np.float64)
    whole = np.all(np.round(X) == X, axis=0)
    flags = whole & np.all((X == 0) | (X == 1), axis=0)
    counts = np.array(
        [
            len(np.unique(X[:, j])) if whole[j] else max_values + 1
            for j in range(X.shape[1])
        ]
    )
    modes = whole & (counts >= 3) & (counts <= max_values)
    return np.flatnonzero(flags | modes)


def trending_columns(
    X: np.ndarray, positions: np.ndarray | None = None, min_share: float = 0.2
) -> np.ndarray:
    """Indices of columns whose straight-line trend over the rows explains at least
    ``min_share`` of their variance.

    Such sensors (slow temperature drift, wear) tend to leave their training
    range later and raise false alarms that no threshold learned on the
    training period can anticipate; the CLI warns about them. ``positions``
    are the rows' places in time (default ``0..n-1``), so gaps left by
    removed event rows do not bend the time axis.
    """
    X = np.asarray(X, dtype=np.float64)
    if len(X) < 3:
        return np.empty(0, dtype=np.int64)
    t = (
        np.arange(len(X), dtype=np.float64)
        if positions is None
        else np.asarray(positions, dtype=np.float64)
    )
    t = (t - t.mean()) / t.std()
    std = X.std(axis=0)
    safe = np.where(std > 0, std, 1.0)
    correlation = ((X - X.mean(axis=0)) / safe * t[:, None]).mean(axis=0)
    return np.flatnonzero((std > 0) & (correlation**2 >= min_share))
