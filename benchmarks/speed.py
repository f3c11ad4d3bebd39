"""Speed and memory of scoring (issue 35's goal table), and against the seed article's pipeline.

    python benchmarks/speed.py [--rows 1000000] [--sensors 8]           # the goal table
    python benchmarks/speed.py --seed-article [--rows 200000] [--sensors 61] [--seed-epochs 2]

The goal table (``goals.py`` beside this file measures it): ``rareevent score`` of
``--rows`` rows (one second apart) with an ``ae``, ``plain``, ``forecast`` and ``pca``
run, each in a fresh process, against pandas' ``read_csv`` + ``to_csv`` of the same file
in the same run; the forward pass in GFLOP/s against numpy's matmul at the LSTM's shapes;
CPU use, peak memory, the cold start and the HTML report's render.

With ``--seed-article``:

The seed pipeline is written the way a reader of the article would:
a Python-loop ``temporalize`` (which also never starts a window at row 0
or 1), float64 arrays, ``fit`` with batch 64, and ``predict`` on the whole
array after reading the whole CSV. Each measurement runs in a fresh
subprocess so that its peak memory (max RSS) is its own. Printed: windowing
time, training windows per second at equal or better validation loss,
end-to-end scoring rows per second (CSV in, scores out), peak memory, and
the ratios. Nothing here is a test; timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LOOKBACK = 5
UNITS = (32, 16)


def make_csv(path: Path, rows: int, sensors: int, seed: int = 0) -> None:
    """Correlated sensors (a few latent factors + noise) with a timestamp, written in blocks."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(4, sensors))
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            t = np.arange(start, start + n)
            factors = np.column_stack(
                [
                    np.sin(t / 50),
                    np.cos(t / 170),
                    np.sin(t / 1000),
                    rng.normal(0, 0.3, n),
                ]
            )
            frame = pd.DataFrame(
                factors @ mixing + rng.normal(0, 0.1, (n, sensors)),
                columns=[f"x{i}" for i in range(sensors)],
            )
            frame.insert(0, "time", t)
            frame.to_csv(fh, header=start == 0, index=False, float_format="%.5f")


def seed_temporalize(X: np.ndarray, lookback: int) -> np.ndarray:
    """The article's loop, as published (its first window starts at row 2)."""
    output_X = []
    for i in range(len(X) - lookback - 1):
        t = []
        for j in range(1, lookback + 1):
            t.append(X[[(i + j + 1)], :])
        output_X.append(t)
    return np.array(output_X).reshape(-1, lookback, X.shape[1])


def _phase_window(csv: Path) -> dict:
    from rareevent.windows import sliding_windows

    X = pd.read_csv(csv).drop(columns="time").to_numpy()
    started = time.perf_counter()
    seed = seed_temporalize(X, LOOKBACK)
    seed_s = time.perf_counter() - started
    started = time.perf_counter()
    view = sliding_windows(X, LOOKBACK)  # what rareevent uses: a strided view, no copy
    view_s = time.perf_counter() - started
    started = time.perf_counter()
    copy = np.ascontiguousarray(
        view
    )  # every window materialised, float64 like the seed's
    copy_s = time.perf_counter() - started
    assert np.array_equal(
        copy[2 : len(seed) + 2], seed
    )  # the same windows: the seed never starts one at rows 0 or 1
    return {
        "seed_s": seed_s,
        "view_s": view_s,
        "copy_s": copy_s,
        "seed_windows": len(seed),
        "ours_windows": len(copy),
    }


def _training_data(
    csv: Path, dtype: type, seed_windows: bool
) -> tuple[np.ndarray, np.ndarray]:
    from rareevent.windows import sliding_windows

    X = pd.read_csv(csv).drop(columns="time").to_numpy()
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(dtype)
    W = (
        seed_temporalize(X, LOOKBACK)
        if seed_windows
        else np.ascontiguousarray(sliding_windows(X, LOOKBACK))
    )
    cut = int(len(W) * 0.8)
    return W[:cut], W[cut:]


def _phase_train(csv: Path, who: str, epochs: int, target: float | None) -> dict:
    """Train epoch by epoch: the seed with Keras' defaults and batch 64, ours with rareevent's auto batch and rate."""
    from rareevent.model import PREDICT_BATCH, auto_batch_size, auto_learning_rate
    from rareevent.model import build_model, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    train, valid = _training_data(
        csv, np.float64 if who == "seed" else np.float32, seed_windows=who == "seed"
    )
    model = build_model(
        "ae", LOOKBACK, train.shape[2], UNITS, unroll=who == "ours"
    )  # the article's LSTMs loop over the steps
    batch = 64 if who == "seed" else auto_batch_size(len(train))
    rate = 1e-3 if who == "seed" else auto_learning_rate(batch)
    validation_batch = (
        None if who == "seed" else PREDICT_BATCH
    )  # as RareEventDetector fits
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="mse")
    epoch_s, losses = [], []
    for _ in range(
        epochs
    ):  # one fit call per epoch, to time each and stop at the target loss
        started = time.perf_counter()
        history = model.fit(
            train,
            train,
            validation_data=(valid, valid),
            epochs=1,
            batch_size=batch,
            validation_batch_size=validation_batch,
            verbose=0,
        )
        epoch_s.append(time.perf_counter() - started)
        losses.append(float(history.history["val_loss"][-1]))
        if target is not None and losses[-1] <= target:
            break
    if who == "ours":
        model.save(csv.parent / "bench.keras")
    return {
        "windows": len(train),
        "epoch_s": epoch_s,
        "val_loss": losses,
        "total_s": sum(epoch_s),
        "batch": batch,
        "rate": rate,
    }


