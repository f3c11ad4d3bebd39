"""What the detector's model reads and how far its output is from the rows it stands for.

The base of everything a fitted detector does: the model's input (windows
with a forecast's rows or masked sensors hidden), its targets, and each
window's reconstruction error. Fitting trains on the same input and targets,
scoring turns the errors into scores, and loading rebuilds the model from
``_model_config``; each of those is a mixin of its own module built on this
class, and ``rareevent.detector.Detector`` puts them together.
"""

from __future__ import annotations

import numpy as np

from rareevent.detector_params import DetectorParams
from rareevent.model import (
    ARCHITECTURES,
    PREDICT_BATCH,
    hide_forecast_rows,
    mask_sensors,
    output_steps,
)
from rareevent.protocol import ModelConfig, ReconstructionModel


class Reconstruction(DetectorParams):
    """The fitted model's input, targets and reconstruction errors (a mixin of ``Detector``).

    The learned values declared here are set by ``fit`` (``Fitting``) or
    read from ``detector.json`` (``DetectorFile``).
    """

    model_: ReconstructionModel
    n_features_in_: int
    target_features_: list[int]
    units_: tuple[int, int]
    error_scale_: np.ndarray

    def _check_fitted(self) -> None:
        """Raise scikit-learn's ``NotFittedError`` before ``fit``."""
        if not hasattr(self, "threshold_"):
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(self, "threshold_")

    def _reconstruction_errors(
        self, scaled_windows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Window scores and the per-target errors they are the mean of.

        Each target sensor's squared error is divided by ``error_scale_``:
        1 unless ``normalize``, else its typical error on normal validation
        windows, so that a sensor the model reconstructs poorly even in
        normal operation cannot take over the score.
        """
        targets = self.target_features_
        errors = np.empty((len(scaled_windows), len(targets)), np.float32)
        for start in range(0, len(scaled_windows), PREDICT_BATCH):  # one step per batch
            batch = np.ascontiguousarray(scaled_windows[start : start + PREDICT_BATCH])
            squared = np.square(self._targets_of(batch) - self._predict(batch))
            errors[start : start + len(batch)] = window_errors(squared, self.score_kind)
        errors /= self.error_scale_
        return finite_scores(errors)

    def _targets_of(self, scaled_windows: np.ndarray) -> np.ndarray:
        """What the model's output is compared with: the target columns of its rows.

        The rows are the window's, or a forecast's last ``horizon``; the
        windows themselves, uncopied, when nothing is context and every row
        counts.
        """
        steps = output_steps(self.arch, self.lookback, self.horizon)
        if steps < scaled_windows.shape[1]:
            scaled_windows = scaled_windows[:, -steps:]
        if len(self.target_features_) == scaled_windows.shape[2]:
            return scaled_windows
        return np.ascontiguousarray(scaled_windows[..., self.target_features_])

    @property
    def _masks(self) -> bool:
        """Whether the model reads mask channels (``mask_rate`` above 0, on ``ae`` or ``plain``)."""
        return self.mask_rate > 0 and ARCHITECTURES[self.arch].reads_masks

    def _model_config(self) -> ModelConfig:
        return ModelConfig(
            self.arch,
            self.lookback,
            self.n_features_in_,
            tuple(self.target_features_),
            self.units_,
            self.activation,
            self.horizon,
            self._masks,
        )

    def _model_input(
        self, scaled_windows: np.ndarray, masked: np.ndarray | None = None
    ) -> np.ndarray:
        """What the model reads: the windows, with hidden targets or with mask channels.

        A forecast's predicted targets are hidden, a masked model reads mask
        channels (copies, both); the windows themselves otherwise. ``masked``
        (``(n, targets)`` booleans; None: none) says which sensors a masked
        model gets hidden.
        """
        if ARCHITECTURES[self.arch].forecasts:
            return hide_forecast_rows(
                np.array(scaled_windows, np.float32),
                self.target_features_,
                self.horizon,
            )
        if self._masks:
            return mask_sensors(
                scaled_windows,
                self.target_features_,
                np.zeros((len(scaled_windows), len(self.target_features_)), bool)
                if masked is None
                else masked,
            )
        return scaled_windows

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Reconstruct one batch of scaled windows.

        A masked model rebuilds each target by the pass that hides it (one
        pass per target).
        """
        if not self._masks:
            return self.model_.predict_on_batch(self._model_input(batch))
        n_targets = len(self.target_features_)
        predicted = np.empty((len(batch), batch.shape[1], n_targets), np.float32)
        for j in range(n_targets):
            masked = np.zeros((len(batch), n_targets), bool)
            masked[:, j] = True
            predicted[..., j] = self.model_.predict_on_batch(
                self._model_input(batch, masked)
            )[..., j]
        return predicted


def window_errors(squared: np.ndarray, kind: str) -> np.ndarray:
    """Each target's error over a window's rows ``(windows, rows, targets)``.

    ``mean`` of the rows, the ``last`` row alone, the ``max`` row, or a
    ``tail``-weighted mean (weights 1, 2, ..., rows: the newest row counts
    most), which reaches a short event's peak sooner than the mean.
    """
    if kind == "last":
        return squared[:, -1, :]
    if kind == "max":
        return squared.max(axis=1)
    if kind == "tail":
        weights = np.arange(1, squared.shape[1] + 1, dtype=np.float32)
        return np.einsum("wrt,r->wt", squared, weights / weights.sum())
    return squared.mean(axis=1)


def finite_scores(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window scores (the mean over targets) of per-target ``errors``, kept finite in place."""
    # a reading far outside the training range can overflow: keep scores finite (and JSON-safe)
    top = float(np.finfo(np.float32).max)
    np.nan_to_num(errors, copy=False, nan=top, posinf=top)
    return errors.mean(axis=1, dtype=np.float64).astype(np.float32), errors
