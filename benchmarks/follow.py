"""Live scoring: `rareevent score --follow` on a CSV that grows, in one run.

    python benchmarks/follow.py [--rate 1000] [--seconds 60] [--burst-rows 300000] [--sensors 20]

Trains a small run (1 epoch) on 50,000 synthetic rows, starts the installed
``rareevent score --follow live.csv`` (default ``--poll 0.2s``, CSV to a
pipe), and appends rows to ``live.csv`` from this process:

1. at ``--rate`` rows/s for ``--seconds`` seconds, in small writes every
   10 ms: the latency of each row is the time from its append to the
   output line of the window it completes (p50, p99, max);
2. ``--burst-rows`` rows as fast as this process can write them: the rows
   per second sustained is those rows over the time from the first append
   to the last window line.

The follower's resident memory (``VmRSS``) is sampled every second. The
baseline, measured in the same run, is ``rareevent score`` of the same
rows as one file (its rows per second; its peak memory). Nothing here is a
test; timings depend on the machine (and on what else runs on it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import peak_of  # noqa: E402  (benchmarks are scripts, not a package)
from speed import make_csv  # noqa: E402

WARM_ROWS = 50


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Outputs:
    """Arrival time of each window line of the follower, by its end row."""

    def __init__(self, pipe: object) -> None:
        self.arrived: dict[int, float] = {}
        self.seen = threading.Event()
        self.last_row = -1
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            now = time.monotonic()
            head = line.split(",", 1)[0]
            if head.isdigit():
                row = int(head)
                self.arrived[row] = now
                self.last_row = row

    def wait_row(self, row: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.last_row < row:
            if time.monotonic() > deadline:
                raise RuntimeError(f"row {row} never came out (last {self.last_row})")
            time.sleep(0.01)


def append_at_rate(
    live: Path, lines: list[str], first_row: int, rate: float, seconds: float
) -> dict[int, float]:
    """Append ``rate`` rows per second for ``seconds``, every 10 ms; the time each row was written."""
    written: dict[int, float] = {}
    total = int(rate * seconds)
    start = time.monotonic()
    done = 0
    with open(live, "a", encoding="utf-8") as fh:
        while done < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            if due > done:
                fh.write("".join(lines[done:due]))
                fh.flush()
                now = time.monotonic()
                for i in range(done, due):
                    written[first_row + i] = now
                done = due
            time.sleep(0.01)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--burst-rows", type=int, default=300_000)
    parser.add_argument("--sensors", type=int, default=20)
    options = parser.parse_args()
    exe = str(Path(sys.executable).with_name("rareevent"))
    steady = int(options.rate * options.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        head, source, live = work / "head.csv", work / "source.csv", work / "live.csv"
        make_csv(head, 50_000, options.sensors)
        make_csv(
            source, WARM_ROWS + steady + options.burst_rows, options.sensors, seed=1
        )
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
        batch_seconds, batch_peak = peak_of(
            [
                exe,
                "score",
                str(source),
                "--run",
                str(work / "runs" / "m"),
                "--output",
                str(work / "batch.csv"),
            ]
        )
        header, *lines = source.read_text().splitlines(keepends=True)
        live.write_text(header + "".join(lines[:WARM_ROWS]))
        follower = subprocess.Popen(
            [exe, "score", "--follow", str(live), "--run", str(work / "runs" / "m")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        outputs = Outputs(follower.stdout)
        outputs.wait_row(WARM_ROWS - 1, timeout=120)  # started, model loaded and traced
        samples: list[tuple[float, float]] = []
        sampling = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not sampling.is_set():
                samples.append((time.monotonic() - started, rss_mib(follower.pid)))
                time.sleep(1.0)

        threading.Thread(target=sample, daemon=True).start()
        written = append_at_rate(
            live,
            lines[WARM_ROWS : WARM_ROWS + steady],
            WARM_ROWS,
            options.rate,
            options.seconds,
        )
        outputs.wait_row(WARM_ROWS + steady - 1, timeout=120)
        steady_samples = list(samples)
        latency = (
            np.array([outputs.arrived[row] - at for row, at in written.items()]) * 1000
        )
        burst = lines[WARM_ROWS + steady :]
        burst_start = time.monotonic()
        with open(live, "a", encoding="utf-8") as fh:
            for i in range(0, len(burst), 1000):
                fh.write("".join(burst[i : i + 1000]))
                fh.flush()
        outputs.wait_row(len(lines) - 1, timeout=600)
        burst_seconds = time.monotonic() - burst_start
        sampling.set()
        follower.terminate()
        follower.wait(timeout=30)
        run = json.loads((work / "runs" / "m" / "run.json").read_text())
    rss = np.array([mib for _, mib in steady_samples])
    every = max(len(rss) // 6, 1)
    print(
        f"score --follow, {options.sensors} sensors, lookback {run['lookback']}, units {run['units'][0]},{run['units'][1]}, --poll 0.2s, CSV to a pipe"
    )
    print(
        f"appending {options.rate:,.0f} rows/s for {options.seconds:.0f} s ({steady:,} rows): latency append -> window line p50 {np.percentile(latency, 50):.0f} ms, p99 {np.percentile(latency, 99):.0f} ms, max {latency.max():.0f} ms; goal p99 < 1000 ms: {'met' if np.percentile(latency, 99) < 1000 else 'NOT met'}"
    )
    print(
        f"memory (VmRSS) every {every} s: {' '.join(f'{m:.0f}' for m in rss[::every])} MiB; last/first {rss[-1] / rss[0]:.3f}x, max-min {rss.max() - rss.min():.1f} MiB; all samples {len(rss)}"
    )
    follow_rate = len(burst) / burst_seconds
    batch_rate = len(lines) / batch_seconds
    print(
        f"burst of {len(burst):,} rows written at once: {follow_rate:,.0f} rows/s sustained (to the last window line); peak RSS {max(m for _, m in samples):.0f} MiB"
    )
    print(
        f"baseline `score` of the same {len(lines):,} rows as one file: {batch_rate:,.0f} rows/s (with start-up), peak {batch_peak:.0f} MiB; follow/batch rows/s {follow_rate / batch_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
