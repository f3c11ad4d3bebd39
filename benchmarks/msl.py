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

The field's metrics (``field_metrics.py``), per channel and averaged, on the
same rows: AUPRC, point-wise best F1 and range-based best F1_T of the window
scores; the point-wise F1 and F1_T of the shipped flags beside the best F1
of the same scores; and QuoVadisTAD's four simple baselines. The goal table
of issue 24 closes the output.
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
from sklearn.metrics import average_precision_score, f1_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import rareevent  # noqa: E402
from field_metrics import baseline_scores, best_f1, best_f1_t, f1_t  # noqa: E402

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


def evaluate(
    arch: str,
    data: Path,
    channel: str,
    train_args: list[str],
    work: Path,
    use_cli: bool,
) -> dict:
    runs = work / "runs"
    rareevent(
        [
            "train",
            str(data / f"{channel}_train.csv"),
            "--arch",
            arch,
            "--time",
            "t",
            "--test-frac",
            "0",
            "--runs-dir",
            str(runs),
            "--name",
            "r",
            "--overwrite",
            *train_args,
        ],
        use_cli,
    )
    out = work / "metrics.json"
    windows = work / "windows.csv"
    rareevent(
        [
            "score",
            str(data / f"{channel}_test.csv"),
            "--run",
            str(runs / "r"),
            "--label",
            LABEL,
            "--metrics-out",
            str(out),
            "--output",
            str(windows),
            "--quiet",
        ],
        use_cli,
    )
    metrics = json.loads(out.read_text())["metrics"]
    lookback = json.loads((runs / "r" / "detector.json").read_text())["params"][
        "lookback"
    ]
    scored = pd.read_csv(windows)
    t = pd.read_csv(data / f"{channel}_test.csv", usecols=["t"])["t"].to_numpy()
    rows = np.searchsorted(t, scored["time"].to_numpy())  # the row each window ends at
    return {
        **{
            k: metrics[k]
            for k in ("pr_auc", "roc_auc", "events", "events_detected", "false_alarms")
        },
        "lookback": lookback,
        "rows": rows,
        "error": scored["error"].to_numpy(),
        "flagged": scored["flagged"].to_numpy().astype(bool),
    }


def field(
    labels: np.ndarray, scores: np.ndarray, flags: np.ndarray | None = None
) -> dict[str, float]:
    """The field's metrics of one score (and, for a detector, of its flags) on the same rows."""
    found = {
        "auprc": float(average_precision_score(labels, scores)),
        "best_f1": best_f1(labels, scores),
        "best_f1_t": best_f1_t(labels, scores),
    }
    if flags is not None:
        found |= {
            "flags_f1": float(f1_score(labels, flags, zero_division=0)),
            "flags_f1_t": f1_t(labels, flags),
        }
    return found


