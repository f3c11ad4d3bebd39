"""Stage A of the scorecard: train every candidate on every series and cache its window scores.

Each candidate is trained and scored through the library's CLI (in process,
as ``msl.py``, ``skab.py`` and ``faults.py`` do), and each baseline is fitted
on the same training rows. Per series, one file
``benchmarks/.cache/<dataset>/<candidate>/<series>.npz`` (``np.load(...,
allow_pickle=False)`` reads it) holds:

- ``scores``, ``ends``: the scored windows of the evaluated file and the row
  (0-based, in that file) each one ends at;
- ``valid_scores``, ``valid_ends``: the validation windows of the training
  file, and ``valid_labels``: their 0/1 labels (empty without labels);
- ``labels``, ``time``: the evaluated file's row labels and time column, one
  per row; ``eval_start``: the first row evaluated (the sample data: its test
  part; elsewhere 0);
- ``window_labels``: the test windows' labels as ``train`` saved them (the
  sample data), else empty;
- ``threshold`` and ``strategy``: the threshold the run picked on its
  validation windows (``pot:0.001`` without labels, ``f1`` on the validation
  PR curve with them); a baseline's is picked the same way from its own
  validation scores; ``lookback``; ``seconds``: the time the entry took.

Baselines score rows; their windows are the rows from ``BASELINE_LOOKBACK - 1``
on in each part, so they cover the rows the default candidate scores. They
are: scikit-learn's IsolationForest on the rows (``iforest``) and with its row
scores averaged over the trailing ``BASELINE_LOOKBACK`` rows
(``iforest-mean5``); a PCA of the standardised rows (``pca-rows``, half as
many components as sensors, at most 30: four on the sample data, as in the
issue); the L2 norm of the MinMax-scaled rows (``l2``) and their distance to
the nearest training row (``1nn``), QuoVadisTAD's two simplest baselines.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import pairwise_distances_chunked
from sklearn.preprocessing import MinMaxScaler, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import rareevent

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SHARED = HERE.parents[1] / "shared" / "data"
SAMPLE = HERE.parent / "sample_data" / "pump_sensors.csv"
BASELINE_LOOKBACK = 5

# Each candidate names its lookback and window score, so that an entry means the same
# model whatever the library's defaults are; other options are the library's defaults.
# ``max`` and ``tail`` need a rareevent that has them (``--score``, issue 31 item 4).
CANDIDATES: dict[str, list[str]] = {
    "ae": ["--lookback", "5", "--score", "mean"],  # 0.4.0's default
    "ae-last": ["--lookback", "5", "--score", "last"],
    "ae-max": ["--lookback", "5", "--score", "max"],
    "ae-tail": ["--lookback", "5", "--score", "tail"],
    "ae-lb1": ["--lookback", "1"],
    "pca": ["--arch", "pca", "--lookback", "5", "--score", "mean"],
    "pca-last": ["--arch", "pca", "--lookback", "5", "--score", "last"],
    "pca-lb1": ["--arch", "pca", "--lookback", "1"],
}
BASELINES = ("iforest", "iforest-mean5", "pca-rows", "l2", "1nn")
DEFAULT = "ae-lb1"  # the candidate the goal table reads: 0.5's default model
SKAB_TRAIN_ROWS = 400
SKAB_QUICK = ("valve1/0", "valve1/5", "valve2/0", "other/1", "other/9", "other/14")


@dataclass(frozen=True)
class Series:
    """One trained-and-scored unit of a dataset.

    ``train_csv`` is what ``rareevent train`` reads; ``test_csv`` what
    ``score`` reads (``None``: the test part of the training file, as
    ``train`` scores it). ``not_sensors`` are the columns baselines leave out;
    ``trains_on_labels`` whether the run (and so a baseline) uses the labels of
    the training file for its normal rows and its threshold.
    """

    name: str
    train_csv: Path
    test_csv: Path | None
    label: str
    time: str
    train_args: list[str]
    score_args: list[str]
    not_sensors: tuple[str, ...]
    sep: str = ","
    test_frac: float = 0.0
    trains_on_labels: bool = False  # the run sees the label column (the sample data)
    prepare: Callable[[], None] | None = field(default=None, compare=False)


def msl_series(data: Path = SHARED / "msl") -> list[Series]:
    names = sorted(p.name[: -len("_train.csv")] for p in data.glob("*_train.csv"))
    if not names:
        raise SystemExit(f"no MSL channels under {data}")
    return [
        Series(
            name,
            data / f"{name}_train.csv",
            data / f"{name}_test.csv",
            "anomaly",
            "t",
            ["--time", "t", "--test-frac", "0"],
            ["--label", "anomaly"],
            ("t", "anomaly"),
        )
        for name in names
    ]


def skab_series(data: Path = SHARED / "skab", quick: bool = False) -> list[Series]:
    """SKAB's protocol (``skab.py``): train on each file's first 400 rows, score the whole file."""
    files = sorted(p for p in data.glob("*/*.csv") if p.parent.name != "anomaly-free")
    if not files:
        raise SystemExit(f"no SKAB files under {data}")
    found = []
    for csv in files:
        name = f"{csv.parent.name}/{csv.stem}"
        if quick and name not in SKAB_QUICK:
            continue
        head = CACHE / "skab" / "data" / f"{csv.parent.name}-{csv.stem}_head.csv"
        found.append(
            Series(
                name.replace("/", "-"),
                head,
                csv,
                "anomaly",
                "datetime",
                ["--test-frac", "0", "--drop", "anomaly,changepoint"],
                [],
                ("datetime", "anomaly", "changepoint"),
                sep=";",
                prepare=lambda csv=csv, head=head: _head(csv, head, SKAB_TRAIN_ROWS),
            )
        )
    return found


def _head(csv: Path, head: Path, rows: int) -> None:
    head.parent.mkdir(parents=True, exist_ok=True)
    with open(csv, encoding="utf-8") as src:
        text = "".join(line for _, line in zip(range(rows + 1), src, strict=False))
    _atomic_text(head, text)


def faults_series() -> list[Series]:
    folder = CACHE / "faults" / "data"

    def prepare() -> None:
        import faults

        if not (folder / "plant_test.csv").exists():
            folder.mkdir(parents=True, exist_ok=True)
            faults.write(faults.plant(0), folder)

    return [
        Series(
            "plant",
            folder / "plant_train.csv",
            folder / "plant_test.csv",
            "fault",
            "t",
            ["--time", "t", "--context", "sp_speed,sp_valve", "--test-frac", "0"],
            ["--label", "fault"],
            ("t", "fault"),
            prepare=prepare,
        )
    ]


def sample_series() -> list[Series]:
    """The sample data with the CLI's default split; the test part is evaluated."""
    return [
        Series(
            "pump",
            SAMPLE,
            None,
            "label",
            "timestamp",
            [],
            [],
            ("timestamp", "label"),
            test_frac=0.2,
            trains_on_labels=True,
        )
    ]


