"""The estimator: scaler + LSTM reconstruction model + threshold, fit together.

``RareEventDetector`` follows scikit-learn's habits: parameters in
``__init__``, everything learned in attributes ending in ``_``
(``scaler_``, ``model_``, ``threshold_``, ``decision_scores_`` and
``labels_`` of the validation windows, ``history_``), and ``fit`` /
``score_windows`` / ``predict``. It works on arrays that ``load`` has already
checked; reading files and writing run folders live elsewhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator

from rareevent import scaling, windows
from rareevent.errors import RareEventError
from rareevent.model import PCAModel, build_model, check_model_options, encoder, import_keras, on_accelerator
from rareevent.threshold import check_labels, choose_threshold, parse_strategy

SCORE_KINDS = ("mean", "last")
CONTEXT_RULES = ("auto", "none")
PREDICT_BATCH = 4096
GPU_MAX_BATCH = 2048  # the largest auto batch on a GPU: it reached batch 128's validation loss (benchmarks/gpu.py)
MAX_SPAN = 100_000  # the most rows --lookback, --lead and --smooth may span; run.json is checked against the same bounds
MAX_MARGIN = 1000.0
MAX_SEED = 2**32 - 1  # numpy's seeds

if TYPE_CHECKING:
    import keras

EpochCallback = Callable[[int, dict[str, float]], None]


class RareEventDetector(BaseEstimator):
    """Detect rare events as windows a model of normal behaviour cannot reconstruct.

    Parameters are plain values so that a detector can be rebuilt from
    ``run.json``; see the README for how each default was chosen.
    ``warm_start`` (scikit-learn's sense) makes ``fit`` continue training the
    weights of ``model_`` instead of building a fresh model (``rareevent update``).
    """

    def __init__(
        self,
        arch: str = "ae",
        lookback: int = 5,
        units: tuple[int, int] = (32, 16),
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
        warm_start: bool = False,
    ) -> None:
        self.arch = arch
        self.lookback = lookback
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
        self.warm_start = warm_start

    def check_params(self) -> None:
        """Refuse bad parameters before any data is read or any model built."""
        check_model_options(self.arch, self.activation, self.units, self.lookback)
        checks = [
            (self.score_kind in SCORE_KINDS, f"--score must be one of {', '.join(SCORE_KINDS)}, got {self.score_kind!r}"),
            (self.lookback <= MAX_SPAN, f"--lookback must be at most {MAX_SPAN}, got {self.lookback}"),
            (1 <= self.smooth <= MAX_SPAN, f"--smooth must be between 1 and {MAX_SPAN}, got {self.smooth}"),
            (0 < self.margin <= MAX_MARGIN, f"--margin must be above 0 and at most {MAX_MARGIN:g}, got {self.margin:g}"),
            (0 <= self.lead <= MAX_SPAN, f"--lead must be between 0 and {MAX_SPAN}, got {self.lead}"),
            (0 <= self.seed <= MAX_SEED, f"--seed must be between 0 and {MAX_SEED}, got {self.seed}"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.patience >= 0, f"--patience must be 0 or more, got {self.patience}"),
            (self.batch_size is None or self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.learning_rate is None or 0 < self.learning_rate < 1, f"--learning-rate must be in (0, 1), got {self.learning_rate}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RareEventError(message)
        if self.threshold is not None:
            parse_strategy(self.threshold)
        if isinstance(self.context, str) and self.context not in CONTEXT_RULES:
            raise RareEventError(f"context must be one of {', '.join(CONTEXT_RULES)} or a list of column indices, got {self.context!r}")

    def fit(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray | None,
        X_valid: np.ndarray,
        y_valid: np.ndarray | None,
        on_epoch: EpochCallback | None = None,
        starts_train: np.ndarray | None = None,
        starts_valid: np.ndarray | None = None,
    ) -> RareEventDetector:
        """Fit on the normal windows of the train rows; pick the threshold on the valid rows.

        ``y_*`` are per-row 0/1 labels or ``None``; each may run up to
        ``lead`` rows past the end of its ``X_*`` (the labels of the rows
        that follow), so that windows near a part's end see an event that
        starts just after it. Early stopping watches the loss of the clean
        validation windows and restores the best weights. ``starts_*`` (per
        row: True where a segment begins, see ``windows``) keep every window
        inside one segment: windows across a gap are neither trained on nor
        scored, and ``decision_scores_`` holds the kept validation windows only.
        """
        self.check_params()
        strategy = parse_strategy(self.threshold or ("f1" if y_valid is not None else "pot"))
        if strategy.needs_labels and y_valid is None:
            raise RareEventError(f"--threshold {strategy} needs a label column", hint="use --threshold pot (or quantile) for data without labels")
        T = self.lookback
        for part, X in (("train", X_train), ("validation", X_valid)):
            if len(X) < T:
                raise RareEventError(
                    f"the {part} part has {len(X)} rows, fewer than one window of lookback {T}",
                    hint="use a longer file, a smaller --lookback or other --valid-frac/--test-frac",
                )
        y_train = np.zeros(len(X_train), np.int8) if y_train is None else np.asarray(y_train, np.int8)
        normal_rows = np.flatnonzero(y_train[: len(X_train)] == 0)
        normal = X_train[normal_rows] if normal_rows.size else X_train
        discrete = scaling.discrete_columns(normal)
        self.context_features_ = self._context_columns(normal, discrete)
        self.target_features_ = [j for j in range(X_train.shape[1]) if j not in set(self.context_features_)]
        self.scaler_ = scaling.fit_scaler(normal, discrete=discrete)
        self.constant_features_ = scaling.constant_columns(self.scaler_).tolist()
        trending = scaling.trending_columns(normal, positions=normal_rows if normal_rows.size else None)
        self.trending_features_ = [int(i) for i in trending if i in self.target_features_ and i not in self.constant_features_]
        starts_train = windows.one_segment(len(X_train)) if starts_train is None else starts_train
        starts_valid = windows.one_segment(len(X_valid)) if starts_valid is None else starts_valid
        train_clean = windows.clean_windows(y_train, T, self.lead)[: windows.n_windows(len(X_train), T)] & windows.inside_segments(starts_train, T)
        valid_rows = np.zeros(len(X_valid), np.int8) if y_valid is None else np.asarray(y_valid, np.int8)
        valid_keep = windows.inside_segments(starts_valid, T)
        valid_clean = windows.clean_windows(valid_rows, T, self.lead)[: windows.n_windows(len(X_valid), T)][valid_keep]
        if not train_clean.any():
            raise RareEventError("the train part has no window free of events to learn normal behaviour from")
        if not valid_clean.any():
            raise RareEventError("the validation part has no window free of events", hint="raise --valid-frac")
        labels = None if y_valid is None else windows.window_labels(valid_rows, T, self.lead)[: len(valid_keep)][valid_keep]
        check_labels(strategy, labels)  # before training, not after it
        train_windows = windows.sliding_windows(scaling.transform(self.scaler_, X_train), T)[train_clean]
        valid_all = windows.kept(windows.sliding_windows(scaling.transform(self.scaler_, X_valid), T), valid_keep)
        self.model_ = self._train(np.ascontiguousarray(train_windows), np.ascontiguousarray(valid_all[valid_clean]), on_epoch)
        self.n_train_windows_ = int(len(train_windows))
        self.error_scale_ = np.ones(len(self.target_features_), np.float32)
        raw, errors = self._reconstruction_errors(valid_all)
        if self.normalize:  # the scales come from the same predictions: the validation windows are reconstructed once
            self.error_scale_ = error_scales(errors[valid_clean])
            raw, errors = _combined(errors / self.error_scale_)
        scores = self.smooth_scores(raw, resets=windows.window_resets(starts_valid, T)[valid_keep])
        self.threshold_strategy_ = str(strategy)
        self.threshold_ = self.margin * choose_threshold(strategy, scores, labels, valid_clean)
        if not math.isfinite(self.threshold_):
            raise RareEventError("training diverged: the validation errors are not finite", hint="use --activation tanh or fewer --units")
        self.decision_scores_ = scores
        self.labels_ = (scores >= self.threshold_).astype(np.int8)
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
            raise RareEventError(f"context column indices must be in 0..{n - 1}, got {chosen}")
        if len(chosen) == n:
            raise RareEventError("every column is context: at least one column must be left to score")
        return chosen

    def _train(self, train: np.ndarray, valid: np.ndarray, on_epoch: EpochCallback | None) -> keras.Model | PCAModel:
        targets = self.target_features_
        started = time.perf_counter()
        if self.arch == "pca":
            model = PCAModel.fit(train.reshape(-1, train.shape[2]), targets)
            self.train_seconds_ = time.perf_counter() - started
            self.batch_size_, self.learning_rate_, self.epochs_run_, self.best_epoch_ = None, None, 0, 0
            loss = float(np.square(self._targets_of(valid) - model.predict_on_batch(valid)).mean())
            self.history_ = {"loss": [], "val_loss": [loss]}
            return model
        keras = import_keras()
        keras.utils.set_random_seed(self.seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        accelerator = on_accelerator()
        self.batch_size_ = self.batch_size or auto_batch_size(len(train), accelerator)
        self.learning_rate_ = self.learning_rate or auto_learning_rate(self.batch_size_)
        if accelerator:
            train = whole_batches(train, self.batch_size_, self.seed)
        if self.warm_start and hasattr(self, "model_"):
            model = self.model_
        else:
            model = build_model(self.arch, self.lookback, train.shape[2], tuple(self.units), self.activation, n_outputs=len(targets))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(keras, self.learning_rate_, self.batch_size_, len(train))), loss="mse")
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True),
        ]
        if on_epoch is not None:
            callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch, dict(logs or {}))))
        history = model.fit(
            train,
            self._targets_of(train),
            validation_data=(valid, self._targets_of(valid)),
            epochs=self.epochs,
            batch_size=self.batch_size_,
            validation_batch_size=PREDICT_BATCH,  # no gradients: big batches are just faster
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        self.train_seconds_ = time.perf_counter() - started
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        if not np.all(np.isfinite(self.history_["loss"])):
            raise RareEventError("training diverged: the loss became NaN or infinite", hint="use --activation tanh or fewer --units")
        self.epochs_run_ = len(self.history_["loss"])
        self.best_epoch_ = int(np.argmin(self.history_["val_loss"])) + 1
        return model

    def _reconstruction_errors(self, scaled_windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window scores and the per-target errors they are the mean of.

        Each target sensor's squared error is divided by ``error_scale_``:
        1 unless ``normalize``, else its typical error on normal validation
        windows, so that a sensor the model reconstructs poorly even in
        normal operation cannot take over the score.
        """
        targets = self.target_features_
        errors = np.empty((len(scaled_windows), len(targets)), np.float32)
        for start in range(0, len(scaled_windows), PREDICT_BATCH):  # one step per batch of windows
            batch = np.ascontiguousarray(scaled_windows[start : start + PREDICT_BATCH])
            squared = np.square(self._targets_of(batch) - self._predict(batch))
            errors[start : start + len(batch)] = squared[:, -1, :] if self.score_kind == "last" else squared.mean(axis=1)
        errors /= self.error_scale_
        return _combined(errors)

    def _targets_of(self, scaled_windows: np.ndarray) -> np.ndarray:
        """The target columns of windows (the windows themselves, uncopied, when nothing is context)."""
        if len(self.target_features_) == scaled_windows.shape[2]:
            return scaled_windows
        return np.ascontiguousarray(scaled_windows[..., self.target_features_])

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        """Reconstruct one batch, padded to ``PREDICT_BATCH`` windows.

        One input shape means one traced graph: a second shape (the last,
        partial batch of a file) costs about 0.2 s of tracing, more than
        predicting the padding.
        """
        if self.arch == "pca":
            return self.model_.predict_on_batch(batch)
        padded = np.zeros((PREDICT_BATCH, *batch.shape[1:]), np.float32)
        padded[: len(batch)] = batch
        return np.asarray(self.model_.predict_on_batch(padded))[: len(batch)]

    def score_windows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of all windows of the ``(n, F)`` rows ``X``, and per-feature errors."""
        return self._reconstruction_errors(windows.sliding_windows(scaling.transform(self.scaler_, X), self.lookback))

    def smooth_scores(self, raw: np.ndarray, previous: np.ndarray | None = None, resets: np.ndarray | None = None) -> np.ndarray:
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
        before = np.full(k - 1, np.nan) if previous is None else np.concatenate([np.full(k - 1, np.nan), previous])[-(k - 1) :]
        series = np.concatenate([before, np.asarray(raw, dtype=np.float64)])
        view = sliding_window_view(series, k)
        if resets is not None and np.any(resets):
            index = np.arange(len(raw))
            since = index - np.maximum.accumulate(np.where(resets, index, -k))  # windows since the segment began (k or more: all)
            view = np.where(np.arange(k) >= (k - 1 - np.minimum(since, k - 1))[:, None], view, np.nan)
        return np.nanmean(view, axis=1).astype(np.float32)

    def carry_scores(self, previous: np.ndarray | None, raw: np.ndarray, resets: np.ndarray | None = None) -> np.ndarray | None:
        """The raw scores the next chunk's smoothing continues from: the last ``smooth - 1`` of the current segment."""
        if self.smooth <= 1:
            return None
        if resets is not None and np.any(resets):
            previous, raw = None, raw[int(np.flatnonzero(resets)[-1]) :]
        return np.concatenate([previous, raw] if previous is not None else [raw])[-(self.smooth - 1) :]

    def score_segments(self, X: np.ndarray, starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed scores of the windows of ``X`` that lie inside one segment, and the mask of those windows."""
        starts = windows.one_segment(len(X)) if starts is None else starts
        keep = windows.inside_segments(starts, self.lookback)
        raw = self._reconstruction_errors(windows.kept(windows.sliding_windows(scaling.transform(self.scaler_, X), self.lookback), keep))[0]
        return self.smooth_scores(raw, resets=windows.window_resets(starts, self.lookback)[keep]), keep

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 flag of every window of ``X``: smoothed score at or above ``threshold_``."""
        return (self.smooth_scores(self.score_windows(X)[0]) >= self.threshold_).astype(np.int8)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """The encoded vector (length ``units[1]``) of every window; ``ae`` only."""
        require_bottleneck(self.arch)
        scaled = windows.sliding_windows(scaling.transform(self.scaler_, X), self.lookback)
        if getattr(self, "encoder_", None) is None:
            self.encoder_ = encoder(self.model_)
        return self.encoder_.predict(np.ascontiguousarray(scaled), batch_size=PREDICT_BATCH, verbose=0)


def auto_batch_size(n_windows: int, accelerator: bool = False) -> int:
    """About 100 training steps per epoch: ``n/100`` rounded to a power of two, within 16..128 (CPU) or 16..GPU_MAX_BATCH.

    Large data trains faster per window with bigger batches; a few hundred
    windows (a short file) would get only one or two steps per epoch with a
    fixed large batch and stop undertrained. On the CPU a batch beyond 128
    gains little speed; a GPU only fills up with thousands of windows per
    step (``benchmarks/gpu.py``), so there the cap is higher. Below 12,800
    windows both rules give the same batch.
    """
    return int(np.clip(2 ** round(np.log2(max(n_windows, 1) / 100)), 16, GPU_MAX_BATCH if accelerator else 128))


def auto_learning_rate(batch_size: int) -> float:
    """Adam's step grown with the square root of the batch: 1e-3 at 16, about 2.8e-3 at 128.

    Bigger batches average more windows per step, so a larger step is safe;
    with a fixed 1e-3 they need more epochs to reach the same loss
    (measured in ``benchmarks/speed.py``).
    """
    return 1e-3 * float(np.sqrt(max(batch_size, 16) / 16))


def learning_rate_schedule(keras: ModuleType, rate: float, batch_size: int, n_windows: int) -> float | Any:
    """``rate``, reached by a linear warm-up over the first epoch when the batch is beyond the CPU's 128.

    Adam's first steps at the large rate a large batch allows can throw the
    LSTMs' weights far off; ramping up over one epoch avoids that. Small
    batches keep the constant rate they always had.
    """
    if batch_size <= 128:
        return rate
    steps = max(1, n_windows // batch_size)
    # a cosine decay with alpha=1 never decays: after the warm-up the rate stays at warmup_target
    return keras.optimizers.schedules.CosineDecay(rate / 10, decay_steps=1, alpha=1.0, warmup_target=rate, warmup_steps=steps)


def whole_batches(train: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """``train`` plus randomly drawn repeats of its windows, up to a whole number of batches.

    On a GPU each new input shape is a new XLA compilation: the last,
    partial batch of an epoch costs as much compile time as all the others.
    Repeating a few windows (fewer than one batch) gives every step the
    same shape.
    """
    short = -len(train) % batch_size
    if short == 0:
        return train
    extra = np.random.default_rng(seed).choice(len(train), size=short, replace=len(train) < short)
    return np.concatenate([train, train[extra]])


def _combined(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window scores (the mean over targets) of per-target ``errors``, kept finite in place."""
    # a reading far outside the training range can overflow: keep scores finite (and JSON-safe)
    np.nan_to_num(errors, copy=False, nan=np.finfo(np.float32).max, posinf=np.finfo(np.float32).max)
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
    if arch != "ae":
        raise RareEventError(f"a {arch!r} run has no encoded vector: only 'ae' runs have a bottleneck", hint="train with --arch ae")
