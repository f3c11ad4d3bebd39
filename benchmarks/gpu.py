"""GPU against CPU on one machine: steady-state speed, fixed cost, end to end.

    python benchmarks/gpu.py [--rows 400000] [--sensors 20] [--e2e-rows 1000000] [--out results.json]

Run it on a machine with a GPU and JAX with CUDA (``pip install 'rareevent[gpu]'``).
Every CPU number comes from the same machine in the same run, with JAX
pinned to its CPU (``JAX_PLATFORMS=cpu``) in a subprocess. Parts:

``phases``
    One model per configuration (unrolled LSTMs or the cuDNN loop, batch 128
    or larger) on the training windows of a ``--rows`` x ``--sensors`` file.
    The fixed cost is split into its compilations: the first training step,
    the first validation step and the first prediction, each minus a second,
    compiled call of the same shape. Steady state: windows per second over
    epochs 2 and 3 of ``fit``.
``batches``
    The same windows trained to early stopping (40 epochs at most, patience
    5) with each batch size, the learning rate rareevent derives from it and
    its warm-up: the best validation loss says whether the batch still
    converges.
``e2e``
    ``rareevent train`` and ``rareevent score`` on a ``--e2e-rows`` file, as
    installed, with their wall time. On the CPU only ``--cpu-epochs`` epochs
    are trained; the full run is extrapolated from its steady epoch time and
    the GPU run's epoch count (printed as such).
``sample``
    ``rareevent train`` on ``sample_data/pump_sensors.csv`` twice: same seed,
    same device must give the same threshold; test F1 and PR-AUC against the
    CPU's.

Nothing here is a test; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import make_csv  # noqa: E402  (the same synthetic sensors as the speed benchmark)

LOOKBACK = 5
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "pump_sensors.csv"


def _windows(rows: int, sensors: int) -> tuple[np.ndarray, np.ndarray]:
    """Scaled training and validation windows of the synthetic sensors (60% / 20% of the rows, as ``train`` splits)."""
    from rareevent import scaling, windows

    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "data.csv"
        make_csv(csv, rows, sensors)
        import pandas as pd

        X = pd.read_csv(csv).drop(columns="time").to_numpy(np.float32)
    n_train, n_valid = int(rows * 0.6), int(rows * 0.2)
    scaler = scaling.fit_scaler(X[:n_train])
    scaled = scaling.transform(scaler, X)
    train = windows.sliding_windows(scaled[:n_train], LOOKBACK)
    valid = windows.sliding_windows(scaled[n_train : n_train + n_valid], LOOKBACK)
    return np.ascontiguousarray(train), np.ascontiguousarray(valid)


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def phase_times(train: np.ndarray, valid: np.ndarray, unroll: bool, batch: int) -> dict:
    """Compile times of the train, validation and predict steps, and steady windows/s over two epochs."""
    from rareevent.model import (
        PREDICT_BATCH,
        auto_learning_rate,
        learning_rate_schedule,
        whole_batches,
    )
    from rareevent.model import build_model, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = build_model("ae", LOOKBACK, train.shape[2], (32, 16), unroll=unroll)
    rate = auto_learning_rate(batch)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate_schedule(keras, rate, batch, len(train))
        ),
        loss="mse",
    )
    x, v, p = train[:batch], valid[:PREDICT_BATCH], valid[:PREDICT_BATCH]
    out = {"unroll": unroll, "batch": batch}
    for name, call in (
        ("train_step", lambda: model.train_on_batch(x, x)),
        ("valid_step", lambda: model.test_on_batch(v, v)),
        ("predict", lambda: model.predict_on_batch(p)),
    ):
        first = _timed(call)
        out[f"{name}_compile_s"] = max(first - _timed(call), 0.0)
    epoch_ends: list[float] = []
    data = whole_batches(train, batch, 0)
    started = time.perf_counter()
    model.fit(
        data,
        data,
        validation_data=(valid, valid),
        epochs=3,
        batch_size=batch,
        validation_batch_size=PREDICT_BATCH,
        verbose=0,
        callbacks=[
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: epoch_ends.append(time.perf_counter())
            )
        ],
    )
    durations = np.diff([started, *epoch_ends])
    out["first_epoch_s"] = float(durations[0])
    out["steady_epoch_s"] = float(durations[1:].mean())
    out["windows_per_s"] = len(data) / out["steady_epoch_s"]
    out["fit_fixed_s"] = float(durations[0] - durations[1:].mean())
    out["fixed_s"] = (
        out["train_step_compile_s"]
        + out["valid_step_compile_s"]
        + out["predict_compile_s"]
    )
    return out


def batch_convergence(train: np.ndarray, valid: np.ndarray, batch: int) -> dict:
    """Best validation loss, epochs and seconds when training to early stopping at ``batch``."""
    from rareevent.model import (
        PREDICT_BATCH,
        auto_learning_rate,
        learning_rate_schedule,
        whole_batches,
    )
    from rareevent.model import build_model, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = build_model("ae", LOOKBACK, train.shape[2], (32, 16))
    rate = auto_learning_rate(batch)
    data = whole_batches(train, batch, 0)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate_schedule(keras, rate, batch, len(data))
        ),
        loss="mse",
    )
    started = time.perf_counter()
    history = model.fit(
        data,
        data,
        validation_data=(valid, valid),
        epochs=40,
        batch_size=batch,
        validation_batch_size=PREDICT_BATCH,
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=5, restore_best_weights=True
            )
        ],
    )
    losses = history.history["val_loss"]
    return {
        "batch": batch,
        "learning_rate": rate,
        "best_val_loss": float(min(losses)),
        "epochs": len(losses),
        "seconds": time.perf_counter() - started,
    }


def _cli(args: list[str], cpu: bool, timeout: float) -> float:
    """Wall seconds of one installed ``rareevent`` command; the CPU variant pins JAX to the CPU."""
    env = dict(os.environ, **({"JAX_PLATFORMS": "cpu"} if cpu else {}))
    exe = str(Path(sys.executable).with_name("rareevent"))
    started = time.perf_counter()
    done = subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"rareevent {' '.join(args)}: {(done.stdout + done.stderr)[-1500:]}"
        )
    return time.perf_counter() - started


def _run_facts(runs: Path, name: str) -> dict:
    from rareevent.runs import read_run

    record = read_run(
        runs / name
    )  # run.json's metadata with the detector's values, read without Keras
    test = record.metrics.get("test") or {}
    return {
        "threshold": record.threshold,
        "epochs_run": record.epochs_run,
        "train_seconds": record.train_seconds,
        "batch_size": record.batch_size,
        "device": (record.versions or {}).get("device"),
        "train_windows": (record.windows or {}).get("train_normal"),
        "best_val_loss": min((record.history or {}).get("val_loss") or [float("nan")]),
        "test_f1": test.get("f1"),
        "test_pr_auc": test.get("pr_auc"),
    }


def cpu_phases(args: argparse.Namespace) -> dict:
    """The CPU's default configuration (unrolled, batch 128) measured by this script in a subprocess pinned to the CPU."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cpu.json"
        command = [
            sys.executable,
            __file__,
            "--rows",
            str(args.rows),
            "--sensors",
            str(args.sensors),
            "--parts",
            "phases",
            "--configs",
            "unrolled:128",
            "--out",
            str(out),
        ]
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            timeout=args.timeout,
        )
        return json.loads(out.read_text())["phases"][0]


