"""Scoring with a fitted detector: window scores, their smoothing, and one value per row.

``score_windows`` and ``smooth_scores`` are what ``rareevent score``,
``--follow`` and the fleet workers call chunk by chunk; ``decision_function``,
``score_samples`` and ``predict`` give scikit-learn's one value per row of
``X``. Separate from fitting because a saved detector scores with this alone
(numpy, no TensorFlow, no scikit-learn).
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from rareevent import scaling, windows
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES
from rareevent.reconstruction import Reconstruction

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler


class WindowScoring(Reconstruction):
    """The scores of a fitted detector, per window and per row (a mixin of ``Detector``)."""

    scaler_: StandardScaler  # or, loaded, a scaling.Standardization of the same mean_, scale_
    threshold_: float
    feature_names_in_: np.ndarray

    def score_windows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of all windows of the ``(n, F)`` rows ``X``, and per-feature errors."""
        return self._reconstruction_errors(
            windows.sliding_windows(scaling.transform(self.scaler_, X), self.lookback)
        )

    def smooth_scores(
        self,
        raw: np.ndarray,
        previous: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> np.ndarray:
        """Trailing mean of each window's raw score and the ``smooth - 1`` before it in its segment.

        ``previous`` holds raw scores of the windows just before ``raw`` (from
        an earlier chunk, all in the segment ``raw`` begins in); at the very
        start the mean is over fewer windows. ``resets`` (per window) marks
        windows that begin a new segment: their mean starts afresh from them.
        Each mean is taken over the same values in the same order however the
        series is cut into chunks, so chunked scoring gives identical results.
        """
        k = self.smooth
        if k <= 1:
            return raw
        before = (
            np.full(k - 1, np.nan)
            if previous is None
            else np.concatenate([np.full(k - 1, np.nan), previous])[-(k - 1) :]
        )
        series = np.concatenate([before, np.asarray(raw, dtype=np.float64)])
        view = sliding_window_view(series, k)
        if resets is not None and np.any(resets):
            index = np.arange(len(raw))
            # windows since the segment began (k or more: all)
            since = index - np.maximum.accumulate(np.where(resets, index, -k))
            view = np.where(
                np.arange(k) >= (k - 1 - np.minimum(since, k - 1))[:, None],
                view,
                np.nan,
            )
        return np.nanmean(view, axis=1).astype(np.float32)

    def carry_scores(
        self,
        previous: np.ndarray | None,
        raw: np.ndarray,
        resets: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """The raw scores the next chunk's smoothing continues from.

        They are the last ``smooth - 1`` of the current segment.
        """
        if self.smooth <= 1:
            return None
        if resets is not None and np.any(resets):
            previous, raw = None, raw[int(np.flatnonzero(resets)[-1]) :]
        return np.concatenate([previous, raw] if previous is not None else [raw])[
            -(self.smooth - 1) :
        ]

    def score_segments(
        self, X: np.ndarray, starts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed scores of the windows of ``X`` inside one segment, and their mask."""
        starts = windows.one_segment(len(X)) if starts is None else starts
        keep = windows.inside_segments(starts, self.lookback)
        raw = self._reconstruction_errors(
            windows.kept(
                windows.sliding_windows(
                    scaling.transform(self.scaler_, X), self.lookback
                ),
                keep,
            )
        )[0]
        return self.smooth_scores(
            raw, resets=windows.window_resets(starts, self.lookback)[keep]
        ), keep

    def window_scores(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The smoothed score of every window of the rows ``X``, higher = more abnormal.

        The first window ends at row ``lookback - 1``. A DataFrame's feature
        columns are taken by name (``feature_names_in_``); an array must hold
        them in that order. These are the values ``rareevent score`` writes
        per window, as ``error``.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order, at least ``lookback`` rows.

        Returns
        -------
        ndarray of float32, shape (n_rows - lookback + 1,)
            One score per window.

        Raises
        ------
        RareEventError
            A fitted column is missing, or ``X`` has fewer rows than one window.
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        return self.smooth_scores(self.score_windows(self._rows_of(X))[0])

    def window_flags(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """0/1 flag of every window of ``X``: ``window_scores`` at or above ``threshold_``.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order, at least ``lookback`` rows.

        Returns
        -------
        ndarray of int8, shape (n_rows - lookback + 1,)
            1 for a flagged window, else 0.
        """
        return (self.window_scores(X) >= self.threshold_).astype(np.int8)

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per row of ``X``: the score of the window ending there, higher = more abnormal.

        PyOD's sign: the reconstruction error that ``threshold_`` is
        compared with.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order.

        Returns
        -------
        ndarray of float64, shape (n_rows,)
            The scores, finite for every row: the first ``lookback - 1`` rows
            (all of them when ``X`` is shorter than a window) are scored from
            the shorter window that ends there, filled at its start with
            copies of the first row.

        Raises
        ------
        RareEventError
            A fitted column is missing.
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        return self._row_results(X)[0]

    def score_samples(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per row of ``X``: ``-decision_function``, scikit-learn's sign (higher = more normal).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order.

        Returns
        -------
        ndarray of float64, shape (n_rows,)
            The negated scores, finite for every row.
        """
        return -self.decision_function(X)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per row of ``X``: 1 where the window ending there is flagged, else 0.

        A window is flagged when its score is at or above ``threshold_``. 1 =
        event, as in PyOD and in the label column, not scikit-learn's -1/+1,
        so ``f1_score(y, detector.predict(X))`` works.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order.

        Returns
        -------
        ndarray of int8, shape (n_rows,)
            The 0/1 labels; 0 for the first ``lookback - 1`` rows: only a
            full window raises an alarm, as in ``score``.

        Raises
        ------
        RareEventError
            A fitted column is missing.
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        return self._row_results(X)[1]

    def _row_results(
        self, X: pd.DataFrame | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the score of the window ending there (float64, finite) and its 0/1 flag.

        The flags compare the float32 window scores with ``threshold_``, as
        ``window_flags`` and the CLI do, so that all agree at the boundary.
        """
        return self._results_of_rows(self._rows_of(X, min_rows=1))

    def _results_of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_row_results`` of rows already checked and in fitted column order."""
        pad = min(self.lookback - 1, len(rows))
        scores = (
            self.smooth_scores(self.score_windows(rows)[0])
            if len(rows) >= self.lookback
            else np.empty(0, np.float32)
        )
        per_row = np.concatenate([self._head_scores(rows[:pad]), scores]).astype(
            np.float64
        )
        flags = np.concatenate(
            [np.zeros(pad, np.int8), (scores >= self.threshold_).astype(np.int8)]
        )
        return per_row, flags

    def _head_scores(self, head: np.ndarray) -> np.ndarray:
        """Scores of the rows before the first full window (``head``: at most ``lookback - 1``).

        Row ``i`` is scored from the shorter window of rows ``0..i``, filled
        at its start with ``lookback - 1 - i`` copies of row 0, as if the
        sensors had held their first reading: the model sees a window of the
        shape it was trained on, and each row is judged by the rows up to it
        only, as every other row is. (Taking the first full window's score
        instead would judge row 0 by rows after it, and would leave an ``X``
        shorter than a window without a score.) These windows are smoothed
        among themselves; the full windows' scores do not depend on them.
        """
        if not len(head):
            return np.empty(0, np.float32)
        filled = np.concatenate([np.repeat(head[:1], self.lookback - 1, axis=0), head])
        return self.smooth_scores(self.score_windows(filled)[0])

    def _rows_of(
        self, X: pd.DataFrame | np.ndarray, min_rows: int | None = None
    ) -> np.ndarray:
        """The rows of ``X``, columns in fitted order; ``min_rows`` or more (default: lookback)."""
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            # fit named them as text: column 0 is '0'
            by_name = {str(column): column for column in X.columns}
            missing = [name for name in self.feature_names_in_ if name not in by_name]
            if missing:
                raise RareEventError(
                    f"X lacks the feature column(s) {', '.join(missing)} the detector was "
                    "fitted on"
                )
            fitted = set(self.feature_names_in_)
            extra = [name for name in by_name if name not in fitted]
            if (
                extra
            ):  # scikit-learn refuses them too: a column read by mistake, or renamed
                raise RareEventError(
                    f"X has column(s) {', '.join(map(repr, extra))[:80]} the detector was not "
                    "fitted on",
                    hint="pass X[detector.feature_names_in_]",
                )
            X = X[[by_name[name] for name in self.feature_names_in_]]
        elif self._fitted_on_names():
            warnings.warn(
                "X is an array, but the detector was fitted on named columns: its columns "
                f"are taken as {', '.join(self.feature_names_in_)[:80]}, in this order",
                UserWarning,
                stacklevel=3,
            )
        rows = as_rows(X, "X")
        if rows.shape[1] != self.n_features_in_:
            raise RareEventError(
                f"X has {rows.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )  # scikit-learn's words
        if len(rows) < (self.lookback if min_rows is None else min_rows):
            raise RareEventError(
                f"X has {len(rows)} rows, fewer than one window of lookback {self.lookback}"
                if min_rows is None
                else f"X has {len(rows)} rows: at least {min_rows} needed"
            )
        return rows

    def _fitted_on_names(self) -> bool:
        """Whether ``fit`` was given named columns (a DataFrame).

        Not an array, whose columns are named ``x0``, ``x1``, ...
        """
        return list(self.feature_names_in_) != [
            f"x{j}" for j in range(len(self.feature_names_in_))
        ]

    def encode(self, X: np.ndarray) -> np.ndarray:
        """The encoded vector of every window; architectures with a bottleneck only (``ae``).

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Sensor readings in time order, in the order of ``feature_names_in_``.

        Returns
        -------
        ndarray of shape (n_rows - lookback + 1, units_[1])
            The bottleneck's output for each window.

        Raises
        ------
        RareEventError
            The architecture has no encoded vector (``plain``, ``forecast``,
            ``pca``).
        """
        self._check_fitted()
        require_bottleneck(self.arch)
        scaled = windows.sliding_windows(
            scaling.transform(self.scaler_, X), self.lookback
        )
        return self.model_.encode(np.ascontiguousarray(self._model_input(scaled)))


def require_bottleneck(arch: str) -> None:
    """Refuse to encode with a model that has no encoded vector."""
    if not ARCHITECTURES[arch].has_bottleneck:
        have = [name for name, spec in ARCHITECTURES.items() if spec.has_bottleneck]
        raise RareEventError(
            f"a {arch!r} run has no encoded vector: only "
            f"{', '.join(repr(a) for a in have)} runs have a bottleneck",
            hint=f"train with `arch={have[0]}`",
        )


def as_rows(X: Any, what: str) -> np.ndarray:
    """``X`` as a finite ``(n, F)`` float array."""
    if "scipy.sparse" in sys.modules and sys.modules["scipy.sparse"].issparse(X):
        # (a sparse matrix means scipy.sparse was imported: scoring does not import it)
        raise RareEventError(
            f"{what} is a sparse matrix: sparse input is not supported",
            hint="pass a dense array (`X.toarray()`)",
        )
    try:
        with warnings.catch_warnings():
            # numpy would drop the imaginary part
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            rows = np.asarray(X, dtype=np.float64)
    except np.exceptions.ComplexWarning:
        raise RareEventError(
            f"{what} holds complex numbers (Complex data not supported)"
        ) from None
    except (TypeError, ValueError):
        raise RareEventError(f"{what} must hold numbers only") from None
    # the shape errors use scikit-learn's words
    if rows.ndim != 2:
        raise RareEventError(
            f"{what} must be 2-dimensional (rows x features), got shape {rows.shape}",
            hint="Reshape your data: `X.reshape(-1, 1)` for one feature",
        )
    if rows.shape[1] < 1:
        raise RareEventError(
            f"{what} has 0 feature(s) (shape={rows.shape}) while a minimum of 1 is required."
        )
    if not np.all(np.isfinite(rows)):
        raise RareEventError(
            f"{what} holds NaN or infinite values; fill or drop them first"
        )
    return rows
