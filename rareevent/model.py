"""Stage 4: the two LSTM reconstruction models, built by one function.

``ae`` (LSTM autoencoder)::

    input (T, F)
    encoder_1  LSTM(u1, return_sequences=True)   -> (T, u1)
    encoder_2  LSTM(u2, return_sequences=False)  -> (u2,)     the encoded vector
    repeat     RepeatVector(T)                   -> (T, u2)
    decoder_1  LSTM(u2, return_sequences=True)   -> (T, u2)
    decoder_2  LSTM(u1, return_sequences=True)   -> (T, u1)
    output     TimeDistributed(Dense(F))         -> (T, F)

``plain`` is the same stack with ``return_sequences=True`` on every LSTM and
no ``RepeatVector``: each step keeps its own state, there is no bottleneck
vector, and the parameter count is identical.

``forecast`` predicts instead of reconstructing (the telemanom idea, for
many sensors). Its input is the same ``lookback``-row window, with the
target sensors of its last ``H`` rows (``H`` = horizon) hidden: set to 0,
the scaled mean (``hide_forecast_rows``). Context columns (setpoints) stay
visible on every row, so a setpoint step is known to the model on the row
it happens::

    input (T, F)
    encoder_1  LSTM(u1, return_sequences=True)   -> (T, u1)
    encoder_2  LSTM(u2, return_sequences=False)  -> (u2,)
    forecast   Dense(H * targets)                -> (H * targets,)
    output     Reshape((H, targets))             -> (H, targets)  the last H rows' targets

So the window that ends at row ``i`` is scored by how well the targets of
rows ``i-H+1 .. i`` were predicted from the rows before them (and the
context up to row ``i``): never from a row after ``i``, and from the
window's own rows only, so chunked and streamed scoring stay identical to
whole-file scoring.

``ARCHITECTURES`` is the one registry of them (with the ``pca`` baseline):
each entry names the class that implements ``ReconstructionModel`` for it
(``KerasModel`` around a builder, or ``PCAModel``), so the detector asks every
model the same things. Adding a Keras architecture means adding a builder and
an entry here; a model that is not Keras, a class and an entry. A saved
detector is rebuilt through it and then given its weights, so a run folder
holds numbers only, never a model description to deserialize.

The builders' layers are in ``rareevent.builders``, the training schedule
(batch size, learning rate, stopping) in ``rareevent.schedule``, and the
choice and import of Keras and its device in ``rareevent.backend``: this
module re-exports their names, and imports Keras only through
``import_keras``, on first use, so the CLI starts fast.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rareevent.backend import (
    cache_compilations as cache_compilations,
    compute_device as compute_device,
    configured_backend as configured_backend,
    deterministic_xla as deterministic_xla,
    import_keras as import_keras,
    on_accelerator as on_accelerator,
    pick_backend as pick_backend,
    planned_versions as planned_versions,
    versions as versions,
)
from rareevent.builders import (
    forecaster as forecaster,
    layer_table as layer_table,
    lstm_stack as lstm_stack,
)
from rareevent.errors import RareEventError
from rareevent.pca import PCA_VARIANCE, PCAModel
from rareevent.protocol import (
    MAX_SPAN,
    FitOptions,
    FitReport,
    ModelConfig,
    ReconstructionModel,
    TrainingData,
    check_model_size,
)
from rareevent.schedule import (
    GPU_MAX_BATCH as GPU_MAX_BATCH,
    auto_batch_size as auto_batch_size,
    auto_learning_rate as auto_learning_rate,
    batch_stop_callbacks as batch_stop_callbacks,
    learning_rate_schedule as learning_rate_schedule,
    stop_between_batches as stop_between_batches,
    whole_batches as whole_batches,
)

if TYPE_CHECKING:
    import keras

ACTIVATIONS = ("tanh", "relu")
UNROLL_MAX_LOOKBACK = 10
PREDICT_BATCH = 4096


AUTO_UNITS = "auto"
# an LSTM of 4096 units already holds 4 x 4096^2 = 67M weights per layer; more is a
# typo, not a model
MAX_UNITS = 4096


def check_model_options(
    arch: str,
    activation: str,
    units: tuple[int, ...] | str,
    lookback: int,
    horizon: int = 1,
) -> None:
    """Refuse an unknown architecture or activation, non-positive sizes, or a horizon
    the window cannot hold.

    ``units`` may be ``"auto"`` (sized from the training rows, see ``auto_units``).
    """
    if arch not in ARCHITECTURES:
        raise RareEventError(
            f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}",
            param="arch",
        )
    if activation not in ACTIVATIONS:
        raise RareEventError(
            f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}",
            param="activation",
        )
    if not (_is_count(horizon) and horizon >= 1):
        raise RareEventError(
            f"horizon must be at least 1, got {horizon}", param="horizon"
        )
    if horizon >= MAX_SPAN:
        raise RareEventError(
            f"horizon must be below {MAX_SPAN} (a forecast window spans at most {MAX_SPAN} "
            f"rows, and keeps one to forecast from), got {horizon}",
            param="horizon",
        )
    if ARCHITECTURES[arch].forecasts and _is_count(lookback) and lookback <= horizon:
        raise RareEventError(
            f"lookback {lookback} leaves no row to forecast from with horizon "
            f"{horizon}: a forecast window reads lookback - horizon rows",
            hint=f"use `lookback={horizon + 1}` or more",
            param="lookback",
        )
    if units == AUTO_UNITS:
        units = (1, 1)
    if not (
        isinstance(units, (tuple, list))
        and len(units) == 2
        and all(_is_count(u) and u >= 1 for u in units)
    ):
        shown = (
            ",".join(map(str, units))
            if isinstance(units, (tuple, list))
            else repr(units)
        )
        raise RareEventError(
            f"units must be two positive integers like 32,16, got {shown}",
            param="units",
        )
    if max(units) > MAX_UNITS:
        raise RareEventError(
            f"units must be at most {MAX_UNITS} each, got {','.join(map(str, units))}",
            param="units",
        )
    if not _is_count(lookback):
        raise RareEventError(
            f"lookback must be an integer, got {lookback!r}", param="lookback"
        )
    if lookback < 1:
        raise RareEventError(
            f"lookback must be at least 1, got {lookback}", param="lookback"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def build_model(
    arch: str,
    lookback: int,
    n_features: int,
    units: tuple[int, int] = (32, 16),
    activation: str = "tanh",
    unroll: bool | None = None,
    n_outputs: int | None = None,
    horizon: int = 1,
) -> keras.Model:
    """Build the Keras reconstruction model of a registered architecture (not compiled).

    The model reads all ``n_features`` columns and reconstructs ``n_outputs``
    values per step (default: all columns): the target sensors, whichever
    columns the detector chose (``target_features_``). The rest are context:
    setpoints and commands the model sees but is not judged on. A
    forecasting architecture predicts the last ``horizon`` rows of the
    window (``output_steps``); the others reconstruct all ``lookback`` rows.

    ``unroll`` (default: lookbacks up to ``UNROLL_MAX_LOOKBACK``) writes the
    T steps out instead of looping over them: the same weights and outputs,
    about 1.4x more training windows per second on CPU for short windows.
    The unrolled graph grows with T and so does its compile time (about 5 s
    more at T=20, which a 400-row file never earns back), hence the limit.
    The same holds on a GPU (0.26 s per epoch of 240,000 windows unrolled,
    0.97 s looped, on an H200).

    Keras' cuDNN LSTM is never used (``use_cudnn=False``): under JAX on an
    H200 it predicts what the graph does (outputs within 3e-5), but training
    through it went wrong: the sample data stopped at a validation loss of
    0.42 (JAX's CPU backend: 0.009), synthetic sensors at 0.26 where the
    unrolled graph on the same GPU reached 0.014, and it ran 2.7 to 3.8x
    slower per epoch (``benchmarks/gpu.py``).
    """
    if arch not in LSTM_ARCHS:
        raise ValueError(f"arch must be one of {LSTM_ARCHS}, got {arch!r}")
    if unroll is None:
        unroll = lookback <= UNROLL_MAX_LOOKBACK
    spec = ARCHITECTURES[arch]
    assert spec.build is not None
    extra = {"horizon": horizon} if spec.forecasts else {}
    return spec.build(
        lookback,
        n_features,
        tuple(units),
        activation,
        unroll,
        n_features if n_outputs is None else n_outputs,
        name=f"rareevent_{arch}",
        **extra,
    )


def parameter_count(config: ModelConfig) -> int:
    """The number of weights :func:`build_model` makes for ``config``, without building it.

    It follows the diagrams at the top of this module.
    """
    u1, u2 = config.units
    n_out = len(config.targets)

    def lstm(inputs: int, units: int) -> int:
        return 4 * units * (inputs + units + 1)

    encoder = lstm(config.n_inputs, u1) + lstm(u1, u2)
    if ARCHITECTURES[config.arch].forecasts:
        return encoder + (u2 + 1) * config.horizon * n_out
    return encoder + lstm(u2, u2) + lstm(u2, u1) + (u1 + 1) * n_out


def _check_weights_file(path: Path, config: ModelConfig) -> None:
    """Refuse a Keras model over the size limit before it is built or a weight is read.

    The model's size follows from ``config`` (4 bytes a weight); the arrays
    the ``.h5`` file declares are bounded the same way, and by the bytes it
    stores (its datasets may be compressed; rareevent never compresses them).
    """
    import h5py

    check_model_size(path, 4 * parameter_count(config))
    declared = []
    try:
        with h5py.File(path, "r") as fh:
            fh.visititems(
                lambda _, item: (
                    declared.append(item.size * item.dtype.itemsize)
                    if isinstance(item, h5py.Dataset)
                    else None
                )
            )
    except Exception as exc:  # h5py raises many types for a damaged file
        raise RareEventError(
            f"{path}: not the weights of this {config.arch!r} model ({type(exc).__name__})",
            hint="retrain the run",
        ) from None
    check_model_size(path, sum(declared), path.stat().st_size)


def output_steps(arch: str, lookback: int, horizon: int) -> int:
    """How many of a window's last rows the model's output stands for: ``horizon`` for a
    forecast, else all ``lookback``.
    """
    return horizon if ARCHITECTURES[arch].forecasts else lookback


def hide_forecast_rows(
    windows: np.ndarray, targets: list[int], horizon: int
) -> np.ndarray:
    """``windows`` (``(n, T, F)``, scaled) with the ``targets`` columns of the last
    ``horizon`` rows set to 0: what a forecast model reads.

    Changed in place: pass a copy when the windows are a view of the rows.
    """
    windows[:, -horizon:, targets] = 0.0
    return windows


def mask_sensors(
    windows: np.ndarray, targets: list[int], masked: np.ndarray
) -> np.ndarray:
    """``(n, T, F)`` windows as a masked model reads them: ``(n, T, F + len(targets))``,
    the ``masked`` targets hidden.

    ``masked`` (``(n, len(targets))`` booleans) says which target sensors of
    each window are hidden: their values set to 0 (the scaled mean) on every
    row, and their mask channel (one per target, appended) set to 1.
    """
    masked = np.asarray(masked, bool)
    out = np.concatenate(
        [
            windows,
            np.broadcast_to(
                masked[:, None, :], (len(windows), windows.shape[1], len(targets))
            ),
        ],
        axis=2,
    ).astype(np.float32)
    hidden = out[..., targets]
    hidden[np.broadcast_to(masked[:, None, :], hidden.shape)] = 0.0
    out[..., targets] = hidden
    return out


FORECAST_CONTEXT = 4  # rows a forecast reads before the rows it forecasts, by default


def default_lookback(arch: str, horizon: int = 1) -> int:
    """The lookback the CLI trains with unless told: 1 row, or room to forecast from.

    One row won the scorecard over the four benchmark datasets (the
    documentation's "How the defaults were chosen"); a forecasting
    architecture reads ``FORECAST_CONTEXT`` rows before its ``horizon``.
    """
    spec = ARCHITECTURES.get(arch)
    if spec is not None and spec.forecasts:
        return horizon + FORECAST_CONTEXT
    return 1


def auto_units(rows: np.ndarray, variance: float = PCA_VARIANCE) -> tuple[int, int]:
    """``--units auto``: a bottleneck of as many units as principal components hold
    ``variance`` of the (scaled) target rows, and a first layer twice that.

    An autoencoder at least as wide as the data's own dimension can learn to
    copy its input; one sized to that dimension has to learn how the
    sensors move together. Both sizes stay within 1 .. ``MAX_UNITS``.
    """
    rows = np.asarray(rows, np.float64)
    if len(rows) < 2 or not np.any(rows.std(axis=0) > 0):
        k = 1
    else:
        from sklearn.decomposition import PCA

        k = int(PCA(n_components=variance, svd_solver="full").fit(rows).n_components_)
    k = int(np.clip(k, 1, MAX_UNITS))
    return min(2 * k, MAX_UNITS), k


@dataclass(frozen=True)
class Architecture:
    """One entry of ``ARCHITECTURES``.

    ``model`` is the class that makes, fits, saves and loads it.
    ``build(lookback, n_features, units, activation, unroll, n_outputs, name=...)``
    returns the uncompiled Keras model of a ``KerasModel`` architecture
    (``None`` for the others). ``encoded_layer`` names the layer whose output
    is the encoded vector (``rareevent encode``); ``None``: no bottleneck.
    ``forecasts``: the model predicts the window's last ``horizon`` rows
    from the rows before them (``build`` then takes ``horizon=``).
    """

    help: str
    model: type[ReconstructionModel]
    build: Callable[..., Any] | None = None
    encoded_layer: str | None = None
    forecasts: bool = False

    @property
    def has_bottleneck(self) -> bool:
        return self.encoded_layer is not None

    @property
    def trained_by_epochs(self) -> bool:
        return self.model.trained_by_epochs

    @property
    def reads_masks(self) -> bool:
        """Whether a ``mask_rate`` above 0 gives the model mask channels (a forecast
        hides its own rows instead).
        """
        return self.model.reads_masks and not self.forecasts


def encoder(model: keras.Model, arch: str) -> keras.Model:
    """The sub-model from the input to the encoded vector (architectures with a bottleneck only)."""
    keras = import_keras()
    layer = ARCHITECTURES[arch].encoded_layer
    assert layer is not None
    return keras.Model(model.inputs, model.get_layer(layer).output, name="encoder")


class KerasModel:
    """A Keras model of a registered architecture (its ``build``), or the numpy forward
    of a saved one (``rareevent.forward``).

    ``net`` is the ``keras.Model``, or the ``forward.NumpyModel`` standing
    for it when a saved model is scored without TensorFlow (``numpy``).
    Fitting a numpy forward builds the Keras model and trains on from its
    weights (``rareevent update``).
    """

    file: ClassVar[str] = "model.weights.h5"  # the weights alone (no model description)
    trained_by_epochs: ClassVar[bool] = True
    reads_masks: ClassVar[bool] = True

    def __init__(
        self, config: ModelConfig, net: Any = None, numpy: bool = False
    ) -> None:
        self.config, self.net, self.numpy = config, net, numpy
        self._encoder: Any = None  # a cache of the encoder sub-model

    @classmethod
    def create(cls, config: ModelConfig) -> KerasModel:
        """A model without a network yet: ``fit`` builds it once the random seed is set,
        so that its initial weights follow the seed.
        """
        return cls(config)

    @staticmethod
    def _build(config: ModelConfig) -> Any:
        """Keras' model, or under ``forward.load`` the numpy forward's recording of it."""
        return build_model(
            config.arch,
            config.lookback,
            config.n_inputs,
            config.units,
            config.activation,
            n_outputs=len(config.targets),
            horizon=config.horizon,
        )

    @classmethod
    def load(cls, folder: Path, config: ModelConfig) -> KerasModel:
        """The model rebuilt from ``config``, with the saved weights: in numpy unless
        ``forward.use_numpy()`` says otherwise or a layer needs Keras.
        """
        from rareevent import forward

        path = folder / cls.file
        if not path.is_file():
            raise RareEventError(
                f"{path}: model weights file missing", hint="retrain the run"
            )
        _check_weights_file(path, config)
        if forward.use_numpy():
            try:
                return cls(
                    config,
                    forward.load(path, config.arch, partial(cls._build, config)),
                    numpy=True,
                )
            except forward.Unsupported:
                pass  # a layer the numpy forward does not run: Keras does
        net = cls._build(config)
        try:
            net.load_weights(path)
        except Exception as exc:
            # h5py and Keras raise many types for a damaged file or weights of other shapes
            raise RareEventError(
                f"{path}: not the weights of this {config.arch!r} model ({type(exc).__name__})",
                hint="retrain the run",
            ) from None
        # NaN weights would flag every window
        if not all(np.isfinite(weights).all() for weights in net.get_weights()):
            raise RareEventError(
                f"{path}: the model weights hold NaN or infinite values",
                hint="retrain the run",
            )
        return cls(config, net)

    def fit(self, data: TrainingData, options: FitOptions) -> FitReport:
        """Train with Adam on the MSE, stopping early on the validation loss and keeping
        the best weights.
        """
        keras = import_keras()
        keras.utils.set_random_seed(options.seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        accelerator = on_accelerator()
        batch_size = options.batch_size or auto_batch_size(len(data.train), accelerator)
        learning_rate = options.learning_rate or auto_learning_rate(batch_size)
        train = (
            whole_batches(data.train, batch_size, options.seed)
            if accelerator
            else data.train
        )
        if self.net is None or self.numpy:
            net = self._build(self.config)
            if self.numpy:
                # loaded for scoring, in numpy: Keras trains on from its weights
                net.set_weights(self.net.get_weights())
            self.net, self.numpy = net, False
        self.net.compile(
            optimizer=keras.optimizers.Adam(
                learning_rate_schedule(keras, learning_rate, batch_size, len(train))
            ),
            loss="mse",
        )
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=options.patience, restore_best_weights=True
            ),
        ]
        on_epoch = options.on_epoch
        if on_epoch is not None:
            callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda epoch, logs: on_epoch(epoch, dict(logs or {}))
                )
            )
        callbacks.extend(batch_stop_callbacks(keras))
        history = self.net.fit(
            data.inputs(train, options.seed),
            data.targets(train),
            validation_data=(
                data.inputs(data.valid, options.seed + 1),
                data.targets(data.valid),
            ),
            epochs=options.epochs,
            batch_size=batch_size,
            validation_batch_size=PREDICT_BATCH,  # no gradients: big batches are just faster
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        self._encoder = None
        losses = {
            key: [float(v) for v in values] for key, values in history.history.items()
        }
        if not np.all(np.isfinite(losses["loss"])):
            raise RareEventError(
                "training diverged: the loss became NaN or infinite",
                hint="use `activation=tanh` or fewer `units`",
            )
        return FitReport(losses, batch_size, learning_rate)

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        """The output for ``inputs``; in Keras padded to ``PREDICT_BATCH`` windows.

        One input shape means one traced graph: a second shape (the last,
        partial batch of a file) costs about 0.2 s of tracing, more than
        predicting the padding. The numpy forward has no graph to trace.
        """
        padded = inputs
        if not self.numpy and len(inputs) < PREDICT_BATCH:
            padded = np.zeros((PREDICT_BATCH, *inputs.shape[1:]), np.float32)
            padded[: len(inputs)] = inputs
        return np.asarray(self.net.predict_on_batch(padded))[: len(inputs)]

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        layer = ARCHITECTURES[self.config.arch].encoded_layer
        if self.numpy:
            return np.asarray(
                self.net.predict(inputs, batch_size=PREDICT_BATCH, output=layer)
            )
        if self._encoder is None:
            self._encoder = encoder(self.net, self.config.arch)
        return np.asarray(
            self._encoder.predict(inputs, batch_size=PREDICT_BATCH, verbose=0)
        )

    def count_params(self) -> int:
        return int(self.net.count_params())

    def save(self, folder: Path) -> None:
        (folder / self.file).write_bytes(_weights_h5(self.net))


class _WeightsBuffer(io.BytesIO):
    """An in-memory file that Keras's ``save_weights`` takes for ``model.weights.h5``
    (it checks the name's ending).
    """

    def __str__(self) -> str:
        return KerasModel.file


def _weights_h5(model: Any) -> bytes:
    """The ``.weights.h5`` bytes of a Keras model, built in memory.

    h5py writing straight to a full disk (or past a file-size limit) fails
    at close, prints tracebacks while its objects are freed and can end the
    process with a segmentation fault; written by Python from memory the
    file meets a plain ``OSError`` (ENOSPC, EFBIG) that is reported as
    "cannot write here".
    """
    buffer = _WeightsBuffer()
    model.save_weights(buffer)
    return buffer.getvalue()


ARCHITECTURES: dict[str, Architecture] = {
    "ae": Architecture(
        "LSTM autoencoder",
        KerasModel,
        partial(lstm_stack, bottleneck=True),
        encoded_layer="encoder_2",
    ),
    "plain": Architecture(
        "LSTM, no bottleneck", KerasModel, partial(lstm_stack, bottleneck=False)
    ),
    "forecast": Architecture(
        "LSTM forecasting the targets' next rows",
        KerasModel,
        forecaster,
        forecasts=True,
    ),
    "pca": Architecture("the PCA reconstruction baseline", PCAModel),
}
"""The architecture registry: ``arch`` name -> its help line, model class and builder.

``train --arch``, ``encode``, ``report`` and loading a saved detector all
follow from it: a saved run is rebuilt from its entry and given the saved
weights. A new Keras architecture is a builder and an entry; a model that is
not Keras, a ``ReconstructionModel`` class and an entry.
"""
ARCHS = tuple(ARCHITECTURES)
LSTM_ARCHS = tuple(
    name for name, spec in ARCHITECTURES.items() if spec.build is not None
)
