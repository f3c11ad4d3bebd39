"""Scoring at the speed of the machine (issue 35): the same bytes for any chunk size and any
number of forward threads, the CSV writer against pandas' bytes, Parquet output, and scoring
without scikit-learn or TensorFlow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rareevent.cli.main import app
from typer.testing import CliRunner

from rareevent import forward
from rareevent.errors import RareEventError
from rareevent.writing import csv_text
from tests.conftest import synthetic_frame

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
UNWANTED = ("sklearn", "scipy", "tensorflow", "keras", "jax")
# runs the installed entry point, then prints which of UNWANTED the process had imported
WRAPPER = (
    "import atexit, json, runpy, sys\n"
    f"atexit.register(lambda: print('imported: ' + json.dumps(sorted(m for m in {UNWANTED!r}"
    " if m in sys.modules)), file=sys.stderr))\n"
    f"sys.argv = [{RAREEVENT!r}, *sys.argv[1:]]\n"
    f"runpy.run_path({RAREEVENT!r}, run_name='__main__')\n"
)


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 rows: two blocks of windows (4,096 and the rest), so several forward pieces."""
    path = tmp_path_factory.mktemp("long") / "long.csv"
    synthetic_frame(n=5000, seed=3, events=(700, 2500, 4300)).to_csv(
        path, index=False, float_format="%.5f"
    )
    return path


