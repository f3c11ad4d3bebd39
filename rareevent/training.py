"""`rareevent train` as a library call: CSV in, fitted detector and run record out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rareevent import windows
from rareevent.detector import EpochCallback, RareEventDetector
from rareevent.errors import RareEventError
from rareevent.load import SensorData, file_sha256, load_csv
from rareevent.metrics import evaluate
from rareevent.model import versions
from rareevent.runs import FORMAT_VERSION, check_run_name, save_run, scores_frame


@dataclass
class TrainResult:
    """What a training run produced, before and after it was saved."""

    detector: RareEventDetector
    data: SensorData
    record: dict[str, Any]
    scores: pd.DataFrame
    path: Path | None = None


def default_run_name(arch: str) -> str:
    """A sortable, unique-enough name: ``20260131-134501-ae``."""
    return f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{arch}"


def train(
    csv_path: str | Path,
    detector: RareEventDetector,
    *,
    time: str | None = None,
    label: str | None = None,
    drop: Sequence[str] = (),
    fill: str | None = None,
    valid_frac: float = 0.2,
    test_frac: float = 0.2,
    name: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Load ``csv_path``, split it in time order, fit ``detector`` and measure it.

    Every option is checked before the file is read. Test scores are
    smoothed (``--smooth``) from the start of the test part, as a fresh file
    would be.
    """
    detector.check_params()
    windows.check_fractions(valid_frac, test_frac)
    name = name or default_run_name(detector.arch)
    check_run_name(name)
    data = load_csv(csv_path, time=time, label=label, drop=drop, fill=fill)
    splits = windows.chronological_split(len(data), valid_frac, test_frac)
    short = [part for part in ("train", "valid") if splits[part][1] - splits[part][0] < detector.lookback]
    if short:
        needed = windows.rows_needed(detector.lookback, valid_frac, test_frac)
        raise RareEventError(
            f"{data.path}: {len(data)} data rows are too few for lookback {detector.lookback}: "
            f"the {short[0]} part would hold less than one window; at least {needed} rows are needed",
            hint="use a longer file or a smaller --lookback",
        )
    part = {key: slice(*bounds) for key, bounds in splits.items()}
    y = data.y
    ahead = {key: slice(start, stop + detector.lead) for key, (start, stop) in splits.items()}  # labels reach lead rows on
    detector.fit(
        data.X[part["train"]],
        None if y is None else y[ahead["train"]],
        data.X[part["valid"]],
        None if y is None else y[ahead["valid"]],
        on_epoch=on_epoch,
    )
    valid_scores = detector.decision_scores_
    parts = {"valid": _scored_part(detector, data, splits["valid"], valid_scores)}
    test_start, test_stop = splits["test"]
    if test_stop - test_start >= detector.lookback:
        test_scores = detector.smooth_scores(detector.score_windows(data.X[part["test"]])[0])
        parts["test"] = _scored_part(detector, data, splits["test"], test_scores)
    metrics = {key: _metrics(detector, data, splits[key], columns) for key, columns in parts.items()}
    metrics.setdefault("test", None)
    record = _record(name, detector, data, splits, metrics, valid_frac, test_frac, fill, parts)
    return TrainResult(detector=detector, data=data, record=record, scores=scores_frame(parts))


def save(result: TrainResult, runs_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the run folder of a training result atomically."""
    result.path = save_run(runs_dir, result.record["name"], result.detector, result.record, result.scores, overwrite)
    return result.path


def _scored_part(detector: RareEventDetector, data: SensorData, bounds: tuple[int, int], scores: np.ndarray) -> dict[str, np.ndarray]:
    start, stop = bounds
    T = detector.lookback
    ends = np.arange(start + T - 1, stop)
    columns: dict[str, np.ndarray] = {"row": data.rows[ends], "position": ends}
    if data.time is not None:
        columns["time"] = data.time[ends]
    columns["error"] = scores
    columns["flagged"] = (scores >= detector.threshold_).astype(np.int8)
    if data.y is not None:
        columns["label"] = windows.window_labels(data.y[start : stop + detector.lead], T, detector.lead)[: len(ends)]
    return columns


def _metrics(detector: RareEventDetector, data: SensorData, bounds: tuple[int, int], part: dict[str, np.ndarray]) -> dict[str, Any] | None:
    if data.y is None:
        return None
    start, stop = bounds
    return evaluate(
        data.y[start:stop],
        part["label"],
        part["flagged"],
        part["error"],
        part["position"],
        lead=detector.lead,
        time=None if data.time is None else data.time[start:stop],
        first_row=start,
    )


def _record(
    name: str,
    detector: RareEventDetector,
    data: SensorData,
    splits: dict[str, tuple[int, int]],
    metrics: dict[str, Any],
    valid_frac: float,
    test_frac: float,
    fill: str | None,
    parts: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    columns = data.columns
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "arch": detector.arch,
        "lookback": detector.lookback,
        "lead": detector.lead,
        "units": list(detector.units),
        "activation": detector.activation,
        "score_kind": detector.score_kind,
        "smooth": detector.smooth,
        "parameters": int(detector.model_.count_params()),
        "features": list(columns.features),
        "time_column": columns.time,
        "label_column": columns.label,
        "dropped_columns": list(columns.dropped),
        "constant_features": [columns.features[i] for i in detector.constant_features_],
        "trending_features": [columns.features[i] for i in detector.trending_features_],
        "fill": fill,
        "filled_cells": data.n_filled,
        "scaler_mean": detector.scaler_.mean_.tolist(),
        "scaler_scale": detector.scaler_.scale_.tolist(),
        "threshold": float(detector.threshold_),
        "threshold_strategy": detector.threshold_strategy_,
        "margin": detector.margin,
        "valid_frac": valid_frac,
        "test_frac": test_frac,
        "splits": {key: list(bounds) for key, bounds in splits.items()},
        "windows": {
            "train_normal": detector.n_train_windows_,
            **{key: int(len(part["row"])) for key, part in parts.items()},
        },
        "metrics": metrics,
        "seed": detector.seed,
        "epochs": detector.epochs,
        "batch_size": detector.batch_size_,
        "patience": detector.patience,
        "learning_rate": detector.learning_rate_,
        "epochs_run": detector.epochs_run_,
        "best_epoch": detector.best_epoch_,
        "history": detector.history_,
        "train_seconds": round(detector.train_seconds_, 3),
        "input_file": str(Path(data.path).resolve()),
        "input_sha256": file_sha256(data.path),
        "input_rows": len(data),
        "versions": versions(),
    }
