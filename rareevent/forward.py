"""Scoring without TensorFlow: the forward pass of a saved model in numpy.

Every scoring process used to import TensorFlow (about 8 s on 2 cores)
to run a forward pass of a few small LSTMs. Here the model is instead:

1. *recorded*: the architecture's own builder (``model.build_model``, the
   ``ARCHITECTURES`` registry) is run on ``RECORDER``, which offers the
   ``keras.Input``, ``keras.Model`` and ``keras.layers.X`` calls the
   builders make and records each layer and what it was called on. There
   is no second description of any architecture: a new registry entry made
   of the layers below is covered as it is;
2. *given its weights*, read with h5py from the ``.weights.h5`` file Keras
   wrote, found the way Keras' ``load_weights`` finds them (by layer class
   and order, never by the auto-generated layer names);
3. *run* by ``NumpyModel``, one numpy function per layer type.

A builder that uses anything else raises ``Unsupported`` while it is
recorded, and the detector then loads the model through Keras as before.
``RAREEVENT_FORWARD=keras`` asks for the Keras forward (0.3.0's path);
a backend the user chose (``KERAS_BACKEND``, ``keras.json``) does too.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rareevent.backend import (
    FORWARD_ENV as FORWARD_ENV,
    FORWARDS as FORWARDS,
    building_with,
    use_numpy as use_numpy,
)
from rareevent.errors import RareEventError

THREADS_ENV = "RAREEVENT_THREADS"
MAX_THREADS = 256
# windows per piece of a batch: the gate buffers of 32 units (256 kB) stay in the L2 cache
PIECE = 512


class Unsupported(Exception):
    """A builder used a layer, option or call the numpy forward does not implement."""


# --- recording a builder -------------------------------------------------------------------------


@dataclass(eq=False)
class Layer:
    """One layer call as the builder wrote it: the Keras class name, its options, the
    layer it wraps.
    """

    kind: str
    options: dict[str, Any]
    inner: Layer | None = None
    inputs: list[Symbol] = field(default_factory=list)

    def __call__(self, x: Symbol | Sequence[Symbol]) -> Symbol:
        if self.inputs:
            raise Unsupported(f"a {self.kind} layer called twice (shared weights)")
        self.inputs = [x] if isinstance(x, Symbol) else list(x)
        return Symbol(self)

    @property
    def name(self) -> str | None:
        return self.options.get("name")


@dataclass(eq=False)
class Symbol:
    """A symbolic tensor: the output of ``layer`` (None: the model input)."""

    layer: Layer | None
    shape: tuple[int, ...] = ()


def _snake(name: str) -> str:
    """Keras' ``naming.to_snake_case``: the key a layer's weights are saved under."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class _Layers:
    """``keras.layers`` as the recorder offers it: the layer types ``LAYERS`` runs."""

    def __getattr__(self, kind: str) -> Callable[..., Layer]:
        if kind not in LAYERS:
            raise Unsupported(f"layer {kind}")

        def make(*args: Any, **options: Any) -> Layer:
            if kind == "TimeDistributed":
                (inner,) = args
                return Layer(kind, options, inner=inner)
            names = LAYERS[kind].positional
            if len(args) > len(names):
                raise Unsupported(f"{kind} with {len(args)} positional arguments")
            return Layer(kind, {**dict(zip(names, args, strict=False)), **options})

        return make


class _Recorder:
    """What ``import_keras()`` returns while a builder is recorded."""

    layers = _Layers()

    @staticmethod
    def Input(shape: Sequence[int], name: str | None = None, **options: Any) -> Symbol:
        if options:
            raise Unsupported(f"Input options {sorted(options)}")
        return Symbol(None, tuple(shape))

    @staticmethod
    def Model(inputs: Symbol, outputs: Symbol, name: str | None = None) -> Graph:
        if not isinstance(inputs, Symbol) or not isinstance(outputs, Symbol):
            raise Unsupported("a model of several inputs or outputs")
        return Graph(inputs, outputs)

    def __getattr__(self, name: str) -> Any:
        raise Unsupported(f"keras.{name}")


