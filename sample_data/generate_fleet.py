"""Deterministic generator of a small pump fleet: one series per asset, as files and as one long table.

Every asset is the simulated pump of ``generate.py`` (same sensors, drivers
and fault events) with its own seed, so no two assets are alike. Writes into
OUT (default: ``sample_data/fleet``):

* ``exports/pump_001.csv`` ... - one CSV per asset, as a plant exports them;
* ``fleet.parquet`` - the same rows as one long table with an ``asset``
  column, rows ordered by time across assets (as a data lake holds them),
  the time column typed as timestamps.

Run ``python sample_data/generate_fleet.py [OUT] [--assets 3] [--rows 4000]``
(Parquet needs pyarrow). ``benchmarks/fleet.py`` uses :func:`asset_frame`
for its larger fleet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import COLUMNS, START, STEP, inject, latent_drivers, place_events, sensors  # noqa: E402

SEED = 20260112
ROWS_PER_EVENT = 500
NOISE = {"motor_current": 0.6, "vibration_rms": 0.15, "bearing_temp": 0.3, "discharge_pressure": 0.08, "flow_rate": 1.5, "suction_pressure": 0.02, "motor_speed": 4.0, "oil_temp": 0.25}


def asset_name(index: int) -> str:
    return f"pump_{index + 1:03d}"


def asset_frame(index: int, n_rows: int) -> pd.DataFrame:
    """Rows of asset ``index`` (seed ``SEED + index``): time as text, eight sensors rounded as the CSV holds them, 0/1 label."""
    rng = np.random.default_rng(SEED + index)
    load, ambient, wear = latent_drivers(rng, n_rows)
    signals = sensors(rng, load, ambient, wear)
    for name, std in NOISE.items():
        signals[name] = signals[name] + rng.normal(0.0, std, n_rows)
    label = inject(rng, signals, place_events(rng, n_rows, max(2, n_rows // ROWS_PER_EVENT)), n_rows)
    frame = pd.DataFrame({"timestamp": (pd.Timestamp(START) + pd.Series(np.arange(n_rows)) * pd.Timedelta(STEP)).dt.strftime("%Y-%m-%d %H:%M:%S")})
    for name, decimals in COLUMNS.items():
        frame[name] = np.round(signals[name], decimals)
    frame["label"] = label
    return frame


def write_fleet(out: Path, n_assets: int, n_rows: int, parquet: bool = True) -> list[Path]:
    """Write the per-asset CSVs (and the long Parquet table); return the CSV paths."""
    exports = out / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    paths, frames = [], []
    for index in range(n_assets):
        frame = asset_frame(index, n_rows)
        path = exports / f"{asset_name(index)}.csv"
        frame.to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
        if parquet:  # the numbers as read back from the CSV, so both forms hold the same values to the last bit
            frames.append(pd.read_csv(path).assign(asset=asset_name(index)))
    if parquet:
        long = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "asset"], kind="stable")
        long["timestamp"] = pd.to_datetime(long["timestamp"])
        long[["asset", "timestamp", *COLUMNS, "label"]].to_parquet(out / "fleet.parquet", index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).resolve().parent / "fleet")
    parser.add_argument("--assets", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    paths = write_fleet(args.out, args.assets, args.rows)
    print(f"wrote {len(paths)} asset files x {args.rows} rows to {args.out / 'exports'} and {args.out / 'fleet.parquet'}")


if __name__ == "__main__":
    main()