def field_table(
    data: Path, names: list[str], results: dict[str, dict[str, dict]]
) -> dict[str, dict[str, float]]:
    """Mean field metrics over the channels, per architecture and per simple baseline, on the rows the first architecture scored."""
    per: dict[str, list[dict[str, float]]] = {}
    first = next(iter(results))
    for channel in names:
        train = (
            pd.read_csv(data / f"{channel}_train.csv")
            .drop(columns=["t"])
            .to_numpy(float)
        )
        test = pd.read_csv(data / f"{channel}_test.csv")
        y = test.pop(LABEL).to_numpy().astype(bool)
        rows = results[first][channel]["rows"]
        for arch, by_channel in results.items():
            r = by_channel[channel]
            per.setdefault(arch, []).append(
                field(y[r["rows"]], r["error"], r["flagged"])
            )
        for name, score in baseline_scores(
            train, test.drop(columns=["t"]).to_numpy(float), y
        ).items():
            per.setdefault(name, []).append(field(y[rows], score[rows]))
    means = {
        name: {key: float(np.mean([m[key] for m in found])) for key in found[0]}
        for name, found in per.items()
    }
    print(
        "\nField metrics (QuoVadisTAD's protocol), mean over channels; best F1 and F1_T at the best threshold of each score"
    )
    print(
        "| detector | AUPRC | best F1 | best F1_T | flags F1 | flags F1_T | flags F1 / best F1 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, m in means.items():
        flags = (
            f"{m['flags_f1']:.3f} | {m['flags_f1_t']:.3f} | {m['flags_f1'] / m['best_f1']:.2f}"
            if "flags_f1" in m
            else "- | - | -"
        )
        print(
            f"| {name} | {m['auprc']:.3f} | {m['best_f1']:.3f} | {m['best_f1_t']:.3f} | {flags} |"
        )
    return means


def goal_table(
    arch: str,
    results: dict[str, dict],
    reference: dict[str, float],
    means: dict[str, dict[str, float]],
) -> None:
    """Issue 24's MSL goals for ``arch`` (the shipped default when it was run)."""
    r = results[arch].values()
    pr_auc = np.mean([x["pr_auc"] or 0 for x in r])
    caught = sum(x["events_detected"] for x in r)
    events = sum(x["events"] for x in r)
    episodes = sum(x["false_alarms"] for x in r)
    wins = sum((results[arch][c]["pr_auc"] or 0) > reference[c] for c in results[arch])
    m = means[arch]
    margin = min(
        min(m["auprc"] - means[b]["auprc"], m["best_f1_t"] - means[b]["best_f1_t"])
        for b in ("L2", "1-NN", "PCA error")
    )
    print(f"\nGoals of issue 24, MSL dev ({len(results[arch])} channels), {arch}")
    print("| measure | now | goal | met |")
    print("| --- | --- | --- | --- |")
    rows = [
        ("mean PR-AUC", f"{pr_auc:.3f}", ">= 0.45", pr_auc >= 0.45),
        (
            "anomalies caught; FA episodes",
            f"{caught}/{events}; {episodes}",
            ">= 15/21 with <= 100",
            caught >= 15 and episodes <= 100,
        ),
        ("channels won vs the PCA ref", str(wins), ">= 13", wins >= 13),
        (
            "AUPRC, F1_T vs L2, 1-NN, PCA error: smallest lead",
            f"{margin:+.3f}",
            ">= +0.05",
            margin >= 0.05,
        ),
        (
            "flags F1 / best F1",
            f"{m['flags_f1']:.3f} / {m['best_f1']:.3f} = {m['flags_f1'] / m['best_f1']:.2f}",
            ">= 0.75",
            m["flags_f1"] / m["best_f1"] >= 0.75,
        ),
    ]
    for measure, now, goal, met in rows:
        print(f"| {measure} | {now} | {goal} | {'yes' if met else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "msl",
    )
    parser.add_argument("--arch", nargs="+", default=["ae", "plain", "pca"])
    parser.add_argument(
        "--channels", nargs="*", default=None, help="a subset of channels, e.g. C-1 M-3"
    )
    parser.add_argument(
        "--cli",
        action="store_true",
        help="run the installed rareevent command for every channel",
    )
    parser.add_argument(
        "--train-args",
        default="",
        help="extra rareevent train options, e.g. '--context none'",
    )
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
                results[arch][channel] = evaluate(
                    arch, data, channel, train_args, Path(tmp), options.cli
                )
            seconds[arch] = time.perf_counter() - started
    reference = {
        c: pca_reference(data, c, results[options.arch[0]][c]["lookback"])
        for c in names
    }
    print(
        f"MSL, {len(names)} channels, train on X_train.csv (no labels), score X_test.csv; options: {' '.join(train_args) or '(defaults)'}"
    )
    header = f"{'channel':<8}{'PCA ref':>8}" + "".join(
        f"{arch + ' PR-AUC':>14}{'ROC':>6}{'caught':>8}{'FA ep':>6}"
        for arch in options.arch
    )
    print(header)
    for c in names:
        cells = "".join(
            f"{_num(r['pr_auc']):>14}{_num(r['roc_auc']):>6}{str(r['events_detected']) + '/' + str(r['events']):>8}{r['false_alarms']:>6}"
            for r in (results[arch][c] for arch in options.arch)
        )
        print(f"{c:<8}{reference[c]:>8.3f}{cells}")
    print(
        f"{'mean':<8}{np.mean(list(reference.values())):>8.3f}"
        + "".join(
            f"{np.mean([r['pr_auc'] or 0 for r in results[a].values()]):>14.3f}{np.mean([r['roc_auc'] or 0.5 for r in results[a].values()]):>6.3f}"
            f"{str(sum(r['events_detected'] for r in results[a].values())) + '/' + str(sum(r['events'] for r in results[a].values())):>8}"
            f"{sum(r['false_alarms'] for r in results[a].values()):>6}"
            for a in options.arch
        )
    )
    for arch in options.arch:
        wins = sum((results[arch][c]["pr_auc"] or 0) > reference[c] for c in names)
        print(
            f"{arch}: beats the PCA reference on {wins} of {len(names)} channels; {seconds[arch]:.0f} s"
        )
    means = field_table(data, names, results)
    goal_table(options.arch[0], results, reference, means)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
