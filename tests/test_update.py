"""``rareevent update``: a new run from a saved one and newer data; the saved run is never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.runs import read_record
from tests.conftest import snapshot, synthetic_frame

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
SHIFT = (
    10.0  # s2 recalibrated after maintenance: far outside the parent run's normal range
)


def invoke(*args: object) -> Any:  # noqa: ANN401 - a typer Result
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    return result


def assert_one_error_line(result: Any, *fragments: str) -> None:  # noqa: ANN401 - a typer Result
    """One ``error:`` line and nothing else but warnings and notes that training printed before it."""
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(("warning: ", "note: "))
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, float_format="%.5f")
    return path


def shifted_frame() -> pd.DataFrame:
    """A newer stretch of the same sensors: new noise, the same kind of events, and s2 shifted by ``SHIFT``."""
    frame = synthetic_frame(seed=1)
    frame["s2"] += SHIFT
    return frame


@pytest.fixture(scope="module")
def newer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(shifted_frame(), tmp_path_factory.mktemp("newer") / "newer.csv")


@pytest.fixture(scope="module")
def updated(
    tmp_path_factory: pytest.TempPathFactory,
    trained_runs: dict[str, Path],
    newer_csv: Path,
) -> dict[str, Any]:
    """``tiny-ae`` updated once on the shifted file, by the CLI; the parent's snapshot taken before."""
    runs_dir = tmp_path_factory.mktemp("update-runs")
    shutil.copytree(trained_runs["ae"], runs_dir / "tiny-ae")
    before = snapshot(runs_dir / "tiny-ae")
    result = invoke(
        "update",
        "tiny-ae",
        newer_csv,
        "--runs-dir",
        runs_dir,
        "--name",
        "tiny-ae-2",
        "--epochs",
        "2",
    )
    assert result.exit_code == 0, result.stderr
    return {"runs_dir": runs_dir, "parent_before": before, "result": result}


