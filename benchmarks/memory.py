"""Peak memory of `rareevent score` on a long file, against a short one, in one run.

    python benchmarks/memory.py [--rows 2000000] [--sensors 20]

Writes a synthetic CSV of ``--rows`` rows (and one of a tenth of them as the
baseline), trains a small run (1 epoch) on the first 50,000 rows, then runs
the installed ``rareevent score ... --output scores.csv`` on each file in a
fresh process and reports its peak resident memory (max RSS of the child).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import make_csv  # noqa: E402  (benchmarks are scripts, not a package)


def peak_of(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a child process; return (seconds, its peak RSS in MiB)."""
    script = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, int(done.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--sensors", type=int, default=20)
    options = parser.parse_args()
    exe = str(Path(sys.executable).with_name("rareevent"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big, small, head = work / "big.csv", work / "small.csv", work / "head.csv"
        make_csv(big, options.rows, options.sensors)
        make_csv(small, options.rows // 10, options.sensors)
        make_csv(head, 50_000, options.sensors)
        subprocess.run(
            [
                exe,
                "train",
                str(head),
                "--epochs",
                "1",
                "--threshold",
                "quantile",
                "--runs-dir",
                str(work / "runs"),
                "--name",
                "m",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results = {}
        for path in (small, big):
            rows = options.rows // 10 if path == small else options.rows
            results[path.name] = (
                rows,
                *peak_of(
                    [
                        exe,
                        "score",
                        str(path),
                        "--run",
                        str(work / "runs" / "m"),
                        "--output",
                        str(work / "scores.csv"),
                    ]
                ),
            )
        size_mib = big.stat().st_size / 2**20
    print(
        f"scoring with `rareevent score --output scores.csv`, {options.sensors} sensors, default --chunk-rows; input {size_mib:,.0f} MiB"
    )
    for name, (rows, seconds, peak) in results.items():
        print(
            f"{rows:>10,} rows: {seconds:6.1f} s ({rows / seconds:,.0f} rows/s), peak memory {peak:,.0f} MiB"
        )
    (r0, _, p0), (r1, _, p1) = results.values()
    print(
        f"ratio: {r1 / r0:.0f}x the rows -> {p1 / p0:.2f}x the peak memory; limit 1,536 MiB: {'met' if p1 < 1536 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
