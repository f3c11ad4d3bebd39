"""The Python API: the detector as a scikit-learn estimator and the one saved artifact, lazy exports, the README example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import rareevent
from rareevent.detector import (
    DETECTOR_FILE,
    FITTED,
    ROW_RESULTS,
    RareEventDetector,
    stop_between_batches,
)
from rareevent.errors import RareEventError
from tests.conftest import synthetic_frame

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ["s1", "s2", "s3"]
TINY = {"lookback": 3, "units": (4, 2), "epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame()


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> RareEventDetector:
    return RareEventDetector(**TINY, smooth=3, normalize=True, margin=1.5, seed=3).fit(
        frame[FEATURES], frame["label"]
    )


def assert_same_value(name: str, ours: Any, theirs: Any) -> None:
    if name == "scaler_":
        np.testing.assert_array_equal(ours.mean_, theirs.mean_)
        np.testing.assert_array_equal(ours.scale_, theirs.scale_)
    elif name == "model_":
        assert type(ours) is type(theirs)
        ours_w = (
            ours.net.get_weights()
            if hasattr(ours, "net")
            else [ours.mean, ours.components, np.asarray(ours.targets)]
        )
        theirs_w = (
            theirs.net.get_weights()
            if hasattr(theirs, "net")
            else [theirs.mean, theirs.components, np.asarray(theirs.targets)]
        )
        assert len(ours_w) == len(theirs_w) > 0
        for a, b in zip(ours_w, theirs_w, strict=True):
            np.testing.assert_array_equal(a, b)
    elif isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    else:
        assert ours == theirs, name


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ae", "pca"])
def test_every_parameter_and_learned_attribute_survives_save_and_load(
    frame: pd.DataFrame, tmp_path: Path, arch: str
) -> None:
    detector = RareEventDetector(
        **TINY,
        arch=arch,
        smooth=3,
        normalize=True,
        margin=1.5,
        seed=3,
        patience=2,
        learning_rate=0.002,
        context=[0],
    )
    detector.fit(frame[FEATURES], frame["label"])
    folder = detector.save(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [DETECTOR_FILE, "model.npz" if arch == "pca" else "model.weights.h5"]
    )
    loaded = RareEventDetector.load(folder)
    assert loaded.get_params() == detector.get_params()
    learned = sorted(
        k for k in vars(detector) if k.endswith("_") and not k.startswith("_")
    )
    assert learned == sorted(
        [*FITTED, "model_", *ROW_RESULTS]
    )  # a new learned attribute must be saved too
    saved = sorted(
        [*FITTED, "model_"]
    )  # not the per-row results of the data fit was given
    assert (
        sorted(k for k in vars(loaded) if k.endswith("_") and not k.startswith("_"))
        == saved
    )
    for name in saved:
        assert_same_value(name, getattr(loaded, name), getattr(detector, name))
    assert detector.context_features_ == [0] and detector.target_features_ == [1, 2]
    np.testing.assert_array_equal(
        loaded.decision_function(frame[FEATURES]),
        detector.decision_function(frame[FEATURES]),
    )


@pytest.mark.slow
def test_fit_records_feature_names_and_splits_in_time_order(
    fitted: RareEventDetector, frame: pd.DataFrame
) -> None:
    assert (
        isinstance(fitted.feature_names_in_, np.ndarray)
        and fitted.feature_names_in_.dtype == object
    )  # as scikit-learn holds it
    assert fitted.feature_names_in_.tolist() == FEATURES
    assert fitted.n_features_in_ == 3
    n_valid = round(len(frame) * 0.2)
    assert (
        len(fitted.validation_scores_) == n_valid - 3 + 1
    )  # every window of the last 20% of rows
    assert (
        fitted.validation_labels_.tolist()
        == (fitted.validation_scores_ >= fitted.threshold_).astype(int).tolist()
    )
    # the columns of a DataFrame are taken by name, in any order; others are refused
    shuffled = frame[["s3", "s1", "s2"]]
    np.testing.assert_array_equal(
        fitted.decision_function(shuffled),
        fitted.decision_function(frame[FEATURES].to_numpy()),
    )
    with pytest.raises(RareEventError, match="X has column.*'timestamp' the detector"):
        fitted.decision_function(frame[["s3", "timestamp", "s1", "s2"]])
    with pytest.raises(RareEventError, match="X lacks the feature column"):
        fitted.decision_function(frame[["s1", "s2"]])


@pytest.mark.slow
def test_an_array_fit_names_its_columns(frame: pd.DataFrame) -> None:
    detector = RareEventDetector(**TINY, validation_fraction=0.3).fit(
        frame[FEATURES].to_numpy()
    )
    assert detector.feature_names_in_.tolist() == ["x0", "x1", "x2"]
    assert len(detector.validation_scores_) == round(len(frame) * 0.3) - 2
    assert detector.threshold_strategy_ == "pot:0.001"  # without labels
    with pytest.raises(
        RareEventError,
        match="^X has 2 features, but RareEventDetector is expecting 3 features as input$",
    ):
        detector.predict(frame[["s1", "s2"]].to_numpy())


@pytest.mark.slow
@pytest.mark.parametrize("smooth", [1, 2, 5])
def test_decision_function_and_predict_agree(
    frame: pd.DataFrame, fitted: RareEventDetector, smooth: int
) -> None:
    detector = clone(fitted).set_params(smooth=smooth)
    detector.fit(frame[FEATURES], frame["label"])
    scores = detector.window_scores(frame[FEATURES])
    flags = detector.window_flags(frame[FEATURES])
    assert len(scores) == len(flags) == len(frame) - 2  # one per window
    assert flags.dtype == np.int8
    np.testing.assert_array_equal(
        flags, (scores >= detector.threshold_).astype(np.int8)
    )
    assert 0 < flags.sum() < len(flags)
    # one per row: row i gets the window ending at row i; the first lookback - 1 = 2 rows a shorter one
    per_row, labels = (
        detector.decision_function(frame[FEATURES]),
        detector.predict(frame[FEATURES]),
    )
    assert (
        per_row.shape == labels.shape == (len(frame),)
        and per_row.dtype == np.float64
        and labels.dtype == np.int8
    )
    assert np.isfinite(per_row[:2]).all() and labels[:2].tolist() == [0, 0]
    np.testing.assert_array_equal(per_row[2:], scores)
    np.testing.assert_array_equal(labels[2:], flags)
    np.testing.assert_array_equal(
        detector.score_samples(frame[FEATURES]), -per_row
    )  # scikit-learn's sign: higher = more normal
    # fit scored every row it was given (PyOD's decision_scores_ and labels_), as decision_function and predict do
    np.testing.assert_array_equal(detector.decision_scores_, per_row)
    np.testing.assert_array_equal(detector.labels_, labels)
    # and the validation scores fit stored are those window_scores gives on the validation rows
    n_valid = round(len(frame) * 0.2)
    np.testing.assert_allclose(
        detector.window_scores(frame[FEATURES].iloc[-n_valid:]),
        detector.validation_scores_,
        rtol=1e-5,
    )


@pytest.mark.slow
def test_a_stop_request_is_raised_at_the_batch_end_that_sees_it(
    frame: pd.DataFrame,
) -> None:
    """The hook the CLI's Ctrl-C handler uses: asked after every batch, raised at the third; outside the block nobody asks."""
    asked: list[int] = []
    epochs: list[int] = []
    detector = RareEventDetector(**TINY)
    with (
        stop_between_batches(lambda: asked.append(1) or len(asked) == 3),
        pytest.raises(KeyboardInterrupt),
    ):
        detector.fit(frame[FEATURES], on_epoch=lambda epoch, logs: epochs.append(epoch))
    assert (
        len(asked) == 3 and epochs == []
    )  # stopped inside the first epoch, at the third batch
    detector.fit(frame[FEATURES])
    assert len(asked) == 3 and np.isfinite(detector.threshold_)


