"""The estimator: scaler + reconstruction model + threshold, fit together, and its saved artifact.

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

``Detector`` is one mixin per job, each in a module of its own: the
parameters and their checks (``rareevent.detector_params``), the model's
input and reconstruction errors (``rareevent.reconstruction``), scoring
(``rareevent.window_scores``), fitting (``rareevent.fitting``), and saving
and loading ``detector.json`` (``rareevent.detector_file``). The names that
other code imports from here are re-exported.
"""

from __future__ import annotations

from typing import Any

from rareevent.detector_file import (
    ADDED_PARAMS as ADDED_PARAMS,
    DETECTOR_FILE as DETECTOR_FILE,
    DETECTOR_FORMAT as DETECTOR_FORMAT,
    FITTED as FITTED,
    FLOAT32_MAX as FLOAT32_MAX,
    FLOAT32_TINY as FLOAT32_TINY,
    PCA_FILE as PCA_FILE,
    RENAMED_IN_FORMAT_2 as RENAMED_IN_FORMAT_2,
    WEIGHTS_FILE as WEIGHTS_FILE,
    DetectorFile,
    read_json as read_json,
)
from rareevent.detector_params import (
    CONTEXT_RULES as CONTEXT_RULES,
    MAX_BATCH_SIZE as MAX_BATCH_SIZE,
    MAX_MARGIN as MAX_MARGIN,
    MAX_SEED as MAX_SEED,
    MAX_VALIDATION_FRACTION as MAX_VALIDATION_FRACTION,
    SCORE_KINDS as SCORE_KINDS,
)
from rareevent.fitting import (
    ROW_RESULTS as ROW_RESULTS,
    Fitting,
    error_scales as error_scales,
)
from rareevent.model import (
    PREDICT_BATCH as PREDICT_BATCH,
    stop_between_batches as stop_between_batches,
)
from rareevent.progress import EpochCallback as EpochCallback
from rareevent.protocol import MAX_SPAN as MAX_SPAN
from rareevent.reconstruction import window_errors as window_errors
from rareevent.window_scores import require_bottleneck as require_bottleneck


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


class Detector(Fitting, DetectorFile):
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
