"""The commands end to end: CliRunner for each, one subprocess run of the installed entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.runs import read_record
from tests.conftest import TINY, TINY_PCA

runner = CliRunner()
RAREEVENT = str(Path(sys.executable).with_name("rareevent"))


def invoke(*args: str) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("arch", ["ae", "plain"])
def test_architecture_reference_shapes_total_248578(arch: str) -> None:
    result = invoke(
        "architecture",
        "--arch",
        arch,
        "--lookback",
        "3",
        "--features",
        "2",
        "--units",
        "128,64",
    )
    assert result.exit_code == 0, result.output
    assert "248,578" in result.output
    for params in ("67,072", "49,408", "33,024", "98,816", "258"):
        assert params in result.output
    assert ("RepeatVector" in result.output) == (arch == "ae")


def test_help_does_not_import_tensorflow() -> None:
    code = "import sys; from typer.testing import CliRunner; from rareevent.cli.main import app; r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; assert 'train' in r.output; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_train_writes_a_complete_run_and_summary(
    tmp_path: Path, sensor_csv: Path
) -> None:
    result = invoke("train", sensor_csv, *TINY, "--runs-dir", tmp_path, "--name", "r1")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "r1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "detector.json",
        "model.weights.h5",
        "run.json",
        "scores.csv",
    ]
    detector = RareEventDetector.load(folder)
    assert detector.arch == "ae" and detector.lookback == 3 and detector.units == (4, 2)
    assert detector.feature_names_in_.tolist() == ["s1", "s2", "s3"]
    record = read_record(folder)
    assert record.time_column == "timestamp" and record.label_column == "label"
    assert record.splits == {"train": [0, 360], "valid": [360, 480], "test": [480, 600]}
    assert record.windows == {"train_normal": 350, "valid": 118, "test": 118}
    assert detector.threshold_strategy_ == "f1" and detector.threshold_ > 0
    for part in ("valid", "test"):
        metrics = record.metrics[part]
        assert {
            "precision",
            "recall",
            "f1",
            "pr_auc",
            "roc_auc",
            "tp",
            "fp",
            "fn",
            "tn",
            "events",
            "events_detected",
        } <= set(metrics)
        assert metrics["events"] == 1
        assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == 118
    assert len(record.input_sha256) == 64 and record.versions["keras"]
    assert (
        "test" in result.output
        and "F1" in result.output
        and "threshold" in result.output
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_same_seed_gives_the_same_threshold(tmp_path: Path, sensor_csv: Path) -> None:
    thresholds = []
    for name in ("a", "b"):
        assert (
            invoke(
                "train",
                sensor_csv,
                *TINY,
                "--runs-dir",
                tmp_path,
                "--name",
                name,
                "--seed",
                "7",
            ).exit_code
            == 0
        )
        thresholds.append(RareEventDetector.read_config(tmp_path / name).threshold_)
    assert thresholds[0] == thresholds[1]


@pytest.mark.slow
def test_train_without_labels_uses_pot_and_reports_no_metrics(
    tmp_path: Path, sensor_csv: Path
) -> None:
    result = invoke(
        "train",
        sensor_csv,
        *TINY_PCA,  # the threshold rule, whatever the model
        "--drop",
        "label",
        "--runs-dir",
        tmp_path,
        "--name",
        "u",
        "--test-frac",
        "0",
    )
    assert result.exit_code == 0, result.output
    record = read_record(tmp_path / "u")
    assert (
        RareEventDetector.read_config(tmp_path / "u").threshold_strategy_ == "pot:0.001"
    )
    assert record.label_column is None and record.metrics == {
        "valid": None,
        "test": None,
    }
    assert record.splits["test"] == [600, 600]


@pytest.mark.slow
def test_score_csv_columns_flags_events_and_is_chunk_invariant(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    result = invoke("score", sensor_csv, "--run", trained_runs["ae"], "--output", whole)
    assert result.exit_code == 0, result.output
    assert (
        invoke(
            "score",
            sensor_csv,
            "--run",
            trained_runs["ae"],
            "--output",
            chunked,
            "--chunk-rows",
            "7",
        ).exit_code
        == 0
    )
    assert whole.read_bytes() == chunked.read_bytes()
    frame = pd.read_csv(whole)
    assert list(frame.columns) == [
        "row",
        "time",
        "error",
        "flagged",
        "top_features",
        "label",
    ]
    assert frame["row"].tolist() == list(range(2, 600))
    assert frame["time"].iloc[0] == "2026-01-01 00:02:00"
    assert set(frame["flagged"]) <= {0, 1}
    top = frame["top_features"].iloc[0].split(";")
    assert len(top) == 3 and {t.split(":")[0] for t in top} == {"s1", "s2", "s3"}
    threshold = RareEventDetector.read_config(trained_runs["ae"]).threshold_
    # the decision stage flags windows over the threshold only (and not every one of them)
    assert (frame.loc[frame["flagged"] == 1, "error"] >= threshold).all()
    # every labelled event gets at least one alarm, and errors are far higher on event rows
    for start in (150, 400, 530):
        assert frame.loc[frame["row"].between(start, start + 7), "flagged"].any()
    assert (
        frame.loc[frame["label"] == 1, "error"].median()
        > 5 * frame.loc[frame["label"] == 0, "error"].median()
    )
    assert "alarm" in result.output and "events caught" in result.output


def test_score_json_and_metrics_out(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    out, metrics = tmp_path / "w.json", tmp_path / "m.json"
    result = invoke(
        "score",
        sensor_csv,
        "--run",
        "tiny-ae",
        "--runs-dir",
        trained_runs["ae"].parent,
        "--output",
        out,
        "--metrics-out",
        metrics,
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert len(document["windows"]) == 598 and document["summary"]["windows"] == 598
    assert document["alarms"] and {
        "start_row",
        "end_row",
        "windows",
        "peak_error",
        "top_features",
        "start_time",
    } <= set(document["alarms"][0])
    assert json.loads(metrics.read_text())["metrics"]["events"] == 3


@pytest.mark.slow
def test_score_label_prints_event_precision_and_f05(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    metrics = tmp_path / "m.json"
    result = invoke(
        "score",
        sensor_csv,
        "--run",
        "tiny-ae",
        "--runs-dir",
        trained_runs["ae"].parent,
        "--label",
        "label",
        "--output",
        tmp_path / "w.csv",
        "--metrics-out",
        metrics,
    )
    assert result.exit_code == 0, result.output
    m = json.loads(metrics.read_text())["metrics"]
    assert m["events_detected"] > 0
    precision = m["events_detected"] / (m["events_detected"] + m["false_alarms"])
    recall = m["events_detected"] / m["events"]
    assert m["event_precision"] == pytest.approx(precision)
    assert m["event_f05"] == pytest.approx(
        1.25 * precision * recall / (0.25 * precision + recall)
    )
    lines = result.output.splitlines()
    assert any(
        "event precision" in line and f"{precision:.3f}" in line for line in lines
    )
    assert any(
        "event F0.5" in line and f"{m['event_f05']:.3f}" in line for line in lines
    )


def test_score_newest_run_by_default_and_ignores_extra_columns(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    frame = pd.read_csv(sensor_csv).drop(columns="label")
    frame["comment"] = "x"
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    result = invoke("score", path, "--runs-dir", trained_runs["ae"].parent)
    assert result.exit_code == 0, result.output
    assert "tiny-plain" in result.output  # trained second: the newest
    assert "ignored column(s) not used by the model: comment" in result.stderr
    assert "events caught" not in result.output  # no labels, no metrics


@pytest.mark.slow
def test_report_table_comparison_json_and_plot(
    tmp_path: Path, trained_runs: dict[str, Path]
) -> None:
    runs_dir = trained_runs["ae"].parent
    result = invoke("report", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    assert (
        "tiny-ae" in result.output
        and "tiny-plain" in result.output
        and "ae vs plain" in result.output
    )
    result = invoke("report", "--runs-dir", runs_dir, "--json")
    document = json.loads(result.stdout)
    assert [r["name"] for r in document["runs"]] == ["tiny-ae", "tiny-plain"]
    assert (
        document["comparisons"][0]["ae"] == "tiny-ae"
        and document["comparisons"][0]["plain"] == "tiny-plain"
    )
    assert document["runs"][0]["parameters"] == document["runs"][1]["parameters"]
    png = tmp_path / "run.png"
    result = invoke("report", str(trained_runs["ae"]), "--plot", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    result = invoke("report", str(trained_runs["ae"]), "--plot", tmp_path / "run.jpg")
    assert (
        result.exit_code == 2
        and result.stderr.strip()
        == f"error: {tmp_path / 'run.jpg'}: a run is drawn as a PNG; give a file name ending in .png"
    )
    assert not (tmp_path / "run.jpg").exists()


def test_encode_ae_gives_u2_numbers_per_window_and_refuses_plain(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    out = tmp_path / "codes.csv"
    result = invoke("encode", sensor_csv, "--run", trained_runs["ae"], "--output", out)
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(out)
    assert list(codes.columns) == ["row", "time", "e0", "e1"] and len(codes) == 598
    assert np.isfinite(codes[["e0", "e1"]].to_numpy()).all() and codes["e0"].std() > 0
    refused = invoke(
        "encode",
        sensor_csv,
        "--run",
        trained_runs["plain"],
        "--output",
        tmp_path / "p.csv",
    )
    assert refused.exit_code == 2 and "no encoded vector" in refused.stderr
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_installed_entry_point_trains_and_scores(
    tmp_path: Path, sensor_csv: Path
) -> None:
    runs = tmp_path / "runs"
    done = subprocess.run(
        [
            RAREEVENT,
            "train",
            str(sensor_csv),
            *TINY,
            "--arch",
            "plain",
            "--runs-dir",
            str(runs),
            "--name",
            "sp",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (runs / "sp" / "model.weights.h5").is_file()
    done = subprocess.run(
        [
            RAREEVENT,
            "score",
            str(sensor_csv),
            "--runs-dir",
            str(runs),
            "--output",
            str(tmp_path / "s.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == 598
