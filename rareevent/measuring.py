"""What a training run keeps of its data: each part's scored windows and metrics, and the record.

``train`` and ``update`` (:mod:`rareevent.training`) and a fleet's training
(:mod:`rareevent.fleet`) score the train, valid and test parts alike: each
part's windows are decided as a file of their own (:func:`scored_part`) and
measured against its labels (:func:`split_metrics`). :func:`run_record`
then puts the run's facts into one :class:`~rareevent.record.RunRecord`:
the splits, the metrics, how far normal rows stray from what the model
expected, and the training range the reports draw their bands from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rareevent import expected, gaps, windows
from rareevent.decision import Decider, Decision
from rareevent.load import SensorData, file_sha256
from rareevent.metrics import evaluate
from rareevent.model import versions
from rareevent.options import AlarmPolicy, TrainSpec
from rareevent.record import FORMAT_VERSION, RunRecord

if TYPE_CHECKING:
    from rareevent.estimator import RareEventDetector


def scored_part(
    detector: RareEventDetector,
    data: SensorData,
    bounds: tuple[int, int],
    scores: np.ndarray,
    keep: np.ndarray,
    starts: np.ndarray,
    decision: Decision,
) -> dict[str, np.ndarray]:
    """The columns of a part's scored windows: those inside one segment (``keep``), by end row.

    Labels look ahead up to the next segment start in ``starts`` (all rows);
    the flags are ``decision``'s, the part decided as a file of its own.
    """
    start, stop = bounds
    T = detector.lookback
    ends = np.arange(start + T - 1, stop)[keep]
    columns: dict[str, np.ndarray] = {"row": data.rows[ends], "position": ends}
    if data.time is not None:
        columns["time"] = data.time[ends]
    columns["error"] = scores
    decide = Decider(decision, detector.validation_scores_)
    columns["flagged"] = decide(scores, windows.window_breaks(starts, ends)).astype(
        np.int8
    )
    if data.y is not None:
        ahead = slice(start, stop + detector.lead)
        columns["label"] = windows.window_labels(
            data.y[ahead], T, detector.lead, starts[ahead]
        )[: len(keep)][keep]
    return columns


def split_metrics(
    detector: RareEventDetector,
    data: SensorData,
    bounds: tuple[int, int],
    part: dict[str, np.ndarray],
    starts: np.ndarray,
    gap: int,
) -> dict[str, Any] | None:
    """The metrics of one split's windows (``bounds``, scored as ``part``); None unlabelled."""
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
        starts=starts,
        gap=gap,
    )


def run_record(
    name: str,
    detector: RareEventDetector,
    data: SensorData,
    splits: dict[str, tuple[int, int]],
    metrics: dict[str, Any],
    spec: TrainSpec,
    parts: dict[str, dict[str, np.ndarray]],
    policy: AlarmPolicy,
) -> RunRecord:
    """The run's record: its data, splits, metrics and model facts, and the alarm policy."""
    columns = data.columns
    return RunRecord(
        format_version=FORMAT_VERSION,
        name=name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        parameters=int(detector.model_.count_params()),
        time_column=columns.time,
        label_column=columns.label,
        dropped_columns=list(columns.dropped),
        fill=spec.input.fill,
        filled_cells=data.n_filled,
        reading=data.reading.to_record(),
        valid_frac=spec.split.valid_frac,
        test_frac=spec.split.test_frac,
        splits={key: list(bounds) for key, bounds in splits.items()},
        windows={
            "train_normal": detector.n_train_windows_,
            **{key: len(part["row"]) for key, part in parts.items()},
        },
        metrics=metrics,
        input_file=str(Path(data.path).resolve()),
        input_sha256=file_sha256(data.path)
        if Path(data.path).is_file()
        else None,  # a Spark group has no file
        input_rows=len(data),
        train_range=train_range(data, splits["train"]),
        normal_error=normal_error_of(detector, data, splits["valid"]),
        versions=versions(),
        spec=spec,
        alarm=policy,
        time_step=gaps.median_seconds(data.time),
    )


def normal_error_of(
    detector: RareEventDetector, data: SensorData, bounds: tuple[int, int]
) -> dict[str, Any]:
    """How far normal validation rows stray from what the model expected (see ``expected``)."""
    part = slice(*bounds)
    names = data.columns.features
    return {
        "percentile": expected.NORMAL_ERROR_PERCENTILE,
        "features": [names[j] for j in detector.target_features_],
        "error": expected.normal_error(
            detector, data.X[part], None if data.y is None else data.y[part]
        ),
    }


TRAIN_RANGE_PERCENTILES = (1.0, 99.0)


def train_range(data: SensorData, bounds: tuple[int, int]) -> dict[str, Any]:
    """Each feature's 1st and 99th percentile over the normal training rows, in raw
    units: the band reports draw traces over.
    """
    part = slice(*bounds)
    X = data.X[part]
    if data.y is not None and (data.y[part] == 0).any():
        X = X[data.y[part] == 0]
    low, high = np.percentile(X, TRAIN_RANGE_PERCENTILES, axis=0)
    return {
        "percentiles": list(TRAIN_RANGE_PERCENTILES),
        "low": low.tolist(),
        "high": high.tolist(),
    }
