"""Issue 21, items 8-16 and 18-20: inputs that passed validation and then crashed, were accepted silently, or got the wrong message.

Each test is one reproduction of the issue. A refused input is one
``error:`` line naming the file and field, exit 2, and no traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import DETECTOR_FILE, PCA_FILE, WEIGHTS_FILE
from rareevent.runs import RUN_FILE

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000


def invoke(*args: Any) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def error_line(result: Any) -> str:
    """The one ``error:`` line of a refused command (exit 2)."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> Path:
    """A ``pca`` run (no Keras needed to score it), trained through the library."""
    from rareevent.detector import RareEventDetector
    from rareevent.training import save, train

    result = train(sensor_csv, RareEventDetector(arch="pca", lookback=3), name="pca")
    return save(result, tmp_path_factory.mktemp("pca-runs"))


def copy_run(source: Path, runs_dir: Path, name: str = "r") -> Path:
    target = runs_dir / name
    shutil.copytree(source, target)
    return target


def edit_json(path: Path, change: Any) -> None:
    """Apply ``change`` (a function of the parsed JSON) to ``path``, or replace the file with the text ``change``."""
    if isinstance(change, str):
        path.write_text(change, encoding="utf-8")
        return
    value = json.loads(path.read_text(encoding="utf-8"))
    change(value)
    path.write_text(json.dumps(value), encoding="utf-8")


def set_fitted(name: str, value: Any) -> Any:
    return lambda config: config["fitted"].__setitem__(name, value)


def rewrite_npz(folder: Path, **arrays: np.ndarray) -> None:
    with np.load(folder / PCA_FILE) as data:
        saved = dict(data)
    saved.update(arrays)
    np.savez(folder / PCA_FILE, **saved)


# ---------------------------------------------------------------- 8. deeply nested JSON


@pytest.mark.parametrize("damaged", [RUN_FILE, DETECTOR_FILE])
def test_deeply_nested_json_is_skipped_by_report_and_score_and_refused_by_name(tmp_path: Path, pca_run: Path, sensor_csv: Path, damaged: str) -> None:
    runs_dir = tmp_path / "runs"
    copy_run(pca_run, runs_dir, "good")
    bad = copy_run(pca_run, runs_dir, "zz-bad")  # the same `created`: the name makes it the newest
    edit_json(bad / damaged, DEEP)
    report = invoke("report", "--runs-dir", runs_dir)
    assert report.exit_code == 0, report.output
    assert f"warning: skipped: {bad / damaged}: not valid JSON (nested too deeply)" in report.output
    assert report.output.count("skipped:") == 1 and "runs: test metrics" in report.output
    scored = invoke("score", sensor_csv, "--runs-dir", runs_dir)
    assert scored.exit_code == 0, scored.output
    assert "with run pca" in scored.output
    # a run.json that cannot be read has no `created`, so it is never the newest; a newest run that fails is skipped aloud
    assert ("skipped:" in scored.output) == (damaged == DETECTOR_FILE)
    named = invoke("score", sensor_csv, "--runs-dir", runs_dir, "--run", "zz-bad")
    assert error_line(named) == f"error: {bad / damaged}: not valid JSON (nested too deeply)"


# ---------------------------------------------------------------- 9, 16. detector.json values refused at load


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_features_in_", 3.0),
        ("error_scale_", [1e39, 1e39, 1e39]),  # inf as float32: every score 0
        ("error_scale_", [1e-50, 1e-50, 1e-50]),  # 0 as float32: every score 3.4e38
        ("decision_scores_", "1e39"),
    ],
)
def test_detector_values_that_break_as_float32_or_int_are_refused_at_load(tmp_path: Path, pca_run: Path, sensor_csv: Path, field: str, value: Any) -> None:
    run = copy_run(pca_run, tmp_path)
    config = json.loads((run / DETECTOR_FILE).read_text(encoding="utf-8"))
    if value == "1e39":
        value = [1e39] * len(config["fitted"][field])
    edit_json(run / DETECTOR_FILE, set_fitted(field, value))
    line = error_line(invoke("score", sensor_csv, "--run", run))
    assert line.startswith(f"error: {run / DETECTOR_FILE}: field 'fitted.{field}' has an invalid value")


