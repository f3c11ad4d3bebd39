"""The PCA reconstruction baseline (``--arch pca``): a ``ReconstructionModel`` fitted in
closed form, without Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rareevent.errors import RareEventError
from rareevent.protocol import (
    FitOptions,
    FitReport,
    ModelConfig,
    TrainingData,
    check_model_size,
)

PCA_VARIANCE = 0.99


class PCAModel:
    """The PCA reconstruction baseline: each row projected on the principal components
    of normal rows and back.

    Fitted in closed form (the training options are ignored). Its state is
    three arrays, saved with ``numpy.savez`` and loaded with
    ``allow_pickle=False``: a run folder cannot run code through it.
    """

    file: ClassVar[str] = "model.npz"
    trained_by_epochs: ClassVar[bool] = False
    reads_masks: ClassVar[bool] = False

    def __init__(
        self,
        mean: np.ndarray,
        components: np.ndarray,
        targets: Sequence[int],
        variance: float = PCA_VARIANCE,
    ) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.components = np.asarray(components, np.float32)
        self.targets = list(targets)
        self.variance = variance

    @classmethod
    def create(cls, config: ModelConfig) -> PCAModel:
        """An unfitted model: it reconstructs every row as 0, the scaled mean."""
        return cls(
            np.zeros(config.n_features),
            np.zeros((0, config.n_features)),
            config.targets,
        )

    def fit(self, data: TrainingData, options: FitOptions) -> FitReport:
        """Keep the fewest components that explain ``variance`` of the rows of the
        (scaled) normal training windows.
        """
        from sklearn.decomposition import PCA

        rows = np.asarray(data.train.reshape(-1, data.train.shape[2]), np.float64)
        if len(rows) < 2 or not np.any(
            rows.std(axis=0) > 0
        ):  # nothing varies: reconstruct the mean
            mean, components = rows.mean(axis=0), np.zeros((0, rows.shape[1]))
        else:
            pca = PCA(n_components=self.variance, svd_solver="full").fit(rows)
            mean, components = pca.mean_, pca.components_
        self.mean, self.components = (
            np.asarray(mean, np.float32),
            np.asarray(components, np.float32),
        )
        loss = float(
            np.square(
                data.targets(data.valid)
                - self.predict_on_batch(data.inputs(data.valid, options.seed + 1))
            ).mean()
        )
        return FitReport({"loss": [], "val_loss": [loss]})

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Reconstruct the target columns of every row of ``(n, T, F)`` windows."""
        centred = inputs - self.mean
        return (
            (centred @ self.components.T) @ self.components[:, self.targets]
            + self.mean[self.targets]
        ).astype(np.float32)

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        raise RareEventError("the pca baseline has no encoded vector")

    def count_params(self) -> int:
        return int(self.components.size + self.mean.size)

    def save(self, folder: Path) -> None:
        with open(folder / self.file, "wb") as fh:
            np.savez(
                fh,
                mean=self.mean,
                components=self.components,
                targets=np.asarray(self.targets, np.int64),
            )

    @classmethod
    def load(cls, folder: Path, config: ModelConfig) -> PCAModel:
        """Read a saved model, refusing anything but the three arrays of the right
        shapes and kinds and ``config.targets``.

        Shapes and kinds are read from the array headers before any array
        is: an archive of millions of rows is refused without reading it.
        """
        path, n_features = folder / cls.file, config.n_features
        needed = {
            "mean": f"({n_features},)",
            "components": f"(k, {n_features}) with k at most {n_features}",
            "targets": f"(k,) with k at most {n_features}",
        }
        try:
            with np.load(path, allow_pickle=False) as data:
                if sorted(data.files) != sorted(needed):
                    raise RareEventError(
                        f"{path}: a PCA model holds exactly the arrays components, "
                        "mean and targets, not "
                        f"{', '.join(sorted(data.files))[:80]}"
                    )
                headers = {key: _npy_header(data, key) for key in needed}
                _check_expansion(path, data, headers)
                shape = {key: found for key, (found, _) in headers.items()}
                shape_ok = {
                    "mean": shape["mean"] == (n_features,),
                    "components": len(shape["components"]) == 2
                    and shape["components"][0] <= n_features
                    and shape["components"][1] == n_features,
                    "targets": len(shape["targets"]) == 1
                    and shape["targets"][0]
                    <= n_features,  # its values are compared below
                }
                for key, (found, dtype) in headers.items():
                    if not shape_ok[key]:
                        raise RareEventError(
                            f"{path}: array {key!r} has shape {found}; "
                            f"detector.json's {n_features} features need "
                            f"{needed[key]}"
                        )
                    if dtype.kind != ("i" if key == "targets" else "f"):
                        raise RareEventError(
                            f"{path}: array {key!r} holds {dtype} values; it must hold "
                            f"{'integers' if key == 'targets' else 'real numbers'}"
                        )
                mean, components, targets_saved = (
                    data["mean"],
                    data["components"],
                    data["targets"],
                )
        except RareEventError:
            raise
        except Exception as exc:  # numpy raises many types for a damaged archive
            raise RareEventError(
                f"{path}: not a readable PCA model ({type(exc).__name__})",
                hint="retrain the run",
            ) from None
        with np.errstate(over="ignore"):  # the overflow is refused just below
            model = cls(mean, components, config.targets)
        if not (
            np.all(np.isfinite(model.mean)) and np.all(np.isfinite(model.components))
        ):  # as the float32 it computes in: 1e39 is inf
            raise RareEventError(
                f"{path}: PCA model holds values that are not finite as 32-bit floats"
            )
        if targets_saved.tolist() != list(config.targets):
            raise RareEventError(
                f"{path}: PCA model reconstructs other columns than "
                "detector.json's target_features_"
            )
        return model


def _check_expansion(
    path: Path, data: Any, headers: dict[str, tuple[tuple[int, ...], np.dtype]]
) -> None:
    """Refuse arrays declaring more than the model size limit, or far more than stored.

    A header's shape is what ``numpy`` allocates before reading a byte of
    the array: it is checked first, whatever ``detector.json`` says.
    """
    expanded = sum(
        int(np.prod(shape, dtype=object)) * dtype.itemsize
        for shape, dtype in headers.values()
    )
    stored = sum(data.zip.getinfo(f"{key}.npy").compress_size for key in headers)
    check_model_size(path, expanded, stored)


def _npy_header(data: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of array ``key`` of an open ``.npz``, from its header alone."""
    with data.zip.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(fh)
    return shape, dtype
