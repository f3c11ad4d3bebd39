"""Detection quality on NASA MSL telemetry, with the protocol of ../shared/data/msl/README.md.

    python benchmarks/msl.py [--data ../shared/data/msl] [--arch ae plain pca] [--train-args '...'] [--cli]

For each channel: ``rareevent train X_train.csv --time t --test-frac 0`` (no
labels, so the threshold is the default without labels; other options at
their defaults; the data's README used ``--threshold quantile``, which
``--train-args`` restores), then
``rareevent score X_test.csv --label anomaly --metrics-out m.json`` with the
saved run. Reported per channel and on average: point-wise PR-AUC and ROC-AUC
of the window scores over the test rows (a row is scored by the window ending
at it), anomalies caught and false-alarm episodes as ``score`` counts them.
The PCA reference of the data's README (StandardScaler on the training rows,
``PCA(n_components=30)``, mean squared reconstruction error of the row) is
computed on the same rows, and a channel counts as won when the detector's
PR-AUC is above it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import rareevent  # noqa: E402

LABEL = "anomaly"


def channels(data: Path) -> list[str]:
    found = sorted(p.name[: -len("_train.csv")] for p in data.glob("*_train.csv"))
    if not found:
        raise SystemExit(f"no MSL channels under {data}")
    return found


def pca_reference(data: Path, channel: str, lookback: int) -> float:
    """PR-AUC of the README's PCA baseline over the rows that have a window (from row T-1 on)."""
    train = pd.read_csv(data / f"{channel}_train.csv").drop(columns=["t"])
    test = pd.read_csv(data / f"{channel}_test.csv")
    y = test.pop(LABEL).to_numpy()
    scaler = StandardScaler().fit(train)
    pca = PCA(n_components=min(30, train.shape[1])).fit(scaler.transform(train))
    z = scaler.transform(test.drop(columns=["t"]))
    error = np.square(z - pca.inverse_transform(pca.transform(z))).mean(axis=1)
    return float(average_precision_score(y[lookback - 1 :], error[lookback - 1 :]))


def evaluate(arch: str, data: Path, channel: str, train_args: list[str], work: Path, use_cli: bool) -> dict:
    runs = work / "runs"
    rareevent(["train", str(data / f"{channel}_train.csv"), "--arch", arch, "--time", "t", "--test-frac", "0",
               "--runs-dir", str(runs), "--name", "r", "--overwrite", *train_args], use_cli)
    out = work / "metrics.json"
    rareevent(["score", str(data / f"{channel}_test.csv"), "--run", str(runs / "r"), "--label", LABEL, "--metrics-out", str(out)], use_cli)
    metrics = json.loads(out.read_text())["metrics"]
    lookback = json.loads((runs / "r" / "detector.json").read_text())["params"]["lookback"]
    return {**{k: metrics[k] for k in ("pr_auc", "roc_auc", "events", "events_detected", "false_alarms")}, "lookback": lookback}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "msl")
    parser.add_argument("--arch", nargs="+", default=["ae", "plain", "pca"])
    parser.add_argument("--channels", nargs="*", default=None, help="a subset of channels, e.g. C-1 M-3")
    parser.add_argument("--cli", action="store_true", help="run the installed rareevent command for every channel")
    parser.add_argument("--train-args", default="", help="extra rareevent train options, e.g. '--context none'")
    options = parser.parse_args()
    data = options.data.resolve()
    names = options.channels or channels(data)
    train_args = shlex.split(options.train_args)
    results: dict[str, dict[str, dict]] = {arch: {} for arch in options.arch}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in options.arch:
            started = time.perf_counter()
            for channel in names:
                results[arch][channel] = evaluate(arch, data, channel, train_args, Path(tmp), options.cli)
            seconds[arch] = time.perf_counter() - started
    reference = {c: pca_reference(data, c, results[options.arch[0]][c]["lookback"]) for c in names}
    print(f"MSL, {len(names)} channels, train on X_train.csv (no labels), score X_test.csv; options: {' '.join(train_args) or '(defaults)'}")
    header = f"{'channel':<8}{'PCA ref':>8}" + "".join(f"{arch + ' PR-AUC':>14}{'ROC':>6}{'caught':>8}{'FA ep':>6}" for arch in options.arch)
    print(header)
    for c in names:
        cells = "".join(
            f"{_num(r['pr_auc']):>14}{_num(r['roc_auc']):>6}{str(r['events_detected']) + '/' + str(r['events']):>8}{r['false_alarms']:>6}"
            for r in (results[arch][c] for arch in options.arch)
        )
        print(f"{c:<8}{reference[c]:>8.3f}{cells}")
    print(f"{'mean':<8}{np.mean(list(reference.values())):>8.3f}" + "".join(
        f"{np.mean([r['pr_auc'] or 0 for r in results[a].values()]):>14.3f}{np.mean([r['roc_auc'] or 0.5 for r in results[a].values()]):>6.3f}"
        f"{str(sum(r['events_detected'] for r in results[a].values())) + '/' + str(sum(r['events'] for r in results[a].values())):>8}"
        f"{sum(r['false_alarms'] for r in results[a].values()):>6}"
        for a in options.arch
    ))
    for arch in options.arch:
        wins = sum((results[arch][c]["pr_auc"] or 0) > reference[c] for c in names)
        print(f"{arch}: beats the PCA reference on {wins} of {len(names)} channels; {seconds[arch]:.0f} s")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
