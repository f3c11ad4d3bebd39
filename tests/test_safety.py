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
def workdir(
    tmp_path: Path, trained_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``tmp_path`` as working folder with ``runs/tiny-ae``, ``good.csv`` and an empty ``out/``."""
    shutil.copytree(trained_runs["ae"], tmp_path / "runs" / "tiny-ae")
    synthetic_frame().to_csv(tmp_path / "good.csv", index=False, float_format="%.5f")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def replace_weights(workdir: Path, model, name: str) -> Path:  # noqa: ANN001 - a keras.Model
    """A copy of the trained run whose ``model.weights.h5`` holds the weights of ``model``."""
    folder = workdir / "runs" / name
    shutil.copytree(workdir / "runs" / "tiny-ae", folder)
    (folder / "model.weights.h5").unlink()
    model.save_weights(folder / "model.weights.h5")
    return folder


# ---------------------------------------------------------------- untrusted model files


@pytest.mark.parametrize("command", ["score", "encode"])
def test_a_keras_archive_with_a_lambda_is_never_read(
    command: str, workdir: Path
) -> None:
    """A run folder is numbers only: a pickled Python lambda in a model.keras beside them is not deserialized.

    As a 0.2.0 run (format 2, whose model.keras was the whole model) it is refused by run.json's
    format; as a current run the archive is ignored and the run scores with its own weights.
    """
    import keras

    marker = workdir / "lambda-ran"
    payload = eval(
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x * 2)[1]"
    )  # noqa: S307 - the test's own payload
    inputs = keras.Input((3, 3))
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(3))(
        keras.layers.Lambda(payload)(inputs)
    )
    folder = workdir / "runs" / "lambda"
    shutil.copytree(workdir / "runs" / "tiny-ae", folder)
    keras.Model(inputs, outputs).save(folder / "model.keras")
    assert marker.exists()  # building the model ran the payload: it is live code
    marker.unlink()

    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "format_version": 2}))
    before = snapshot(workdir)
    result = invoke(
        command, "good.csv", "--run", str(folder), "--output", "out/result.csv"
    )
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(
        result, "run.json", "format version 2", "no longer loads", "train the run again"
    )
    assert snapshot(workdir) == before

    (folder / "run.json").write_text(json.dumps(record))
    result = invoke(
        command, "good.csv", "--run", str(folder), "--output", "out/result.csv"
    )
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    assert not marker.exists(), "loading the run executed the Lambda's code"


def _conv1d(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    return keras.Model(inputs, keras.layers.Conv1D(3, 2, padding="same")(inputs))


def _gru(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    x = keras.layers.GRU(4, return_sequences=True)(inputs)
    return keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.Dense(3))(x))


def _dense_only(keras):  # noqa: ANN001, ANN202
    inputs = keras.Input((3, 3))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs))


def _wrong_shape(keras):  # noqa: ANN001, ANN202
    from rareevent.model import build_model

    return build_model("ae", 3, 4, (4, 2))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_conv1d, id="conv1d"),
        pytest.param(_gru, id="gru"),
        pytest.param(_dense_only, id="dense-only"),
        pytest.param(_wrong_shape, id="right-layers-wrong-shape"),
    ],
)
def test_weights_of_another_model_are_refused(build, workdir: Path) -> None:  # noqa: ANN001
    """The model is rebuilt from detector.json; weights that do not fit it are refused, whatever model they came from."""
    import keras

    folder = replace_weights(workdir, build(keras), "odd")
    before = snapshot(workdir)
    result = invoke(
        "score", "good.csv", "--run", str(folder), "--output", "out/windows.csv"
    )
    assert result.exit_code == 2, (
        result.exit_code,
        result.stdout[-500:],
        result.stderr,
    )
    assert_one_error_line(
        result,
        "model.weights.h5",
        "not the weights of this 'ae' model",
        "retrain the run",
    )
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
    pytest.skip(
        "no folder here refuses writes (running as root without a read-only /sys)"
    )


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            (
                "score",
                "good.csv",
                "--run",
                "runs/tiny-ae",
                "--output",
                "{dir}/windows.csv",
            ),
            id="score-output",
        ),
        pytest.param(
            (
                "encode",
                "good.csv",
                "--run",
                "runs/tiny-ae",
                "--output",
                "{dir}/codes.json",
            ),
            id="encode-output",
        ),
        pytest.param(
            ("report", "runs/tiny-ae", "--plot", "{dir}/run.png"), id="report-plot"
        ),
    ],
)
def test_output_into_readonly_folder(
    command: tuple[str, ...], workdir: Path, readonly_dir: Path
) -> None:
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
        pytest.param(
            (
                "score",
                "good.csv",
                "--run",
                "runs/tiny-ae",
                "--output",
                "missing/windows.csv",
            ),
            id="score-output",
        ),
        pytest.param(
            (
                "score",
                "good.csv",
                "--run",
                "runs/tiny-ae",
                "--metrics-out",
                "missing/metrics.json",
            ),
            id="score-metrics-out",
        ),
        pytest.param(
            (
                "encode",
                "good.csv",
                "--run",
                "runs/tiny-ae",
                "--output",
                "missing/codes.csv",
            ),
            id="encode-output",
        ),
        pytest.param(
            ("report", "runs/tiny-ae", "--plot", "missing/run.png"), id="report-plot"
        ),
        pytest.param(
            ("score", "good.csv", "--run", "runs/tiny-ae", "--output", "out"),
            id="output-is-a-folder",
        ),
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
    result = invoke(
        "score",
        "bad.csv",
        "--run",
        "runs/tiny-ae",
        "--output",
        str(previous),
        "--chunk-rows",
        "100",
    )
    assert result.exit_code == 2, result.stderr
    assert_one_error_line(result, "bad.csv", "line 451")
    assert snapshot(workdir) == before


# ---------------------------------------------------------------- --overwrite replaces a run only at the very end


def train_args(data: str, *extra: str) -> list[str]:
    return [
        "train",
        data,
        *TINY,
        "--runs-dir",
        "runs",
        "--name",
        "tiny-ae",
        "--overwrite",
        *extra,
    ]


def test_overwrite_keeps_old_run_when_file_is_bad(workdir: Path) -> None:
    (workdir / "bad.csv").write_text("timestamp,s1,s1\n1,2,3\n", encoding="utf-8")
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_args("bad.csv"))
    assert result.exit_code == 2
    assert_one_error_line(result, "bad.csv", "duplicate")
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_overwrite_keeps_old_run_when_training_fails(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure comes after the model was fitted (no threshold reaches the asked precision)."""
    import rareevent.detector
    import rareevent.fitting
    from rareevent.errors import RareEventError

    def no_threshold(*args: object) -> float:
        raise RareEventError(
            "--threshold precision:0.99: no threshold reaches precision 0.99 on the validation part"
        )

    fitted = []
    train_model = rareevent.detector.RareEventDetector._train
    monkeypatch.setattr(
        rareevent.detector.RareEventDetector,
        "_train",
        lambda self, *args: fitted.append(1) or train_model(self, *args),
    )
    monkeypatch.setattr(rareevent.fitting, "choose_threshold", no_threshold)
    before = snapshot(workdir)
    result = CliRunner().invoke(
        app, train_args("good.csv", "--threshold", "precision:0.99")
    )
    assert result.exit_code == 2
    assert_one_error_line(result, "--threshold precision:0.99")
    assert fitted  # the model was fitted first
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_overwrite_keeps_old_run_when_writing_fails(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write error while the new folder is filled (disk full, say) leaves the old run and no temporary."""
    import rareevent.storage

    def failing_fsync(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rareevent.storage, "_fsync", failing_fsync)
    before = snapshot(workdir)
    result = CliRunner().invoke(app, train_args("good.csv"))
    assert (
        result.exit_code == 2
    )  # the folder cannot take the run: named, like a folder without write permission
    assert_one_error_line(result, "cannot write here (No space left on device)")
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_overwrite_keeps_old_run_when_final_rename_fails(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rareevent.storage

    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if (
            Path(dst).name == "tiny-ae" and "-old-" not in Path(src).name
        ):  # the new run's rename in fails
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(rareevent.storage.os, "rename", rename)
    monkeypatch.setattr(
        rareevent.storage, "_exchange", lambda a, b: False
    )  # the two-rename fallback
    old = snapshot(workdir / "runs" / "tiny-ae")
    result = CliRunner().invoke(app, train_args("good.csv"))
    monkeypatch.undo()
    assert result.exit_code != 0
    assert (workdir / "runs" / "tiny-ae").is_dir(), (
        f"old run gone; runs dir holds {sorted(os.listdir(workdir / 'runs'))}"
    )
    assert snapshot(workdir / "runs" / "tiny-ae") == old
    assert not [p for p in os.listdir(workdir / "runs") if p.startswith(".tmp-")]


@pytest.mark.slow
def test_overwrite_replaces_run_when_training_succeeds(workdir: Path) -> None:
    from rareevent.detector import RareEventDetector

    old_seed = RareEventDetector.read_config(workdir / "runs" / "tiny-ae").seed
    result = CliRunner().invoke(app, train_args("good.csv", "--seed", "7"))
    assert result.exit_code == 0, result.stderr
    assert (
        RareEventDetector.read_config(workdir / "runs" / "tiny-ae").seed == 7
        and old_seed == 0
    )
    assert sorted(os.listdir(workdir / "runs")) == [
        "tiny-ae"
    ]  # no temporary, no renamed-aside old run
    assert sorted(os.listdir(workdir / "runs" / "tiny-ae")) == [
        "detector.json",
        "model.weights.h5",
        "run.json",
        "scores.csv",
    ]


@pytest.mark.slow
def test_leftover_of_a_run_named_old_foo_is_not_restored_as_foo(workdir: Path) -> None:
    """Issue 9, case 5: ``.tmp-<dead pid>-old-foo``, what a run named ``old-foo`` left when killed while saving, is cleared, not renamed to ``runs/foo``."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    shutil.copytree(
        workdir / "runs" / "tiny-ae", workdir / "runs" / f".tmp-{proc.pid}-old-foo"
    )
    result = CliRunner().invoke(
        app, ["train", "good.csv", *TINY, "--runs-dir", "runs", "--name", "after"]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(workdir / "runs")) == ["after", "tiny-ae"]


def test_existing_name_without_overwrite_is_refused_before_training(
    workdir: Path,
) -> None:
    before = snapshot(workdir)
    result = CliRunner().invoke(
        app, ["train", "good.csv", *TINY, "--runs-dir", "runs", "--name", "tiny-ae"]
    )
    assert result.exit_code == 2
    assert_one_error_line(result, "tiny-ae", "already exists", "--overwrite")
    assert (
        "training" not in result.stdout
    )  # refused up front, not after minutes of training
    assert snapshot(workdir) == before
