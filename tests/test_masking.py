"""``--mask-rate``: sensor masking for ``ae`` and ``plain``, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.model import mask_sensors
from tests.conftest import TINY


def invoke(*args: object) -> Any:  # noqa: ANN401 - a typer Result
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_mask_sensors_hides_the_chosen_sensors_on_every_row_and_marks_them() -> None:
    windows = (
        np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
    )  # 2 windows, 3 rows, 4 columns; column 0 is context
    masked = np.array([[True, False, False], [False, False, True]])
    out = mask_sensors(windows, [1, 2, 3], masked)
    assert out.shape == (2, 3, 7)
    assert (
        (out[0, :, 1] == 0).all()
        and (out[0, :, 2:4] == windows[0, :, 2:4]).all()
        and (out[0, :, 4:] == [1, 0, 0]).all()
    )
    assert (
        (out[1, :, 3] == 0).all()
        and (out[1, :, 1:3] == windows[1, :, 1:3]).all()
        and (out[1, :, 4:] == [0, 0, 1]).all()
    )
    assert (out[:, :, 0] == windows[:, :, 0]).all()  # context is never hidden


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ae", "plain"])
def test_masked_run_scores_each_sensor_hidden_and_identically_at_any_chunk_size(
    tmp_path: Path, sensor_csv: Path, arch: str
) -> None:
    result = invoke(
        "train",
        sensor_csv,
        *TINY,
        "--arch",
        arch,
        "--mask-rate",
        "0.3",
        "--runs-dir",
        tmp_path,
        "--name",
        "m",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m" / "detector.json").read_text())
    assert saved["params"]["mask_rate"] == 0.3
    outputs = []
    for chunk in ("1000000", "1000", "7"):
        out = tmp_path / f"scores-{chunk}.csv"
        result = invoke(
            "score",
            sensor_csv,
            "--run",
            tmp_path / "m",
            "--output",
            out,
            "--chunk-rows",
            chunk,
        )
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    detector = RareEventDetector.load(tmp_path / "m")
    assert detector.model_.net.input_shape == (
        None,
        3,
        6,
    )  # three sensors and their three mask channels
    rows = pd.read_csv(sensor_csv)[detector.feature_names_in_].to_numpy()
    scaled = ((rows - detector.scaler_.mean_) / detector.scaler_.scale_).astype(
        np.float32
    )
    windows = np.lib.stride_tricks.sliding_window_view(scaled, (3, 3))[:, 0][:100]
    predicted = detector._predict(windows)
    for j in range(3):  # sensor j's reconstruction is the one from the pass that hid it
        hidden = np.zeros((100, 3), bool)
        hidden[:, j] = True
        alone = detector.model_.predict_on_batch(
            mask_sensors(windows, [0, 1, 2], hidden)
        )
        assert np.allclose(predicted[..., j], alone[..., j], atol=1e-6)
    shown = detector.model_.predict_on_batch(
        mask_sensors(windows, [0, 1, 2], np.zeros((100, 3), bool))
    )
    assert not np.allclose(
        predicted, shown, atol=1e-3
    )  # not the pass that hides nothing


def test_mask_rate_out_of_range_is_one_error_line(
    tmp_path: Path, sensor_csv: Path
) -> None:
    result = invoke(
        "train",
        sensor_csv,
        *TINY,
        "--mask-rate",
        "1",
        "--runs-dir",
        tmp_path,
        "--name",
        "m",
    )
    assert result.exit_code == 2
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith("error: --mask-rate must be in [0, 1), got 1")
    )
    assert not (tmp_path / "m").exists()
