"""Cold-process scoring: the numpy forward against 0.3.0's TensorFlow path, in one run.

    python benchmarks/coldstart.py [--repeats 3] [--big-rows 200000] [--assets 8] [--asset-rows 5000] [--skip-spark]

Every measure is the wall time of a fresh process tree, as a user starts
it: ``rareevent score`` with the numpy forward (the default), and the same
command with ``RAREEVENT_FORWARD=keras`` (0.3.0's path: Keras on
TensorFlow), run back to back so that both see the same load; the
reported ratio is the median of the pairs. Measured:

- ``score`` of 2,000 rows of the sample data (a run trained on it, ae 32,16);
- ``score`` of ``--big-rows`` rows x 61 sensors (``benchmarks/speed.py``'s
  data), also against the seed article's pipeline (``speed.py``'s seed
  scoring phase, timed the same way: a whole process);
- ``score --follow``: from starting it to its first window line;
- a fleet (``sample_data/generate_fleet.py``): ``--jobs 2`` over its CSVs and
  Spark ``local[1]`` and ``local[2]`` over its Parquet table.

The goal table of issue 25 is printed at the end. Nothing here is a test;
timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "sample_data"))
from fleet import write_fleet  # noqa: E402  (benchmarks are scripts, not a package)
from speed import make_csv  # noqa: E402

EXE = str(Path(sys.executable).with_name("rareevent"))
KERAS = {"RAREEVENT_FORWARD": "keras"}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without a chosen Keras backend or forward (the defaults a user gets), plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_BACKEND", "RAREEVENT_FORWARD")
    }
    return {**env, **(extra or {})}


def seconds(command: list[str], extra: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment(extra),
    )
    return time.perf_counter() - started


def first_window_seconds(
    command: list[str], extra: dict[str, str] | None = None
) -> float:
    """Seconds from starting ``score --follow`` to the first line of its output that is a window (not the header)."""
    started = time.perf_counter()
    follower = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment(extra),
    )
    try:
        assert follower.stdout is not None
        for line in follower.stdout:
            if line[:1].isdigit():
                return time.perf_counter() - started
        raise SystemExit(f"score --follow ended without a window line: {command}")
    finally:
        follower.kill()
        follower.wait()


def pairs(
    measure: Callable[[dict[str, str] | None], float], repeats: int
) -> tuple[float, float, float]:
    """Median seconds of the numpy forward and of 0.3.0's path, measured back to back ``repeats`` times, and the median ratio."""
    ours, old = [], []
    for _ in range(repeats):
        ours.append(measure(None))
        old.append(measure(KERAS))
    return (
        statistics.median(ours),
        statistics.median(old),
        statistics.median(o / n for n, o in zip(ours, old)),
    )


