"""Untrusted run folders, outputs that cannot be written, and ``--overwrite`` that loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import TINY, snapshot, synthetic_frame
from rareevent.cli.main import app

# ---------------------------------------------------------------- helpers


def assert_one_error_line(result, *fragments: str) -> str:  # noqa: ANN001 - a typer Result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from {lines[0]!r}"
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]

def invoke(*args: str):  # noqa: ANN201 - a typer Result
    return CliRunner().invoke(app, list(args))

@pytest.fixture
def workdir(tmp_path: Path, trained_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as working folder with ``runs/tiny-ae``, ``good.csv`` and an empty ``out/``."""
    shutil.copytree(trained_runs["ae"], tmp_path / "runs" / "tiny-ae")
    synthetic_frame().to_csv(tmp_path / "good.csv", index=False, float_format="%.5f")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path

def replace_model(workdir: Path, model, name: str) -> Path:  # noqa: ANN001 - a keras.Model
    """A copy of the trained run whose ``model.keras`` is ``model``."""
    folder = workdir / "runs" / name
    shutil.copytree(workdir / "runs" / "tiny-ae", folder)
    (folder / "model.keras").unlink()
    model.save(folder / "model.keras")
    return folder

# ---------------------------------------------------------------- untrusted model files

@pytest.mark.parametrize("command", ["score", "encode"])
def test_lambda_layer_is_refused_and_never_runs(command: str, workdir: Path) -> None:
    """Keras safe mode: a pickled Python lambda in model.keras is refused, not executed."""
    import keras

    marker = workdir / "lambda-ran"
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x * 2)[1]")  # noqa: S307 - the test's own payload
    inputs = keras.Input((3, 3))
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(3))(keras.layers.Lambda(payload)(inputs))
    folder = replace_model(workdir, keras.Model(inputs, outputs), "lambda")
    assert marker.exists()  # building the model ran the payload: it is live code
    marker.unlink()

    before = snapshot(workdir)
    result = invoke(command, "good.csv", "--run", str(folder), "--output", "out/result.csv")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result, "model.keras", "Lambda", "refused")
    assert not marker.exists(), "loading the run executed the Lambda's code"
    assert snapshot(workdir) == before

def test_tfsm_layer_is_refused_by_name(workdir: Path) -> None:
    """Issue 9, case 11: a TFSMLayer (an external SavedModel) is named as such, not called a Lambda layer."""
    import keras
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32)])
        def serve(self, x):  # noqa: ANN001, ANN202
            return x * 2

    module = Doubler()
    saved = workdir / "saved-model"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    inputs = keras.Input((3, 3))
    outputs = keras.layers.TFSMLayer(str(saved), call_endpoint="serving_default")(inputs)
    folder = replace_model(workdir, keras.Model(inputs, list(outputs.values())[0]), "tfsm")
    before = snapshot(workdir)
    result = invoke("score", "good.csv", "--run", str(folder), "--output", "out/windows.csv")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    line = assert_one_error_line(result, "model.keras", "refused", "TFSMLayer")
    assert "Lambda" not in line
    assert snapshot(workdir) == before

def _conv1d(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    return keras.Model(inputs, keras.layers.Conv1D(3, 2, padding="same")(inputs)), "Conv1D"

def _gru(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    x = keras.layers.GRU(4, return_sequences=True)(inputs)
    return keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.Dense(3))(x)), "GRU"

def _dense_only(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs)), "refused"

def _wrong_shape(keras):  # noqa: ANN001, ANN202
    from rareevent.model import build_model

    return build_model("ae", 3, 4, (4, 2)), "does not match"

@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_conv1d, id="conv1d"),
        pytest.param(_gru, id="gru"),
        pytest.param(_dense_only, id="dense-only"),
        pytest.param(_wrong_shape, id="right-layers-wrong-shape"),
    ],
)
def test_unexpected_model_is_refused(build, workdir: Path) -> None:  # noqa: ANN001
    import keras

    model, fragment = build(keras)
    folder = replace_model(workdir, model, "odd")
    before = snapshot(workdir)
    result = invoke("score", "good.csv", "--run", str(folder), "--output", "out/windows.csv")
    assert result.exit_code == 2, (result.exit_code, result.stdout[-500:], result.stderr)
    assert_one_error_line(result, "model.keras", fragment)
    assert snapshot(workdir) == before

