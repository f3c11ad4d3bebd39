"""Issue 35's goal table, in one run: run it as ``python benchmarks/speed.py [--rows 1000000]``.

Writes ``--rows`` rows of ``--sensors`` sensors one second apart (and a file of 4 times
as many, and one of 2,000), trains an ``ae``, ``plain``, ``forecast`` and ``pca`` run
(1 epoch, default units) on the first 20,000 rows, then measures, each in a fresh
process (its CPU time and peak memory its own):

- pandas' ``read_csv`` + ``to_csv`` of the file: the baseline every ratio is taken against;
- ``rareevent score FILE --run RUN --output scores.csv`` with each run: wall seconds, CPU
  seconds (user + system, all threads), CPU use (CPU ÷ wall: 200% is both cores of 2) and
  peak memory; the ``ae`` run also on the file of 4 times the rows (peak memory ratio: the
  read-ahead and write-behind threads hold a chunk and a block more once a file is a few
  chunks long, and the per-window results kept for the summary grow with the rows);
- the forward pass of the ``ae`` run over batches of 4,096 windows against numpy's own
  float32 matmul at the first LSTM's shapes (4,096 x 40 by 40 x 128 for 8 sensors), both
  on one thread, in GFLOP per second of that thread's CPU time (a loaded machine stretches
  wall times, and OpenBLAS' threads spin while they wait);
- ``score`` of 2,000 rows in a cold process (the median of 3);
- with chromium and playwright installed, the HTML report of 100,000 rows: the renderer's
  CPU seconds to the drawn timeline (``benchmarks/report.py``), and the same page with
  plotly.js' full bundle in place of the basic one it inlines.

On a machine that other work shares, the wall times grow with the load and the CPU times
do not: the table prints the load average beside them. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
ARCHS = ("ae", "plain", "forecast", "pca")
TRAIN_ROWS = 20_000
BATCH = 4096
# runs a command in a child and prints its wall time, CPU time and peak memory as JSON
MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "wall = time.perf_counter() - started\n"
    "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'wall': wall, 'cpu': used.ru_utime + used.ru_stime,"
    " 'peak_mb': used.ru_maxrss / 1024}))\n"
)
PANDAS = (
    "import sys, pandas as pd\n"
    "pd.read_csv(sys.argv[1]).to_csv(sys.argv[2], index=False)\n"
)


def make_csv(path: Path, rows: int, sensors: int, seed: int = 0) -> None:
    """Correlated sensors (a few latent factors + noise), a timestamp one second apart."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(3, sensors))
    start = pd.Timestamp("2026-01-01")
    with open(path, "w", encoding="utf-8") as fh:
        for first in range(0, rows, 100_000):
            n = min(100_000, rows - first)
            t = np.arange(first, first + n)
            factors = np.column_stack(
                [np.sin(t / 60), np.cos(t / 240), rng.normal(0, 0.3, n)]
            )
            frame = pd.DataFrame(
                factors @ mixing + rng.normal(0, 0.1, (n, sensors)),
                columns=[f"s{i}" for i in range(sensors)],
            )
            frame.insert(0, "time", start + pd.to_timedelta(t, unit="s"))
            frame.to_csv(fh, header=first == 0, index=False, float_format="%.5f")


