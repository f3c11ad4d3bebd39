"""Deterministic generator for the rareevent sample data.

Writes two files next to this script:

* ``pump_sensors.csv`` - 30,000 rows of a simulated centrifugal pump sampled every
  2 minutes. Three shared latent drivers shape all eight sensors:
  plant load (a few operating levels joined by smooth cosine ramps, plus a small
  AR(1) wobble), ambient temperature (daily sine cycle plus slow weather), and
  slow wear (an upward drift). Every sensor is a physically flavoured function
  of these drivers (affinity laws, thermal lag) plus its own measurement noise.
  About 20 cavitation / seal-fault events (6-14 rows, ``label=1``) are placed
  one per equal time slot with a random offset, so every chronological split
  (0-60 %, 60-80 %, 80-100 %) holds several. During an event flow and discharge
  pressure collapse while speed and current stay, suction pressure dips and
  vibration jumps (severity grows with load, so values mostly stay inside
  their normal marginal ranges - only the joint relationship breaks); each event is preceded by a 20-40 row precursor
  (``label=0``) in which vibration and bearing temperature creep up and flow
  gets jittery - a small, growing deviation.
* ``toy.csv`` - the 9 x 2 toy series x1 = 0.1..0.9, x2 = x1**3.

Run ``python sample_data/generate.py``; output is byte-identical on every run.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

SEED = 20260105
N_ROWS = 30_000
STEP = timedelta(minutes=2)
START = datetime(2026, 1, 5)
ROWS_PER_DAY = 720
N_EVENTS = 20
OUT_DIR = Path(__file__).resolve().parent

# column name -> decimals written to the CSV (about 4 significant digits)
COLUMNS: dict[str, int] = {
    "motor_current": 2, "vibration_rms": 3, "bearing_temp": 2, "discharge_pressure": 3,
    "flow_rate": 2, "suction_pressure": 3, "motor_speed": 1, "oil_temp": 2,
}


def ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """Stationary AR(1) process with coefficient ``phi`` and marginal std ``sigma``."""
    eps = rng.normal(0.0, sigma * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + eps[i]
    return out


def lag(x: np.ndarray, tau: float) -> np.ndarray:
    """First-order thermal lag (exponential smoothing with time constant ``tau`` rows)."""
    alpha = 1.0 / tau
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        out[i] = out[i - 1] + alpha * (x[i] - out[i - 1])
    return out


def latent_drivers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (load in ~[0.3, 1], ambient temperature in degC, wear in [0, 1])."""
    levels = np.array([0.3, 0.5, 0.7, 0.85, 1.0])
    load = np.empty(n)
    pos, current = 0, 0.85
    while pos < n:
        target = rng.choice(levels[levels != current])
        ramp = int(rng.integers(15, 60))
        dwell = int(rng.integers(200, 1500))
        shape = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        segment = np.concatenate([current + (target - current) * shape, np.full(dwell, target)])
        load[pos:pos + len(segment)] = segment[: n - pos]
        pos, current = pos + len(segment), target
    load += ar1(rng, n, 0.98, 0.015)
    t = np.arange(n)
    ambient = 14.0 + 6.0 * np.sin(2 * np.pi * (t - 0.375 * ROWS_PER_DAY) / ROWS_PER_DAY)
    ambient += ar1(rng, n, 0.9995, 2.5)
    wear = (t / n) ** 1.3 + np.abs(ar1(rng, n, 0.999, 0.03))
    return load, ambient, wear


def sensors(rng: np.random.Generator, load: np.ndarray, ambient: np.ndarray,
            wear: np.ndarray) -> dict[str, np.ndarray]:
    """Map latent drivers to noise-free physical sensor signals (noise added later)."""
    speed = 700.0 + 780.0 * load
    rel = speed / 1480.0
    flow = 130.0 * rel * (1.0 - 0.04 * wear)
    suction = 1.8 - 0.35 * rel**2 + 0.01 * (ambient - 14.0)
    discharge = suction + 7.5 * rel**2 * (1.0 - 0.03 * wear)
    current = 18.0 + 52.0 * rel**3 * (1.0 + 0.05 * wear)
    vibration = 1.0 + 1.6 * rel**2 + 0.6 * wear
    bearing = lag(ambient + 18.0 + 22.0 * rel**2 + 4.0 * wear, 30.0)
    oil = lag(ambient + 12.0 + 16.0 * rel**2 + 2.0 * wear, 90.0)
    return {"motor_current": current, "vibration_rms": vibration, "bearing_temp": bearing,
            "discharge_pressure": discharge, "flow_rate": flow, "suction_pressure": suction,
            "motor_speed": speed, "oil_temp": oil}


