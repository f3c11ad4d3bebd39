"""The Python API: the detector as a scikit-learn estimator and the one saved artifact, lazy exports, the README example."""

from __future__ import annotations

import ast
import os
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
from rareevent.detector import DETECTOR_FILE, FITTED, RareEventDetector, stop_between_batches
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
    return RareEventDetector(**TINY, smooth=3, normalize=True, margin=1.5, seed=3).fit(frame[FEATURES], frame["label"])


def assert_same_value(name: str, ours: Any, theirs: Any) -> None:
    if name == "scaler_":
        np.testing.assert_array_equal(ours.mean_, theirs.mean_)
        np.testing.assert_array_equal(ours.scale_, theirs.scale_)
    elif name == "model_":
        assert type(ours) is type(theirs)
        ours_w = ours.get_weights() if hasattr(ours, "get_weights") else [ours.mean, ours.components, np.asarray(ours.targets)]
        theirs_w = theirs.get_weights() if hasattr(theirs, "get_weights") else [theirs.mean, theirs.components, np.asarray(theirs.targets)]
        assert len(ours_w) == len(theirs_w) > 0
        for a, b in zip(ours_w, theirs_w, strict=True):
            np.testing.assert_array_equal(a, b)
    elif isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    else:
        assert ours == theirs, name


@pytest.mark.parametrize("arch", ["ae", "pca"])
def test_every_parameter_and_learned_attribute_survives_save_and_load(frame: pd.DataFrame, tmp_path: Path, arch: str) -> None:
    detector = RareEventDetector(**TINY, arch=arch, smooth=3, normalize=True, margin=1.5, seed=3, patience=2, learning_rate=0.002, context=[0])
    detector.fit(frame[FEATURES], frame["label"])
    folder = detector.save(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == sorted([DETECTOR_FILE, "model.npz" if arch == "pca" else "model.weights.h5"])
    loaded = RareEventDetector.load(folder)
    assert loaded.get_params() == detector.get_params()
    learned = sorted(k for k in vars(detector) if k.endswith("_") and not k.startswith("_"))
    assert learned == sorted([*FITTED, "model_"])  # a new learned attribute must be saved too
    assert sorted(k for k in vars(loaded) if k.endswith("_") and not k.startswith("_")) == learned
    for name in learned:
        assert_same_value(name, getattr(loaded, name), getattr(detector, name))
    assert detector.context_features_ == [0] and detector.target_features_ == [1, 2]
    np.testing.assert_array_equal(loaded.decision_function(frame[FEATURES]), detector.decision_function(frame[FEATURES]))


def test_fit_records_feature_names_and_splits_in_time_order(fitted: RareEventDetector, frame: pd.DataFrame) -> None:
    assert fitted.feature_names_in_ == FEATURES
    assert fitted.n_features_in_ == 3
    n_valid = round(len(frame) * 0.2)
    assert len(fitted.decision_scores_) == n_valid - 3 + 1  # every window of the last 20% of rows
    assert fitted.labels_.tolist() == (fitted.decision_scores_ >= fitted.threshold_).astype(int).tolist()
    # the columns of a DataFrame are taken by name, in any order
    shuffled = frame[["s3", "timestamp", "s1", "s2"]]
    np.testing.assert_array_equal(fitted.decision_function(shuffled), fitted.decision_function(frame[FEATURES].to_numpy()))
    with pytest.raises(RareEventError, match="X lacks the feature column"):
        fitted.decision_function(frame[["s1", "s2"]])


def test_an_array_fit_names_its_columns(frame: pd.DataFrame) -> None:
    detector = RareEventDetector(**TINY, validation_fraction=0.3).fit(frame[FEATURES].to_numpy())
    assert detector.feature_names_in_ == ["x0", "x1", "x2"]
    assert len(detector.decision_scores_) == round(len(frame) * 0.3) - 2
    assert detector.threshold_strategy_ == "pot:0.001"  # without labels
    with pytest.raises(RareEventError, match="X has 2 columns; the detector was fitted on 3"):
        detector.predict(frame[["s1", "s2"]].to_numpy())


@pytest.mark.parametrize("smooth", [1, 2, 5])
def test_decision_function_and_predict_agree(frame: pd.DataFrame, fitted: RareEventDetector, smooth: int) -> None:
    detector = clone(fitted).set_params(smooth=smooth)
    detector.fit(frame[FEATURES], frame["label"])
    scores = detector.decision_function(frame[FEATURES])
    flags = detector.predict(frame[FEATURES])
    assert len(scores) == len(flags) == len(frame) - 2
    assert flags.dtype == np.int8
    np.testing.assert_array_equal(flags, (scores >= detector.threshold_).astype(np.int8))
    assert 0 < flags.sum() < len(flags)
    # and the validation scores fit stored are those decision_function gives on the validation rows
    n_valid = round(len(frame) * 0.2)
    np.testing.assert_allclose(detector.decision_function(frame[FEATURES].iloc[-n_valid:]), detector.decision_scores_, rtol=1e-5)


def test_a_stop_request_is_raised_at_the_batch_end_that_sees_it(frame: pd.DataFrame) -> None:
    """The hook the CLI's Ctrl-C handler uses: asked after every batch, raised at the third; outside the block nobody asks."""
    asked: list[int] = []
    epochs: list[int] = []
    detector = RareEventDetector(**TINY)
    with stop_between_batches(lambda: asked.append(1) or len(asked) == 3), pytest.raises(KeyboardInterrupt):
        detector.fit(frame[FEATURES], on_epoch=lambda epoch, logs: epochs.append(epoch))
    assert len(asked) == 3 and epochs == []  # stopped inside the first epoch, at the third batch
    detector.fit(frame[FEATURES])
    assert len(asked) == 3 and np.isfinite(detector.threshold_)


def test_not_fitted_and_clone(fitted: RareEventDetector, frame: pd.DataFrame, tmp_path: Path) -> None:
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
    with pytest.raises(ValueError, match=r"^margin must be above 0 and at most 1000, got 0$") as info:
        RareEventDetector(margin=0).check_params()
    assert isinstance(info.value, RareEventError) and info.value.param == "margin"
    for params, message in (
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"validation_fraction": 0.95}, "validation_fraction must be above 0 and below 0.9"),
        ({"units": (4,)}, "units must be two positive integers"),
        ({"units": (100_000, 8)}, "units must be at most 4096 each, got 100000,8"),
        ({"threshold": "fbeta:0"}, "threshold 'fbeta:0': beta must be above 0"),
    ):
        with pytest.raises(RareEventError, match=f"^{re.escape(message)}"):
            RareEventDetector(**params).check_params()