def test_unknown_custom_layer_is_refused(workdir: Path) -> None:
    """A layer class that rareevent does not know (here: registered only while saving) is refused."""
    import keras

    @keras.saving.register_keras_serializable(package="untrusted_pkg")
    class Doubler(keras.layers.Layer):
        def call(self, x):  # noqa: ANN001, ANN202
            return x * 2

    try:
        inputs = keras.Input((3, 3))
        folder = replace_model(workdir, keras.Model(inputs, Doubler()(inputs)), "custom")
    finally:
        keras.saving.get_custom_objects().pop("untrusted_pkg>Doubler", None)
    before = snapshot(workdir)
    result = invoke("score", "good.csv", "--run", str(folder))
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result, "model.keras")
    assert snapshot(workdir) == before

# ---------------------------------------------------------------- outputs that cannot be written

@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot create files in (``/sys`` when running as root, where chmod does not bind)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    probe = folder / "probe"
    try:
        probe.touch()
    except PermissionError:
        yield folder
        folder.chmod(stat.S_IRWXU)
        return
    probe.unlink()
    folder.chmod(stat.S_IRWXU)
    try:
        (Path("/sys") / "rareevent-probe").touch()
    except PermissionError:
        yield Path("/sys")
        return
    except OSError:
        pass
    pytest.skip("no folder here refuses writes (running as root without a read-only /sys)")

@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("score", "good.csv", "--run", "runs/tiny-ae", "--output", "{dir}/windows.csv"), id="score-output"),
        pytest.param(("encode", "good.csv", "--run", "runs/tiny-ae", "--output", "{dir}/codes.json"), id="encode-output"),
        pytest.param(("report", "runs/tiny-ae", "--plot", "{dir}/run.png"), id="report-plot"),
    ],
)
def test_output_into_readonly_folder(command: tuple[str, ...], workdir: Path, readonly_dir: Path) -> None:
    before_dir = sorted(os.listdir(readonly_dir))
    before = snapshot(workdir)
    result = invoke(*(part.format(dir=readonly_dir) for part in command))
    assert sorted(os.listdir(readonly_dir)) == before_dir
    assert snapshot(workdir) == before
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result, str(readonly_dir))

@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("score", "good.csv", "--run", "runs/tiny-ae", "--output", "missing/windows.csv"), id="score-output"),
        pytest.param(("score", "good.csv", "--run", "runs/tiny-ae", "--metrics-out", "missing/metrics.json"), id="score-metrics-out"),
        pytest.param(("encode", "good.csv", "--run", "runs/tiny-ae", "--output", "missing/codes.csv"), id="encode-output"),
        pytest.param(("report", "runs/tiny-ae", "--plot", "missing/run.png"), id="report-plot"),
        pytest.param(("score", "good.csv", "--run", "runs/tiny-ae", "--output", "out"), id="output-is-a-folder"),
    ],
)
def test_output_into_missing_folder(command: tuple[str, ...], workdir: Path) -> None:
    before = snapshot(workdir)
    result = invoke(*command)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result)
    assert snapshot(workdir) == before
    assert not (workdir / "missing").exists()

