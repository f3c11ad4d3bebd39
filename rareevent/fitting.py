"""Fitting a detector: split the rows, learn the columns and the scaler, train, pick the threshold.

``fit`` (scikit-learn's, on one table of rows) and ``fit_parts`` (the CLI's,
on train and validation parts split by the caller, with gaps) set every
learned value; scoring the validation windows to choose the threshold uses
``WindowScoring``. Separate from scoring because a saved detector never
runs it.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from rareevent import scaling, windows
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, auto_units
from rareevent.options import SplitSpec
from rareevent.progress import EpochCallback, check_verbose, fit_progress, fit_summary
from rareevent.protocol import FitOptions, ReconstructionModel, TrainingData
from rareevent.reconstruction import finite_scores
from rareevent.threshold import check_labels, choose_threshold, parse_strategy
from rareevent.window_scores import WindowScoring, as_rows

# set by fit for the rows it was given (PyOD's meaning): they describe data, not the
# detector, and are not saved
ROW_RESULTS = ("decision_scores_", "labels_")


class Fitting(WindowScoring):
    """``fit``, ``fit_predict`` and ``fit_parts`` (a mixin of ``Detector``)."""

    def fit(
        self,
        X: pd.DataFrame | np.ndarray,
        y: np.ndarray | pd.Series | None = None,
        *,
        on_epoch: EpochCallback | None = None,
        verbose: int = 0,
    ) -> Self:
        """Fit on the rows of ``X`` (a DataFrame or an ``(n, F)`` array), oldest first.

        The last ``validation_fraction`` of the rows choose the threshold and
        stop training early; the model learns from the normal windows of the
        rows before them. A DataFrame's column names become
        ``feature_names_in_``; an array's columns are named ``x0``, ``x1``,
        ... Then every row of ``X`` is scored: ``decision_scores_`` and
        ``labels_`` (as ``decision_function`` and ``predict`` would give).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order, numbers only (no time column).
        y : array-like of shape (n_rows,), optional
            A 0/1 event label per row. Without it the threshold strategy
            must not need labels (the default is then ``"pot"``); with labels
            but no event among the validation rows, the default strategy
            falls back to ``"pot"`` with a warning.
        on_epoch : callable, optional
            Called after every epoch with its number and its logs (``loss``,
            ``val_loss``).
        verbose : int, default=0
            Progress on stderr, as Keras' ``fit`` shows it: 0 nothing; 1 a
            progress bar over the epochs in a terminal, else one line per
            epoch; 2 one line per epoch (see ``rareevent.progress``). Either
            ends with a line that names the epochs and the threshold.

        Returns
        -------
        RareEventDetector
            The fitted detector itself.

        Raises
        ------
        RareEventError
            A bad parameter, too few rows for the train and validation
            parts, a label that is not 0 or 1, repeated or empty column
            names, a value that is not a finite number, or a label-based
            threshold with no event among the validation rows.
        """
        self.check_params()
        verbose = check_verbose(verbose)
        names = _column_names(X) if isinstance(X, pd.DataFrame) else None
        rows = as_rows(X, "X")
        if len(rows) < 2 * self.lookback:
            raise RareEventError(
                f"X has {len(rows)} sample(s): fewer than the train and validation parts "
                f"need ({self.lookback} rows each, one window of lookback {self.lookback})"
            )
        labels = None if y is None else _as_labels(y, len(rows))
        splits = windows.chronological_split(
            len(rows), SplitSpec(self.validation_fraction, 0.0)
        )
        train, valid = slice(*splits["train"]), slice(*splits["valid"])
        # train labels reach lead rows on
        ahead = slice(splits["train"][0], splits["train"][1] + self.lead)
        with fit_progress(verbose, f"fitting {self.arch}", self.epochs) as shown:
            self.fit_parts(
                rows[train],
                None if labels is None else labels[ahead],
                rows[valid],
                None if labels is None else labels[valid],
                on_epoch=_both(on_epoch, shown),
                feature_names=names,
                fallback=True,
            )
        self.decision_scores_, self.labels_ = self._results_of_rows(rows)
        if verbose:
            print(
                fit_summary(
                    self.arch,
                    self.epochs_run_,
                    self.best_epoch_,
                    self.threshold_,
                    self.threshold_strategy_,
                    self.train_seconds_,
                ),
                file=sys.stderr,
                flush=True,
            )
        return self

    def fit_predict(
        self, X: pd.DataFrame | np.ndarray, y: np.ndarray | pd.Series | None = None
    ) -> np.ndarray:
        """``fit`` on ``X`` (with the labels ``y``, if given), then its 0/1 label per row.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Sensor readings in time order.
        y : array-like of shape (n_rows,), optional
            A 0/1 event label per row.

        Returns
        -------
        ndarray of shape (n_rows,)
            ``labels_``: 1 where the window ending at the row is flagged.
        """
        return self.fit(X, y).labels_

    def fit_parts(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray | None,
        X_valid: np.ndarray,
        y_valid: np.ndarray | None,
        on_epoch: EpochCallback | None = None,
        starts_train: np.ndarray | None = None,
        starts_valid: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        fallback: bool = False,
    ) -> Self:
        """Fit on the normal windows of the train rows; pick the threshold on the valid rows.

        The caller splits the rows into the two parts.

        ``y_*`` are per-row 0/1 labels or ``None``; each may run up to
        ``lead`` rows past the end of its ``X_*`` (the labels of the rows
        that follow), so that windows near a part's end see an event that
        starts just after it. Early stopping watches the loss of the clean
        validation windows and restores the best weights. ``starts_*`` (per
        row: True where a segment begins, see ``windows``) keep every window
        inside one segment: windows across a gap are neither trained on nor
        scored, and ``validation_scores_`` holds the kept validation windows only.
        ``decision_scores_`` and ``labels_`` are left unset: ``fit`` sets them
        for the rows it was given.
        Like ``y_*``, each may run past the end of its ``X_*``: a window's
        label looks ahead no further than the next segment start (rows past
        the end of ``starts_*`` continue its last segment).
        With ``fallback`` (``fit``: a fold of ``cross_val_score`` may hold no
        event in its validation part) and ``threshold`` left to its default,
        labels without a positive validation window give the threshold of
        unlabelled data (``pot``) and a warning instead of an error; the CLI
        refuses them, naming the options that help.
        """
        self.check_params()
        self.check_masking()
        for name in ROW_RESULTS:  # of the data an earlier fit was given
            self.__dict__.pop(name, None)
        strategy = parse_strategy(
            self.threshold or ("f1" if y_valid is not None else "pot")
        )
        if strategy.needs_labels and y_valid is None:
            raise RareEventError(
                f"threshold {strategy} needs a label column",
                hint="use `threshold=pot` (or quantile) for data without labels",
                param="threshold",
            )
        T = self.lookback
        for part, X in (("train", X_train), ("validation", X_valid)):
            if len(X) < T:
                raise RareEventError(
                    f"the {part} part has {len(X)} rows, fewer than one window of lookback {T}",
                    hint="use a longer file, a smaller `lookback` or other "
                    "`validation_fraction`/`test_frac`",
                )
        n_features = X_train.shape[1]
        self.feature_names_in_ = np.asarray(
            [f"x{j}" for j in range(n_features)]
            if feature_names is None
            else [str(name) for name in feature_names],
            dtype=object,
        )
        self.n_features_in_ = n_features
        y_train = (
            np.zeros(len(X_train), np.int8)
            if y_train is None
            else np.asarray(y_train, np.int8)
        )
        normal_rows = np.flatnonzero(y_train[: len(X_train)] == 0)
        normal = X_train[normal_rows] if normal_rows.size else X_train
        discrete = scaling.discrete_columns(normal)
        self.context_features_ = self._context_columns(normal, discrete)
        self.target_features_ = [
            j for j in range(X_train.shape[1]) if j not in set(self.context_features_)
        ]
        self.scaler_ = scaling.fit_scaler(normal, discrete=discrete)
        self.constant_features_ = scaling.constant_columns(self.scaler_).tolist()
        trending = scaling.trending_columns(
            normal, positions=normal_rows if normal_rows.size else None
        )
        self.trending_features_ = [
            int(i)
            for i in trending
            if i in self.target_features_ and i not in self.constant_features_
        ]
        valid_rows = (
            np.zeros(len(X_valid), np.int8)
            if y_valid is None
            else np.asarray(y_valid, np.int8)
        )
        train_ahead = _row_starts(starts_train, len(y_train))  # as long as the labels
        valid_ahead = _row_starts(starts_valid, len(valid_rows))
        starts_train, starts_valid = (
            train_ahead[: len(X_train)],
            valid_ahead[: len(X_valid)],
        )
        train_clean = windows.clean_windows(y_train, T, self.lead, train_ahead)[
            : windows.n_windows(len(X_train), T)
        ] & windows.inside_segments(starts_train, T)
        valid_keep = windows.inside_segments(starts_valid, T)
        valid_clean = windows.clean_windows(valid_rows, T, self.lead, valid_ahead)[
            : windows.n_windows(len(X_valid), T)
        ][valid_keep]
        if not train_clean.any():
            raise RareEventError(
                "the train part has no window free of events to learn normal behaviour from"
            )
        if not valid_clean.any():
            raise RareEventError(
                "the validation part has no window free of events",
                hint="raise `validation_fraction`",
            )
        labels = (
            None
            if y_valid is None
            else windows.window_labels(valid_rows, T, self.lead, valid_ahead)[
                : len(valid_keep)
            ][valid_keep]
        )
        if (
            fallback
            and self.threshold is None
            and strategy.needs_labels
            and (labels is None or not np.any(labels))
        ):
            strategy = parse_strategy("pot")
            warnings.warn(
                "the validation part holds no positive window: the threshold is "
                f"chosen without labels ({strategy}), as for unlabelled data",
                UserWarning,
                stacklevel=3,
            )
        check_labels(strategy, labels)  # before training, not after it
        if not (self.warm_start and hasattr(self, "model_")):
            # the one string check_params admits is auto
            self.units_ = (
                auto_units(
                    scaling.transform(self.scaler_, normal)[:, self.target_features_]
                )
                if isinstance(self.units, str)
                else (self.units[0], self.units[1])
            )
        train_windows = windows.sliding_windows(
            scaling.transform(self.scaler_, X_train), T
        )[train_clean]
        valid_all = windows.kept(
            windows.sliding_windows(scaling.transform(self.scaler_, X_valid), T),
            valid_keep,
        )
        self.model_ = self._train(
            np.ascontiguousarray(train_windows),
            np.ascontiguousarray(valid_all[valid_clean]),
            on_epoch,
        )
        self.n_train_windows_ = len(train_windows)
        self.error_scale_ = np.ones(len(self.target_features_), np.float32)
        raw, errors = self._reconstruction_errors(valid_all)
        # the scales come from the same predictions: the validation windows are
        # reconstructed once
        if self.normalize:
            self.error_scale_ = error_scales(errors[valid_clean])
            raw, errors = finite_scores(errors / self.error_scale_)
        scores = self.smooth_scores(
            raw, resets=windows.window_resets(starts_valid, T)[valid_keep]
        )
        self.threshold_strategy_ = str(strategy)
        self.threshold_ = self.margin * choose_threshold(
            strategy, scores, labels, valid_clean
        )
        if not math.isfinite(self.threshold_):
            raise RareEventError(
                "training diverged: the validation errors are not finite",
                hint="use `activation=tanh` or fewer `units`",
            )
        self.validation_scores_ = scores
        self.validation_labels_ = (scores >= self.threshold_).astype(np.int8)
        return self

    def _context_columns(self, normal: np.ndarray, discrete: np.ndarray) -> list[int]:
        """Indices of the context columns: read by the model, never scored.

        ``auto`` takes the flag and mode columns (see
        ``scaling.discrete_columns``), unless every column is one: then all
        are scored, as there would be nothing left to judge.
        """
        n = normal.shape[1]
        if isinstance(self.context, str):
            found = [] if self.context == "none" else [int(j) for j in discrete]
            return [] if len(found) == n else found
        chosen = sorted({int(j) for j in self.context})
        if any(not 0 <= j < n for j in chosen):
            raise RareEventError(
                f"context column indices must be in 0..{n - 1}, got {chosen}",
                param="context",
            )
        if len(chosen) == n:
            raise RareEventError(
                "every column is context: at least one column must be left to score"
            )
        return chosen

    def _train(
        self, train: np.ndarray, valid: np.ndarray, on_epoch: EpochCallback | None
    ) -> ReconstructionModel:
        """Fit the model on the clean windows and keep what the fit reports.

        The model is ``model_`` itself under ``warm_start``.
        """
        started = time.perf_counter()
        model = (
            self.model_
            if self.warm_start and hasattr(self, "model_")
            else ARCHITECTURES[self.arch].model.create(self._model_config())
        )
        data = TrainingData(
            train,
            valid,
            inputs=lambda scaled, seed: self._model_input(
                scaled, self._drawn_masks(len(scaled), seed)
            ),
            targets=self._targets_of,
        )
        report = model.fit(
            data,
            FitOptions(
                self.epochs,
                self.batch_size,
                self.learning_rate,
                self.patience,
                self.seed,
                on_epoch,
            ),
        )
        self.train_seconds_ = time.perf_counter() - started
        self.history_, self.batch_size_, self.learning_rate_ = (
            report.history,
            report.batch_size,
            report.learning_rate,
        )
        self.epochs_run_ = len(self.history_["loss"])
        self.best_epoch_ = (  # 0: fitted in closed form, no epoch
            int(np.argmin(self.history_["val_loss"])) + 1 if self.epochs_run_ else 0
        )
        return model

    def _drawn_masks(self, n: int, seed: int) -> np.ndarray | None:
        """Which target sensors of ``n`` training windows are hidden.

        Each is hidden with probability ``mask_rate``, drawn from ``seed``.
        """
        return (
            np.random.default_rng(seed).random((n, len(self.target_features_)))
            < self.mask_rate
            if self._masks
            else None
        )


def _both(
    first: EpochCallback | None, second: EpochCallback | None
) -> EpochCallback | None:
    """One per-epoch callback that calls both (either may be ``None``)."""
    if first is None or second is None:
        return first or second

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        first(epoch, logs)
        second(epoch, logs)

    return on_epoch


def error_scales(feature_errors: np.ndarray) -> np.ndarray:
    """Typical error of each target on normal windows.

    The median, floored so that no sensor is divided by ~0: the floor is a
    thousandth of the median over all targets (or 1e-12). A sensor
    reconstructed perfectly in validation would otherwise turn rounding noise
    into alarms.
    """
    typical = np.median(feature_errors, axis=0).astype(np.float64)
    floor = max(float(np.median(typical)) * 1e-3, 1e-12)
    return np.maximum(typical, floor).astype(np.float32)


def _column_names(X: pd.DataFrame) -> list[str]:
    """The column names of ``X`` as text (``feature_names_in_``).

    Empty or repeated ones are refused, as ``load`` would refuse them.
    """
    names = [str(column) for column in X.columns]
    if "" in names:
        raise RareEventError(
            f"X has an empty column name (column {names.index('')}): name every column"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RareEventError(
            f"X has repeated column names {', '.join(map(repr, repeated))[:80]}: "
            "name every column once"
        )
    return names


def _row_starts(starts: np.ndarray | None, n: int) -> np.ndarray:
    """The ``starts`` mask of ``n`` rows.

    One segment when ``None``; rows past its end continue its last segment.
    """
    if starts is None:
        return windows.one_segment(n)
    given = np.asarray(starts, dtype=bool)[:n]
    return np.concatenate([given, np.zeros(n - len(given), bool)])


def _as_labels(y: Any, n: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise RareEventError(
            f"y must hold one 0/1 label per row of X ({n}), got shape {labels.shape}"
        )
    wrong = ~np.isin(labels, (0, 1))
    if wrong.any():
        raise RareEventError(
            f"y: labels must be 0 or 1, got {labels[wrong][0].item()!r} "
            f"at row {int(np.flatnonzero(wrong)[0])}"
        )
    return labels.astype(np.int8)