def place_events(rng: np.random.Generator, n: int, n_events: int = N_EVENTS) -> list[tuple[int, int, int]]:
    """One event per equal slot: (precursor_start, event_start, event_length)."""
    slot = n // n_events
    events = []
    for k in range(n_events):
        pre_len, ev_len = int(rng.integers(20, 41)), int(rng.integers(6, 15))
        start = k * slot + int(rng.integers(pre_len + 60, slot - ev_len - 60))
        events.append((start - pre_len, start, ev_len))
    return events


def inject(rng: np.random.Generator, sig: dict[str, np.ndarray],
           events: list[tuple[int, int, int]], n: int) -> np.ndarray:
    """Add precursors and faults in place; return the 0/1 label vector."""
    label = np.zeros(n, dtype=int)
    for pre_start, start, length in events:
        # cavitation bites hardest at high flow: scale severity with relative speed^2
        sev = rng.uniform(0.8, 1.2) * (sig["motor_speed"][start] / 1480.0) ** 2
        ramp = np.linspace(0.0, 1.0, start - pre_start) ** 2  # slow, growing creep
        pre = slice(pre_start, start)
        sig["vibration_rms"][pre] += 0.25 * sev * ramp
        sig["bearing_temp"][pre] += 1.2 * sev * ramp
        sig["flow_rate"][pre] += rng.normal(0.0, 1.0, len(ramp)) * ramp
        ev = slice(start, start + length)
        shape = np.minimum(1.0, np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)) / 2)
        sig["flow_rate"][ev] *= 1.0 - 0.25 * sev * shape
        sig["discharge_pressure"][ev] *= 1.0 - 0.2 * sev * shape
        sig["suction_pressure"][ev] -= 0.15 * sev * shape
        sig["vibration_rms"][ev] += 0.8 * sev * shape + rng.normal(0.0, 0.2, length) * shape
        sig["motor_current"][ev] *= 1.0 + 0.02 * sev * shape
        sig["bearing_temp"][ev] += (1.2 + 1.5 * np.linspace(0.0, 1.0, length)) * sev
        label[ev] = 1
    return label


def write_pump(path: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Generate and write pump_sensors.csv; return (values, labels, events)."""
    rng = np.random.default_rng(SEED)
    load, ambient, wear = latent_drivers(rng, N_ROWS)
    sig = sensors(rng, load, ambient, wear)
    noise_std = {"motor_current": 0.6, "vibration_rms": 0.15, "bearing_temp": 0.3,
                 "discharge_pressure": 0.08, "flow_rate": 1.5, "suction_pressure": 0.02,
                 "motor_speed": 4.0, "oil_temp": 0.25}
    for name, std in noise_std.items():
        sig[name] = sig[name] + rng.normal(0.0, std, N_ROWS)
    events = place_events(rng, N_ROWS)
    label = inject(rng, sig, events, N_ROWS)
    values = np.column_stack([sig[c] for c in COLUMNS])
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", *COLUMNS, "label"])
        for i in range(N_ROWS):
            ts = (START + i * STEP).strftime("%Y-%m-%d %H:%M:%S")
            cells = [f"{values[i, j]:.{d}f}" for j, d in enumerate(COLUMNS.values())]
            writer.writerow([ts, *cells, int(label[i])])
    return values, label, events


def write_toy(path: Path) -> None:
    """Write the 9 x 2 toy series x1 = 0.1..0.9, x2 = x1**3."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["x1", "x2"])
        for k in range(1, 10):
            x1 = round(k / 10, 6)
            writer.writerow([x1, round(x1**3, 6)])


def main() -> None:
    values, label, events = write_pump(OUT_DIR / "pump_sensors.csv")
    write_toy(OUT_DIR / "toy.csv")
    assert not np.isnan(values).any()
    frac = label.mean()
    assert frac < 0.01, f"event rows {frac:.3%} >= 1%"
    bounds = [0, int(0.6 * N_ROWS), int(0.8 * N_ROWS), N_ROWS]
    per_part = [sum(lo <= s < hi for _, s, _ in events) for lo, hi in zip(bounds, bounds[1:])]
    assert min(per_part) >= 3, per_part
    print(f"rows={N_ROWS} events={len(events)} event_rows={label.sum()} "
          f"fraction={frac:.4%} events_per_part(0-60/60-80/80-100%)={per_part}")


if __name__ == "__main__":
    main()
