"""Scoring a fleet three ways, in one run: a shell loop of CLI calls, `score --jobs 2`, and Spark local[2] (then local[1]).

    python benchmarks/fleet.py [--assets 12] [--rows 20000] [--skip-spark]

The issue's full size is ``--assets 200 --rows 50000`` (34 minutes on 2 cores).
The fleet comes from ``sample_data/generate_fleet.py`` (8 sensors, a seed per
asset): one CSV per asset, and the same rows as one Parquet table with an
``asset`` column, written asset by asset (no process holds the fleet). A
small run is trained on the first asset (1 epoch); then each way scores
every asset with it in a fresh process tree, and the script reports rows/s,
the ratio to the shell loop (the baseline, measured in the same run), and
the peak memory of the largest single process of that tree. Spark is then
timed once more in a warm session (the second of two jobs, its Python
workers already running), which shows how scoring itself grows from 1 to 2
cores without the JVM start and the workers' TensorFlow imports.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "sample_data"))
from generate_fleet import asset_frame, asset_name  # noqa: E402  (benchmarks are scripts, not a package)
from memory import peak_of  # noqa: E402


def write_fleet(folder: Path, n_assets: int, n_rows: int) -> tuple[Path, Path]:
    """One CSV per asset and one Parquet table, asset by asset (a row group each): the fleet is never in memory."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    exports = folder / "exports"
    exports.mkdir(parents=True)
    table = folder / "fleet.parquet"
    writer = None
    for index in range(n_assets):
        frame = asset_frame(index, n_rows)
        frame.to_csv(
            exports / f"{asset_name(index)}.csv", index=False, lineterminator="\n"
        )
        frame.insert(0, "asset", asset_name(index))
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        batch = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(table, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()
    return exports, table


WARM_JOB = """
import sys, time
from rareevent import spark
session = spark.session(sys.argv[1])
session.sparkContext.setLogLevel("ERROR")
table = session.read.parquet(sys.argv[2])
seconds = []
for _ in range(2):  # the first job starts the Python workers (a TensorFlow import each); the second finds them running
    started = time.perf_counter()
    spark.score(table, sys.argv[3], group="asset").count()
    seconds.append(time.perf_counter() - started)
print(seconds[-1])
"""


def warm_seconds(cores: int, table: Path, run: Path) -> float:
    """Seconds of a second ``spark.score`` job in one ``local[cores]`` session: scoring alone, without the JVM start and worker imports."""
    done = subprocess.run(
        [sys.executable, "-c", WARM_JOB, f"local[{cores}]", str(table), str(run)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=12)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--skip-spark", action="store_true", help="only the shell loop and --jobs 2"
    )
    options = parser.parse_args()
    exe = str(Path(sys.executable).with_name("rareevent"))
    total = options.assets * options.rows
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        exports, table = write_fleet(work, options.assets, options.rows)
        run = work / "runs" / "m"
        subprocess.run(
            [
                exe,
                "train",
                str(exports / f"{asset_name(0)}.csv"),
                "--epochs",
                "1",
                "--threshold",
                "pot",
                "--runs-dir",
                str(work / "runs"),
                "--name",
                "m",
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        out = work / "out"
        out.mkdir()
        loop = f'for f in "{exports}"/*.csv; do "{exe}" score "$f" --run "{run}" --output "{out}/$(basename "$f")" --quiet || exit 1; done'
        ways = {
            "shell loop, one CLI call per file": ["bash", "-c", loop],
            "score 'exports/*.csv' --jobs 2": [
                exe,
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
        }
        if not options.skip_spark:
            for cores in (2, 1):
                ways[f"score fleet.parquet --engine spark local[{cores}]"] = [
                    exe,
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
        results = {name: peak_of(command) for name, command in ways.items()}
        warm = (
            {}
            if options.skip_spark
            else {cores: warm_seconds(cores, table, run) for cores in (1, 2)}
        )
    print(
        f"fleet: {options.assets} assets x {options.rows:,} rows x 8 sensors = {total:,} rows; run: ae 32,16, lookback 5 (1 epoch)"
    )
    base = total / results["shell loop, one CLI call per file"][0]
    for name, (seconds, peak) in results.items():
        rate = total / seconds
        print(
            f"{name:<48} {seconds:7.1f} s {rate:>10,.0f} rows/s  {rate / base:5.2f}x the loop  peak process {peak:,.0f} MiB"
        )
    if not options.skip_spark:
        one, two = (
            total / results[f"score fleet.parquet --engine spark local[{c}]"][0]
            for c in (1, 2)
        )
        print(
            f"Spark rows/s from 1 to 2 cores: {one:,.0f} -> {two:,.0f} ({two / one:.2f}x)"
        )
        one, two = (total / warm[c] for c in (1, 2))
        print(
            f"the same in a warm session (a second job, workers running): {one:,.0f} -> {two:,.0f} ({two / one:.2f}x)"
        )


if __name__ == "__main__":
    main()