def test_the_cli_names_its_options_for_the_same_errors(sensor_csv: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rareevent.cli.main import app

    runner = CliRunner()
    for args, line in (
        (["--margin", "0"], "error: --margin must be above 0 and at most 1000, got 0.0"),
        (["--batch-size", "0"], "error: --batch-size must be at least 1, got 0"),
        (["--score", "last", "--smooth", "0"], "error: --smooth must be between 1 and 100000, got 0"),
        (["--threshold", "fbeta:0"], "error: --threshold 'fbeta:0': beta must be above 0 and at most 100"),
    ):
        result = runner.invoke(app, ["train", str(sensor_csv), "--runs-dir", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == line


def test_importing_the_api_does_not_import_tensorflow() -> None:
    code = "import sys, rareevent; print(rareevent.RareEventDetector, rareevent.RareEventError, rareevent.load_run); print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("<class 'rareevent.detector.RareEventDetector'> <class 'rareevent.errors.RareEventError'> <function load_run")
    assert lines[1] == "False False"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rareevent.nothing  # noqa: B018


def test_every_architecture_comes_from_the_one_registry() -> None:
    from rareevent.cli.main import Arch, LstmArch
    from rareevent.detector import require_bottleneck
    from rareevent.model import ARCHITECTURES, LSTM_ARCHS

    assert [a.value for a in Arch] == list(ARCHITECTURES)
    assert [a.value for a in LstmArch] == list(LSTM_ARCHS) == [name for name, spec in ARCHITECTURES.items() if spec.build]
    require_bottleneck("ae")
    with pytest.raises(RareEventError, match="a 'plain' run has no encoded vector: only 'ae' runs have a bottleneck"):
        require_bottleneck("plain")


# ---------------------------------------------------------------- the README's example, as written


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def missing_names(code: str) -> list[str]:
    """Names a block imports from ``rareevent`` that this checkout does not have (yet)."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module == "rareevent":
            found += [alias.name for alias in node.names if not hasattr(rareevent, alias.name)]
    return found


def test_the_readme_has_the_examples() -> None:
    blocks = readme_blocks()
    assert len(blocks) == 2
    assert "detector.fit(sensors" in blocks[0] and "RareEventDetector.load(" in blocks[0] and "decision_function" in blocks[0]
    assert "StreamScorer(loaded)" in blocks[1] and "scorer.update(" in blocks[1] and "scorer.close()" in blocks[1]


@pytest.mark.parametrize("index", [0, 1])
def test_readme_example_runs_as_written(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each ``python`` block runs after the ones before it, in a folder holding ``sample_data``, exactly as written."""
    blocks = readme_blocks()[: index + 1]
    missing = missing_names("".join(blocks))
    if missing:
        pytest.skip(f"rareevent has no {', '.join(missing)} yet (the streaming scorer of issue 10 is a separate branch)")
    os.symlink(ROOT / "sample_data", tmp_path / "sample_data")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "pump-detector" / DETECTOR_FILE).is_file()
    assert namespace["loaded"].feature_names_in_[0] == "motor_current"
    assert "motor_current" in capsys.readouterr().out


def test_report_compares_any_two_architectures() -> None:
    """Each two architectures trained on the same file are paired, the newest run of each, in the registry's order."""
    from rareevent.report import comparisons

    def row(name: str, arch: str, created: str, f1: float, digest: str = "d1") -> dict[str, Any]:
        metrics = {**dict.fromkeys(("precision", "recall", "pr_auc", "roc_auc", "events_detected", "false_alarms"), 1), "f1": f1}
        return {"name": name, "arch": arch, "created": created, "input_sha256": digest, "input_file": f"/data/{digest}.csv", "metrics_part": "test", "metrics": {"valid": None, "test": metrics}, "parameters": 1, "train_seconds": 1}

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
    assert [(p["archs"], p["better_f1"]) for p in comparisons(summaries)] == [(["ae", "plain"], "tie"), (["ae", "pca"], "pca"), (["plain", "pca"], "pca")]