def _phase_score(csv: Path, who: str, run: Path) -> dict:
    started = time.perf_counter()
    if who == "ours":
        from rareevent.runs import load_run
        from rareevent.scoring import WindowWriter, score_csv

        record, detector = load_run(run)
        writer = WindowWriter(csv.parent / "scores_ours.csv", "csv")
        result = score_csv(csv, record, detector, sink=writer)
        writer.finish()
        n = result.n_rows
    else:
        from rareevent.runs import load_run

        record, detector = load_run(run)
        frame = pd.read_csv(csv)
        X = frame[detector.feature_names_in_].to_numpy()
        X = (X - detector.scaler_.mean_) / detector.scaler_.scale_
        W = seed_temporalize(X, LOOKBACK)
        reconstruction = detector.model_.net.predict(W, verbose=0)
        mse = np.mean(np.power(W - reconstruction, 2), axis=(1, 2))
        pd.DataFrame({"error": mse}).to_csv(csv.parent / "scores_seed.csv", index=False)
        n = len(frame)
    return {"rows": n, "seconds": time.perf_counter() - started}


def _make_run(csv: Path, folder: Path) -> Path:
    """A real run folder (1 epoch) whose model both scoring pipelines use."""
    from rareevent.detector import RareEventDetector
    from rareevent.options import SplitSpec, TrainSpec
    from rareevent.training import save, train

    result = train(
        csv,
        RareEventDetector(
            lookback=LOOKBACK, units=UNITS, epochs=1, threshold="quantile"
        ),
        TrainSpec(split=SplitSpec(test_frac=0.0)),
        name="bench",
    )
    return save(result, folder, overwrite=True)


def _child(args: list[str]) -> dict:
    """Run one phase in a fresh interpreter; return its JSON result plus peak RSS in MiB."""
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_phase(argv: list[str]) -> None:
    name, csv = argv[0], Path(argv[1])
    if name == "window":
        result = _phase_window(csv)
    elif name == "train":
        result = _phase_train(
            csv, argv[2], int(argv[3]), float(argv[4]) if argv[4] != "none" else None
        )
    elif name == "score":
        result = _phase_score(csv, argv[2], Path(argv[3]))
    else:
        result = {"run": str(_make_run(csv, Path(argv[2])))}
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        _run_phase(sys.argv[2:])
        return
    if "--seed-article" not in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from goals import main as goals  # the goal table of issue 35

        goals()
        return
    sys.argv.remove("--seed-article")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sensors", type=int, default=61)
    parser.add_argument(
        "--seed-epochs",
        type=int,
        default=2,
        help="epochs of the seed pipeline; ours trains until it reaches the same validation loss",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv, big = work / "bench.csv", work / "bench_x4.csv"
        make_csv(csv, options.rows, options.sensors)
        make_csv(big, options.rows * 4, options.sensors)
        window = _child(["window", str(csv)])
        seed_train = _child(
            ["train", str(csv), "seed", str(options.seed_epochs), "none"]
        )
        ours_train = _child(
            [
                "train",
                str(csv),
                "ours",
                str(options.seed_epochs * 4),
                str(seed_train["val_loss"][-1]),
            ]
        )
        run = _child(["run", str(csv), str(work / "runs")])["run"]
        scores = {
            (who, path.name): _child(["score", str(path), who, run])
            for who in ("seed", "ours")
            for path in (csv, big)
        }
    seed_rate = (
        seed_train["windows"] * len(seed_train["epoch_s"]) / seed_train["total_s"]
    )
    ours_rate = (
        ours_train["windows"] * len(ours_train["epoch_s"]) / ours_train["total_s"]
    )
    lines = [
        f"data: {options.rows:,} rows x {options.sensors} sensors, lookback {LOOKBACK}, units {UNITS}; {os.cpu_count()} CPUs",
        f"windowing         seed {window['seed_s']:.3f} s ({window['seed_windows']:,} windows)   ours {window['ours_windows']:,} windows: "
        f"view {window['view_s'] * 1e6:.0f} us (ratio {window['seed_s'] / window['view_s']:,.0f}x), "
        f"materialised copy {window['copy_s']:.3f} s (ratio {window['seed_s'] / window['copy_s']:.0f}x)",
        f"training          seed {seed_rate:,.0f} windows/s (batch 64, Adam 1e-3, {len(seed_train['epoch_s'])} epochs, val_loss {seed_train['val_loss'][-1]:.4f})",
        f"                  ours {ours_rate:,.0f} windows/s (batch {ours_train['batch']}, Adam {ours_train['rate']:.2g}, {len(ours_train['epoch_s'])} epochs to val_loss {ours_train['val_loss'][-1]:.4f})",
        f"                  time to the seed's validation loss: seed {seed_train['total_s']:.1f} s, ours {ours_train['total_s']:.1f} s, ratio {seed_train['total_s'] / ours_train['total_s']:.1f}x",
    ]
    for name in (csv.name, big.name):
        seed, ours = scores[("seed", name)], scores[("ours", name)]
        lines.append(
            f"scoring {seed['rows']:>9,} rows  seed {seed['rows'] / seed['seconds']:,.0f} rows/s, peak {seed['peak_mib']:,.0f} MiB   "
            f"ours {ours['rows'] / ours['seconds']:,.0f} rows/s, peak {ours['peak_mib']:,.0f} MiB   "
            f"speed ratio {seed['seconds'] / ours['seconds']:.1f}x"
        )
    growth_seed = (
        scores[("seed", big.name)]["peak_mib"] / scores[("seed", csv.name)]["peak_mib"]
    )
    growth_ours = (
        scores[("ours", big.name)]["peak_mib"] / scores[("ours", csv.name)]["peak_mib"]
    )
    lines.append(
        f"scoring peak memory growth for 4x the rows: seed {growth_seed:.2f}x, ours {growth_ours:.2f}x"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