def end_to_end(
    rows: int,
    sensors: int,
    cpu_epochs: int,
    timeout: float,
    cpu_windows_per_s: float | None,
) -> dict:
    """``train`` and ``score`` on a ``rows`` x ``sensors`` file, GPU then CPU (``cpu_epochs`` epochs, extrapolated).

    The CPU's remaining epochs (up to the GPU run's count) are priced at its
    steady speed from ``cpu_phases``, so its compile cost is counted once.
    """
    import pandas as pd

    out: dict = {"rows": rows, "sensors": sensors}
    with tempfile.TemporaryDirectory() as folder:
        csv, runs = Path(folder) / "big.csv", Path(folder) / "runs"
        make_csv(csv, rows, sensors)
        out["read_csv_s"] = _timed(lambda: pd.read_csv(csv))
        for device, cpu in (("gpu", False), ("cpu", True)):
            extra = ["--epochs", str(cpu_epochs)] if cpu else []
            wall = _cli(
                [
                    "train",
                    str(csv),
                    "--name",
                    device,
                    "--runs-dir",
                    str(runs),
                    "--quiet",
                    *extra,
                ],
                cpu,
                timeout,
            )
            facts = _run_facts(runs, device)
            facts["train_wall_s"] = wall
            facts["score_wall_s"] = _cli(
                [
                    "score",
                    str(csv),
                    "--run",
                    device,
                    "--runs-dir",
                    str(runs),
                    "--output",
                    str(Path(folder) / f"{device}.csv"),
                    "--quiet",
                ],
                cpu,
                timeout,
            )
            out[device] = facts
        gpu, cpu = out["gpu"], out["cpu"]
        if cpu_windows_per_s:
            cpu_epoch = gpu["train_windows"] / cpu_windows_per_s
            out["cpu_train_wall_extrapolated_s"] = cpu[
                "train_wall_s"
            ] + cpu_epoch * max(gpu["epochs_run"] - cpu["epochs_run"], 0)
            out["train_speedup"] = (
                out["cpu_train_wall_extrapolated_s"] / gpu["train_wall_s"]
            )
        out["score_speedup"] = cpu["score_wall_s"] / gpu["score_wall_s"]
    return out


