"""What the model expected each sensor to read, row by row, and how far normal rows stray from it.

A reconstruction model rebuilds every row of a window; a forecast predicts
its last ``horizon`` rows. The value the model expected at row ``r`` is
its output for row ``r`` in the window that ends there (the window that
scores ``r``); the rows before the first full window take their place in
that first window. Values are in raw units (the scaling undone), for the
target sensors only: context columns are read, not predicted.

The normal error of a sensor is a high percentile of ``|reading - expected|``
over the normal rows of the validation part, saved with the run: a report
draws expected ± normal error as the band a healthy reading stays in, which
follows the setpoint where the training range of the whole file would not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rareevent import scaling, windows
from rareevent.model import PREDICT_BATCH, output_steps

NORMAL_ERROR_PERCENTILE = 99.0


def expected_rows(detector: Any, X: np.ndarray) -> np.ndarray:
    """``(len(X), targets)``: the expected raw value of each target sensor (NaN: no output)."""
    T, targets = int(detector.lookback), list(detector.target_features_)
    out = np.full((len(X), len(targets)), np.nan)
    if len(X) < T:
        return out
    scaled = scaling.transform(detector.scaler_, np.asarray(X, np.float64))
    steps = output_steps(detector.arch, T, int(detector.horizon))
    view = windows.sliding_windows(scaled, T)
    for start in range(0, len(view), PREDICT_BATCH):
        batch = np.ascontiguousarray(view[start : start + PREDICT_BATCH])
        predicted = np.asarray(detector._predict(batch), np.float64)
        if start == 0:  # the rows before the first window's last one
            out[T - steps : T - 1] = predicted[0, :-1]
        out[start + T - 1 : start + T - 1 + len(batch)] = predicted[:, -1]
    scaler = detector.scaler_
    return out * scaler.scale_[targets] + scaler.mean_[targets]


def normal_error(
    detector: Any, X: np.ndarray, labels: np.ndarray | None
) -> list[float]:
    """Per target sensor: the ``NORMAL_ERROR_PERCENTILE`` of ``|reading - expected|``.

    Over the normal rows of ``X`` (all rows without ``labels``).
    """
    expected = expected_rows(detector, X)
    residual = np.abs(X[:, detector.target_features_] - expected)
    keep = np.isfinite(expected).all(axis=1)
    if labels is not None and (keep & (labels == 0)).any():
        keep &= labels == 0
    if not keep.any():
        return [0.0] * residual.shape[1]
    found = np.percentile(residual[keep], NORMAL_ERROR_PERCENTILE, axis=0)
    return [float(f"{v:.6g}") for v in found]
