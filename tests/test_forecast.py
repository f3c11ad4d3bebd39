"""``--arch forecast`` and ``--units auto`` through the real CLI: alignment, chunking, follow, stream, update, fleets, and the faults it is for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.model import auto_units, build_model
from rareevent.runs import read_run
from rareevent.scoring import StreamScorer
from tests.conftest import TINY

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))


def invoke(*args: object) -> Any:  # noqa: ANN401 - a typer Result
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def relation_frame(
    n: int = 3000, seed: int = 0, fault: int | None = 2750, stuck: int | None = None
) -> pd.DataFrame:
    """The issue's relation fault: ``target = 2 x setpoint + noise``, the setpoint stepping between 1, 2 and 3 every 100 rows.

    The steps cycle through all six moves (1-2-3-1-3-2-1...), so the train
    part holds each kind of step the test part has. ``fault``: the target
    gets +1.5 for 10 rows from there, a value still inside its normal range.
    ``stuck``: the target freezes for 60 rows from there, while the setpoint
    steps at the next multiple of 100.
    """
    rng = np.random.default_rng(seed)
    setpoint = np.resize(np.repeat([1.0, 2.0, 3.0, 1.0, 3.0, 2.0], 100), n)
    target = 2 * setpoint + 0.1 * rng.standard_normal(n)
    if fault is not None:
        target[fault : fault + 10] += 1.5
    if stuck is not None:
        target[stuck : stuck + 60] = target[stuck - 1]
    time_column = pd.date_range("2026-01-01", periods=n, freq="min").strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    return pd.DataFrame(
        {"timestamp": time_column, "setpoint": setpoint, "target": target}
    )


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    result = invoke(
        "train",
        sensor_csv,
        *TINY,
        "--arch",
        "forecast",
        "--runs-dir",
        runs,
        "--name",
        "fc",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    return runs / "fc"


def test_architecture_table_of_forecast_reads_the_window_and_predicts_horizon_rows() -> (
    None
):
    result = invoke(
        "architecture",
        "--arch",
        "forecast",
        "--lookback",
        "6",
        "--horizon",
        "2",
        "--features",
        "3",
        "--context",
        "1",
        "--units",
        "8,4",
    )
    assert result.exit_code == 0, result.output
    # LSTM(8) on 3 inputs: 4*8*(3+8+1) = 384; LSTM(4) on 8: 4*4*(8+4+1) = 208; Dense 4 -> 2 rows x 2 targets: 4*4+4 = 20
    for text in ("384", "208", "20", "(2, 2)", "Reshape", "612"):
        assert text in result.output, text
    refused = invoke(
        "architecture", "--arch", "forecast", "--lookback", "2", "--horizon", "2"
    )
    assert (
        refused.exit_code == 2
        and "lookback 2 leaves no row to forecast from with horizon 2" in refused.output
    )


@pytest.mark.slow
def test_forecast_window_is_scored_by_its_last_rows_prediction_never_by_later_rows(
    forecast_run: Path, sensor_csv: Path
) -> None:
    detector = RareEventDetector.load(forecast_run)
    rows = pd.read_csv(sensor_csv)[detector.feature_names_in_].to_numpy()
    T = detector.lookback
    errors = detector.score_windows(rows)[1]
    changed = rows.copy()
    changed[300:] += (
        50.0  # every row from 300 on: the windows ending before row 300 must not move
    )
    moved = detector.score_windows(changed)[1]
    assert np.array_equal(errors[: 300 - T + 1], moved[: 300 - T + 1])
    assert np.all(
        moved[300 - T + 1] > errors[300 - T + 1] + 10
    )  # the window ending at row 300 is scored by row 300
    scaled = (rows - detector.scaler_.mean_) / detector.scaler_.scale_
    windows = np.lib.stride_tricks.sliding_window_view(scaled, (T, 3))[:, 0].astype(
        np.float32
    )
    told = windows.copy()
    told[:, -1, :] += 100.0  # the predicted row's targets are compared with, never read
    assert np.array_equal(detector._predict(windows), detector._predict(told))
    earlier = windows.copy()
    earlier[:, -2, :] += 1.0  # the rows before it are read
    assert not np.allclose(detector._predict(windows), detector._predict(earlier))


@pytest.mark.slow
def test_forecast_run_scores_byte_identically_at_any_chunk_size_with_top_sensors(
    tmp_path: Path, forecast_run: Path, sensor_csv: Path
) -> None:
    outputs = []
    for chunk in ("1000000", "1000", "7"):
        out = tmp_path / f"scores-{chunk}.csv"
        result = invoke(
            "score",
            sensor_csv,
            "--run",
            forecast_run,
            "--output",
            out,
            "--chunk-rows",
            chunk,
        )
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    frame = pd.read_csv(tmp_path / "scores-7.csv")
    assert frame["row"].tolist() == list(range(2, 600))
    assert {
        part.split(":")[0] for part in frame["top_features"].iloc[0].split(";")
    } == {"s1", "s2", "s3"}
    assert frame.loc[frame["label"] == 1, "flagged"].sum() > 0


@pytest.mark.slow
def test_stream_scorer_gives_the_file_scores_of_a_forecast_run(
    forecast_run: Path, sensor_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "whole.csv"
    assert (
        invoke("score", sensor_csv, "--run", forecast_run, "--output", out).exit_code
        == 0
    )
    whole = pd.read_csv(out)
    scorer = StreamScorer.from_run(forecast_run)
    frame = pd.read_csv(sensor_csv)
    parts = [scorer.update(frame.iloc[i : i + 7]) for i in range(0, len(frame), 7)] + [
        scorer.flush()
    ]
    streamed = pd.concat(
        [part for part in parts if len(part.columns)], ignore_index=True
    )
    assert streamed["row"].tolist() == whole["row"].tolist()
    assert np.array_equal(
        streamed["error"].to_numpy(np.float32), whole["error"].to_numpy(np.float32)
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_follow_scores_a_forecast_run_as_the_whole_file_does(
    forecast_run: Path, sensor_csv: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.csv"
    assert (
        invoke("score", sensor_csv, "--run", forecast_run, "--output", whole).exit_code
        == 0
    )
    lines = sensor_csv.read_text().splitlines(keepends=True)
    live, followed = tmp_path / "live.csv", tmp_path / "followed.csv"
    live.write_text("".join(lines[:300]))
    proc = subprocess.Popen(
        [
            RAREEVENT,
            "score",
            "--follow",
            str(live),
            "--run",
            str(forecast_run),
            "--output",
            str(followed),
            "--poll",
            "50ms",
            "--quiet",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        with open(live, "a") as fh:  # the rest arrives in pieces while it is followed
            for start in range(300, len(lines), 97):
                fh.write("".join(lines[start : start + 97]))
                fh.flush()
                time.sleep(0.1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            not followed.exists() or len(followed.read_text().splitlines()) < 599
        ):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    got, expected = pd.read_csv(followed), pd.read_csv(whole)
    assert got["row"].tolist() == expected["row"].tolist()
    assert got["error"].tolist() == expected["error"].tolist()
    assert got["flagged"].tolist() == expected["flagged"].tolist()


def test_encode_refuses_a_forecast_run_in_one_line(
    forecast_run: Path, sensor_csv: Path, tmp_path: Path
) -> None:
    result = invoke(
        "encode", sensor_csv, "--run", forecast_run, "--output", tmp_path / "codes.csv"
    )
    assert result.exit_code == 2
    assert (
        result.output.strip().startswith(
            "error: a 'forecast' run has no encoded vector"
        )
        and len(result.output.strip().splitlines()) == 1
    )
    assert not (tmp_path / "codes.csv").exists()


@pytest.mark.slow
def test_update_continues_a_forecast_run_and_keeps_its_sizes(
    forecast_run: Path, sensor_csv: Path, tmp_path: Path
) -> None:
    runs = forecast_run.parent
    result = invoke(
        "update",
        forecast_run,
        sensor_csv,
        "--epochs",
        "1",
        "--runs-dir",
        runs,
        "--name",
        "fc-updated",
    )
    assert result.exit_code == 0, result.output
    parent, child = (
        RareEventDetector.load(forecast_run),
        RareEventDetector.load(runs / "fc-updated"),
    )
    assert (child.arch, child.horizon, child.units_) == ("forecast", 1, parent.units_)
    assert not np.array_equal(
        child.model_.net.get_weights()[0], parent.model_.net.get_weights()[0]
    )  # trained on, not rebuilt alike


@pytest.mark.slow
def test_fleet_group_run_trains_and_scores_with_forecast(
    fleet_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    result = invoke(
        "train",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        *TINY,
        "--arch",
        "forecast",
        "--runs-dir",
        runs,
        "--name",
        "fleet",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    for out, chunk in ((whole, "1000000"), (chunked, "7")):
        result = invoke(
            "score",
            fleet_dir / "fleet.parquet",
            "--group",
            "asset",
            "--run",
            runs / "fleet",
            "--output",
            out,
            "--chunk-rows",
            chunk,
        )
        assert result.exit_code == 0, result.output
    assert whole.read_bytes() == chunked.read_bytes()
    frame = pd.read_csv(whole)
    assert frame.groupby("asset").size().tolist() == [
        1198,
        1198,
        1198,
    ]  # lookback 3: two rows of each asset give no window


def test_auto_units_count_the_components_that_hold_99_percent_of_the_variance() -> None:
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((2000, 3))
    rows = factors @ rng.standard_normal((3, 8)) + 1e-3 * rng.standard_normal(
        (2000, 8)
    )  # 8 sensors driven by 3 causes
    assert auto_units(rows) == (6, 3)
    assert auto_units(np.ones((50, 4))) == (2, 1)  # nothing varies: the smallest model


@pytest.mark.slow
def test_units_auto_is_sized_from_the_targets_and_recorded_as_used(
    tmp_path: Path, sensor_csv: Path
) -> None:
    result = invoke(
        "train",
        sensor_csv,
        "--lookback",
        "3",
        "--units",
        "auto",
        "--epochs",
        "1",
        "--runs-dir",
        tmp_path,
        "--name",
        "auto",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "auto" / "detector.json").read_text())
    assert saved["params"]["units"] == "auto"
    # s1, s2 and s3 are one cycle scaled (noise 0.05 against a swing of 0.7): one component holds 99%
    assert saved["fitted"]["units_"] == [2, 1]
    assert read_run(tmp_path / "auto").units == [2, 1]
    assert (
        build_model("ae", 3, 3, (2, 1)).count_params()
        == RareEventDetector.load(tmp_path / "auto").model_.count_params()
    )
    refused = invoke("architecture", "--units", "auto")
    assert (
        refused.exit_code == 2
        and "--units 'auto': give two positive integers like 32,16" in refused.output
    )


def _flags(run: Path, data: Path, out: Path) -> pd.DataFrame:
    result = invoke("score", data, "--run", run, "--output", out)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out)


@pytest.mark.slow
def test_relation_fault_is_alarmed_by_forecast_and_the_setpoint_steps_are_not(
    tmp_path: Path,
) -> None:
    data = tmp_path / "relation.csv"
    relation_frame().to_csv(data, index=False, float_format="%.5f")
    result = invoke(
        "train",
        data,
        "--arch",
        "forecast",
        "--context",
        "setpoint",
        "--epochs",
        "20",
        "--runs-dir",
        tmp_path,
        "--name",
        "fc",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    frame = _flags(tmp_path / "fc", data, tmp_path / "scores.csv")
    test = frame[frame["row"] >= 2400]
    at_fault = test[(test["row"] >= 2750) & (test["row"] < 2765)]
    at_steps = test[
        (test["row"] % 100 < 8) & ~test["row"].isin(at_fault["row"])
    ]  # a window of 5 rows holds a step for 5 rows after it
    assert at_fault["flagged"].sum() >= 5
    assert at_steps["flagged"].sum() == 0


@pytest.mark.slow
def test_stuck_sensor_while_its_setpoint_moves_is_alarmed_by_forecast(
    tmp_path: Path,
) -> None:
    data = tmp_path / "stuck.csv"
    relation_frame(fault=None, stuck=2770).to_csv(
        data, index=False, float_format="%.5f"
    )
    result = invoke(
        "train",
        data,
        "--arch",
        "forecast",
        "--context",
        "setpoint",
        "--epochs",
        "20",
        "--runs-dir",
        tmp_path,
        "--name",
        "fc",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    frame = _flags(tmp_path / "fc", data, tmp_path / "scores.csv")
    test = frame[frame["row"] >= 2400]
    stuck_after_step = test[(test["row"] >= 2800) & (test["row"] < 2830)]
    assert stuck_after_step["flagged"].sum() >= 20
    normal = test[(test["row"] < 2770) | (test["row"] >= 2835)]
    assert normal["flagged"].mean() <= 0.01