def sample_runs(timeout: float) -> dict:
    """The sample data trained twice on the GPU: the thresholds must be equal."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        runs = Path(folder) / "runs"
        for name in ("first", "second"):
            wall = _cli(
                [
                    "train",
                    str(SAMPLE),
                    "--name",
                    name,
                    "--runs-dir",
                    str(runs),
                    "--quiet",
                ],
                False,
                timeout,
            )
            out[name] = _run_facts(runs, name) | {"train_wall_s": wall}
    out["same_threshold"] = out["first"]["threshold"] == out["second"]["threshold"]
    out["val_loss_equal"] = (
        out["first"]["best_val_loss"] == out["second"]["best_val_loss"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--e2e-rows", type=int, default=1_000_000)
    parser.add_argument("--cpu-epochs", type=int, default=3)
    parser.add_argument("--batches", default="128,1024,2048,4096")
    parser.add_argument("--parts", default="phases,cpu-phases,batches,e2e,sample")
    parser.add_argument(
        "--configs",
        default=None,
        help="phases' configurations, e.g. unrolled:128,cudnn:auto (default: four, see the docstring)",
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the results as JSON here (after each part)",
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    results: dict = {}

    def record(key: str, value) -> None:
        results[key] = value
        print(json.dumps({key: value}, default=float), flush=True)
        if args.out is not None:
            args.out.write_text(json.dumps(results, indent=2, default=float))

    from rareevent.model import compute_device, versions

    record("versions", versions())
    if "phases" in parts or "batches" in parts:
        train, valid = _windows(args.rows, args.sensors)
        record("windows", {"train": len(train), "valid": len(valid)})
        if "phases" in parts:
            from rareevent.model import GPU_MAX_BATCH, auto_batch_size

            auto = auto_batch_size(len(train), compute_device() != "cpu")
            configs = [(True, 128), (True, GPU_MAX_BATCH), (False, 128), (False, auto)]
            if args.configs:
                configs = [
                    (kind == "unrolled", auto if batch == "auto" else int(batch))
                    for kind, batch in (c.split(":") for c in args.configs.split(","))
                ]
            record(
                "phases",
                [phase_times(train, valid, unroll, batch) for unroll, batch in configs],
            )
        if "batches" in parts:
            record(
                "batches",
                [
                    batch_convergence(train, valid, int(b))
                    for b in args.batches.split(",")
                ],
            )
    if "sample" in parts:
        record("sample", sample_runs(args.timeout))
    if "cpu-phases" in parts:
        record("cpu_phases", cpu_phases(args))
    if "e2e" in parts:
        record(
            "e2e",
            end_to_end(
                args.e2e_rows,
                args.sensors,
                args.cpu_epochs,
                args.timeout,
                results.get("cpu_phases", {}).get("windows_per_s"),
            ),
        )


if __name__ == "__main__":
    main()
