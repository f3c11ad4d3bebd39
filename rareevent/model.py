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
    output     Reshape((H, targets))             -> (H, targets)  the targets of the window's last H rows

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

This is the only module that imports Keras, and it does so on first use, so
the CLI starts fast.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

import rareevent
from rareevent.backend import configured_backend, stand_in
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

if TYPE_CHECKING:
    import keras

ACTIVATIONS = ("tanh", "relu")
UNROLL_MAX_LOOKBACK = 10
PREDICT_BATCH = 4096
GPU_MAX_BATCH = 2048  # the largest auto batch on a GPU: it reached batch 128's validation loss (benchmarks/gpu.py)


def pick_backend(
    configured: str | None,
    tensorflow_installed: bool,
    jax_installed: bool,
    jax_has_gpu: Callable[[], bool],
) -> str | None:
    """The Keras backend rareevent sets before Keras loads, or None to leave Keras' own choice.

    A backend the user configured always wins. Otherwise JAX is chosen when
    it can see a GPU, or when TensorFlow is not installed at all: a GPU
    machine often has JAX with CUDA and no CUDA build of TensorFlow, and the
    ``gpu`` extra installs exactly that. ``jax_has_gpu`` is only called when
    the answer depends on it, since importing JAX takes about a second.
    """
    if configured or not jax_installed:
        return None
    if not tensorflow_installed or jax_has_gpu():
        return "jax"
    return None