def test_not_fitted_and_clone(
    fitted: RareEventDetector, frame: pd.DataFrame, tmp_path: Path
) -> None:
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "threshold_")
    for call in (fresh.decision_function, fresh.predict):
        with pytest.raises(NotFittedError):
            call(frame[FEATURES])
    with pytest.raises(NotFittedError):
        fresh.save(tmp_path / "x")
    assert fresh.set_params(margin=2.0, units=(8, 4)) is fresh and fresh.margin == 2.0


def test_parameters_are_checked_in_library_terms() -> None:
    with pytest.raises(
        ValueError, match=r"^margin must be above 0 and at most 1000, got 0$"
    ) as info:
        RareEventDetector(margin=0).check_params()
    assert isinstance(info.value, RareEventError) and info.value.param == "margin"
    for params, message in (
        ({"batch_size": 0}, "batch_size must be between 1 and 1048576, got 0"),
        (
            {"validation_fraction": 0.95},
            "validation_fraction must be above 0 and below 0.9",
        ),
        ({"units": (4,)}, "units must be two positive integers"),
        ({"units": (100_000, 8)}, "units must be at most 4096 each, got 100000,8"),
        ({"threshold": "fbeta:0"}, "threshold 'fbeta:0': beta must be above 0"),
    ):
        with pytest.raises(RareEventError, match=f"^{re.escape(message)}"):
            RareEventDetector(**params).check_params()