@pytest.fixture
def workdir(
    tmp_path: Path, trained_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``tmp_path`` as working folder with ``runs/tiny-ae`` and ``newer.csv``."""
    shutil.copytree(trained_runs["ae"], tmp_path / "runs" / "tiny-ae")
    write(shifted_frame(), tmp_path / "newer.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def read(folder: Path) -> dict[str, Any]:
    """The run's ``run.json`` as read and checked (and as it would be written again)."""
    return read_record(folder).to_json()


def read_detector(folder: Path) -> RareEventDetector:
    return RareEventDetector.read_config(folder)


# ---------------------------------------------------------------- the new run and its parent


@pytest.mark.slow
def test_parent_stays_byte_identical_and_the_new_run_is_complete(
    updated: dict[str, Any],
) -> None:
    runs_dir = updated["runs_dir"]
    assert snapshot(runs_dir / "tiny-ae") == updated["parent_before"]
    assert sorted(p.name for p in runs_dir.iterdir()) == [
        "tiny-ae",
        "tiny-ae-2",
    ]  # no temporary left
    assert sorted(p.name for p in (runs_dir / "tiny-ae-2").iterdir()) == [
        "detector.json",
        "model.weights.h5",
        "run.json",
        "scores.csv",
    ]
    assert (
        "updated from" in updated["result"].stdout
        and "tiny-ae" in updated["result"].stdout
    )


def test_new_run_records_its_parent_and_every_field_train_writes(
    updated: dict[str, Any], newer_csv: Path
) -> None:
    runs_dir = updated["runs_dir"]
    parent, record = read(runs_dir / "tiny-ae"), read(runs_dir / "tiny-ae-2")
    assert record["parent"] == {
        "name": "tiny-ae",
        "folder": str((runs_dir / "tiny-ae").resolve()),
        "input_sha256": parent["input_sha256"],
    }
    assert set(record) == set(parent) | {"parent"}
    assert (
        record["input_sha256"]
        == hashlib.sha256(newer_csv.read_bytes()).hexdigest()
        != parent["input_sha256"]
    )
    assert record["input_file"] == str(newer_csv.resolve())
    # chronological split of the newer rows into refit and validation parts, no test part
    assert record["splits"] == {
        "train": [0, 480],
        "valid": [480, 600],
        "test": [600, 600],
    }
    assert (
        record["metrics"]["test"] is None and record["metrics"]["valid"]["events"] == 1
    )
    # the run's model, column roles and training settings carry over; the epochs are the update's
    for key in ("time_column", "label_column", "parameters"):
        assert record[key] == parent[key], key
    old, new = (
        read_detector(runs_dir / "tiny-ae"),
        read_detector(runs_dir / "tiny-ae-2"),
    )
    for key in (
        "arch",
        "lookback",
        "units",
        "activation",
        "lead",
        "score_kind",
        "smooth",
        "margin",
        "patience",
        "seed",
        "normalize",
        "feature_names_in_",
        "context_features_",
        "target_features_",
        "threshold_strategy_",
        "batch_size_",
        "learning_rate_",
    ):
        np.testing.assert_equal(getattr(new, key), getattr(old, key), err_msg=key)
    assert (new.batch_size, new.learning_rate) == (
        old.batch_size_,
        old.learning_rate_,
    )  # Adam as the run trained
    assert new.epochs == 2 and new.epochs_run_ == 2 and new.warm_start
    # the scaler is refit on the newer normal rows: it follows the shift of s2
    assert new.scaler_.mean_[1] - old.scaler_.mean_[1] == pytest.approx(SHIFT, abs=0.3)


@pytest.mark.slow
def test_shifted_data_gets_a_new_threshold_and_the_updated_run_scores_it(
    updated: dict[str, Any], newer_csv: Path, tmp_path: Path
) -> None:
    """The parent raises alarms on nearly every window of the shifted file; the updated run only around events."""
    runs_dir = updated["runs_dir"]
    assert (
        read_detector(runs_dir / "tiny-ae-2").threshold_
        != read_detector(runs_dir / "tiny-ae").threshold_
    )
    flagged = {}
    for name in ("tiny-ae", "tiny-ae-2"):
        output = tmp_path / f"{name}.csv"
        result = invoke(
            "score",
            newer_csv,
            "--run",
            name,
            "--runs-dir",
            runs_dir,
            "--output",
            output,
            "--shortest-event",
            "off",  # the thresholds alone: what update chose
        )
        assert result.exit_code == 0, result.stderr
        frame = pd.read_csv(output)
        assert len(frame) == 598
        threshold = np.float32(
            read_detector(runs_dir / name).threshold_
        )  # an f1 threshold is a window's float32 score
        assert (
            (frame["error"].astype(np.float32) >= threshold) == (frame["flagged"] == 1)
        ).all()
        flagged[name] = frame.loc[frame["label"] == 0, "flagged"].mean()
    assert flagged["tiny-ae"] > 0.9
    assert flagged["tiny-ae-2"] < 0.1


def test_report_shows_the_parent(updated: dict[str, Any]) -> None:
    runs_dir = updated["runs_dir"]
    table = invoke("report", "--runs-dir", runs_dir)
    assert table.exit_code == 0, table.stderr
    parent_row = next(line for line in table.stdout.splitlines() if "parent" in line)
    assert [cell.strip() for cell in parent_row.split("│")[1:-1]] == [
        "parent",
        "-",
        "tiny-ae",
    ]  # runs in the order they were made
    document = json.loads(invoke("report", "--runs-dir", runs_dir, "--json").stdout)
    assert {row["name"]: row["parent"] for row in document["runs"]} == {
        "tiny-ae": None,
        "tiny-ae-2": "tiny-ae",
    }


@pytest.mark.slow
def test_update_continues_the_saved_weights_instead_of_building_a_model(
    trained_runs: dict[str, Path], newer_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rareevent import model, training

    built = []
    build_model = model.build_model

    def counted(*args: object, **kwargs: object) -> object:
        built.append(args)
        return build_model(*args, **kwargs)

    monkeypatch.setattr(model, "build_model", counted)
    result = training.update(trained_runs["ae"], newer_csv, epochs=1, name="warm")
    assert (
        len(built) == 1
    )  # the saved model, rebuilt to receive its weights; training continues from it
    assert result.detector.epochs_run_ == 1 and result.record.parent.name == "tiny-ae"
    assert (
        result.detector.model_.count_params() == read(trained_runs["ae"])["parameters"]
    )


@pytest.mark.slow
def test_normal_data_without_labels_updates_with_a_quantile_threshold(
    workdir: Path,
) -> None:
    """The run picked its threshold by F1; a newer stretch without labels needs a label-free threshold, and says so."""
    write(shifted_frame().drop(columns="label"), workdir / "unlabelled.csv")
    before = snapshot(workdir)
    refused = invoke(
        "update", "tiny-ae", "unlabelled.csv", "--name", "u", "--epochs", "1"
    )
    assert refused.exit_code == 2
    assert_one_error_line(
        refused, "unlabelled.csv", "f1", "'label'", "--threshold pot (or quantile)"
    )
    assert snapshot(workdir) == before
    result = invoke(
        "update",
        "tiny-ae",
        "unlabelled.csv",
        "--name",
        "u",
        "--epochs",
        "1",
        "--threshold",
        "quantile",
        "--margin",
        "1.5",
    )
    assert result.exit_code == 0, result.stderr
    record = read(workdir / "runs" / "u")
    detector = read_detector(workdir / "runs" / "u")
    assert detector.threshold_strategy_ == "quantile:0.995" and detector.margin == 1.5
    assert (
        record["label_column"] == "label"
    )  # the run's column roles stay, so scoring a labelled file still gives metrics
    assert record["metrics"] == {"valid": None, "test": None}


# ---------------------------------------------------------------- failures leave nothing behind


def interrupt_after_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C at the end of the first epoch of continued training."""
    import keras

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(
            self, epoch: int, logs: dict[str, float] | None = None
        ) -> None:
            raise KeyboardInterrupt

    real_fit = keras.Model.fit

    def fit(self: keras.Model, *args: object, **kwargs: Any) -> object:  # noqa: ANN401
        kwargs["callbacks"] = [*kwargs["callbacks"], CtrlC()]
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)


def disk_full_while_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    import rareevent.storage

    def failing_fsync(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rareevent.storage, "_fsync", failing_fsync)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("crash", "code", "fragment"),
    [
        (interrupt_after_first_epoch, 130, "interrupted"),
        (
            disk_full_while_saving,
            2,
            "runs/crashed: cannot write here (No space left on device)",
        ),
    ],
    ids=["ctrl-c-mid-training", "write-error-mid-save"],
)
def test_crash_halfway_leaves_no_run_and_no_temporary(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, crash: Any, code: int, fragment: str
) -> None:  # noqa: ANN401
    crash(monkeypatch)
    before = snapshot(workdir)
    result = invoke(
        "update", "tiny-ae", "newer.csv", "--name", "crashed", "--epochs", "2"
    )
    assert result.exit_code == code, result.stderr
    assert_one_error_line(result, fragment)
    assert (
        snapshot(workdir) == before
    )  # no new run, no .tmp-* folder, the parent as it was


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--epochs", "0"), ("--epochs must be at least 1",)),
        (("--valid-frac", "1.5"), ("--valid-frac must be in [0, 1)",)),
        (("--valid-frac", "0.95"), ("leaves too little to train on",)),
        (("--margin", "0"), ("--margin must be above 0",)),
        (("--threshold", "best"), ("--threshold",)),
        (("--name", ".hidden"), ("--name '.hidden'",)),
        (
            ("--name", "tiny-ae", "--overwrite"),
            ("runs/tiny-ae", "run being updated", "--name"),
        ),
        (("--name", "tiny-ae"), ("already exists",)),
    ],
    ids=[
        "epochs-0",
        "valid-frac-above-1",
        "valid-frac-too-large",
        "margin-0",
        "threshold-unknown",
        "hidden-name",
        "overwrite-parent",
        "existing-name",
    ],
)
def test_bad_option_value_is_one_error_line_and_writes_nothing(
    workdir: Path, options: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    before = snapshot(workdir)
    result = invoke("update", "tiny-ae", "newer.csv", *options)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert_one_error_line(result, *fragments)
    assert "updating" not in result.stdout  # refused before any training
    assert snapshot(workdir) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [("--epochs", "many", "valid integer"), ("--fill", "zero", "'zero'")],
)
def test_option_the_parser_refuses_via_entry_point(
    tmp_path: Path, option: str, value: str, fragment: str
) -> None:
    done = subprocess.run(
        [RAREEVENT, "update", "tiny-ae", "newer.csv", option, value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1
        and lines[0].startswith("error: ")
        and option in lines[0]
        and fragment in lines[0]
    ), lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (
            lambda t: write(shifted_frame().drop(columns=["s1", "s3"]), t / "two.csv"),
            ("two.csv", "missing trained feature column(s) s1, s3"),
        ),
        (lambda t: t / "absent.csv", ("absent.csv", "file not found")),
        (
            lambda t: write(shifted_frame().head(6), t / "short.csv"),
            ("short.csv", "6 data rows are too few"),
        ),
    ],
    ids=["missing-trained-columns", "file-not-found", "too-few-rows"],
)
def test_unusable_newer_file_is_refused(
    workdir: Path, make: Any, fragments: tuple[str, ...]
) -> None:  # noqa: ANN401
    path = make(workdir)
    before = snapshot(workdir)
    result = invoke("update", "tiny-ae", path.name, "--name", "new")
    assert result.exit_code == 2
    assert_one_error_line(result, *fragments)
    assert snapshot(workdir) == before


def test_damaged_parent_field_is_refused(
    tmp_path: Path, trained_runs: dict[str, Path]
) -> None:
    from rareevent.errors import RareEventError
    from rareevent.runs import read_record

    folder = tmp_path / "damaged"
    shutil.copytree(trained_runs["ae"], folder)
    record = read(folder)
    (folder / "run.json").write_text(
        json.dumps({**record, "parent": "tiny-ae"}), encoding="utf-8"
    )
    with pytest.raises(RareEventError, match="field 'parent' has an invalid value"):
        read_record(folder)
    (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
    config = json.loads((folder / "detector.json").read_text(encoding="utf-8"))
    config["params"]["learning_rate"] = "fast"
    (folder / "detector.json").write_text(json.dumps(config), encoding="utf-8")
    result = invoke("update", folder, tmp_path / "any.csv")
    assert result.exit_code == 2
    assert_one_error_line(
        result, "detector.json", "learning_rate must be in (0, 1), got fast"
    )