def deterministic_xla() -> None:
    """Ask XLA for deterministic GPU kernels (before JAX starts), unless ``XLA_FLAGS`` already says otherwise.

    Without it, two trainings with the same seed on the same GPU gave
    thresholds 1.42068 and 1.41947 on the sample data; with it, identical
    ones. On the CPU the flag changes nothing.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()


def _jax_has_gpu() -> bool:
    import jax

    try:
        return any(device.platform == "gpu" for device in jax.devices())
    except RuntimeError:  # no backend could start
        return False


def import_keras() -> ModuleType:
    """Import Keras quietly, on the backend ``pick_backend`` chooses (or ``building_with``'s stand-in).

    TensorFlow's C++ start-up lines (absl, oneDNN notices) ignore
    ``TF_CPP_MIN_LOG_LEVEL``, so stderr is pointed at /dev/null while the
    backend loads; Python errors are still raised normally.
    """
    if stand_in() is not None:
        return stand_in()
    if "keras" in sys.modules:
        return sys.modules["keras"]
    installed = importlib.util.find_spec
    if installed("jax") is not None:
        deterministic_xla()
    backend = pick_backend(
        configured_backend(),
        installed("tensorflow") is not None,
        installed("jax") is not None,
        _jax_has_gpu,
    )
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if keras.backend.backend() == "jax":
        cache_compilations()
    return keras


def cache_compilations() -> None:
    """Keep JAX's compiled programs on disk, so that a later process with the same shapes skips XLA.

    Each ``train`` and ``score`` is a fresh process that compiles the same
    few programs. With the cache, the first training step on JAX's CPU
    backend took 4 to 6 s instead of 20 to 30 s here, and the first
    prediction 0.5 s instead of 4 s; what is left is tracing. The folder is
    ``$XDG_CACHE_HOME/rareevent/xla`` (``~/.cache/...``); JAX's own
    ``JAX_COMPILATION_CACHE_DIR`` moves it and ``JAX_ENABLE_COMPILATION_CACHE=false``
    turns it off.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import jax

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    jax.config.update("jax_compilation_cache_dir", str(base / "rareevent" / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@functools.cache
def compute_device() -> str:
    """Where Keras runs models: ``cpu``, or ``gpu: <name>`` for the first accelerator the backend sees."""
    backend = import_keras().backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return (
            "cpu"
            if device.platform == "cpu"
            else f"{device.platform}: {device.device_kind}"
        )
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return (
            f"gpu: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)}"
            if gpus
            else "cpu"
        )
    if backend == "torch":
        import torch

        return (
            f"gpu: {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else "cpu"
        )
    return "cpu"


def on_accelerator() -> bool:
    """Whether models run on a GPU (or another accelerator) rather than the CPU."""
    return compute_device() != "cpu"


def versions() -> dict[str, str | None]:
    """rareevent's, Keras's and the Keras backend's versions, and the device (``tensorflow``: None under another backend)."""
    keras = import_keras()
    backend = keras.backend.backend()
    backend_version = getattr(sys.modules.get(backend), "__version__", None)
    return {
        "rareevent": rareevent.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "tensorflow": backend_version if backend == "tensorflow" else None,
        "device": compute_device(),
    }


def planned_versions() -> str:
    """What ``versions()`` would say, found without importing Keras or a backend (``rareevent --version``).

    The backend is ``pick_backend``'s choice; when it depends on whether JAX
    sees a GPU, which only importing JAX tells, both answers are named.
    Saved models are scored in numpy unless ``RAREEVENT_FORWARD`` or a
    chosen backend says otherwise (``rareevent.forward``).
    """
    from importlib import metadata

    from rareevent.forward import use_numpy

    def version(module: str) -> str:
        for dist in metadata.packages_distributions().get(module, []):
            return metadata.version(dist)
        return "(not installed)"

    def found(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    configured = configured_backend()
    choice = [
        pick_backend(configured, found("tensorflow"), found("jax"), partial(bool, gpu))
        or configured
        or "tensorflow"
        for gpu in (False, True)
    ]
    backend = f"{choice[0]} {version(choice[0])}" + (
        f" ({choice[1]} on a GPU)" if choice[1] != choice[0] else ""
    )
    return f"rareevent {rareevent.__version__}, keras {version('keras')}, backend {backend}, scoring {'numpy' if use_numpy() else 'keras'}"


AUTO_UNITS = "auto"
MAX_UNITS = 4096  # an LSTM of 4096 units already holds 4 x 4096^2 = 67M weights per layer; more is a typo, not a model


def check_model_options(
    arch: str,
    activation: str,
    units: tuple[int, ...] | str,
    lookback: int,
    horizon: int = 1,
) -> None:
    """Refuse an unknown architecture or activation, non-positive sizes, or a horizon the window cannot hold.

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
            f"lookback {lookback} leaves no row to forecast from with horizon {horizon}: a forecast window reads lookback - horizon rows",
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
    more at T=20, which a 400-row file never earns back), hence the limit. The same holds on a GPU (0.26 s per epoch of
    240,000 windows unrolled, 0.97 s looped, on an H200).

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
    """How many of a window's last rows the model's output stands for: ``horizon`` for a forecast, else all ``lookback``."""
    return horizon if ARCHITECTURES[arch].forecasts else lookback


def hide_forecast_rows(
    windows: np.ndarray, targets: list[int], horizon: int
) -> np.ndarray:
    """``windows`` (``(n, T, F)``, scaled) with the ``targets`` columns of the last ``horizon`` rows set to 0: what a forecast model reads.

    Changed in place: pass a copy when the windows are a view of the rows.
    """
    windows[:, -horizon:, targets] = 0.0
    return windows


def mask_sensors(
    windows: np.ndarray, targets: list[int], masked: np.ndarray
) -> np.ndarray:
    """``(n, T, F)`` windows as a masked model reads them: ``(n, T, F + len(targets))``, the ``masked`` targets hidden.

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
    """``--units auto``: a bottleneck of as many units as principal components hold ``variance`` of the (scaled) target rows, and a first layer twice that.

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


def _lstm(
    keras: ModuleType,
    n: int,
    name: str,
    sequences: bool = True,
    *,
    activation: str,
    unroll: bool,
) -> keras.layers.LSTM:
    return keras.layers.LSTM(
        n,
        activation=activation,
        return_sequences=sequences,
        unroll=unroll,
        use_cudnn=False,
        name=name,
    )


def _encoder(
    keras: ModuleType,
    lookback: int,
    n_features: int,
    units: tuple[int, int],
    lstm: Callable[..., Any],
    sequences: bool,
) -> tuple[Any, Any]:
    """The window input and the two encoding LSTMs that every LSTM architecture begins with: (input, encoded); ``sequences``: the second LSTM keeps every step."""
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    x = lstm(units[0], "encoder_1")(inputs)
    return inputs, lstm(units[1], "encoder_2", sequences=sequences)(x)


def _lstm_stack(
    lookback: int,
    n_features: int,
    units: tuple[int, int],
    activation: str,
    unroll: bool,
    n_outputs: int,
    name: str,
    bottleneck: bool,
) -> keras.Model:
    """The four-LSTM stack of ``ae`` (``bottleneck``: one encoded vector, repeated) and ``plain``."""
    keras = import_keras()
    layers = keras.layers
    u1, u2 = units
    lstm = partial(_lstm, keras, activation=activation, unroll=unroll)
    inputs, x = _encoder(
        keras, lookback, n_features, units, lstm, sequences=not bottleneck
    )
    if bottleneck:
        x = layers.RepeatVector(lookback, name="repeat")(x)
    x = lstm(u2, "decoder_1")(x)
    x = lstm(u1, "decoder_2")(x)
    outputs = layers.TimeDistributed(layers.Dense(n_outputs), name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def _forecaster(
    lookback: int,
    n_features: int,
    units: tuple[int, int],
    activation: str,
    unroll: bool,
    n_outputs: int,
    name: str,
    horizon: int,
) -> keras.Model:
    """``forecast``: two LSTMs read the window (its last ``horizon`` rows' targets hidden); a Dense layer predicts those targets."""
    keras = import_keras()
    layers = keras.layers
    inputs, x = _encoder(
        keras,
        lookback,
        n_features,
        units,
        partial(_lstm, keras, activation=activation, unroll=unroll),
        sequences=False,
    )
    x = layers.Dense(horizon * n_outputs, name="forecast")(x)
    outputs = layers.Reshape((horizon, n_outputs), name="output")(x)
    return keras.Model(inputs, outputs, name=name)


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
        """Whether a ``mask_rate`` above 0 gives the model mask channels (a forecast hides its own rows instead)."""
        return self.model.reads_masks and not self.forecasts


def layer_table(model: keras.Model) -> list[tuple[str, str, str, int]]:
    """``(name, layer type, output shape, parameters)`` for every layer after the input."""
    return [
        (
            layer.name,
            type(layer).__name__,
            str(tuple(layer.output.shape[1:])),
            layer.count_params(),
        )
        for layer in model.layers[1:]
    ]


def encoder(model: keras.Model, arch: str) -> keras.Model:
    """The sub-model from the input to the encoded vector (architectures with a bottleneck only)."""
    keras = import_keras()
    layer = ARCHITECTURES[arch].encoded_layer
    assert layer is not None
    return keras.Model(model.inputs, model.get_layer(layer).output, name="encoder")


_stop_check: ContextVar[Callable[[], bool] | None] = ContextVar(
    "rareevent_stop_check", default=None
)


@contextmanager
def stop_between_batches(requested: Callable[[], bool]) -> Iterator[None]:
    """Within the block, training asks ``requested()`` after every batch and raises ``KeyboardInterrupt`` there when it is True.

    This lets a Ctrl-C handler defer the interrupt to a batch boundary: a
    ``KeyboardInterrupt`` raised wherever the signal happens to land can
    strike inside TensorFlow or a progress display while they hold a lock,
    and the process may then hang instead of stopping. Scoped like
    scikit-learn's ``config_context``: nothing outside the block sees it.
    """
    token = _stop_check.set(requested)
    try:
        yield
    finally:
        _stop_check.reset(token)


def auto_batch_size(n_windows: int, accelerator: bool = False) -> int:
    """About 100 training steps per epoch: ``n/100`` rounded to a power of two, within 16..128 (CPU) or 16..GPU_MAX_BATCH.

    Large data trains faster per window with bigger batches; a few hundred
    windows (a short file) would get only one or two steps per epoch with a
    fixed large batch and stop undertrained. On the CPU a batch beyond 128
    gains little speed; a GPU only fills up with thousands of windows per
    step (``benchmarks/gpu.py``), so there the cap is higher. Below 12,800
    windows both rules give the same batch.
    """
    return int(
        np.clip(
            2 ** round(np.log2(max(n_windows, 1) / 100)),
            16,
            GPU_MAX_BATCH if accelerator else 128,
        )
    )


def auto_learning_rate(batch_size: int) -> float:
    """Adam's step grown with the square root of the batch: 1e-3 at 16, about 2.8e-3 at 128.

    Bigger batches average more windows per step, so a larger step is safe;
    with a fixed 1e-3 they need more epochs to reach the same loss
    (measured in ``benchmarks/speed.py``).
    """
    return 1e-3 * float(np.sqrt(max(batch_size, 16) / 16))


def learning_rate_schedule(
    keras: ModuleType, rate: float, batch_size: int, n_windows: int
) -> float | Any:
    """``rate``, reached by a linear warm-up over the first epoch when the batch is beyond the CPU's 128.

    Adam's first steps at the large rate a large batch allows can throw the
    LSTMs' weights far off; ramping up over one epoch avoids that. Small
    batches keep the constant rate they always had.
    """
    if batch_size <= 128:
        return rate
    steps = max(1, n_windows // batch_size)
    # a cosine decay with alpha=1 never decays: after the warm-up the rate stays at warmup_target
    return keras.optimizers.schedules.CosineDecay(
        rate / 10, decay_steps=1, alpha=1.0, warmup_target=rate, warmup_steps=steps
    )


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
    extra = np.random.default_rng(seed).choice(
        len(train), size=short, replace=len(train) < short
    )
    return np.concatenate([train, train[extra]])


def _stop_if(requested: Callable[[], bool]) -> None:
    if requested():
        raise KeyboardInterrupt


class KerasModel:
    """A Keras model of a registered architecture (its ``build``), or the numpy forward of a saved one (``rareevent.forward``).

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
        """A model without a network yet: ``fit`` builds it once the random seed is set, so that its initial weights follow the seed."""
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
        """The model rebuilt from ``config``, with the saved weights: in numpy unless ``forward.use_numpy()`` says otherwise or a layer needs Keras."""
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
            except (
                forward.Unsupported
            ):  # a layer the numpy forward does not run: Keras does
                pass
        net = cls._build(config)
        try:
            net.load_weights(path)
        except Exception as exc:  # h5py and Keras raise many types for a damaged file or weights of other shapes
            raise RareEventError(
                f"{path}: not the weights of this {config.arch!r} model ({type(exc).__name__})",
                hint="retrain the run",
            ) from None
        if not all(
            np.isfinite(weights).all() for weights in net.get_weights()
        ):  # NaN weights would flag every window
            raise RareEventError(
                f"{path}: the model weights hold NaN or infinite values",
                hint="retrain the run",
            )
        return cls(config, net)

    def fit(self, data: TrainingData, options: FitOptions) -> FitReport:
        """Train with Adam on the MSE, stopping early on the validation loss and keeping the best weights."""
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
            if (
                self.numpy
            ):  # loaded for scoring, in numpy: Keras trains on from its weights
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
        requested = _stop_check.get()
        if requested is not None:
            callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_train_batch_end=lambda batch, logs: _stop_if(requested),
                    on_test_batch_end=lambda batch, logs: _stop_if(requested),
                )
            )
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
    """An in-memory file that Keras's ``save_weights`` takes for ``model.weights.h5`` (it checks the name's ending)."""

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
        partial(_lstm_stack, bottleneck=True),
        encoded_layer="encoder_2",
    ),
    "plain": Architecture(
        "LSTM, no bottleneck", KerasModel, partial(_lstm_stack, bottleneck=False)
    ),
    "forecast": Architecture(
        "LSTM forecasting the targets' next rows",
        KerasModel,
        _forecaster,
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
