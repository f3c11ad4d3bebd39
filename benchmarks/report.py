"""Size and render time of ``score --html`` reports of long files, in headless Chromium.

    python benchmarks/report.py [--rows 100000 1000000] [--sensors 8]

Writes synthetic sensor files (1-minute steps, correlated sensors, a fault
every 5,000 rows on a few sensors), trains a small run on the first 20,000
rows, then for each file runs the installed ``rareevent score`` without and
with ``--html`` and opens the report in the system's ``chromium`` (through
playwright, offline). It prints the report's size, the extra scoring time
the report costs, and the render times, measured in the page from the start
of navigation (``performance.now()``): plotly.js unpacked and evaluated, the
timeline drawn, and (once) the time per episode section, over the first 100. The goal (issue 26): 100,000 rows give at most 5 MB and
render in under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FAULT_EVERY = 5_000
RENDERS = 3
SECTIONS = 100  # episode sections drawn to time one


def make_csv(path: Path, rows: int, sensors: int, seed: int = 0) -> None:
    """Correlated sensors with a timestamp; every ``FAULT_EVERY`` rows a fault of 1 to 40 rows shifts three of them (labelled)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(3, sensors))
    start_time = pd.Timestamp("2026-01-01")
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            t = np.arange(start, start + n)
            factors = np.column_stack(
                [np.sin(t / 60), np.cos(t / 240), rng.normal(0, 0.3, n)]
            )
            values = factors @ mixing + rng.normal(0, 0.1, (n, sensors))
            label = np.zeros(n, np.int8)
            for fault in range(
                -(-start // FAULT_EVERY) * FAULT_EVERY + FAULT_EVERY // 2,
                start + n,
                FAULT_EVERY,
            ):
                length = int(rng.integers(1, 41))
                rows_hit = slice(fault - start, min(fault - start + length, n))
                values[rows_hit, rng.choice(sensors, 3, replace=False)] += rng.choice(
                    [-1, 1], 3
                ) * rng.uniform(2, 5, 3)
                label[rows_hit] = 1
            frame = pd.DataFrame(
                values, columns=[f"sensor_{i}" for i in range(sensors)]
            )
            frame["label"] = label
            frame.insert(
                0,
                "timestamp",
                (start_time + pd.to_timedelta(t, unit="min")).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
            )
            frame.to_csv(fh, header=start == 0, index=False, float_format="%.4f")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def render_times(chromium: str, report: Path) -> dict[str, float]:
    """Medians over ``RENDERS`` fresh pages, to the drawn timeline: wall seconds (plotly.js ready, timeline drawn) and the renderer's CPU seconds.

    Then, once, the wall seconds per episode section over the first ``SECTIONS``. The CPU time is
    what the page costs whatever else the machine runs; the wall time on a busy machine is longer.
    """
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {"ready": [], "timeline": [], "cpu": []}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"]
        )
        for attempt in range(RENDERS + 1):
            context = browser.new_context(
                offline=True, viewport={"width": 1280, "height": 900}
            )
            page = context.new_page()
            devtools = context.new_cdp_session(page)
            devtools.send("Performance.enable", {"timeDomain": "threadTicks"})
            page.goto(report.as_uri())
            page.wait_for_function(
                "window.rareevent && window.rareevent.timelineMs", timeout=120_000
            )
            if attempt < RENDERS:
                metrics = {
                    m["name"]: m["value"]
                    for m in devtools.send("Performance.getMetrics")["metrics"]
                }
                found["cpu"].append(metrics["ProcessTime"])
                found["timeline"].append(
                    page.evaluate("window.rareevent.timelineMs") / 1000
                )
                found["ready"].append(page.evaluate("window.rareevent.plotlyMs") / 1000)
            else:  # once: the first SECTIONS episode sections, as if the reader scrolled through them
                episodes = page.evaluate("window.rareevent.episodes")
                drawn = min(episodes, SECTIONS)
                started = page.evaluate("performance.now()")
                page.evaluate(f"window.rareevent.drawAll({drawn})")
                page.wait_for_function(
                    f"document.querySelectorAll('section.episode[data-rendered]').length >= {drawn}",
                    timeout=600_000,
                    polling=200,
                )
                per_episode = (
                    (page.evaluate("performance.now()") - started)
                    / 1000
                    / max(drawn, 1)
                )
            context.close()
        browser.close()
    return {key: statistics.median(values) for key, values in found.items()} | {
        "per_episode": per_episode,
        "episodes": episodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sensors", type=int, default=8)
    options = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs the system chromium: apt-get install -y chromium")
    exe = str(Path(sys.executable).with_name("rareevent"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        head = work / "head.csv"
        make_csv(head, 20_000, options.sensors, seed=1)
        subprocess.run(
            [
                exe,
                "train",
                str(head),
                "--epochs",
                "8",
                "--lookback",
                "5",
                "--units",
                "16,8",
                "--runs-dir",
                str(work / "runs"),
                "--name",
                "m",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for rows in options.rows:
            data = work / f"rows-{rows}.csv"
            make_csv(data, rows, options.sensors)
            score = [exe, "score", str(data), "--run", str(work / "runs" / "m")]
            plain = timed(score)
            report = work / f"rows-{rows}.html"
            with_html = timed([*score, "--html", str(report)])
            timing = render_times(chromium, report)
            results.append(
                {
                    "rows": rows,
                    "size": report.stat().st_size,
                    "score": plain,
                    "html": with_html - plain,
                    **timing,
                }
            )
    print(
        f"score --html, {options.sensors} sensors, 1-minute steps, a fault every {FAULT_EVERY:,} rows; headless Chromium, median of {RENDERS} loads"
    )
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it; the renderer CPU time does not)"
    )
    print(
        f"{'rows':>10} {'episodes':>8} {'report MB':>9} {'score s':>8} {'+html s':>8} {'plotly.js s':>11} {'timeline s':>10} {'renderer CPU s':>14} {'s/episode':>9}"
    )
    for r in results:
        print(
            f"{r['rows']:>10,} {r['episodes']:>8} {r['size'] / 1e6:>9.2f} {r['score']:>8.1f} {r['html']:>+8.1f} {r['ready']:>11.2f} {r['timeline']:>10.2f} {r['cpu']:>14.2f} {r['per_episode']:>9.3f}"
        )
    for r in results:
        if r["rows"] == 100_000:
            met = r["size"] <= 5e6 and r["cpu"] < 2
            print(
                f"goal at 100,000 rows (<= 5 MB, drawn in < 2 s): {r['size'] / 1e6:.2f} MB, {r['cpu']:.2f} s of renderer CPU to the drawn timeline ({r['timeline']:.2f} s wall here): {'met' if met else 'NOT met'}"
            )
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(
            f"ratio: {b['rows'] / a['rows']:.0f}x the rows -> {b['size'] / a['size']:.2f}x the report size, {b['cpu'] / a['cpu']:.2f}x the renderer CPU to the drawn timeline, {b['html'] / max(a['html'], 1e-9):.1f}x the report's extra scoring time"
        )


if __name__ == "__main__":
    main()
