"""The estimator: scaler + reconstruction model + threshold, fit together, and its one saved artifact.

``RareEventDetector`` is a scikit-learn outlier detector: parameters in
``__init__`` (``get_params``, ``set_params``, ``clone``), everything
learned in attributes ending in ``_`` (``feature_names_in_``, ``scaler_``,
``model_``, ``threshold_``, ``validation_scores_``, ``history_``, ...),
``fit`` / ``score_samples`` / ``decision_function`` / ``predict`` /
``fit_predict`` with one value per row (``window_scores`` and
``window_flags`` give one per window). ``save(folder)`` writes
``detector.json`` (the parameters and every learned value but the weights
and the per-row results of ``fit``) and the weights alone;
``RareEventDetector.load(folder)`` rebuilds the model through the
architecture registry and sets its weights, so a folder cannot make it run
code. Reading CSV files and writing run folders live elsewhere.

The class here is :class:`Detector`, which imports no scikit-learn: a
saved detector scores through it on numpy alone. ``RareEventDetector``
(``rareevent.estimator``, also importable from here) adds the
scikit-learn estimator's bases to it.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

import rareevent
from rareevent import scaling, windows
from rareevent.errors import RareEventError
from rareevent.model import (
    ARCHITECTURES,
    MAX_UNITS,
    PREDICT_BATCH,
    KerasModel,
    auto_units,
    check_model_options,
    hide_forecast_rows,
    mask_sensors,
    output_steps,
)
from rareevent.model import (
    stop_between_batches as stop_between_batches,
)  # re-exported: the CLI defers Ctrl-C through it
from rareevent.options import SplitSpec
from rareevent.pca import PCAModel
from rareevent.progress import EpochCallback, check_verbose, fit_progress, fit_summary
from rareevent.protocol import (
    MAX_SPAN,
    FitOptions,
    ModelConfig,
    ReconstructionModel,
    TrainingData,
)
from rareevent.storage import atomic_folder
from rareevent.threshold import check_labels, choose_threshold, parse_strategy

SCORE_KINDS = ("mean", "last", "max", "tail")
CONTEXT_RULES = ("auto", "none")
MAX_MARGIN = 1000.0
MAX_SEED = 2**32 - 1  # numpy's seeds
MAX_BATCH_SIZE = (
    2**20
)  # 512x GPU_MAX_BATCH: a larger batch is a typo or a damaged file (2**63 overflows numpy and Keras)
MAX_VALIDATION_FRACTION = 0.9
DETECTOR_FILE = "detector.json"
DETECTOR_FORMAT = 2
RENAMED_IN_FORMAT_2 = {
    "decision_scores_": "validation_scores_",
    "labels_": "validation_labels_",
}  # format 1 names, read still
ROW_RESULTS = (
    "decision_scores_",
    "labels_",
)  # set by fit for the rows it was given (PyOD's meaning): they describe data, not the detector, and are not saved
ADDED_PARAMS = (
    "horizon",
    "mask_rate",
)  # parameters newer than format 1 (0.3.0): a format 1 detector.json gets their defaults
WEIGHTS_FILE = KerasModel.file  # Keras models: the weights alone (no model description)
PCA_FILE = PCAModel.file  # the pca baseline: three arrays, read without pickle
FLOAT32_MAX, FLOAT32_TINY = (
    float(np.finfo(np.float32).max),
    float(np.finfo(np.float32).tiny),
)  # as Python floats: a comparison with a float32 would cast 1e39 to it


def __getattr__(name: str) -> Any:
    """``RareEventDetector``, the scikit-learn estimator, from its module on first use (PEP 562).

    Scoring with a saved detector needs numpy alone: it loads a
    :class:`Detector`, and scikit-learn (about 1 s to import) is imported
    only where the estimator is used.
    """
    if name == "RareEventDetector":
        from rareevent.estimator import RareEventDetector

        return RareEventDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Detector:
    """Detect rare events as windows a model of normal behaviour cannot reconstruct.

    ``Detector`` is all of it without scikit-learn: what a saved detector
    needs to score. :class:`~rareevent.estimator.RareEventDetector` is the
    same class as a scikit-learn estimator, the one to use and fit.

    A scikit-learn outlier detector whose samples are rows in time order:
    row ``i`` is judged by the window of ``lookback`` rows ending at it, so
    ``score_samples``, ``decision_function``, ``predict`` and
    ``fit_predict`` return one value per row. The first ``lookback - 1``
    rows (no full window yet) get a finite score from a shorter window,
    filled at its start with copies of the first row (see ``_head_scores``),
    and the prediction 0: every row can be ranked (``average_precision``,
    ``cross_val_score``), while only a full window raises an alarm. The
    signs are chosen on purpose, as PyOD does for the method PyOD defines:
    ``decision_function`` is the (smoothed) reconstruction error, higher =
    more abnormal, the value the CLI writes as ``error`` and compares with
    ``threshold_``; ``predict`` is a 0/1 label, 1 = event, like the
    ``label`` column a run is trained with and the CLI's ``flagged``.
    ``score_samples`` keeps scikit-learn's meaning (higher = more normal):
    it is ``-decision_function``.
    ``decision_scores_`` and ``labels_`` hold the same per row of the data
    passed to ``fit`` (PyOD's meaning); ``validation_scores_`` and
    ``validation_labels_`` those of the validation windows that chose the
    threshold.

    Parameters are plain JSON values, so that a detector can be saved and
    rebuilt; the documentation's "How the defaults were chosen" says how
    each default was chosen. They are checked by ``check_params`` when
    ``fit`` starts, before any data is read.

    Parameters
    ----------
    arch : {"ae", "plain", "forecast", "pca"}, default="ae"
        The model, an entry of ``rareevent.model.ARCHITECTURES``: an LSTM
        autoencoder, a plain LSTM stack without bottleneck, an LSTM that
        forecasts the window's last ``horizon`` rows, or the PCA
        reconstruction baseline.
    lookback : int, default=1
        Rows per window (at most 100000). One row by default: with the
        decision stage it gave the best alarms over the four benchmark
        datasets (the documentation's scorecard); ``arch="forecast"`` needs
        at least ``horizon + 1``.
    horizon : int, default=1
        How many rows ``arch="forecast"`` predicts (the window's last ones,
        fewer than ``lookback``); the other architectures ignore it.
    units : tuple of int or "auto", default=(32, 16)
        The LSTM sizes ``(u1, u2)``, 1 to 4096 each. ``"auto"`` sizes them
        from the training rows (``model.auto_units``): u2 is the number of
        principal components holding 99% of the targets' variance, u1 twice
        that; ``units_`` holds the sizes used.
    activation : {"tanh", "relu"}, default="tanh"
        The LSTMs' activation.
    lead : int, default=0
        Early warning: a window is positive when an event starts within this
        many rows after it (at most 100000).
    score_kind : {"mean", "last"}, default="mean"
        A window's score: the mean squared error over its steps, or over its
        last step only.
    smooth : int, default=1
        Alarm on the mean score of the last ``smooth`` windows (1 to 100000).
    threshold : str or None, default=None
        How the threshold is chosen on the validation windows: ``"f1"``,
        ``"fbeta:B"``, ``"pr-cross"``, ``"precision:P"``, ``"quantile[:Q]"``
        or ``"pot[:R]"``. ``None``: ``"f1"`` when ``fit`` is given labels,
        ``"pot"`` without.
    margin : float, default=1.0
        Multiply the chosen threshold by this (above 0, at most 1000).
    epochs : int, default=40
        Most training epochs; early stopping usually ends sooner.
    batch_size : int or None, default=None
        Windows per training step. ``None``: about 100 steps per epoch, a
        power of two from 16 to 128 on a CPU (2048 on a GPU).
    patience : int, default=5
        Epochs without a better validation loss before training stops (the
        best weights are restored).
    learning_rate : float or None, default=None
        Adam's step. ``None``: 1e-3 times the square root of ``batch_size / 16``.
    seed : int, default=0
        Seed of the weights, the shuffling and the masks (0 to 4294967295):
        the same data and seed give the same model and threshold on a CPU.
    context : "auto", "none" or list of int, default="auto"
        Context columns, read by the model but never scored: ``"auto"``
        takes 0/1 flags and whole-number modes with at most 10 values in
        the normal training rows, ``"none"`` scores every column, a list
        gives their indices.
    normalize : bool, default=False
        Divide each sensor's squared error by its typical (median) error on
        the normal validation windows.
    validation_fraction : float, default=0.2
        The share of the rows, at the end, that ``fit`` keeps to choose the
        threshold and stop training early.
    warm_start : bool, default=False
        As in scikit-learn: ``fit`` continues training the weights of
        ``model_`` instead of building a fresh model (``rareevent update``).
    mask_rate : float, default=0.0
        ``ae`` and ``plain``: hide each target sensor of a training window
        with this probability (0 to below 1). The model reads a mask channel
        per target and must rebuild the hidden sensors from the others; each
        sensor is then scored with itself hidden.

    Attributes
    ----------
    threshold_ : float
        The alarm threshold: a window whose (smoothed) score is at or above
        it is flagged.
    threshold_strategy_ : str
        The strategy that chose it, such as ``"f1"`` or ``"pot:0.001"``.
    feature_names_in_ : ndarray of str
        The fitted columns, in order; ``predict`` takes a DataFrame's
        columns by these names.
    n_features_in_ : int
        The number of fitted columns.
    context_features_, target_features_ : list of int
        Indices into ``feature_names_in_``: the columns read but not
        scored, and the scored ones.
    units_ : list of int
        The LSTM sizes trained.
    decision_scores_, labels_ : ndarray
        Score and 0/1 label of every row of the data given to ``fit``
        (PyOD's meaning); ``save`` does not keep them.
    validation_scores_, validation_labels_ : ndarray
        The validation windows that chose the threshold.

    See Also
    --------
    rareevent.runs.load_run : A run folder of ``rareevent train``, with its detector.
    rareevent.scoring.StreamScorer : Scores rows as they arrive, batch by batch.

    Examples
    --------
    >>> import pandas as pd
    >>> from rareevent import RareEventDetector
    >>> frame = pd.read_csv("sample_data/pump_sensors.csv", nrows=3000)
    >>> sensors = frame.drop(columns=["timestamp", "label"])
    >>> detector = RareEventDetector(arch="pca", lookback=10)
    >>> flags = detector.fit(sensors, frame["label"]).predict(sensors)
    >>> len(flags) == len(sensors), int(flags[:9].sum())  # one per row; 0 before a window
    (True, 0)
    >>> detector.threshold_strategy_
    'f1'
    """

    def __init__(
        self,
        arch: str = "ae",
        lookback: int = 1,
        horizon: int = 1,
        units: tuple[int, int] | str = (32, 16),
        activation: str = "tanh",
        lead: int = 0,
        score_kind: str = "mean",
        smooth: int = 1,
        threshold: str | None = None,
        margin: float = 1.0,
        epochs: int = 40,
        batch_size: int | None = None,
        patience: int = 5,
        learning_rate: float | None = None,
        seed: int = 0,
        context: str | Sequence[int] = "auto",
        normalize: bool = False,
        validation_fraction: float = 0.2,
        warm_start: bool = False,
        mask_rate: float = 0.0,
    ) -> None:
        self.arch = arch
        self.lookback = lookback
        self.horizon = horizon
        self.units = units
        self.activation = activation
        self.lead = lead
        self.score_kind = score_kind
        self.smooth = smooth
        self.threshold = threshold
        self.margin = margin
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.learning_rate = learning_rate
        self.seed = seed
        self.context = context
        self.normalize = normalize
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.mask_rate = mask_rate

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters of ``__init__`` and their values (scikit-learn's ``get_params``)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def _check_fitted(self) -> None:
        """Raise scikit-learn's ``NotFittedError`` before ``fit``."""
        if not hasattr(self, "threshold_"):
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(self, "threshold_")

    def check_masking(self) -> None:
        """Refuse ``mask_rate`` on an architecture that does not train with hidden sensors.

        Checked before training only: a run saved with such a setting (it
        was ignored) still loads.
        """
        if self.mask_rate and not ARCHITECTURES[self.arch].reads_masks:
            readers = [name for name, spec in ARCHITECTURES.items() if spec.reads_masks]
            raise RareEventError(
                f"mask_rate {self.mask_rate:g} applies to {' and '.join(readers)} only; "
                f"the {str(getattr(self.arch, 'value', self.arch))!r} model would ignore it",
                hint="leave `mask_rate` out, or choose one of those architectures",
                param="mask_rate",
            )

    def check_params(self) -> None:
        """Refuse bad parameters (types included) before any data is read or any model built.

        Raises
        ------
        RareEventError
            Naming the first bad parameter (``error.param``) and its value.
        """
        check_model_options(
            self.arch, self.activation, self.units, self.lookback, self.horizon
        )
        checks = [
            (
                "score_kind",
                self.score_kind in SCORE_KINDS,
                f"must be one of {', '.join(SCORE_KINDS)}, got {self.score_kind!r}",
            ),
            (
                "lookback",
                self.lookback <= MAX_SPAN,
                f"must be at most {MAX_SPAN}, got {self.lookback}",
            ),
            (
                "horizon",
                self.horizon <= MAX_SPAN,
                f"must be at most {MAX_SPAN}, got {self.horizon}",
            ),
            (
                "smooth",
                _is_int(self.smooth) and 1 <= self.smooth <= MAX_SPAN,
                f"must be between 1 and {MAX_SPAN}, got {self.smooth}",
            ),
            (
                "mask_rate",
                _is_number(self.mask_rate) and 0 <= self.mask_rate < 1,
                f"must be in [0, 1), got {self.mask_rate}",
            ),
            (
                "margin",
                _is_number(self.margin) and 0 < self.margin <= MAX_MARGIN,
                f"must be above 0 and at most {MAX_MARGIN:g}, got {self.margin}",
            ),
            (
                "lead",
                _is_int(self.lead) and 0 <= self.lead <= MAX_SPAN,
                f"must be between 0 and {MAX_SPAN}, got {self.lead}",
            ),
            (
                "seed",
                _is_int(self.seed) and 0 <= self.seed <= MAX_SEED,
                f"must be between 0 and {MAX_SEED}, got {self.seed}",
            ),
            (
                "epochs",
                _is_int(self.epochs) and self.epochs >= 1,
                f"must be at least 1, got {self.epochs}",
            ),
            (
                "patience",
                _is_int(self.patience) and self.patience >= 0,
                f"must be 0 or more, got {self.patience}",
            ),
            (
                "batch_size",
                self.batch_size is None or _is_batch_size(self.batch_size),
                f"must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}",
            ),
            (
                "learning_rate",
                self.learning_rate is None
                or (_is_number(self.learning_rate) and 0 < self.learning_rate < 1),
                f"must be in (0, 1), got {self.learning_rate}",
            ),
            (
                "threshold",
                self.threshold is None or isinstance(self.threshold, str),
                f"must be a strategy like f1 or pot, got {self.threshold!r}",
            ),
            (
                "normalize",
                isinstance(self.normalize, bool),
                f"must be true or false, got {self.normalize!r}",
            ),
            (
                "warm_start",
                isinstance(self.warm_start, bool),
                f"must be true or false, got {self.warm_start!r}",
            ),
            (
                "validation_fraction",
                _is_number(self.validation_fraction)
                and 0 < self.validation_fraction < MAX_VALIDATION_FRACTION,
                f"must be above 0 and below {MAX_VALIDATION_FRACTION:g}, got {self.validation_fraction}",
            ),
        ]
        for param, ok, rule in checks:
            if not ok:
                raise RareEventError(f"{param} {rule}", param=param)
        if self.threshold is not None:
            parse_strategy(self.threshold)
        if isinstance(self.context, str):
            context_ok = self.context in CONTEXT_RULES
        else:
            context_ok = isinstance(self.context, (list, tuple)) and all(
                _is_int(j) for j in self.context
            )
        if not context_ok:
            raise RareEventError(
                f"context must be one of {', '.join(CONTEXT_RULES)} or a list of column indices, got {self.context!r}",
                param="context",
            )

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
        rows = _as_rows(X, "X")
        if len(rows) < 2 * self.lookback:
            raise RareEventError(
                f"X has {len(rows)} sample(s): fewer than the train and validation parts need ({self.lookback} rows each, one window of lookback {self.lookback})"
            )
        labels = None if y is None else _as_labels(y, len(rows))
        splits = windows.chronological_split(
            len(rows), SplitSpec(self.validation_fraction, 0.0)
        )
        train, valid = slice(*splits["train"]), slice(*splits["valid"])
        ahead = slice(
            splits["train"][0], splits["train"][1] + self.lead
        )  # train labels reach lead rows on
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
        """Fit on the normal windows of the train rows; pick the threshold on the valid rows (split by the caller).

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
                    hint="use a longer file, a smaller `lookback` or other `validation_fraction`/`test_frac`",
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
            self.units_ = (
                auto_units(
                    scaling.transform(self.scaler_, normal)[:, self.target_features_]
                )
                if isinstance(self.units, str)
                else (self.units[0], self.units[1])
            )  # the one string check_params admits is auto
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
        if self.normalize:  # the scales come from the same predictions: the validation windows are reconstructed once
            self.error_scale_ = error_scales(errors[valid_clean])
            raw, errors = _combined(errors / self.error_scale_)
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
        """Fit the model (``model_`` itself under ``warm_start``) on the clean windows and keep what the fit reports."""
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
        self.best_epoch_ = (
            int(np.argmin(self.history_["val_loss"])) + 1 if self.epochs_run_ else 0
        )  # fitted in closed form: no epoch
        return model

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
        for start in range(
            0, len(scaled_windows), PREDICT_BATCH
        ):  # one step per batch of windows
            batch = np.ascontiguousarray(scaled_windows[start : start + PREDICT_BATCH])
            squared = np.square(self._targets_of(batch) - self._predict(batch))
            errors[start : start + len(batch)] = window_errors(squared, self.score_kind)
        errors /= self.error_scale_
        return _combined(errors)

    def _targets_of(self, scaled_windows: np.ndarray) -> np.ndarray:
        """What the model's output is compared with: the target columns of the rows it stands for (all, or a forecast's last ``horizon``).

        The windows themselves, uncopied, when nothing is context and every row counts.
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

    def _drawn_masks(self, n: int, seed: int) -> np.ndarray | None:
        """Which target sensors of ``n`` training windows are hidden: each with probability ``mask_rate``, drawn from ``seed``."""
        return (
            np.random.default_rng(seed).random((n, len(self.target_features_)))
            < self.mask_rate
            if self._masks
            else None
        )

    def _model_input(
        self, scaled_windows: np.ndarray, masked: np.ndarray | None = None
    ) -> np.ndarray:
        """What the model reads: the windows, with a forecast's predicted targets hidden, or with mask channels (copies; the windows themselves otherwise).

        ``masked`` (``(n, targets)`` booleans; None: none) says which
        sensors a masked model gets hidden.
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
        """Reconstruct one batch of scaled windows: a masked model rebuilds each target by the pass that hides it (one pass per target)."""
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
            since = index - np.maximum.accumulate(
                np.where(resets, index, -k)
            )  # windows since the segment began (k or more: all)
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
        """The raw scores the next chunk's smoothing continues from: the last ``smooth - 1`` of the current segment."""
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
        """Smoothed scores of the windows of ``X`` that lie inside one segment, and the mask of those windows."""
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
            by_name = {
                str(column): column for column in X.columns
            }  # fit named them as text: column 0 is '0'
            missing = [name for name in self.feature_names_in_ if name not in by_name]
            if missing:
                raise RareEventError(
                    f"X lacks the feature column(s) {', '.join(missing)} the detector was fitted on"
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
        rows = _as_rows(X, "X")
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
        """Whether ``fit`` was given named columns (a DataFrame), not an array (``x0``, ``x1``, ...)."""
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

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``detector.json`` and the weights into the new folder ``folder``, atomically.

        ``detector.json`` holds the parameters and the learned values as
        JSON; the weights file (``model.weights.h5``, or ``model.npz`` for
        ``pca``) holds numbers only. The folder appears whole or not at all.

        Parameters
        ----------
        folder : str or Path
            The folder to create.
        overwrite : bool, default=False
            Replace ``folder`` when it exists.

        Returns
        -------
        Path
            ``folder``.

        Raises
        ------
        RareEventError
            ``folder`` exists and ``overwrite`` is False, or it cannot be
            written (no permission, a full disk).
        sklearn.exceptions.NotFittedError
            Before ``fit``.

        """
        self._check_fitted()
        if Path(folder).exists() and not overwrite:
            raise RareEventError(
                f"{folder}: already exists", hint="pass overwrite=True to replace it"
            )
        with atomic_folder(folder, overwrite=overwrite) as temp:
            self.write_files(temp)
        return Path(folder)

    def write_files(self, folder: Path) -> None:
        """Write ``detector.json`` and the weights file into ``folder`` (a temporary folder being filled)."""
        self.model_.save(folder)
        config = {
            "format_version": DETECTOR_FORMAT,
            "rareevent_version": rareevent.__version__,
            "params": {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in self.get_params().items()
            },
            "fitted": {
                name: field.encode(getattr(self, name))
                for name, field in FITTED.items()
            },
        }
        (folder / DETECTOR_FILE).write_text(
            json.dumps(config, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: str | Path) -> Self:
        """The detector saved in ``folder``, ready to score.

        ``detector.json`` is checked field by field; the model is rebuilt
        from the architecture registry and given the saved weights, so no
        code is run from the folder. Scoring a loaded LSTM runs in numpy and
        imports neither TensorFlow nor Keras.

        Parameters
        ----------
        folder : str or Path
            A folder written by ``save`` (or a run folder of ``rareevent train``).

        Returns
        -------
        RareEventDetector
            The fitted detector.

        Raises
        ------
        RareEventError
            The folder holds no ``detector.json``, a field is missing or
            invalid, the format is newer than this rareevent reads, or the
            weights do not fit the model.
        """
        detector = cls.read_config(folder)
        detector.model_ = detector._load_model(Path(folder))
        return detector

    @classmethod
    def read_config(cls, folder: str | Path) -> Self:
        """The detector of ``folder`` without its model (``model_`` unset): for showing a run without importing Keras."""
        path = Path(folder) / DETECTOR_FILE
        if not path.is_file():
            raise RareEventError(
                f"{folder}: not a saved detector ({DETECTOR_FILE} missing)"
            )
        config = read_json(path)
        if not isinstance(config, dict) or not _is_int(config.get("format_version")):
            raise RareEventError(
                f"{path}: must hold a JSON object with an integer 'format_version'"
            )
        if config["format_version"] > DETECTOR_FORMAT:
            raise RareEventError(
                f"{path}: format version {config['format_version']} is newer than this rareevent understands ({DETECTOR_FORMAT})",
                hint="upgrade rareevent",
            )
        params, fitted = config.get("params"), config.get("fitted")
        old = (
            config["format_version"] < 2
        )  # 0.3.0's: results renamed since, parameters and units_ added since
        if old and isinstance(fitted, dict):
            fitted = {
                RENAMED_IN_FORMAT_2.get(key, key): value
                for key, value in fitted.items()
            }
        if old and isinstance(
            params, dict
        ):  # saved before these parameters existed: they had today's defaults
            params = {
                **{
                    key: value
                    for key, value in cls().get_params().items()
                    if key in ADDED_PARAMS
                },
                **params,
            }
        expected = set(cls().get_params())
        if not isinstance(params, dict) or set(params) != expected:
            raise RareEventError(
                f"{path}: 'params' must hold exactly the parameters {', '.join(sorted(expected))}"
            )
        settings: dict[str, Any] = {
            key: tuple(value) if key == "units" and isinstance(value, list) else value
            for key, value in params.items()
        }
        detector = cls(**settings)
        try:
            detector.check_params()
        except RareEventError as exc:
            raise RareEventError(f"{path}: {exc.message}", hint=exc.hint) from None
        if not isinstance(fitted, dict):
            raise RareEventError(f"{path}: field 'fitted' is missing or not an object")
        if (
            old and "units_" not in fitted and isinstance(detector.units, tuple)
        ):  # saved before units_ existed: the units given were used
            fitted = {**fitted, "units_": list(detector.units)}
        for name, field in FITTED.items():
            if name not in fitted:
                raise RareEventError(
                    f"{path}: required field 'fitted.{name}' is missing"
                )
            if not field.valid(fitted[name], fitted):
                raise RareEventError(
                    f"{path}: field 'fitted.{name}' has an invalid value {json.dumps(fitted[name])[:60]}"
                )
            setattr(detector, name, field.decode(fitted[name]))
        return detector

    def _load_model(self, folder: Path) -> ReconstructionModel:
        """The model rebuilt from the parameters, with the saved weights: numbers only are read from the folder."""
        return ARCHITECTURES[self.arch].model.load(folder, self._model_config())


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


def _combined(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window scores (the mean over targets) of per-target ``errors``, kept finite in place."""
    # a reading far outside the training range can overflow: keep scores finite (and JSON-safe)
    top = float(np.finfo(np.float32).max)
    np.nan_to_num(errors, copy=False, nan=top, posinf=top)
    return errors.mean(axis=1, dtype=np.float64).astype(np.float32), errors


def error_scales(feature_errors: np.ndarray) -> np.ndarray:
    """Typical error of each target on normal windows: the median, floored so that no sensor is divided by ~0.

    The floor is a thousandth of the median over all targets (or 1e-12):
    a sensor reconstructed perfectly in validation would otherwise turn
    rounding noise into alarms.
    """
    typical = np.median(feature_errors, axis=0).astype(np.float64)
    floor = max(float(np.median(typical)) * 1e-3, 1e-12)
    return np.maximum(typical, floor).astype(np.float32)


def require_bottleneck(arch: str) -> None:
    """Refuse to encode with a model that has no encoded vector."""
    if not ARCHITECTURES[arch].has_bottleneck:
        have = [name for name, spec in ARCHITECTURES.items() if spec.has_bottleneck]
        raise RareEventError(
            f"a {arch!r} run has no encoded vector: only {', '.join(repr(a) for a in have)} runs have a bottleneck",
            hint=f"train with `arch={have[0]}`",
        )


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; an unreadable or invalid file is an error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RareEventError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RareEventError(f"{path}: not valid JSON ({exc})") from None
    except (
        RecursionError
    ):  # json's decoder recurses once per level: '[' * 100000 exhausts the stack
        raise RareEventError(f"{path}: not valid JSON (nested too deeply)") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _is_batch_size(value: Any) -> bool:
    return _is_int(value) and 1 <= value <= MAX_BATCH_SIZE


def _is_float32(value: Any, positive: bool = False) -> bool:
    """A number that stays finite (and above 0 when ``positive``) as the float32 it is used as: 1e39 would be inf, 1e-50 zero."""
    return (
        _is_number(value)
        and abs(value) <= FLOAT32_MAX
        and (value >= FLOAT32_TINY or not positive)
    )


def _as_rows(X: Any, what: str) -> np.ndarray:
    """``X`` as a finite ``(n, F)`` float array."""
    if "scipy.sparse" in sys.modules and sys.modules["scipy.sparse"].issparse(X):
        # (a sparse matrix means scipy.sparse was imported: scoring does not import it)
        raise RareEventError(
            f"{what} is a sparse matrix: sparse input is not supported",
            hint="pass a dense array (`X.toarray()`)",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "error", np.exceptions.ComplexWarning
            )  # numpy would drop the imaginary part
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


def _column_names(X: pd.DataFrame) -> list[str]:
    """The column names of ``X`` as text (``feature_names_in_``); empty or repeated ones are refused, as ``load`` would refuse them."""
    names = [str(column) for column in X.columns]
    if "" in names:
        raise RareEventError(
            f"X has an empty column name (column {names.index('')}): name every column"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RareEventError(
            f"X has repeated column names {', '.join(map(repr, repeated))[:80]}: name every column once"
        )
    return names


def _row_starts(starts: np.ndarray | None, n: int) -> np.ndarray:
    """The ``starts`` mask of ``n`` rows: one segment when ``None``; rows past its end continue its last segment."""
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
            f"y: labels must be 0 or 1, got {labels[wrong][0].item()!r} at row {int(np.flatnonzero(wrong)[0])}"
        )
    return labels.astype(np.int8)


class _Field:
    """How one learned attribute is written to ``detector.json``, checked and read back."""

    def __init__(
        self,
        valid: Callable[[Any, dict[str, Any]], bool],
        encode: Callable[[Any], Any] = lambda v: v,
        decode: Callable[[Any], Any] = lambda v: v,
    ) -> None:
        self.valid, self.encode, self.decode = valid, encode, decode


def _n(fitted: dict[str, Any]) -> int:
    names = fitted.get("feature_names_in_")
    return len(names) if isinstance(names, list) else -1


def _indices(value: Any, fitted: dict[str, Any]) -> bool:
    return (
        isinstance(value, list)
        and all(_is_int(j) and 0 <= j < _n(fitted) for j in value)
        and len(set(value)) == len(value)
    )


def _numbers(value: Any, length: int, positive: bool = False) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(_is_number(x) and (x > 0 or not positive) for x in value)
    )


def _float32s_ok(value: Any, length: int, positive: bool = False) -> bool:
    """``_numbers`` for the values kept as float32 (``error_scale_``, ``validation_scores_``)."""
    return (
        isinstance(value, list)
        and len(value) == length
        and all(_is_float32(x, positive) for x in value)
    )


def _strategy_ok(value: Any) -> bool:
    try:
        return isinstance(value, str) and parse_strategy(value) is not None
    except RareEventError:
        return False


def _float32s(value: Any) -> list[float]:
    return np.asarray(value, np.float32).tolist()


# every learned attribute but model_ (the weights file): writing, checking and reading it back
FITTED: dict[str, _Field] = {
    "feature_names_in_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) >= 1
            and all(isinstance(x, str) and x for x in v)
            and len(set(v)) == len(v)
        ),
        encode=lambda names: [str(name) for name in names],
        decode=lambda v: np.asarray(v, dtype=object),  # as scikit-learn holds it
    ),
    "n_features_in_": _Field(lambda v, f: _is_int(v) and v == _n(f)),
    "context_features_": _Field(_indices),
    "target_features_": _Field(
        lambda v, f: (
            _indices(v, f)
            and len(v) >= 1
            and not set(v) & set(f.get("context_features_") or [])
        )
    ),
    "constant_features_": _Field(_indices),
    "trending_features_": _Field(_indices),
    "scaler_": _Field(
        lambda v, f: (
            isinstance(v, dict)
            and set(v) == {"mean", "scale"}
            and _numbers(v["mean"], _n(f))
            and _numbers(v["scale"], _n(f), positive=True)
            and scaling.plausible_scale(v["mean"], v["scale"])
        ),
        encode=lambda scaler: {
            "mean": scaler.mean_.tolist(),
            "scale": scaler.scale_.tolist(),
        },
        decode=lambda v: scaling.Standardization(v["mean"], v["scale"]),
    ),
    "error_scale_": _Field(
        lambda v, f: _float32s_ok(
            v, len(f.get("target_features_") or []), positive=True
        ),
        encode=_float32s,
        decode=lambda v: np.asarray(v, np.float32),
    ),
    "threshold_": _Field(
        lambda v, f: _is_number(v) and v >= 0, encode=float
    ),  # window scores are errors, never below 0
    "threshold_strategy_": _Field(lambda v, f: _strategy_ok(v)),
    "validation_scores_": _Field(
        lambda v, f: isinstance(v, list) and _float32s_ok(v, len(v)),
        encode=_float32s,
        decode=lambda v: np.asarray(v, np.float32),
    ),
    "validation_labels_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) == len(f.get("validation_scores_") or [])
            and all(x in (0, 1) and _is_int(x) for x in v)
        ),
        encode=lambda v: v.tolist(),
        decode=lambda v: np.asarray(v, np.int8),
    ),
    "n_train_windows_": _Field(lambda v, f: _is_int(v) and v >= 1),
    "units_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) == 2
            and all(_is_int(u) and 1 <= u <= MAX_UNITS for u in v)
        ),
        encode=list,
        decode=tuple,
    ),
    "batch_size_": _Field(lambda v, f: v is None or _is_batch_size(v)),
    "learning_rate_": _Field(lambda v, f: v is None or (_is_number(v) and 0 < v < 1)),
    "epochs_run_": _Field(lambda v, f: _is_int(v) and v >= 0),
    "best_epoch_": _Field(lambda v, f: _is_int(v) and v >= 0),
    "history_": _Field(
        lambda v, f: (
            isinstance(v, dict)
            and all(
                isinstance(k, str) and isinstance(x, list) and _numbers(x, len(x))
                for k, x in v.items()
            )
        )
    ),
    "train_seconds_": _Field(lambda v, f: _is_number(v) and v >= 0, encode=float),
}
