"""Which kinds of fault each architecture catches, on a simulated plant.

    python benchmarks/faults.py [--arch ae plain pca] [--seed 0] [--scale 1] [--train-args '...'] [--cli] [--keep DIR]

The plant (``plant()``, deterministic for a seed): two setpoints that step
between levels, given to the model as context columns (``sp_speed``,
``sp_valve``); a pump ``speed`` that follows its setpoint with a lag
(first order, time constant 5 rows, 2 rows of dead time); ``valve``
following its setpoint (time constant 3); ``flow`` = 2 x speed x valve;
``pressure`` = 0.5 x flow²; a periodic ``load`` (period 96 rows);
``power`` = 0.5 x speed x pressure + load; ``temp``, a slow first-order
integrator of power (time constant 80); and two noise-only sensors. Every
measured sensor has Gaussian noise (0.02).

The training file is normal operation with setpoint steps. The test file has
seven faults, each at a known place (``Fault``: sensor, first row, end row)
with normal stretches and setpoint steps between them, and a ``fault``
column that is 1 on their rows:

- ``offset``: flow +0.4 (20 noise sigmas; flow spans 0.8-4) for 60 rows;
- ``relation``: pressure reads what it would at another valve setting, a value
  the plant shows in normal operation, for 60 rows;
- ``stuck``: speed frozen for 80 rows while its setpoint steps;
- ``drift``: flow drifts away from 2 x speed x valve, 0 to +0.4 over 200 rows;
- ``noise``: pressure noise x15 for 40 rows;
- ``spike``: flow +2 for 2 rows;
- ``dynamics``: the lag of speed to its setpoint grows 8x (time constant 40)
  for 120 rows, across a setpoint step.

For each architecture: ``rareevent train`` on the training file (no labels,
``--context sp_speed,sp_valve``, ``--test-frac 0``, other options at their
defaults), then ``rareevent score`` of the test file. A kind is caught when a
flagged window ends inside its fault or up to ``AFTER`` rows after it; the
false-window rate is the share of flagged windows among those ending in the
normal stretches (no fault row in the window, and more than ``AFTER`` rows
after a fault). ``--arch`` defaults to every architecture in the registry.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import rareevent  # noqa: E402

CONTEXT = ("sp_speed", "sp_valve")
SPEEDS = (1.0, 1.5, 2.0, 2.5)
VALVES = (0.4, 0.6, 0.8)
NOISE = 0.02
PERIOD = 96
TAU_SPEED, DEAD_TIME, TAU_VALVE, TAU_TEMP = 5.0, 2, 3.0, 80.0
OFFSET = 0.4  # flow offset of the `offset` fault
AFTER = (
    10  # rows after a fault's end in which a flagged window still counts as catching it
)
KINDS = ("offset", "relation", "stuck", "drift", "noise", "spike", "dynamics")
GOAL_KINDS, GOAL_FALSE = 6, 0.005


@dataclass(frozen=True)
class Fault:
    """One fault of the test file: rows ``start`` to ``stop - 1`` of ``sensor``."""

    kind: str
    sensor: str
    start: int
    stop: int


@dataclass
class Plant:
    """The plant's two files, the test file without its faults (to check where they are), and the faults."""

    train: pd.DataFrame
    test: pd.DataFrame
    clean: pd.DataFrame  # the test file as it would be without its faults (same noise)
    faults: list[Fault]


# kind: (sensor, rows, a setpoint step this many rows into the fault or None)
LAYOUT = {
    "offset": ("flow", 60, None),
    "relation": ("pressure", 60, None),
    "stuck": ("speed", 80, 25),
    "drift": ("flow", 200, None),
    "noise": ("pressure", 40, None),
    "spike": ("flow", 2, None),
    "dynamics": ("speed", 120, 10),
}