def dataset_series(name: str, quick: bool = False) -> list[Series]:
    if name == "msl":
        return msl_series()
    if name == "skab":
        return skab_series(quick=quick)
    if name == "faults":
        return faults_series()
    if name == "sample":
        return sample_series()
    raise SystemExit(f"unknown dataset {name!r}: use {', '.join(DATASETS)}")


DATASETS = ("msl", "skab", "faults", "sample")


def cache_path(dataset: str, candidate: str, series: str) -> Path:
    return CACHE / dataset / candidate / f"{series}.npz"


def load_entry(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as found:
        return {key: found[key] for key in found.files}


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    with os.fdopen(fd, "wb") as out:
        np.savez(out, **arrays)
    os.replace(tmp, path)


def _read(series: Series, csv: Path) -> pd.DataFrame:
    return pd.read_csv(csv, sep=series.sep)


def _time_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(np.float64)
    return pd.to_datetime(values).to_numpy("datetime64[ns]")


def _evaluated(series: Series) -> tuple[pd.DataFrame, int]:
    """The evaluated file and its first evaluated row."""
    if series.test_csv is not None:
        return _read(series, series.test_csv), 0
    frame = _read(series, series.train_csv)
    return frame, _splits(len(frame), series)["test"][0]


def _splits(n: int, series: Series) -> dict[str, tuple[int, int]]:
    from rareevent.options import SplitSpec
    from rareevent.windows import chronological_split

    return chronological_split(n, SplitSpec(0.2, series.test_frac))


def train_candidate(
    series: Series, candidate: str, work: Path
) -> dict[str, np.ndarray]:
    """Train ``candidate`` on ``series`` through the CLI and read back its scores."""
    runs = work / "runs"
    rareevent(
        [
            "train", str(series.train_csv), *CANDIDATES[candidate], *series.train_args,
            "--runs-dir", str(runs), "--name", "r", "--overwrite", "--quiet",
        ]
    )  # fmt: skip
    run = runs / "r"
    fitted = json.loads((run / "detector.json").read_text())
    saved = pd.read_csv(run / "scores.csv")
    valid = saved[saved["split"] == "valid"]
    if series.test_csv is None:
        test = saved[saved["split"] == "test"]
    else:
        out = work / "windows.csv"
        rareevent(
            [
                "score", str(series.test_csv), "--run", str(run), *series.score_args,
                "--output", str(out), "--quiet",
            ]
        )  # fmt: skip
        test = pd.read_csv(out, usecols=["row", "error"])
    has_labels = "label" in valid.columns
    return {
        "scores": test["error"].to_numpy(np.float64),
        "ends": test["row"].to_numpy(np.int64),
        "valid_scores": valid["error"].to_numpy(np.float64),
        "valid_ends": valid["row"].to_numpy(np.int64),
        "valid_labels": valid["label"].to_numpy(np.int8)
        if has_labels
        else np.zeros(0, np.int8),
        "window_labels": test["label"].to_numpy(np.int8)
        if has_labels and series.test_csv is None
        else np.zeros(0, np.int8),
        "threshold": np.float64(fitted["fitted"]["threshold_"]),
        "strategy": np.str_(fitted["fitted"]["threshold_strategy_"]),
        "lookback": np.int64(fitted["params"]["lookback"]),
    }


def _sensors(frame: pd.DataFrame, series: Series) -> np.ndarray:
    present = [c for c in series.not_sensors if c in frame.columns]
    return frame.drop(columns=present).to_numpy(np.float64)


def _trailing_mean(values: np.ndarray, k: int) -> np.ndarray:
    total = np.concatenate([[0.0], np.cumsum(values)])
    rows = np.arange(len(values))
    lo = np.maximum(rows - k + 1, 0)
    return (total[rows + 1] - total[lo]) / (rows + 1 - lo)


def baseline_row_scores(name: str, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Row scores of baseline ``name`` on ``rows`` (one series in time order), fit on ``train``."""
    if name in ("iforest", "iforest-mean5"):
        forest = IsolationForest(random_state=0).fit(train)
        scores = -forest.score_samples(rows)
        return (
            _trailing_mean(scores, BASELINE_LOOKBACK) if name != "iforest" else scores
        )
    if name == "pca-rows":
        scaler = StandardScaler().fit(train)
        components = max(1, min(30, train.shape[1] // 2))
        pca = PCA(n_components=components, random_state=0).fit(scaler.transform(train))
        z = scaler.transform(rows)
        return np.square(z - pca.inverse_transform(pca.transform(z))).mean(axis=1)
    scaler = MinMaxScaler().fit(train)
    z = scaler.transform(rows)
    if name == "l2":
        return np.linalg.norm(z, axis=1)
    if name == "1nn":
        train_z = scaler.transform(train)
        return np.concatenate(
            [c.min(axis=1) for c in pairwise_distances_chunked(z, train_z)]
        )
    raise SystemExit(f"unknown baseline {name!r}")


def train_baseline(series: Series, name: str) -> dict[str, np.ndarray]:
    """Fit baseline ``name`` on the training rows; its threshold from its validation rows.

    The strategy is the one the run would take: ``f1`` with labels, else ``pot``.
    """
    from rareevent.threshold import choose_threshold, parse_strategy

    frame = _read(series, series.train_csv)
    splits = _splits(len(frame), series)
    X = _sensors(frame, series)
    y = frame[series.label].to_numpy() == 1 if series.trains_on_labels else None
    train_rows = slice(*splits["train"])
    train = X[train_rows] if y is None else X[train_rows][~y[train_rows]]
    first = BASELINE_LOOKBACK - 1
    v0, v1 = splits["valid"]
    valid_ends = np.arange(v0 + first, v1)
    valid_scores = baseline_row_scores(name, train, X[v0:v1])[first:]
    evaluated, eval_start = _evaluated(series)
    if series.test_csv is None:
        scored = baseline_row_scores(name, train, X[eval_start:])
    else:
        scored = baseline_row_scores(name, train, _sensors(evaluated, series))
    ends = np.arange(eval_start + first, len(evaluated))
    valid_labels = np.zeros(0, np.int8) if y is None else y[valid_ends].astype(np.int8)
    strategy = parse_strategy("f1" if y is not None else "pot")
    threshold = choose_threshold(
        strategy,
        valid_scores,
        valid_labels if y is not None else None,
        valid_labels == 0 if y is not None else np.ones(len(valid_scores), bool),
    )
    return {
        "scores": scored[first:],
        "ends": ends,
        "valid_scores": valid_scores,
        "valid_ends": valid_ends,
        "valid_labels": valid_labels,
        "window_labels": np.zeros(0, np.int8),
        "threshold": np.float64(threshold),
        "strategy": np.str_(str(strategy)),
        "lookback": np.int64(BASELINE_LOOKBACK),
    }


def build_entry(series: Series, candidate: str, work: Path) -> dict[str, np.ndarray]:
    started = time.perf_counter()
    if series.prepare is not None:
        series.prepare()
    if candidate in CANDIDATES:
        found = train_candidate(series, candidate, work)
    else:
        found = train_baseline(series, candidate)
    evaluated, eval_start = _evaluated(series)
    return {
        **found,
        "labels": (evaluated[series.label].to_numpy() == 1).astype(np.int8),
        "time": _time_values(evaluated, series.time),
        "eval_start": np.int64(eval_start),
        "seconds": np.float64(time.perf_counter() - started),
    }


def fill_cache(
    datasets: list[str], candidates: list[str], quick: bool, refresh: bool
) -> Iterator[str]:
    """Build every missing cache entry; yields one line per entry built."""
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in datasets:
            for series in dataset_series(dataset, quick):
                for candidate in candidates:
                    path = cache_path(dataset, candidate, series.name)
                    if path.exists() and not refresh:
                        continue
                    entry = build_entry(series, candidate, Path(tmp))
                    _save(path, entry)
                    yield (
                        f"{dataset}/{candidate}/{series.name}: "
                        f"{float(entry['seconds']):.0f} s"
                    )