def train(csv: Path, runs: Path, name: str) -> Path:
    subprocess.run(
        [
            EXE,
            "train",
            str(csv),
            "--epochs",
            "1",
            "--threshold",
            "quantile",
            "--runs-dir",
            str(runs),
            "--name",
            name,
            "--quiet",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=environment(),
    )
    return runs / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="pairs of the 2,000-row and --follow measures",
    )
    parser.add_argument("--big-rows", type=int, default=200_000)
    parser.add_argument("--assets", type=int, default=8)
    parser.add_argument("--asset-rows", type=int, default=5000)
    parser.add_argument("--skip-spark", action="store_true")
    options = parser.parse_args()
    lines: list[str] = []
    goals: list[tuple[str, str, str, str]] = []

    def report(name: str, result: tuple[float, float, float]) -> None:
        ours, old, ratio = result
        lines.append(
            f"{name:<44} numpy {ours:6.2f} s   0.3.0 (TensorFlow) {old:6.2f} s   {ratio:5.2f}x faster"
        )

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sample = work / "sample.csv"
        with open(
            ROOT / "sample_data" / "pump_sensors.csv", encoding="utf-8"
        ) as source:
            sample.write_text(
                "".join(line for _, line in zip(range(2001), source)), encoding="utf-8"
            )
        run = train(ROOT / "sample_data" / "pump_sensors.csv", work / "runs", "pump")

        small = pairs(
            lambda extra: seconds(
                [
                    EXE,
                    "score",
                    str(sample),
                    "--run",
                    str(run),
                    "--output",
                    str(work / "small.csv"),
                    "--quiet",
                ],
                extra,
            ),
            options.repeats,
        )
        report("score 2,000 rows", small)
        goals.append(
            (
                "`score` 2,000 rows, cold process",
                f"{small[1]:.1f} s",
                f"{small[0]:.2f} s ({small[2]:.1f}x faster)",
                "≥ 4× faster, under 2 s idle",
            )
        )

        follow = pairs(
            lambda extra: first_window_seconds(
                [
                    EXE,
                    "score",
                    "--follow",
                    str(sample),
                    "--run",
                    str(run),
                    "--format",
                    "csv",
                ],
                extra,
            ),
            options.repeats,
        )
        report("score --follow: start to first window line", follow)
        goals.append(
            (
                "`score --follow`: start to the first window line",
                f"{follow[1]:.1f} s",
                f"{follow[0]:.2f} s ({follow[2]:.1f}x faster)",
                "< 2 s idle",
            )
        )

        head, big = work / "head.csv", work / "big.csv"
        make_csv(head, 20_000, 61)
        make_csv(big, options.big_rows, 61)
        big_run = train(head, work / "runs", "big")
        large = pairs(
            lambda extra: seconds(
                [
                    EXE,
                    "score",
                    str(big),
                    "--run",
                    str(big_run),
                    "--output",
                    str(work / "big_out.csv"),
                    "--quiet",
                ],
                extra,
            ),
            1,
        )
        report(f"score {options.big_rows:,} rows x 61 sensors", large)
        seed = seconds(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "speed.py"),
                "--phase",
                "score",
                str(big),
                "seed",
                str(big_run),
            ],
            KERAS,
        )  # the article scores through Keras
        lines.append(
            f"{'':<44} the seed pipeline {seed:.2f} s: numpy {seed / large[0]:.2f}x, 0.3.0 {seed / large[1]:.2f}x the seed's speed"
        )
        goals.append(
            (
                f"`score` {options.big_rows:,} rows vs the seed pipeline",
                f"{seed / large[1]:.1f}×",
                f"{seed / large[0]:.1f}×",
                "≥ 5×",
            )
        )

        exports, table = write_fleet(work / "fleet", options.assets, options.asset_rows)
        fleet = f"{options.assets} assets x {options.asset_rows:,} rows"
        jobs = pairs(
            lambda extra: seconds(
                [
                    EXE,
                    "score",
                    str(exports / "*.csv"),
                    "--run",
                    str(run),
                    "--jobs",
                    "2",
                    "--output",
                    str(work / "jobs.csv"),
                    "--quiet",
                ],
                extra,
            ),
            1,
        )
        report(f"score --jobs 2 ({fleet})", jobs)
        if not options.skip_spark:
            spark: dict[int, tuple[float, float, float]] = {}
            for cores in (1, 2):
                command = [
                    EXE,
                    "score",
                    str(table),
                    "--group",
                    "asset",
                    "--run",
                    str(run),
                    "--engine",
                    "spark",
                    "--master",
                    f"local[{cores}]",
                    "--output",
                    str(work / f"spark{cores}.parquet"),
                    "--quiet",
                ]
                spark[cores] = pairs(
                    lambda extra, command=command: seconds(command, extra), 1
                )
                report(f"Spark local[{cores}] ({fleet})", spark[cores])
            grow, grow_old = spark[1][0] / spark[2][0], spark[1][1] / spark[2][1]
            lines.append(
                f"{'Spark, 2 cores against 1':<44} numpy {grow:.2f}x   0.3.0 {grow_old:.2f}x"
            )
            goals.append(
                (
                    "Spark `local[2]` fleet scoring, 2 cores vs 1",
                    f"{grow_old:.2f}×",
                    f"{grow:.2f}×",
                    "≥ 1.6×",
                )
            )

    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at the end (other processes share the machine when it is above 0)"
    )
    print("\n".join(lines))
    print(
        "\n| measure | 0.3.0 (same run) | numpy forward | goal |\n| --- | --- | --- | --- |"
    )
    for row in goals:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