def test_failed_score_keeps_previous_output(workdir: Path) -> None:
    """An output file is replaced only when scoring succeeds."""
    previous = workdir / "out" / "windows.csv"
    previous.write_text("row,error\n0,0.5\n", encoding="utf-8")
    lines = (workdir / "good.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[450].split(",")
    cells[1] = "oops"  # s1 of file line 451, in the fifth chunk of 100 rows
    lines[450] = ",".join(cells)
    (workdir / "bad.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(workdir)
    result = invoke("score", "bad.csv", "--run", "runs/tiny-ae", "--output", str(previous), "--chunk-rows", "100")
    assert result.exit_code == 2, result.stderr
    assert_one_error_line(result, "bad.csv", "line 451")
    assert snapshot(workdir) == before

# ---------------------------------------------------------------- --overwrite replaces a run only at the very end

def train_args(data: str, *extra: str) -> list[str]:
    return ["train", data, *TINY, "--runs-dir", "runs", "--name", "tiny-ae", "--overwrite", *extra]

def test_overwrite_keeps_old_run_when_file_is_bad(workdir: Path) -> None:
    (workdir / "bad.csv").write_text("timestamp,s1,s1\n1,2,3\n", encoding="utf-8")
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_args("bad.csv"))
    assert result.exit_code == 2
    assert_one_error_line(result, "bad.csv", "duplicate")
    assert snapshot(workdir) == before


def test_overwrite_keeps_old_run_when_training_fails(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure comes after the model was fitted (no threshold reaches the asked precision)."""
    import rareevent.detector
    from rareevent.errors import RareEventError

    def no_threshold(*args: object) -> float:
        raise RareEventError("--threshold precision:0.99: no threshold reaches precision 0.99 on the validation part")

    fitted = []
    train_model = rareevent.detector.RareEventDetector._train
    monkeypatch.setattr(rareevent.detector.RareEventDetector, "_train", lambda self, *args: fitted.append(1) or train_model(self, *args))
    monkeypatch.setattr(rareevent.detector, "choose_threshold", no_threshold)
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_args("good.csv", "--threshold", "precision:0.99"))
    assert result.exit_code == 2
    assert_one_error_line(result, "--threshold precision:0.99")
    assert fitted  # the model was fitted first
    assert snapshot(workdir) == before


def test_overwrite_keeps_old_run_when_writing_fails(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write error while the new folder is filled (disk full, say) leaves the old run and no temporary."""
    import rareevent.storage

    def failing_fsync(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rareevent.storage, "_fsync", failing_fsync)
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_args("good.csv"))
    assert result.exit_code == 1  # not a data error: something unexpected
    assert_one_error_line(result, "No space left")
    assert snapshot(workdir) == before


def test_overwrite_keeps_old_run_when_final_rename_fails(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rareevent.storage

    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "tiny-ae" and "-old-" not in Path(src).name:  # the new run's rename in fails
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(rareevent.storage.os, "rename", rename)
    monkeypatch.setattr(rareevent.storage, "_exchange", lambda a, b: False)  # the two-rename fallback
    old = snapshot(workdir / "runs" / "tiny-ae")
    result = CliRunner().invoke(app, train_args("good.csv"))
    monkeypatch.undo()
    assert result.exit_code != 0
    assert (workdir / "runs" / "tiny-ae").is_dir(), f"old run gone; runs dir holds {sorted(os.listdir(workdir / 'runs'))}"
    assert snapshot(workdir / "runs" / "tiny-ae") == old
    assert not [p for p in os.listdir(workdir / "runs") if p.startswith(".tmp-")]

def test_overwrite_replaces_run_when_training_succeeds(workdir: Path) -> None:
    old_record = json.loads((workdir / "runs" / "tiny-ae" / "run.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(app, train_args("good.csv", "--seed", "7"))
    assert result.exit_code == 0, result.stderr
    record = json.loads((workdir / "runs" / "tiny-ae" / "run.json").read_text(encoding="utf-8"))
    assert record["seed"] == 7 and old_record["seed"] == 0
    assert sorted(os.listdir(workdir / "runs")) == ["tiny-ae"]  # no temporary, no renamed-aside old run
    assert sorted(os.listdir(workdir / "runs" / "tiny-ae")) == ["model.keras", "run.json", "scores.csv"]

def test_leftover_of_a_run_named_old_foo_is_not_restored_as_foo(workdir: Path) -> None:
    """Issue 9, case 5: ``.tmp-<dead pid>-old-foo``, what a run named ``old-foo`` left when killed while saving, is cleared, not renamed to ``runs/foo``."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    shutil.copytree(workdir / "runs" / "tiny-ae", workdir / "runs" / f".tmp-{proc.pid}-old-foo")
    result = CliRunner().invoke(app, ["train", "good.csv", *TINY, "--runs-dir", "runs", "--name", "after"])
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(workdir / "runs")) == ["after", "tiny-ae"]

def test_existing_name_without_overwrite_is_refused_before_training(workdir: Path) -> None:
    before = snapshot(workdir)
    result = CliRunner().invoke(app, ["train", "good.csv", *TINY, "--runs-dir", "runs", "--name", "tiny-ae"])
    assert result.exit_code == 2
    assert_one_error_line(result, "tiny-ae", "already exists", "--overwrite")
    assert "training" not in result.stdout  # refused up front, not after minutes of training
    assert snapshot(workdir) == before
