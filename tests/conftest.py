"""Shared fixtures: small synthetic sensor files and tiny trained runs; Ctrl-C stops the suite.

Models in tests are tiny (units 4,2, lookback 3, 2-3 epochs) so that the
whole suite runs in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections import Counter
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# ---------------------------------------------------------------- Ctrl-C and SIGTERM stop the suite

STOPPING = (signal.SIGINT, signal.SIGTERM)
_sent_to_self: Counter[int] = Counter()
_wakeup = os.pipe()
for _end in _wakeup:
    os.set_blocking(_end, False)


def _arrived() -> Counter[int]:
    """The stopping signals noted on the wakeup pipe since it was last read."""
    found: Counter[int] = Counter()
    while True:
        try:
            chunk = os.read(_wakeup[0], 4096)
        except BlockingIOError:
            return found
        found.update(number for number in chunk if number in STOPPING)


_real_kill, _real_raise_signal = os.kill, signal.raise_signal


def _kill(pid: int, signum: int) -> None:
    """``os.kill`` that counts what a test sends its own process."""
    if pid == os.getpid():
        _sent_to_self[signum] += 1
    _real_kill(pid, signum)


def _raise_signal(signum: int) -> None:
    _sent_to_self[signum] += 1
    _real_raise_signal(signum)


def pytest_configure(config: pytest.Config) -> None:
    os.kill, signal.raise_signal = _kill, _raise_signal


def pytest_unconfigure(config: pytest.Config) -> None:
    os.kill, signal.raise_signal = _real_kill, _real_raise_signal


def _stop_on_signals() -> Generator[None, object, object]:
    """One test phase, after which a Ctrl-C or SIGTERM from outside stops the suite.

    pytest stops on a KeyboardInterrupt that leaves a test. A command run
    in-process (``CliRunner``) takes the signal as the program does: training
    stops at the batch end, ``score --follow`` prints its summary, exit 130.
    The test then failed, or even passed, and the suite went on. Whichever
    Python handler takes a signal, its number is written to the wakeup fd:
    a SIGINT or SIGTERM found there that the test did not send its own
    process (``os.kill``, ``signal.raise_signal``: a test of how the commands
    stop) ends the phase in a KeyboardInterrupt.
    """
    _arrived()
    _sent_to_self.clear()
    previous = signal.set_wakeup_fd(_wakeup[1], warn_on_full_buffer=False)
    try:
        return (yield)
    finally:
        signal.set_wakeup_fd(previous)
        outside = _arrived() - _sent_to_self
        if outside:
            names = ", ".join(signal.Signals(number).name for number in outside)
            raise KeyboardInterrupt(f"{names} from outside the tests")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _stop_on_signals())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _stop_on_signals())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _stop_on_signals())


# ---------------------------------------------------------------- data and runs

TINY = ["--lookback", "3", "--units", "4,2", "--epochs", "2", "--batch-size", "64"]
# The closed-form baseline trains in a fraction of a second, without TensorFlow: for a test
# of what surrounds the model (reading the file, the options, the outputs), not of the LSTM.
TINY_PCA = ["--arch", "pca", "--lookback", "3"]


def synthetic_frame(
    n: int = 600,
    seed: int = 0,
    events: tuple[int, ...] = (150, 400, 530),
    length: int = 6,
) -> pd.DataFrame:
    """Three correlated sensors with a daily-like cycle; events break the relation strongly."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 48)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="min").strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "s1": base + 0.05 * rng.standard_normal(n),
            "s2": 2 * base + 1 + 0.05 * rng.standard_normal(n),
            "s3": -base + 0.05 * rng.standard_normal(n),
            "label": 0,
        }
    )
    for start in events:
        frame.loc[start : start + length - 1, "label"] = 1
        frame.loc[start : start + length - 1, "s2"] += 6.0
        frame.loc[start : start + length - 1, "s3"] -= 4.0
    return frame


def snapshot(root: Path) -> dict[str, str | None]:
    """Every entry under ``root`` (hidden ones included) with a hash of its bytes, or a link's target: to show nothing changed."""
    found: dict[str, str | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):  # a link is its target (it may dangle)
                found[os.path.relpath(path, root)] = "-> " + os.readlink(path)
                continue
            with open(path, "rb") as fh:
                found[os.path.relpath(path, root)] = hashlib.sha256(
                    fh.read()
                ).hexdigest()
    return found


@pytest.fixture(scope="session")
def sensor_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sensors.csv"
    synthetic_frame().to_csv(path, index=False, float_format="%.5f")
    return path


@pytest.fixture(scope="session")
def trained_runs(
    tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path
) -> dict[str, Path]:
    """One tiny ``ae`` and one tiny ``plain`` run trained through the library, in one runs dir."""
    from rareevent.detector import RareEventDetector
    from rareevent.training import save, train

    runs_dir = tmp_path_factory.mktemp("runs")
    folders = {}
    for arch in ("ae", "plain"):
        detector = RareEventDetector(
            arch=arch, lookback=3, units=(4, 2), epochs=3, batch_size=64, seed=0
        )
        result = train(sensor_csv, detector, name=f"tiny-{arch}")
        folders[arch] = save(result, runs_dir)
    return folders


@pytest.fixture(scope="session")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped fleet generator at test size: ``exports/pump_00{1,2,3}.csv`` and ``fleet.parquet`` (1,200 rows per asset)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_fleet",
        Path(__file__).resolve().parents[1] / "sample_data" / "generate_fleet.py",
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("fleet")
    module.write_fleet(folder, n_assets=3, n_rows=1200)
    return folder


@pytest.fixture(scope="session")
def fleet_run(tmp_path_factory: pytest.TempPathFactory, fleet_dir: Path) -> Path:
    """A tiny fleet model trained through the library on the three asset files."""
    from rareevent.detector import RareEventDetector
    from rareevent.fleet import train_fleet
    from rareevent.training import save

    detector = RareEventDetector(
        lookback=3, units=(4, 2), epochs=2, batch_size=64, seed=0
    )
    result = train_fleet([fleet_dir / "exports" / "*.csv"], detector, name="fleet")
    return save(result, tmp_path_factory.mktemp("fleet-runs"))