@pytest.mark.slow
def test_score_writes_the_same_bytes_for_any_chunk_rows_and_thread_count(
    long_csv: Path,
    trained_runs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outputs = {}
    for threads in ("1", "2"):
        monkeypatch.setenv(forward.THREADS_ENV, threads)
        assert forward.threads() == int(threads)
        for chunk_rows in ("7", "1000", "1000000"):
            output = tmp_path / f"t{threads}-c{chunk_rows}.csv"
            result = CliRunner().invoke(
                app,
                [
                    "score",
                    str(long_csv),
                    "--run",
                    str(trained_runs["ae"]),
                    "--chunk-rows",
                    chunk_rows,
                    "--output",
                    str(output),
                ],
            )
            assert result.exit_code == 0, result.output
            outputs[threads, chunk_rows] = output.read_bytes()
    first = outputs["1", "7"]
    assert all(text == first for text in outputs.values())
    windows = pd.read_csv(tmp_path / "t1-c7.csv")
    assert len(windows) == 5000 - 2  # lookback 3
    assert windows["flagged"].sum() > 0


def test_forward_threads_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(forward.THREADS_ENV, "3")
    assert forward.threads() == 3
    for bad in ("0", "two", "-1", str(forward.MAX_THREADS + 1)):
        monkeypatch.setenv(forward.THREADS_ENV, bad)
        with pytest.raises(RareEventError, match=forward.THREADS_ENV):
            forward.threads()


def _frames() -> list[pd.DataFrame]:
    """Blocks of windows as score writes them, and the cells pyarrow must not print alone."""
    rng = np.random.default_rng(7)
    n = 300
    base = {
        "row": np.arange(n) * 3,
        "time": pd.Timestamp("2026-03-01")
        + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "error": rng.gamma(1.0, 0.2, n).astype(np.float32),
        "flagged": rng.integers(0, 2, n).astype(np.int8),
        "top_features": np.array([f"s{i % 7}:0.5;t:0.25" for i in range(n)], object),
    }
    frames = [pd.DataFrame(base)]
    odd = pd.DataFrame(base)
    odd.loc[::9, "error"] = 0.0  # printed 0.0, not 0
    odd.loc[1::9, "error"] = 3.0e-6  # printed 3e-06
    odd.loc[2::9, "error"] = 2.5e7
    odd.loc[3::9, "error"] = np.nan  # an empty cell
    odd["label"] = rng.integers(0, 2, n).astype(float)
    frames.append(odd)
    for unit, step in (("ms", 10**6), ("us", 10**3), ("ns", 1)):
        fine = pd.DataFrame(base)
        fine["time"] = fine["time"] + pd.to_timedelta(
            rng.integers(0, 1000, n) * step, unit="ns"
        )
        frames.append(fine.astype({"time": f"M8[{unit}]"}))
    days = pd.DataFrame(base)
    days["time"] = pd.Timestamp("2026-03-01") + pd.to_timedelta(np.arange(n), unit="D")
    frames.append(days)  # dates alone
    numbers = pd.DataFrame(base)
    numbers["time"] = np.arange(n) * 0.25
    frames.append(numbers)
    quoted = pd.DataFrame(base)
    quoted.loc[4, "top_features"] = 'a,b:0.5;"c":0.5'  # needs quotes: pandas writes it
    frames.append(quoted)
    missing_time = pd.DataFrame(base)
    missing_time.loc[5, "time"] = pd.NaT
    frames.append(missing_time)
    frames.append(
        pd.DataFrame(base).assign(top_features=lambda f: f.top_features.astype(str))
    )
    frames.append(pd.DataFrame(base).iloc[:0])
    return frames


@pytest.mark.parametrize("header", [True, False])
def test_csv_text_is_the_bytes_of_to_csv(
    header: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = _frames()
    expected = [
        f.to_csv(header=header, index=False, lineterminator="\n") for f in frames
    ]
    assert [csv_text(frame, header) for frame in frames] == expected
    # the first seven (the kinds score writes) are written by pyarrow, not by to_csv
    monkeypatch.setattr(pd.DataFrame, "to_csv", None)
    assert [csv_text(frame, header) for frame in frames[:7]] == expected[:7]


@pytest.mark.slow
def test_parquet_output_holds_the_csv_windows_typed(
    sensor_csv: Path, trained_runs: dict[str, Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    for name in ("w.csv", "w.parquet"):
        result = runner.invoke(
            app,
            [
                "score",
                str(sensor_csv),
                "--run",
                str(trained_runs["ae"]),
                "--output",
                str(tmp_path / name),
            ],
        )
        assert result.exit_code == 0, result.output
    text, table = (
        pd.read_csv(tmp_path / "w.csv"),
        pd.read_parquet(tmp_path / "w.parquet"),
    )
    assert list(table.columns) == list(text.columns)
    assert table["error"].dtype == np.float32 and table["time"].dtype.kind == "M"
    np.testing.assert_array_equal(table["error"], text["error"].astype(np.float32))
    assert (table["time"] == pd.to_datetime(text["time"])).all()
    for column in ("row", "flagged", "top_features", "label"):
        assert table[column].tolist() == text[column].tolist()


def _imported(stderr: str) -> list[str]:
    line = [x for x in stderr.splitlines() if x.startswith("imported: ")][-1]
    return json.loads(line.removeprefix("imported: "))


@pytest.mark.slow
def test_score_follow_and_fleet_workers_import_no_scikit_learn_or_tensorflow(
    sensor_csv: Path, trained_runs: dict[str, Path], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / ".keras")  # no keras.json of the user's
    run = str(trained_runs["ae"])
    # without the label column: a labelled file's metrics (PR and ROC AUC) use scikit-learn
    unlabelled = pd.read_csv(sensor_csv, dtype=str).drop(columns="label")
    for name in ("a.csv", "b.csv"):
        unlabelled.to_csv(tmp_path / name, index=False)
    for args in (
        ["score", "a.csv", "--run", run, "--output", "one.csv"],
        ["score", "a.csv", "b.csv", "--run", run, "--jobs", "1", "--output", "two.csv"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert _imported(done.stderr) == [], args
    assert len(pd.read_csv(tmp_path / "two.csv")) == 2 * len(
        pd.read_csv(tmp_path / "one.csv")
    )
    follow = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, "score", "a.csv", "--run", run, "--follow",
         "--output", "followed.csv", "--poll", "50ms"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    written = tmp_path / "followed.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and follow.poll() is None:
        if written.exists() and len(written.read_text().splitlines()) == 1 + 600 - 2:
            break
        time.sleep(0.2)
    follow.send_signal(signal.SIGINT)
    _, stderr = follow.communicate(timeout=60)
    assert follow.returncode == 130, stderr  # stopped by SIGINT, cleanly
    assert len(pd.read_csv(written)) == 600 - 2
    assert _imported(stderr) == []