def test_huge_batch_size_is_refused_before_update_trains(tmp_path: Path, trained_runs: dict[str, Path], sensor_csv: Path) -> None:
    run = copy_run(trained_runs["ae"], tmp_path)
    edit_json(run / DETECTOR_FILE, set_fitted("batch_size_", 2**64))
    line = error_line(invoke("update", run, sensor_csv, "--runs-dir", tmp_path / "out", "--epochs", 1))
    assert line == f"error: {run / DETECTOR_FILE}: field 'fitted.batch_size_' has an invalid value {2**64}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("field", "value"), [("series", [1, 2]), ("group_column", 5), ("series", [{"name": "a", "file": "a.csv", "rows": "9", "metrics": {}}])])
def test_run_json_fleet_fields_are_checked_and_report_skips_the_run(tmp_path: Path, pca_run: Path, field: str, value: Any) -> None:
    runs_dir = tmp_path / "runs"
    copy_run(pca_run, runs_dir, "good")
    bad = copy_run(pca_run, runs_dir, "bad")
    edit_json(bad / RUN_FILE, lambda record: record.__setitem__(field, value))
    report = invoke("report", "--runs-dir", runs_dir)
    assert report.exit_code == 0, report.output
    assert f"warning: skipped: {bad / RUN_FILE}: field {field!r} has an invalid value" in report.output
    assert error_line(invoke("report", bad)).startswith(f"error: {bad / RUN_FILE}: field {field!r} has an invalid value")


# ---------------------------------------------------------------- 9, 10, 16. the pca model's arrays


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"mean": np.array(["a", "b", "c"])}, "array 'mean' holds <U1 values; it must hold real numbers"),
        ({"mean": np.array([1 + 1j, 2, 3])}, "array 'mean' holds complex128 values; it must hold real numbers"),
        ({"mean": np.array([1e39, 0.0, 0.0])}, "PCA model holds values that are not finite as 32-bit floats"),
        ({"components": np.zeros((50, 3), np.float32)}, "array 'components' has shape (50, 3); detector.json's 3 features need (k, 3) with k at most 3"),
        ({"components": np.zeros((2, 4), np.float32)}, "array 'components' has shape (2, 4)"),
        ({"mean": np.zeros(5, np.float32)}, "array 'mean' has shape (5,); detector.json's 3 features need (3,)"),
        ({"targets": np.zeros(10**6, np.int64)}, "array 'targets' has shape (1000000,); detector.json's 3 features need (k,) with k at most 3"),
        ({"targets": np.array([0.0, 1.0, 2.0])}, "array 'targets' holds float64 values; it must hold integers"),
        ({"extra": np.zeros(1)}, "a PCA model holds exactly the arrays components, mean and targets, not components, extra, mean, targets"),
    ],
)
def test_pca_arrays_of_wrong_kind_or_shape_are_refused_at_load(tmp_path: Path, pca_run: Path, sensor_csv: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    run = copy_run(pca_run, tmp_path)
    rewrite_npz(run, **arrays)
    assert error_line(invoke("score", sensor_csv, "--run", run)).startswith(f"error: {run / PCA_FILE}: {message}")


def test_pca_shapes_are_read_from_the_headers_before_the_arrays(tmp_path: Path, pca_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A huge ``components`` is refused without reading it: no array of the archive is loaded."""
    from rareevent.model import PCAModel

    run = copy_run(pca_run, tmp_path)
    rewrite_npz(run, components=np.zeros((100_000, 3), np.float32))
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: pytest.fail(f"array {key} was read"))
    with pytest.raises(ValueError, match=r"array 'components' has shape \(100000, 3\)"):
        PCAModel.load(run / PCA_FILE, n_features=3, targets=[0, 1, 2])


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_non_finite_weights_in_the_h5_are_refused_at_load(tmp_path: Path, trained_runs: dict[str, Path], sensor_csv: Path, fill: float) -> None:
    import h5py

    run = copy_run(trained_runs["ae"], tmp_path)
    with h5py.File(run / WEIGHTS_FILE, "r+") as h5:
        datasets: list[Any] = []
        h5.visititems(lambda name, item: datasets.append(item) if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None)
        for dataset in datasets:
            dataset[...] = fill
    assert error_line(invoke("score", sensor_csv, "--run", run)) == f"error: {run / WEIGHTS_FILE}: the model weights hold NaN or infinite values (hint: retrain the run)"
