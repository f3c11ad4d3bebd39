"""How a Keras model is trained, apart from its layers: batch size, learning rate, stopping.

The batch size and Adam's rate grow with the data (``auto_batch_size``,
``auto_learning_rate``), a large batch warms its rate up over the first
epoch (``learning_rate_schedule``), a GPU gets whole batches only
(``whole_batches``), and a Ctrl-C is deferred to the end of a batch
(``stop_between_batches``). ``KerasModel.fit`` (``rareevent.model``) asks
these; none of them builds or imports Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import numpy as np

# the largest auto batch on a GPU: it reached batch 128's validation loss (benchmarks/gpu.py)
GPU_MAX_BATCH = 2048


_stop_check: ContextVar[Callable[[], bool] | None] = ContextVar(
    "rareevent_stop_check", default=None
)


@contextmanager
def stop_between_batches(requested: Callable[[], bool]) -> Iterator[None]:
    """Within the block, training asks ``requested()`` after every batch and raises
    ``KeyboardInterrupt`` there when it is True.

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
    """About 100 training steps per epoch: ``n/100`` rounded to a power of two, within
    16..128 (CPU) or 16..GPU_MAX_BATCH.

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
    """``rate``, reached by a linear warm-up over the first epoch when the batch is
    beyond the CPU's 128.

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


def batch_stop_callbacks(keras: ModuleType) -> list[Any]:
    """The callback that stops training where ``stop_between_batches`` asks: none
    outside its block.
    """
    requested = _stop_check.get()
    if requested is None:
        return []
    return [
        keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: _stop_if(requested),
            on_test_batch_end=lambda batch, logs: _stop_if(requested),
        )
    ]
