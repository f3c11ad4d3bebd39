"""The Keras layer stacks of the LSTM architectures, one builder each.

Each builder takes ``(lookback, n_features, units, activation, unroll,
n_outputs, name=...)`` (a forecaster also ``horizon=``) and returns the
uncompiled Keras model drawn in ``rareevent.model``'s docstring. The
registry there (``ARCHITECTURES``) names them; this module knows nothing
of the registry, so that the registry, the model class and the builders
import in one direction. Keras comes from ``import_keras``, which returns
the numpy forward's recorder while ``rareevent.forward`` records a builder.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rareevent.backend import import_keras

if TYPE_CHECKING:
    import keras


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
    """The window input and the two encoding LSTMs that every LSTM architecture begins
    with: (input, encoded); ``sequences``: the second LSTM keeps every step.
    """
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    x = lstm(units[0], "encoder_1")(inputs)
    return inputs, lstm(units[1], "encoder_2", sequences=sequences)(x)


def lstm_stack(
    lookback: int,
    n_features: int,
    units: tuple[int, int],
    activation: str,
    unroll: bool,
    n_outputs: int,
    name: str,
    bottleneck: bool,
) -> keras.Model:
    """The four-LSTM stack of ``ae`` (``bottleneck``: one encoded vector, repeated) and
    ``plain``.
    """
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


def forecaster(
    lookback: int,
    n_features: int,
    units: tuple[int, int],
    activation: str,
    unroll: bool,
    n_outputs: int,
    name: str,
    horizon: int,
) -> keras.Model:
    """``forecast``: two LSTMs read the window (its last ``horizon`` rows' targets
    hidden); a Dense layer predicts those targets.
    """
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
