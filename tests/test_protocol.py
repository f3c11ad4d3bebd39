"""The model protocol: a model that is not Keras is a class and a registry entry, and the detector needs nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from rareevent import scaling, windows
from rareevent.detector import RareEventDetector
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, Architecture
from rareevent.protocol import FitOptions, FitReport, ModelConfig, TrainingData

from .conftest import synthetic_frame

FEATURES = ["s1", "s2", "s3"]


class MeanModel:
    """Reconstructs every target as its mean over the (scaled) normal training windows: no Keras, no epochs."""

    file: ClassVar[str] = "model.mean.npy"
    trained_by_epochs: ClassVar[bool] = False
    reads_masks: ClassVar[bool] = False

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.mean = np.zeros(len(config.targets), np.float32)

    @classmethod
    def create(cls, config: ModelConfig) -> MeanModel:
        return cls(config)

    @classmethod
    def load(cls, folder: Path, config: ModelConfig) -> MeanModel:
        model = cls(config)
        model.mean = np.load(folder / cls.file, allow_pickle=False)
        if model.mean.shape != (len(config.targets),):
            raise RareEventError(
                f"{folder / cls.file}: {model.mean.shape} values, expected {len(config.targets)}"
            )
        return model

    def fit(self, data: TrainingData, options: FitOptions) -> FitReport:
        self.mean = data.targets(data.train).mean(axis=(0, 1)).astype(np.float32)
        return FitReport(
            {
                "loss": [],
                "val_loss": [
                    float(
                        np.square(
                            data.targets(data.valid)
                            - self.predict_on_batch(
                                data.inputs(data.valid, options.seed)
                            )
                        ).mean()
                    )
                ],
            }
        )

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(
            self.mean, (len(inputs), inputs.shape[1], len(self.mean))
        ).astype(np.float32)

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        raise RareEventError("no encoded vector")

    def count_params(self) -> int:
        return int(self.mean.size)

    def save(self, folder: Path) -> None:
        np.save(folder / self.file, self.mean, allow_pickle=False)


def test_a_model_that_is_not_keras_is_a_class_and_a_registry_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        ARCHITECTURES, "mean", Architecture("each target's training mean", MeanModel)
    )
    frame = synthetic_frame()
    X = frame[FEATURES]
    detector = RareEventDetector(arch="mean", lookback=3, normalize=True, seed=4).fit(
        X, frame["label"]
    )
    assert isinstance(detector.model_, MeanModel)
    assert (
        detector.epochs_run_,
        detector.best_epoch_,
        detector.batch_size_,
        detector.learning_rate_,
        detector.history_["loss"],
    ) == (0, 0, None, None, [])

    # the scores are what the mean model's errors make them: per target, the mean squared distance from its mean, over the error scale
    scaled = windows.sliding_windows(
        scaling.transform(detector.scaler_, X.to_numpy(np.float64)), 3
    )[..., detector.target_features_]
    expected = (
        np.square(scaled - detector.model_.mean).mean(axis=1) / detector.error_scale_
    ).mean(axis=1)
    scores = detector.window_scores(X)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert (
        scores[np.argmax(frame["label"].to_numpy()[2:])] > detector.threshold_
    )  # the first event's first window is flagged

    folder = detector.save(tmp_path / "mean-run")
    assert sorted(path.name for path in folder.iterdir()) == [
        "detector.json",
        "model.mean.npy",
    ]
    loaded = RareEventDetector.load(folder)
    np.testing.assert_array_equal(loaded.model_.mean, detector.model_.mean)
    np.testing.assert_array_equal(loaded.window_scores(X), scores)
    assert loaded.model_.count_params() == 3


@pytest.mark.parametrize("arch", ["pca", pytest.param("ae", marks=pytest.mark.slow)])
def test_every_registered_model_saves_the_one_file_its_class_names(
    arch: str, tmp_path: Path
) -> None:
    frame = synthetic_frame()
    folder = (
        RareEventDetector(arch=arch, lookback=3, units=(4, 2), epochs=1, batch_size=64)
        .fit(frame[FEATURES])
        .save(tmp_path / arch)
    )
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["detector.json", ARCHITECTURES[arch].model.file]
    )
    assert ARCHITECTURES[arch].trained_by_epochs == (arch != "pca")
