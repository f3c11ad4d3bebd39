"""benchmarks/faults.py: the simulated plant puts each fault where it says, and the benchmark judges what a run caught."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_spec = importlib.util.spec_from_file_location(
    "faults_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "faults.py"
)
faults = sys.modules["faults_bench"] = importlib.util.module_from_spec(
    _spec
)  # dataclasses look their module up
_spec.loader.exec_module(faults)

SCALE = 0.25  # test size: 2,000 training rows, 75 normal rows before each fault


@pytest.fixture(scope="module")
def plant():
    return faults.plant(seed=0, scale=SCALE)


@pytest.mark.slow
def test_the_plant_is_deterministic(plant):
    again = faults.plant(seed=0, scale=SCALE)
    pd.testing.assert_frame_equal(plant.train, again.train)
    pd.testing.assert_frame_equal(plant.test, again.test)
    assert not plant.test.equals(faults.plant(seed=1, scale=SCALE).test)


def test_every_fault_is_at_its_stated_place(plant):
    assert [f.kind for f in plant.faults] == list(faults.KINDS)
    labelled = np.zeros(len(plant.test), dtype=bool)
    for f in plant.faults:
        labelled[f.start : f.stop] = True
    assert np.array_equal(plant.test["fault"].to_numpy() == 1, labelled)
    dynamics = next(f for f in plant.faults if f.kind == "dynamics")
    before = slice(
        0, dynamics.start
    )  # a process fault: its effect on the integrator outlasts it
    changed = plant.test.drop(columns="fault").iloc[before] != plant.clean.iloc[before]
    for sensor in changed.columns:
        expected = np.zeros(dynamics.start, dtype=bool)
        for f in plant.faults:
            if f.sensor == sensor and f.kind != "dynamics":
                expected[f.start + (f.kind in ("stuck", "drift")) : f.stop] = (
                    True  # stuck keeps, and a drift starts from, the first value
                )
        assert np.array_equal(changed[sensor].to_numpy(), expected), sensor
    lagged = plant.test["speed"].to_numpy() != plant.clean["speed"].to_numpy()
    assert lagged[
        dynamics.start : dynamics.stop
    ].all()  # and nothing changed before it but the earlier faults (above)
    # the stuck sensor and the slower lag are seen across a setpoint step; normal steps lie between the faults
    sp = plant.test["sp_speed"].to_numpy()
    steps = np.flatnonzero(np.diff(sp) != 0) + 1
    for f in plant.faults:
        if f.kind in ("stuck", "dynamics"):
            assert np.any((steps > f.start) & (steps < f.stop)), f.kind
    for earlier, later in zip(plant.faults, plant.faults[1:]):
        assert (
            np.any((steps >= earlier.stop) & (steps < later.start))
            or later.start - earlier.stop < 120
        )
    assert len(steps[steps < plant.faults[0].start]) + len(steps) > 7


def test_the_faults_stay_in_range_where_they_should(plant):
    relation = next(f for f in plant.faults if f.kind == "relation")
    pressure = plant.test["pressure"].to_numpy()[relation.start : relation.stop]
    assert (
        plant.train["pressure"].min() <= pressure.min()
        and pressure.max() <= plant.train["pressure"].max()
    )


def test_judge_counts_catches_and_false_windows():
    plant_faults = [
        faults.Fault("offset", "flow", 100, 110),
        faults.Fault("spike", "flow", 200, 202),
    ]
    scored = np.arange(4, 300)
    flagged = np.array(
        [50, 105, 211, 212]
    )  # 105: in the offset; 211: within AFTER=10 rows after the spike; 50 and 212: false
    caught, false = faults.judge(flagged, scored, plant_faults, lookback=5)
    assert caught == {"offset": True, "spike": True}
    normal = (
        296 - 20 - 12
    )  # less the rows from each fault's start to AFTER rows past its end
    assert false == pytest.approx(2 / normal)
    caught, _ = faults.judge(np.array([212]), scored, plant_faults, lookback=5)
    assert caught == {"offset": False, "spike": False}


@pytest.mark.slow
def test_pca_catches_the_offset_and_the_spike_at_test_size(plant, tmp_path: Path):
    faults.write(plant, tmp_path)
    # 0.4.0's pca: lookback 5, the threshold alone (the harness, not 0.5's defaults)
    caught, false, _ = faults.run_arch(
        "pca",
        plant,
        tmp_path,
        ["--lookback", "5"],
        use_cli=False,
        score_args=("--shortest-event", "off"),
    )
    assert caught["offset"] and caught["spike"]
    assert false < 0.01