def measured(command: list[str]) -> dict[str, float]:
    """Wall and CPU seconds and peak MB of ``command`` in a fresh child process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def forward_rates(run: Path) -> dict[str, float]:
    """GFLOP/s of the ``ae`` run's numpy forward and of numpy's matmul at its shapes (a child)."""
    done = subprocess.run(
        [sys.executable, __file__, "--forward", str(run)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _forward(run: Path) -> None:
    from rareevent import forward
    from rareevent.runs import load_scorer

    _, detector = load_scorer(run)
    net = detector.model_.net
    assert isinstance(net, forward.NumpyModel), "the numpy forward is used"
    steps, width = net.graph.input.shape
    flops = (
        0  # per window: 2 x multiply-adds of every LSTM and (time-distributed) Dense
    )
    for layer in net.graph.layers:
        weights = net.weights[id(layer)]
        kind = layer.inner.kind if layer.inner is not None else layer.kind
        if kind == "LSTM":
            flops += 2 * steps * (weights[0].size + weights[1].size)
        elif kind == "Dense":
            flops += 2 * steps * weights[0].size
    windows = np.random.default_rng(0).normal(size=(BATCH, steps, width))
    windows = windows.astype(np.float32)
    units = net.weights[id(net.graph.layers[0])][1].shape[0]
    a = np.random.default_rng(1).random((BATCH, width + units), np.float32)
    b = np.random.default_rng(2).random((width + units, 4 * units), np.float32)
    found = {"shape": f"{a.shape[0]}x{a.shape[1]} by {b.shape[0]}x{b.shape[1]}"}
    # both on one thread, per second of that thread's CPU: what a loaded machine cannot blur
    os.environ[forward.THREADS_ENV] = "1"
    with threadpool_limits(limits=1, user_api="blas"):
        found["forward"] = (
            BATCH * flops / _best(lambda: net.predict_on_batch(windows)) / 1e9
        )
        found["matmul"] = 2 * a.size * b.shape[1] / _best(lambda: a @ b) / 1e9
    print(json.dumps(found))


def _best(call: Callable[[], object], repeats: int = 5, calls: int = 10) -> float:
    """The least thread CPU seconds of one ``call``, over ``repeats`` rounds of ``calls``."""
    call()
    best = np.inf
    for _ in range(repeats):
        started = time.thread_time()
        for _ in range(calls):
            call()
        best = min(best, (time.thread_time() - started) / calls)
    return best


def report_cpu(work: Path, run: Path, sensors: int) -> tuple[float, float] | None:
    """The renderer's CPU seconds to the drawn timeline of a 100,000-row report, with the basic
    plotly.js bundle it inlines and with the full bundle swapped in (None: no chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    if chromium is None or importlib.util.find_spec("playwright") is None:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import render_times

    data, html, full = work / "report.csv", work / "report.html", work / "full.html"
    make_csv(data, 100_000, sensors, seed=1)
    subprocess.run(
        [RAREEVENT, "score", str(data), "--run", str(run), "--html", str(html), "-q"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    text = html.read_text(encoding="utf-8")
    opening = '<script id="plotly-js" type="application/octet-stream">'
    start = text.index(opening) + len(opening)
    end = text.index("</script>", start)
    packed = gzip.compress(get_plotlyjs().encode("utf-8"), 6, mtime=0)
    full.write_text(
        text[:start] + base64.b64encode(packed).decode("ascii") + text[end:],
        encoding="utf-8",
    )
    return render_times(chromium, html)["cpu"], render_times(chromium, full)["cpu"]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--forward":
        _forward(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sensors", type=int, default=8)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big, bigger, small = work / "big.csv", work / "bigger.csv", work / "small.csv"
        make_csv(big, options.rows, options.sensors)
        make_csv(bigger, 4 * options.rows, options.sensors)
        make_csv(small, 2_000, options.sensors)
        train = work / "train.csv"
        make_csv(train, TRAIN_ROWS, options.sensors, seed=2)
        runs = {}
        for arch in ARCHS:
            subprocess.run(
                [RAREEVENT, "train", str(train), "--arch", arch, "--epochs", "1",
                 "--runs-dir", str(work / "runs"), "--name", arch, "-q"],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            runs[arch] = work / "runs" / arch
        out = work / "out.csv"
        baseline = measured(
            [sys.executable, "-c", PANDAS, str(big), str(out)]
        )  # pandas: the floor of reading and writing the same rows
        scored = {
            arch: measured(
                [RAREEVENT, "score", str(big), "--run", str(runs[arch]), "--output",
                 str(out), "-q"]
            )
            for arch in ARCHS
        }  # fmt: skip
        bigger_ae = measured(
            [RAREEVENT, "score", str(bigger), "--run", str(runs["ae"]), "--output",
             str(out), "-q"]
        )  # fmt: skip
        cold = statistics.median(
            measured(
                [RAREEVENT, "score", str(small), "--run", str(runs["ae"]), "--output",
                 str(out), "-q"]
            )["wall"]
            for _ in range(3)
        )  # fmt: skip
        rates = forward_rates(runs["ae"])
        report = report_cpu(work, runs["ae"], options.sensors)
    ae = scored["ae"]
    lines = [
        f"data: {options.rows:,} rows x {options.sensors} sensors, one second apart; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        f"baseline: pandas read_csv + to_csv {baseline['wall']:.2f} s wall, "
        f"{baseline['cpu']:.2f} s CPU",
        "",
        "| run | wall s | CPU s | CPU use | peak MB | wall ÷ baseline | CPU ÷ baseline CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arch, found in scored.items():
        lines.append(
            f"| {arch} | {found['wall']:.2f} | {found['cpu']:.2f} | "
            f"{100 * found['cpu'] / found['wall']:.0f}% | {found['peak_mb']:.0f} | "
            f"{found['wall'] / baseline['wall']:.2f} | {found['cpu'] / baseline['cpu']:.2f} |"
        )
    report_text = "not measured (needs chromium and playwright)"
    if report is not None:
        report_text = f"{report[0]:.2f} s (the full bundle: {report[1]:.2f} s)"
    lines += [
        "",
        "| measure | now | goal |",
        "| --- | --- | --- |",
        f"| `score` {options.rows:,} rows, `ae`, wall ÷ pandas read_csv + to_csv | "
        f"{ae['wall']:.2f} s ÷ {baseline['wall']:.2f} s = "
        f"{ae['wall'] / baseline['wall']:.2f} (pca {scored['pca']['wall']:.2f} s) | ≤ 1.0 |",
        f"| CPU use during that run | {100 * ae['cpu'] / ae['wall']:.0f}% | ≥ 180% |",
        f"| forward pass ÷ numpy matmul at the LSTM's shapes ({rates['shape']}; one thread "
        "each, GFLOP per CPU second) | "
        f"{rates['forward']:.1f} ÷ {rates['matmul']:.1f} GFLOP/s = "
        f"{rates['forward'] / rates['matmul']:.2f} | ≥ 0.6 |",
        f"| `score` of 2,000 rows, cold process | {cold:.2f} s | < 1.2 s |",
        f"| HTML report, 100,000 rows, renderer CPU | {report_text} | ≤ 1.2 s |",
        f"| peak memory 4× rows ÷ 1× rows | {bigger_ae['peak_mb']:.0f} ÷ "
        f"{ae['peak_mb']:.0f} MB = {bigger_ae['peak_mb'] / ae['peak_mb']:.2f} | "
        "≤ 1.1 |",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
