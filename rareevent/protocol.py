"""The one interface every model implements, so that the detector asks all of them the same things.

``ReconstructionModel`` is what ``RareEventDetector`` calls; each entry of
``model.ARCHITECTURES`` names a class that implements it (``KerasModel``
around a Keras builder, ``PCAModel``). A model that is not Keras is its own
module with such a class, and one registry entry. This module imports
nothing heavy: a model module can import it without importing Keras.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from rareevent.errors import RareEventError

# the most rows lookback, horizon, lead and smooth may span; a saved detector is checked against
# the same bounds
MAX_SPAN = 100_000
MODEL_LIMIT_VARIABLE = "RAREEVENT_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = (
    1024  # the largest model a run folder may hold, as arrays in memory
)
# a run's arrays are stored uncompressed: an archive member that expands to more than this many
# times its stored bytes was packed to exhaust memory, not written by rareevent
MAX_EXPANSION = 20


def max_model_bytes() -> int:
    """The most bytes a saved model may take in memory: 1 GiB, or ``RAREEVENT_MAX_MODEL_MB``."""
    text = os.environ.get(MODEL_LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_MODEL_MB << 20
    if not text.isdigit() or int(text) == 0:
        raise RareEventError(
            f"{MODEL_LIMIT_VARIABLE}={text[:20]!r}: give a whole number of megabytes above 0"
        )
    return int(text) << 20


def check_model_size(path: Path, expanded: int, stored: int | None = None) -> None:
    """Refuse a saved model of ``expanded`` bytes in memory before any of it is allocated.

    ``expanded`` is what the file's headers (or the detector's parameters)
    declare; ``stored``, when given, the bytes it takes in the file: a model
    saved by rareevent is never compressed, so a far larger ``expanded`` is
    a file packed to exhaust memory.
    """
    limit = max_model_bytes()
    if expanded > limit:
        raise RareEventError(
            f"{path}: the model would take {expanded / 2**20:,.0f} MB in memory; "
            f"rareevent loads models of at most {limit >> 20:,} MB",
            hint=f"if the run is yours and this large, set {MODEL_LIMIT_VARIABLE} higher",
        )
    if stored is not None and expanded > MAX_EXPANSION * max(stored, 1):
        raise RareEventError(
            f"{path}: {stored:,} stored bytes expand to {expanded:,}, more than "
            f"{MAX_EXPANSION} times; rareevent stores models uncompressed",
            hint="retrain the run",
        )


@dataclass(frozen=True)
class ModelConfig:
    """What a model is made from: the detector's parameters and the columns ``fit`` settled.

    ``targets`` are the columns the model reconstructs (or forecasts) out of
    ``n_features``; ``masks``: it also reads one mask channel per target
    (``n_inputs``).
    """

    arch: str
    lookback: int
    n_features: int
    targets: tuple[int, ...]
    units: tuple[int, int] = (32, 16)
    activation: str = "tanh"
    horizon: int = 1
    masks: bool = False

    @property
    def n_inputs(self) -> int:
        return self.n_features + len(self.targets) if self.masks else self.n_features


@dataclass(frozen=True)
class TrainingData:
    """The scaled ``(n, T, F)`` windows a model is fitted on, and how the detector turns
    them into what the model reads and is compared with.

    ``inputs(windows, seed)`` hides a forecast's rows or adds mask channels
    (drawn from ``seed``); ``targets(windows)`` takes the target columns of
    the rows the output stands for. A model uses what it needs.
    """

    train: np.ndarray
    valid: np.ndarray
    inputs: Callable[[np.ndarray, int], np.ndarray]
    targets: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FitOptions:
    """The detector's training parameters (``None``: the model's own rule); a
    closed-form model ignores them.
    """

    epochs: int
    batch_size: int | None
    learning_rate: float | None
    patience: int
    seed: int
    on_epoch: Callable[[int, dict[str, float]], None] | None = None


@dataclass(frozen=True)
class FitReport:
    """What a fit leaves for the detector to keep: the loss per epoch (``loss`` empty:
    fitted in closed form) and the batch and rate it used.
    """

    history: dict[str, list[float]]
    batch_size: int | None = None
    learning_rate: float | None = None


class ReconstructionModel(Protocol):
    """What the detector asks of a model; each entry of ``ARCHITECTURES`` names a class
    that does it.

    The detector prepares the windows (scaling, a forecast's hidden rows,
    mask channels) and computes the per-sensor errors from what
    ``predict_on_batch`` returns, so a model only maps windows to the
    target columns of the rows its output stands for. ``file`` is the one
    file it keeps in a run folder: numbers only, read back without running
    code. ``trained_by_epochs``: fitted by gradient steps (batches,
    learning rate, epochs) rather than in closed form; ``reads_masks``: it
    can be given mask channels (``mask_rate``).
    """

    file: ClassVar[str]
    trained_by_epochs: ClassVar[bool]
    reads_masks: ClassVar[bool]

    @classmethod
    def create(cls, config: ModelConfig) -> ReconstructionModel: ...

    @classmethod
    def load(cls, folder: Path, config: ModelConfig) -> ReconstructionModel:
        """The model saved in ``folder``, checked against ``config``: a damaged or
        mismatched file is a ``RareEventError`` naming it.
        """
        ...

    def fit(self, data: TrainingData, options: FitOptions) -> FitReport:
        """Fit in place (on from the current weights, where the model has any to keep)."""
        ...

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        """The output for a batch of model inputs (``TrainingData.inputs``):
        ``(n, steps, targets)``.
        """
        ...

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """The encoded vector of each window (architectures with ``encoded_layer`` only)."""
        ...

    def count_params(self) -> int: ...

    def save(self, folder: Path) -> None:
        """Write ``file`` into ``folder`` (a temporary folder being filled)."""
        ...