RECORDER = _Recorder()


class Graph:
    """The layers of a recorded model, in Keras' order (``model.layers``), each with its
    weights key.
    """

    def __init__(self, inputs: Symbol, outputs: Symbol) -> None:
        self.input, self.output = inputs, outputs
        self.layers: list[Layer] = []
        seen: set[int] = set()

        def visit(
            symbol: Symbol,
        ) -> None:  # depth first from the output: each layer after the layers it reads
            layer = symbol.layer
            if layer is None or id(layer) in seen:
                return
            seen.add(id(layer))
            for source in layer.inputs:
                visit(source)
            self.layers.append(layer)

        visit(outputs)
        used: dict[str, int] = {
            "input_layer": 0
        }  # the input layer comes first in model.layers
        self.keys: dict[int, str] = {}
        for layer in self.layers:
            key = _snake(layer.kind)
            if key in used:
                used[key] += 1
                key = f"{key}_{used[key]}"
            else:
                used[key] = 0
            self.keys[id(layer)] = key


# --- running it ----------------------------------------------------------------------------------


Activation = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _activation(name: str | None) -> Activation:
    """The activation ``name`` as ``f(x, out)``, into ``out`` (may be ``x``): no new array."""
    if name in (None, "linear"):
        return _identity
    if name == "tanh":
        return lambda x, out: np.tanh(x, out=out)
    if name == "relu":
        return lambda x, out: np.maximum(x, 0, out=out)
    if name == "sigmoid":
        return _sigmoid
    raise Unsupported(f"activation {name!r}")