@pytest.mark.slow
def test_the_cli_names_its_options_for_the_same_errors(
    sensor_csv: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from rareevent.cli.main import app

    runner = CliRunner()
    for args, line in (
        (
            ["--margin", "0"],
            "error: --margin must be above 0 and at most 1000, got 0.0",
        ),
        (
            ["--batch-size", "0"],
            "error: --batch-size must be between 1 and 1048576, got 0",
        ),
        (
            ["--score", "last", "--smooth", "0"],
            "error: --smooth must be between 1 and 100000, got 0",
        ),
        (
            ["--threshold", "fbeta:0"],
            "error: --threshold 'fbeta:0': beta must be above 0 and at most 100",
        ),
    ):
        result = runner.invoke(
            app, ["train", str(sensor_csv), "--runs-dir", str(tmp_path), *args]
        )
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == line


@pytest.mark.slow
def test_importing_the_api_does_not_import_tensorflow() -> None:
    code = "import sys, rareevent; print(rareevent.RareEventDetector, rareevent.RareEventError, rareevent.load_run); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "<class 'rareevent.detector.RareEventDetector'> <class 'rareevent.errors.RareEventError'> <function load_run"
    )
    assert lines[1] == "False False"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rareevent.nothing  # noqa: B018


def test_every_architecture_comes_from_the_one_registry() -> None:
    from rareevent.cli.options import Arch, LstmArch
    from rareevent.detector import require_bottleneck
    from rareevent.model import ARCHITECTURES, LSTM_ARCHS

    assert [a.value for a in Arch] == [
        *ARCHITECTURES,
        "auto",
    ]  # auto picks one of them: never a run's arch
    assert (
        [a.value for a in LstmArch]
        == list(LSTM_ARCHS)
        == [name for name, spec in ARCHITECTURES.items() if spec.build]
    )
    require_bottleneck("ae")
    with pytest.raises(
        RareEventError,
        match="a 'plain' run has no encoded vector: only 'ae' runs have a bottleneck",
    ):
        require_bottleneck("plain")


def test_report_compares_any_two_architectures() -> None:
    """Each two architectures trained on the same file are paired, the newest run of each, in the registry's order."""
    from rareevent.report import comparisons

    def row(
        name: str, arch: str, created: str, f1: float, digest: str = "d1"
    ) -> dict[str, Any]:
        metrics = {
            **dict.fromkeys(
                (
                    "precision",
                    "recall",
                    "pr_auc",
                    "roc_auc",
                    "events_detected",
                    "false_alarms",
                ),
                1,
            ),
            "f1": f1,
        }
        return {
            "name": name,
            "arch": arch,
            "created": created,
            "input_sha256": digest,
            "input_file": f"/data/{digest}.csv",
            "metrics_part": "test",
            "metrics": {"valid": None, "test": metrics},
            "parameters": 1,
            "train_seconds": 1,
        }

    summaries = [
        row("pca-1", "pca", "2026-01-01", 0.9),
        row("ae-old", "ae", "2026-01-01", 0.1),
        row("ae-new", "ae", "2026-01-02", 0.5),
        row("plain-other-file", "plain", "2026-01-03", 0.7, digest="d2"),
    ]
    pairs = comparisons(summaries)
    assert [pair["archs"] for pair in pairs] == [["ae", "pca"]]
    (pair,) = pairs
    assert (pair["ae"], pair["pca"], pair["better_f1"]) == ("ae-new", "pca-1", "pca")
    assert pair["metrics"]["f1"] == {"ae": 0.5, "pca": 0.9}
    summaries.append(row("plain-1", "plain", "2026-01-04", 0.5))
    assert [(p["archs"], p["better_f1"]) for p in comparisons(summaries)] == [
        (["ae", "plain"], "tie"),
        (["ae", "pca"], "pca"),
        (["plain", "pca"], "pca"),
    ]