def _steps(
    rng: np.random.Generator,
    n: int,
    levels: tuple[float, ...],
    hold: int,
    forced: Sequence[int] = (),
) -> np.ndarray:
    """A setpoint that holds a level for ``hold`` rows (give or take half) and then steps to another, also at each row in ``forced``."""
    at = set(forced)
    row = int(rng.integers(hold // 2, hold))
    while row < n:
        at.add(row)
        row += int(rng.integers(hold // 2, hold + hold // 2))
    values = np.empty(n)
    level = levels[int(rng.integers(len(levels)))]
    for i in range(n):
        if i in at:
            level = levels[
                (levels.index(level) + 1 + int(rng.integers(len(levels) - 1)))
                % len(levels)
            ]
        values[i] = level
    return values


def _simulate(
    rng: np.random.Generator,
    sp_speed: np.ndarray,
    sp_valve: np.ndarray,
    tau_speed: np.ndarray,
    start: int,
) -> dict[str, np.ndarray]:
    """The true process and the noise draws of every measured sensor; ``start`` offsets the load's phase."""
    n = len(sp_speed)
    speed, valve, temp = np.empty(n), np.empty(n), np.empty(n)
    s, v = sp_speed[0], sp_valve[0]
    load = 0.5 + 0.3 * np.sin(2 * np.pi * (np.arange(n) + start) / PERIOD)
    for i in range(n):
        s += (sp_speed[max(i - DEAD_TIME, 0)] - s) / tau_speed[i]
        v += (sp_valve[i] - v) / TAU_VALVE
        speed[i], valve[i] = s, v
    flow = 2 * speed * valve
    pressure = 0.5 * flow**2
    power = 0.5 * speed * pressure + load
    t = 20 + 5 * power[0]
    for i in range(n):
        t += (20 + 5 * power[i] - t) / TAU_TEMP
        temp[i] = t
    true = {
        "speed": speed,
        "valve": valve,
        "flow": flow,
        "pressure": pressure,
        "load": load,
        "power": power,
        "temp": temp,
    }
    noise = {
        name: NOISE * rng.standard_normal(n) for name in (*true, "noise_a", "noise_b")
    }
    return {"true": true, "noise": noise}


def _frame(
    sp_speed: np.ndarray,
    sp_valve: np.ndarray,
    values: dict[str, np.ndarray],
    start: int,
) -> pd.DataFrame:
    n = len(sp_speed)
    return pd.DataFrame(
        {
            "t": np.arange(start, start + n),
            "sp_speed": sp_speed,
            "sp_valve": sp_valve,
            **values,
        }
    )


def _measured(sim: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    true, noise = sim["true"], sim["noise"]
    return {
        **{name: true[name] + noise[name] for name in true},
        "noise_a": noise["noise_a"],
        "noise_b": noise["noise_b"],
    }


def plant(seed: int = 0, scale: float = 1.0) -> Plant:
    """The training and test files of the simulated plant; ``scale`` shrinks or grows the normal stretches (and the training file)."""
    rng = np.random.default_rng(seed)
    hold = 120
    n_train = int(8000 * scale)
    train_sim = _simulate(
        rng,
        sp_speed := _steps(rng, n_train, SPEEDS, hold),
        sp_valve := _steps(rng, n_train, VALVES, hold),
        np.full(n_train, TAU_SPEED),
        0,
    )
    train = _frame(sp_speed, sp_valve, _measured(train_sim), 0)

    gap = max(int(300 * scale), 60)  # normal rows before each fault
    faults, row = [], gap
    for kind in KINDS:
        sensor, length, _ = LAYOUT[kind]
        faults.append(Fault(kind, sensor, row, row + length))
        row += length + gap
    n = row
    forced = [
        f.start + LAYOUT[f.kind][2] for f in faults if LAYOUT[f.kind][2] is not None
    ]
    sp_speed = _steps(rng, n, SPEEDS, hold, forced)
    sp_valve = _steps(rng, n, VALVES, hold)
    tau = np.full(n, TAU_SPEED)
    dynamics = next(f for f in faults if f.kind == "dynamics")
    tau[dynamics.start : dynamics.stop] = 8 * TAU_SPEED
    clean_sim = _simulate(
        np.random.default_rng(seed + 1),
        sp_speed,
        sp_valve,
        np.full(n, TAU_SPEED),
        n_train,
    )
    test_sim = _simulate(
        np.random.default_rng(seed + 1), sp_speed, sp_valve, tau, n_train
    )  # same noise draws
    clean = _frame(sp_speed, sp_valve, _measured(clean_sim), n_train)
    values = _measured(test_sim)
    true, noise = test_sim["true"], test_sim["noise"]
    for f in faults:
        rows = slice(f.start, f.stop)
        if f.kind == "offset":
            values["flow"][rows] += OFFSET
        elif f.kind == "relation":
            other = np.array(
                [VALVES[(VALVES.index(v) + 1) % len(VALVES)] for v in sp_valve[rows]]
            )
            values["pressure"][rows] = (
                0.5 * (2 * true["speed"][rows] * other) ** 2 + noise["pressure"][rows]
            )
        elif f.kind == "stuck":
            values["speed"][rows] = values["speed"][f.start]
        elif f.kind == "drift":
            values["flow"][rows] += np.linspace(0, 0.4, f.stop - f.start)
        elif f.kind == "noise":
            values["pressure"][rows] += 14 * noise["pressure"][rows]
        elif f.kind == "spike":
            values["flow"][rows] += 2.0
    test = _frame(sp_speed, sp_valve, values, n_train)
    test["fault"] = 0
    for f in faults:
        test.loc[f.start : f.stop - 1, "fault"] = 1
    return Plant(train=train, test=test, clean=clean, faults=faults)


def judge(
    flagged_rows: np.ndarray,
    scored_rows: np.ndarray,
    faults: list[Fault],
    lookback: int,
) -> tuple[dict[str, bool], float]:
    """Which kinds were caught, and the false-window rate in the normal stretches.

    ``scored_rows`` are the end rows (0-based, in the test file) of every
    scored window, ``flagged_rows`` those of the flagged ones.
    """
    caught = {
        f.kind: bool(
            np.any((flagged_rows >= f.start) & (flagged_rows < f.stop + AFTER))
        )
        for f in faults
    }
    near = np.zeros(
        max(
            int(scored_rows.max(initial=0)) + 1,
            max(f.stop for f in faults) + AFTER + lookback,
        ),
        dtype=bool,
    )
    for f in faults:
        near[f.start : f.stop + max(AFTER, lookback - 1)] = (
            True  # the fault's rows, windows that hold one, and the grace rows
        )
    normal = scored_rows[~near[scored_rows]]
    false = np.isin(normal, flagged_rows).sum()
    return caught, float(false / max(len(normal), 1))


def run_arch(
    arch: str,
    data: Plant,
    folder: Path,
    train_args: list[str],
    use_cli: bool,
    score_args: tuple[str, ...] = (),
) -> tuple[dict[str, bool], float, float]:
    """Train ``arch`` on the plant's training file and score its test file through the CLI; kinds caught, false-window rate, seconds."""
    started = time.perf_counter()
    train_csv, test_csv = folder / "plant_train.csv", folder / "plant_test.csv"
    runs = folder / "runs"
    rareevent(
        [
            "train",
            str(train_csv),
            "--arch",
            arch,
            "--time",
            "t",
            "--context",
            ",".join(CONTEXT),
            "--test-frac",
            "0",
            "--runs-dir",
            str(runs),
            "--name",
            arch,
            "--overwrite",
            "--quiet",
            *train_args,
        ],
        use_cli,
    )
    out = folder / f"windows-{arch}.csv"
    rareevent(
        [
            "score",
            str(test_csv),
            "--run",
            str(runs / arch),
            "--label",
            "fault",
            "--output",
            str(out),
            "--quiet",
            *score_args,
        ],
        use_cli,
    )
    windows = pd.read_csv(out, usecols=["row", "flagged"])
    lookback = json.loads((runs / arch / "detector.json").read_text())["params"][
        "lookback"
    ]
    rows = windows["row"].to_numpy()
    caught, false = judge(
        rows[windows["flagged"].to_numpy() == 1], rows, data.faults, lookback
    )
    return caught, false, time.perf_counter() - started


def write(data: Plant, folder: Path) -> None:
    data.train.to_csv(folder / "plant_train.csv", index=False, float_format="%.5f")
    data.test.to_csv(folder / "plant_test.csv", index=False, float_format="%.5f")


def registry() -> list[str]:
    """Every architecture the installed rareevent knows, in registry order."""
    from rareevent.model import ARCHITECTURES

    return list(ARCHITECTURES)


def default_arch() -> str:
    from rareevent.detector import RareEventDetector

    return inspect.signature(RareEventDetector).parameters["arch"].default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch",
        nargs="+",
        default=None,
        help="architectures to compare (default: every one in the registry)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="length of the normal stretches and the training file, relative to the default",
    )
    parser.add_argument(
        "--cli",
        action="store_true",
        help="run the installed rareevent command instead of in-process calls",
    )
    parser.add_argument(
        "--train-args", default="", help="extra rareevent train options"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="write the plant's files and runs here instead of a temporary folder",
    )
    options = parser.parse_args()
    archs = options.arch or registry()
    data = plant(options.seed, options.scale)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = options.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        write(data, folder)
        for arch in archs:
            results[arch] = run_arch(
                arch, data, folder, shlex.split(options.train_args), options.cli
            )
    print(
        f"Simulated plant, seed {options.seed}: train {len(data.train)} rows, test {len(data.test)} rows with {len(data.faults)} faults; "
        f"context {','.join(CONTEXT)}; options: {options.train_args or '(defaults)'}"
    )
    print(
        "| arch | " + " | ".join(KINDS) + " | kinds caught | false windows | seconds |"
    )
    print("| --- " * (len(KINDS) + 4) + "|")
    for arch, (caught, false, seconds) in results.items():
        marks = " | ".join("yes" if caught[k] else "-" for k in KINDS)
        print(
            f"| {arch} | {marks} | {sum(caught.values())} of {len(KINDS)} | {100 * false:.2f}% | {seconds:.0f} |"
        )
    shipped = default_arch()
    if shipped in results:
        caught, false, _ = results[shipped]
        met = sum(caught.values()) >= GOAL_KINDS and false <= GOAL_FALSE
        print(
            f"\nGoal of issue 24 ({shipped}, the shipped default): >= {GOAL_KINDS} of {len(KINDS)} kinds, <= {100 * GOAL_FALSE:.1f}% false windows; "
            f"now {sum(caught.values())} of {len(KINDS)}, {100 * false:.2f}%: {'met' if met else 'not met'}"
        )


if __name__ == "__main__":
    main()