def _identity(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not x:
        np.copyto(out, x)
    return out


def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The logistic function as 0.5 tanh(x/2) + 0.5: exact, no exp overflow, no new array."""
    np.multiply(x, 0.5, out=out)
    return _sigmoid_of_half(out, out)


def _sigmoid_of_half(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The logistic function of ``2 x``: the LSTM's gates, whose weights are halved beforehand."""
    np.tanh(x, out=out)
    out *= 0.5
    out += 0.5
    return out


def _lstm(layer: Layer, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Keras' LSTM (gates i, f, c, o; zero initial state), time-major and gate-major inside.

    The input part of every step is one matrix product before the loop.
    Each step is then one product for the four gates, written into a
    preallocated ``(4, n, units)`` buffer whose gates are contiguous
    blocks, and the activations and state updates run in place: the loop
    allocates nothing. Under a sigmoid the gates' weights are halved
    beforehand (exact: a power of two), which saves the sigmoid a pass.
    """
    units = layer.options["units"]
    _fits(layer, weights, [(x.shape[-1], 4 * units), (units, 4 * units), (4 * units,)])
    bias = weights[2] if len(weights) == 3 else np.zeros(4 * units, x.dtype)
    act = _activation(layer.options.get("activation", "tanh"))
    gate_name = layer.options.get("recurrent_activation", "sigmoid")
    gate = _sigmoid_of_half if gate_name == "sigmoid" else _activation(gate_name)
    scale = np.ones(4, x.dtype)
    scale[:3] = 0.5 if gate_name == "sigmoid" else 1.0

    def gate_major(w: np.ndarray) -> np.ndarray:
        """``(rows, 4 units)`` in Keras' order i, f, c, o as ``(4, rows, units)`` in i, f, o, c."""
        blocks = w.reshape(-1, 4, units)[:, [0, 1, 3, 2]].transpose(1, 0, 2)
        return np.ascontiguousarray(blocks * scale[:, None, None], dtype=x.dtype)

    kernel, recurrent = gate_major(weights[0]), gate_major(weights[1])
    n, steps = x.shape[0], x.shape[1]
    z_in = np.matmul(np.ascontiguousarray(x.transpose(1, 0, 2))[:, None], kernel)
    z_in += gate_major(bias[None])  # (steps, 4, n, units): the input part of every step
    sequences = layer.options.get("return_sequences", False)
    outputs = np.empty((steps if sequences else 1, n, units), x.dtype)
    h = np.zeros((n, units), x.dtype)
    c = np.zeros((n, units), x.dtype)
    z = np.empty((4, n, units), x.dtype)
    cell = np.empty((n, units), x.dtype)
    gates, (i, f, o, candidate) = z[:3], z
    for t in range(steps):
        np.matmul(h, recurrent, out=z)
        z += z_in[t]
        gate(gates, gates)
        act(candidate, candidate)
        c *= f
        np.multiply(i, candidate, out=cell)
        c += cell
        h = outputs[t if sequences else 0]
        np.multiply(o, act(c, cell), out=h)
    return outputs.transpose(1, 0, 2) if sequences else outputs[0]


def _fits(
    layer: Layer, weights: list[np.ndarray], shapes: list[tuple[int, ...]]
) -> None:
    """Refuse weights of other shapes than the layer's (numpy would broadcast some of
    them silently); no bias: one shape less.
    """
    if [w.shape for w in weights] != shapes[: len(weights)]:
        raise ValueError(
            f"{layer.kind} weights of shapes {[w.shape for w in weights]}, expected {shapes}"
        )


def _dense(layer: Layer, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    _fits(
        layer,
        weights,
        [(x.shape[-1], layer.options["units"]), (layer.options["units"],)],
    )
    y = x @ weights[0]
    if layer.options.get("use_bias", True):
        y += weights[1]
    return _activation(layer.options.get("activation"))(y, y)


def _time_distributed(
    layer: Layer, x: np.ndarray, weights: list[np.ndarray]
) -> np.ndarray:
    assert layer.inner is not None
    n, steps = x.shape[:2]
    y = run_layer(layer.inner, x.reshape(n * steps, *x.shape[2:]), weights)
    return y.reshape(n, steps, *y.shape[1:])


def _reshape(layer: Layer, x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    return x.reshape(len(x), *layer.options["target_shape"])


@dataclass(frozen=True)
class LayerType:
    """How one Keras layer type runs in numpy, and the options it accepts (the rest are refused)."""

    run: Callable[[Layer, Any, list[np.ndarray]], np.ndarray]
    positional: tuple[str, ...] = ()
    options: frozenset[str] = frozenset()
    n_weights: int = 0


_NAME = frozenset({"name"})
LAYERS: dict[str, LayerType] = {
    "LSTM": LayerType(
        _lstm,
        ("units",),
        _NAME
        | {
            "units",
            "activation",
            "recurrent_activation",
            "use_bias",
            "return_sequences",
            "unroll",
            "use_cudnn",
            "dropout",
            "recurrent_dropout",
        },
        3,
    ),
    "Dense": LayerType(
        _dense, ("units",), _NAME | {"units", "activation", "use_bias"}, 2
    ),
    "TimeDistributed": LayerType(_time_distributed, (), _NAME),
    "RepeatVector": LayerType(
        lambda layer, x, w: np.repeat(x[:, None, :], layer.options["n"], axis=1),
        ("n",),
        _NAME | {"n"},
    ),
    "Reshape": LayerType(_reshape, ("target_shape",), _NAME | {"target_shape"}),
    "Flatten": LayerType(lambda layer, x, w: x.reshape(len(x), -1), (), _NAME),
    "Dropout": LayerType(
        lambda layer, x, w: x, ("rate",), _NAME | {"rate", "seed"}
    ),  # inference: the identity
    "Activation": LayerType(
        lambda layer, x, w: _activation(layer.options["activation"])(
            x, np.empty_like(x)
        ),
        ("activation",),
        _NAME | {"activation"},
    ),
    "Concatenate": LayerType(
        lambda layer, xs, w: np.concatenate(xs, axis=layer.options.get("axis", -1)),
        ("axis",),
        _NAME | {"axis"},
    ),
    "Add": LayerType(lambda layer, xs, w: sum(xs[1:], xs[0]), (), _NAME),
}
_MULTI_INPUT = ("Concatenate", "Add")


def _check(layer: Layer) -> int:
    """Refuse options this module does not run; the number of weight arrays the layer holds."""
    spec = LAYERS[layer.kind]
    unknown = set(layer.options) - spec.options
    if unknown:
        raise Unsupported(f"{layer.kind} options {sorted(unknown)}")
    if layer.kind == "LSTM" and layer.options.get("use_bias", True) is False:
        return 2
    if layer.kind == "Dense" and layer.options.get("use_bias", True) is False:
        return 1
    return _check(layer.inner) if layer.inner is not None else spec.n_weights


def run_layer(layer: Layer, x: Any, weights: list[np.ndarray]) -> np.ndarray:
    return LAYERS[layer.kind].run(layer, x, weights)


class NumpyModel:
    """A recorded model with its weights: ``predict_on_batch`` and ``count_params`` like
    the Keras model it stands for.
    """

    def __init__(
        self,
        graph: Graph,
        weights: dict[int, list[np.ndarray]],
        dtype: type = np.float32,
    ) -> None:
        self.graph, self.weights, self.dtype = graph, weights, dtype

    def predict_on_batch(
        self, batch: np.ndarray, output: str | None = None
    ) -> np.ndarray:
        """The model's output for ``(n, T, F)`` windows (``output``: that of the layer so named).

        The windows run in pieces of ``PIECE`` (their buffers stay in the
        cache) spread over ``threads()`` threads: numpy's products and
        ufuncs release the GIL. The pieces are cut the same way for any
        number of threads, so the output does not depend on it.
        """
        batch = np.asarray(batch, self.dtype)
        pieces = [batch[start : start + PIECE] for start in range(0, len(batch), PIECE)]
        workers = min(threads(), len(pieces))
        with _blas().limit(limits=1, user_api="blas"):
            if workers <= 1:
                parts = [self._forward(piece, output) for piece in pieces or [batch]]
            else:
                parts = list(
                    _pool(workers).map(
                        lambda piece: self._forward(piece, output), pieces
                    )
                )
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _forward(self, batch: np.ndarray, output: str | None) -> np.ndarray:
        values: dict[int, np.ndarray] = {id(self.graph.input): batch}
        for layer in self.graph.layers:
            inputs = [values[id(source)] for source in _sources(self.graph, layer)]
            result = run_layer(
                layer,
                inputs if layer.kind in _MULTI_INPUT else inputs[0],
                self.weights[id(layer)],
            )
            if layer.name is not None and layer.name == output:
                return result.astype(np.float32)
            values[id(layer)] = result
        if output is not None:
            raise KeyError(f"no layer named {output!r}")
        return values[id(self.graph.layers[-1])].astype(np.float32)

    def predict(
        self,
        batch: np.ndarray,
        batch_size: int,
        verbose: int = 0,
        output: str | None = None,
    ) -> np.ndarray:
        """``predict_on_batch`` over ``batch_size`` windows at a time (Keras' ``predict``)."""
        parts = [
            self.predict_on_batch(batch[start : start + batch_size], output)
            for start in range(0, len(batch), batch_size)
        ]
        return np.concatenate(parts) if parts else self.predict_on_batch(batch, output)

    def count_params(self) -> int:
        return int(sum(w.size for arrays in self.weights.values() for w in arrays))

    def get_weights(self) -> list[np.ndarray]:
        """All weight arrays in Keras' ``model.get_weights()`` order (to hand them to a
        Keras model).
        """
        return [w for layer in self.graph.layers for w in self.weights[id(layer)]]


@functools.cache
def _blas() -> Any:
    """The BLAS libraries numpy loaded: the forward runs them on one thread.

    Its matrix products are small (4,096 windows x a few dozen units), and
    OpenBLAS' threads spin while they wait: on the 2-core machine under load,
    a batch of 4,096 windows (ae 32,16, 61 sensors) took 105 ms on one
    thread and 712 ms on OpenBLAS' default two. One thread per process is
    also what lets ``--jobs`` and Spark workers use one core each.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def threads() -> int:
    """Threads of the forward pass: ``RAREEVENT_THREADS``, else the CPUs this process may use."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    if not value.isdigit() or not 1 <= int(value) <= MAX_THREADS:
        raise RareEventError(
            f"{THREADS_ENV} must be a whole number from 1 to {MAX_THREADS}, got {value!r}"
        )
    return int(value)


def one_thread() -> None:
    """In a worker of a process pool (``score --jobs``), which spreads the work over the CPUs
    itself: the forward on one thread, unless ``RAREEVENT_THREADS`` says otherwise."""
    os.environ.setdefault(THREADS_ENV, "1")


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """One pool per thread count, kept for the process: scoring calls it once per batch."""
    return ThreadPoolExecutor(workers, thread_name_prefix="rareevent-forward")


def _sources(graph: Graph, layer: Layer) -> list[Symbol | Layer]:
    """The keys of ``values`` a layer reads: the graph input, or the layers that made its inputs."""
    return [
        graph.input if source.layer is None else source.layer for source in layer.inputs
    ]


def read_weights(path: Path, graph: Graph) -> dict[int, list[np.ndarray]]:
    """The weight arrays of each layer of ``graph`` from a Keras ``.weights.h5`` file,
    checked against the layers.

    Keras saves each layer under ``layers/<snake-cased class>[_k]`` (k: its
    rank among layers of that class), its own arrays in ``vars/0, 1, ...``
    and those of a wrapped layer or cell in a sub-group.
    """
    import h5py

    with h5py.File(path, "r") as fh:
        stored = fh["layers"]
        found = {key for key in stored if key != "input_layer" and _arrays(stored[key])}
        weights: dict[int, list[np.ndarray]] = {}
        for layer in graph.layers:
            key = graph.keys[id(layer)]
            arrays = _arrays(stored[key]) if key in stored else []
            if len(arrays) != _check(layer):
                raise ValueError(
                    f"layer {key}: {len(arrays)} weight arrays, expected {_check(layer)}"
                )
            weights[id(layer)] = arrays
            found.discard(key)
        if found:
            raise ValueError(f"weights of layers this model lacks: {sorted(found)}")
    return weights


def _arrays(group: Any) -> list[np.ndarray]:
    """The arrays under ``group`` in Keras' order: its own ``vars`` by number, then its
    sub-groups by name.
    """
    import h5py

    own = group.get("vars", {})
    arrays = [np.asarray(own[k]) for k in sorted(own, key=int)]
    for key in sorted(group):
        if key != "vars" and isinstance(group[key], h5py.Group):
            arrays += _arrays(group[key])
    return arrays


def _check_shapes(graph: Graph, weights: dict[int, list[np.ndarray]]) -> None:
    """Run one window through the model: the shapes of every weight must fit the layer
    they are given to.
    """
    probe = np.zeros((1, *graph.input.shape), np.float32)
    NumpyModel(graph, weights).predict_on_batch(probe)


def load(path: Path, arch: str, build: Callable[[], Any]) -> NumpyModel:
    """The numpy model of a saved Keras model: ``build`` (the call of ``build_model``
    Keras would get) recorded, the weights read from ``path``.

    Raises ``Unsupported`` when the builder uses what this module cannot
    run (the caller then uses Keras), and ``RareEventError`` when the file
    is not the weights of this model.
    """
    with building_with(RECORDER):
        graph = build()
    if not isinstance(graph, Graph):
        raise Unsupported(f"the {arch!r} builder did not return a model")
    for layer in graph.layers:
        _check(layer)
    try:
        weights = read_weights(path, graph)
        _check_shapes(graph, weights)
    except Exception as exc:
        # h5py raises many types for a damaged file; numpy for weights of other shapes
        raise RareEventError(
            f"{path}: not the weights of this {arch!r} model ({type(exc).__name__})",
            hint="retrain the run",
        ) from None
    return NumpyModel(graph, weights)
