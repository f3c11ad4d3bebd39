"""`rareevent train` as a library call: CSV in, fitted detector and run record out."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rareevent import gaps, roles, selection, windows
from rareevent.decision import (
    DEFAULT_POLICY,
    LEGACY_POLICY,
    resolve,
    settle,
)
from rareevent.errors import RareEventError
from rareevent.load import Columns, Reading, SensorData, load_csv
from rareevent.measuring import run_record, scored_part, split_metrics
from rareevent.model import ARCHITECTURES
from rareevent.options import AlarmPolicy, InputSpec, SplitSpec, TrainSpec
from rareevent.progress import EpochCallback
from rareevent.record import Baseline, Parent, RunRecord
from rareevent.runs import (
    check_run_name,
    check_run_slot,
    load_run,
    save_run,
    scores_frame,
)
from rareevent.threshold import parse_strategy

if TYPE_CHECKING:
    from rareevent.estimator import RareEventDetector


@dataclass
class TrainResult:
    """What a training run produced, before and after it was saved.

    Attributes
    ----------
    detector : RareEventDetector
        The fitted detector.
    data : SensorData
        The rows read, with their column roles and reading.
    record : RunRecord
        What ``run.json`` will hold: splits, metrics, provenance.
    scores : DataFrame
        The validation and test window scores (``scores.csv``).
    path : Path or None
        The run folder, once ``save`` wrote it.
    parts : dict or None
        The scored validation and test windows, by column.
    """

    detector: RareEventDetector
    data: SensorData
    record: RunRecord
    scores: pd.DataFrame
    path: Path | None = None
    parts: dict[str, dict[str, np.ndarray]] | None = (
        None  # the scored valid/test windows, by column
    )


def default_run_name(arch: str) -> str:
    """A sortable, unique-enough name: ``20260131-134501-ae``."""
    return f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{arch}"


def train(
    csv_path: str | Path,
    detector: RareEventDetector,
    spec: TrainSpec | None = None,
    *,
    name: str | None = None,
    on_epoch: EpochCallback | None = None,
    candidates: Sequence[str] = (),
) -> TrainResult:
    """Load ``csv_path``, split it in time order, fit ``detector`` and measure it.

    ``spec`` (checked when it was made) says how to read the file and split
    it: ``spec.input.read`` forces how cells are read (the rest is inferred
    and saved in the record). Test scores are smoothed (``--smooth``) from
    the start of the test part, as a fresh file would be.
    ``spec.split.resample`` puts the rows on a regular grid first;
    ``spec.split.max_gap`` (default ``5x``) splits them into segments at time gaps,
    and no window crosses one. With labels, ``candidates`` (``--arch auto``)
    are trained on the same split and the one with the best validation F1
    is kept (see :mod:`rareevent.selection`); without labels ``detector`` is.
    Nothing is written: ``save`` writes the run folder.

    Parameters
    ----------
    csv_path : str or Path
        The sensor CSV (``,``, ``;`` or tab separated).
    detector : RareEventDetector
        The parameters to fit with; it is fitted in place.
    spec : TrainSpec, optional
        The column roles, reading options, split and context columns.
        Default: ``TrainSpec()``, the CLI's defaults.
    name : str, optional
        The run's name (at most 200 bytes). Default: the time and the
        architecture, like ``20260131-134501-ae``.
    on_epoch : callable, optional
        Called after every epoch with its number and its logs.
    candidates : sequence of str, default=()
        Architectures to train and choose among by validation F1
        (``--arch auto``); empty: ``detector``'s own.

    Returns
    -------
    TrainResult
        The fitted detector, the run's record (metrics of the validation and
        test parts) and its window scores.

    Raises
    ------
    RareEventError
        A bad parameter or run name, or a file that cannot be read as the
        spec says (the message names the file, the column and the line).

    Examples
    --------
    >>> from rareevent import RareEventDetector
    >>> from rareevent.options import InputSpec, SplitSpec, TrainSpec
    >>> from rareevent.training import save, train
    >>> spec = TrainSpec(InputSpec(label="label"), SplitSpec(test_frac=0.2))
    >>> result = train("sample_data/pump_sensors.csv", RareEventDetector(arch="pca"),
    ...                spec, name="pca-example")
    >>> result.record.metrics["test"]["events"]
    4
    >>> save(result, "runs")
    PosixPath('runs/pca-example')
    """
    spec = spec or TrainSpec()
    name = check_options(detector, name)
    data = load_csv(csv_path, spec.input)
    (data,) = settle_flags([data], detector, spec)
    data, resampled = gaps.regrid(data, spec.split.resample, spec.input.fill)
    max_gap_value = gaps.resolve_max_gap(
        spec.split.max_gap, data.time, data.columns.time, data.path
    )
    if spec.context is not None:
        detector.context = resolve_context(spec.context, data.columns.features)
    starts = gaps.gap_starts(data.time, len(data), max_gap_value)
    result = train_on(
        detector, data, name, spec, on_epoch, starts, candidates=candidates
    )
    result.record = replace(
        result.record,
        gaps=gaps.summary(
            data.time, starts, detector.lookback, spec.split.max_gap, max_gap_value
        ),
        resample=resampled,
    )
    return result


def settle_flags(
    parts: Sequence[SensorData], detector: RareEventDetector, spec: TrainSpec
) -> list[SensorData]:
    """Take a label-like 0/1 column no option names as the label, or refuse it (see roles)."""
    features = parts[0].columns.features
    context: str | Sequence[int] = (
        detector.context
        if spec.context is None
        else resolve_context(spec.context, features)
    )
    named = (
        set()
        if isinstance(context, str)
        else {features[i] for i in context if 0 <= i < len(features)}
    )
    settled, moved = roles.settle_flags(parts, named)
    if moved is not None and spec.context is None and not isinstance(context, str):
        detector.context = [i - (i > moved) for i in context]
    return settled


def check_options(detector: RareEventDetector, name: str | None) -> str:
    """Check the detector's parameters and the run's name before any file is read
    (``train``, ``update``, a fleet, Spark); the name.
    """
    detector.check_params()
    if detector.arch in ARCHITECTURES:  # --arch auto: each candidate checks its own
        detector.check_masking()
    name = name or default_run_name(detector.arch)
    check_run_name(name)
    return name


def train_on(
    detector: RareEventDetector,
    data: SensorData,
    name: str,
    spec: TrainSpec,
    on_epoch: EpochCallback | None,
    starts: np.ndarray,
    splits: dict[str, tuple[int, int]] | None = None,
    candidates: Sequence[str] = (),
    policy: AlarmPolicy = DEFAULT_POLICY,
) -> TrainResult:
    """Split ``data`` in time order, fit ``detector`` and its PCA baseline, score the
    parts and build the run record.

    ``policy`` decides the flags of the parts and becomes the run's own.

    ``starts`` marks the rows that begin a segment (after a time gap of more
    than the ``max_gap`` rule); every part also begins one. ``splits`` gives
    the parts' row ranges when they are not the fractions of one series
    (a fleet: the train parts of every series, then the valid parts, then the test parts).
    With labels, every architecture in ``candidates`` is fitted on the same
    split and the best by :func:`rareevent.selection.choose` becomes the run.
    """
    if splits is None:
        splits = windows.chronological_split(len(data), spec.split)
        check_parts(data.path, len(data), splits, starts, detector.lookback, spec.split)
    policy = settle(
        policy,
        None
        if data.y is None
        else np.concatenate([data.y[slice(*splits[k])] for k in ("train", "valid")]),
    )
    fitted = {}
    for arch in candidates if data.y is not None else ():
        candidate = detector if arch == detector.arch else _as_arch(detector, arch)
        fitted[arch] = (
            candidate,
            *_fit_and_measure(candidate, data, splits, on_epoch, starts, policy),
        )
    if fitted:
        detector, parts, metrics = fitted[
            selection.choose({arch: f[2]["valid"] for arch, f in fitted.items()})
        ]
    else:
        parts, metrics = _fit_and_measure(
            detector, data, splits, on_epoch, starts, policy
        )
    baseline = None
    if detector.arch != "pca":
        if "pca" in fitted:
            pca, _, baseline_metrics = fitted["pca"]
        else:
            pca = _as_arch(detector, "pca")
            _, baseline_metrics = _fit_and_measure(
                pca, data, splits, None, starts, policy
            )
        baseline = Baseline(
            arch="pca",
            parameters=pca.model_.count_params(),
            threshold=float(pca.threshold_),
            metrics=baseline_metrics,
        )
    record = replace(
        run_record(name, detector, data, splits, metrics, spec, parts, policy),
        baseline=baseline,
        assumed=[*data.columns.assumed, *_unnamed_flags(detector, data)],
        candidates={
            arch: selection.alarm_summary(f[2]["valid"]) for arch, f in fitted.items()
        }
        if fitted
        else None,
    )
    return TrainResult(
        detector=detector,
        data=data,
        record=record,
        scores=scores_frame(parts),
        parts=parts,
    )


def _unnamed_flags(
    detector: RareEventDetector, data: SensorData
) -> list[dict[str, str]]:
    """What was done with each 0/1 column that no option names: a fault column read as
    an input would leak the events it marks.
    """
    named = set() if isinstance(detector.context, str) else set(detector.context)
    found = []
    for j, column in enumerate(data.columns.features):
        values = data.X[:, j]
        if (
            j in named
            or not np.isin(values, (0.0, 1.0)).all()
            or len(np.unique(values)) != 2
        ):
            continue
        context = j in detector.context_features_
        role = (
            "context (read by the model, not scored)"
            if context
            else "a sensor (read and scored)"
        )
        found.append(
            {
                "column": column,
                "as": "context" if context else "sensor",
                "message": f"column {column!r} holds only 0 and 1 and no option names it: "
                f"used as {role}; if it marks events, pass `label={column}` "
                "(as an input it leaks them to the model); if it is a state, pass "
                f"`context={column}` to say so",
            }
        )
    return found


def _as_arch(detector: RareEventDetector, arch: str) -> RareEventDetector:
    """An unfitted detector with ``detector``'s parameters and another architecture (the
    baseline, a candidate).

    A forecasting candidate reads at least one row before those it forecasts:
    its lookback is raised to ``horizon + 1`` where it is shorter. The pca
    baseline hides no sensor (``mask_rate`` 0).
    """
    from rareevent.estimator import RareEventDetector

    params = {
        **detector.get_params(),
        "arch": arch,
        "warm_start": False,
        "mask_rate": detector.mask_rate if ARCHITECTURES[arch].reads_masks else 0.0,
    }
    if ARCHITECTURES[arch].forecasts:
        params["lookback"] = max(detector.lookback, detector.horizon + 1)
    return RareEventDetector(**params)


def check_parts(
    where: object,
    n_rows: int,
    splits: dict[str, tuple[int, int]],
    starts: np.ndarray,
    lookback: int,
    split: SplitSpec,
) -> None:
    """Refuse a split whose train or valid part holds no window inside one segment;
    ``where`` names the series.
    """
    short = [
        part
        for part in ("train", "valid")
        if splits[part][1] - splits[part][0] < lookback
    ]
    if short:
        needed = windows.rows_needed(lookback, split)
        raise RareEventError(
            f"{where}: {n_rows} data rows are too few for lookback {lookback}: the "
            f"{short[0]} part would hold less than one window; at least {needed} "
            "rows are needed",
            hint="use a longer file or a smaller `lookback`",
        )
    for part in ("train", "valid"):
        if not windows.inside_segments(
            windows.part_starts(starts, *splits[part]), lookback
        ).any():
            raise RareEventError(
                f"{where}: the {part} part has no window of {lookback} rows between two time gaps",
                hint="use a larger `max_gap`, `resample` with `fill`, or a smaller `lookback`",
            )


def _fit_and_measure(
    detector: RareEventDetector,
    data: SensorData,
    splits: dict[str, tuple[int, int]],
    on_epoch: EpochCallback | None,
    starts: np.ndarray,
    policy: AlarmPolicy,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Fit ``detector`` on the train and valid parts; score valid and test; their
    columns and metrics.
    """
    part = {key: slice(*bounds) for key, bounds in splits.items()}
    part_starts = {
        key: windows.part_starts(starts, *bounds) for key, bounds in splits.items()
    }
    y = data.y
    ahead = {
        key: slice(start, stop + detector.lead) for key, (start, stop) in splits.items()
    }  # labels reach lead rows on, up to a segment start
    detector.fit_parts(
        data.X[part["train"]],
        None if y is None else y[ahead["train"]],
        data.X[part["valid"]],
        None if y is None else y[ahead["valid"]],
        on_epoch=on_epoch,
        starts_train=windows.part_starts(
            starts, ahead["train"].start, ahead["train"].stop
        ),
        starts_valid=windows.part_starts(
            starts, ahead["valid"].start, ahead["valid"].stop
        ),
        feature_names=data.columns.features,
    )
    valid_keep = windows.inside_segments(part_starts["valid"], detector.lookback)
    decision = resolve(
        policy,
        detector.threshold_,
        detector.validation_scores_,
        gaps.median_seconds(data.time),
    )
    parts = {
        "valid": scored_part(
            detector,
            data,
            splits["valid"],
            detector.validation_scores_,
            valid_keep,
            starts,
            decision,
        )
    }
    test_start, test_stop = splits["test"]
    if test_stop - test_start >= detector.lookback:
        test_scores, test_keep = detector.score_segments(
            data.X[part["test"]], part_starts["test"]
        )
        parts["test"] = scored_part(
            detector, data, splits["test"], test_scores, test_keep, starts, decision
        )
    metrics = {
        key: split_metrics(
            detector, data, splits[key], columns, part_starts[key], decision.cooldown
        )
        for key, columns in parts.items()
    }
    metrics.setdefault("test", None)
    return parts, metrics


def resolve_context(
    context: str | Sequence[str], features: Sequence[str]
) -> str | list[int]:
    """``auto``, ``none``, or the indices of the features matching comma-separated names
    or glob patterns.

    A name is matched literally first: it is a pattern only when no feature
    has exactly that name (``Flow [m3/h]`` is a name, not a character class).
    A pattern that matches no feature is an error naming it, so a typo is
    not silently scored as a target.
    """
    if isinstance(context, str) and context.strip().lower() in ("auto", "none"):
        return context.strip().lower()
    patterns = [
        p.strip()
        for p in (context.split(",") if isinstance(context, str) else context)
        if p.strip()
    ]
    chosen: set[int] = set()
    for pattern in patterns:
        matches = {i for i, name in enumerate(features) if name == pattern} or {
            i for i, name in enumerate(features) if fnmatch.fnmatchcase(name, pattern)
        }
        if not matches:
            raise RareEventError(
                f"context {pattern!r} matches no feature column",
                hint=f"the features are {', '.join(features)}",
            )
        chosen |= matches
    return sorted(chosen)


def update(
    run_folder: str | Path,
    csv_path: str | Path,
    spec: InputSpec | None = None,
    *,
    epochs: int = 10,
    valid_frac: float = 0.2,
    threshold: str | None = None,
    margin: float | None = None,
    name: str | None = None,
    on_epoch: EpochCallback | None = None,
    alarm: AlarmPolicy | None = None,
) -> TrainResult:
    """A new run from a saved one and a newer stretch of data: ``rareevent update``.

    The rows of ``csv_path`` (matched to the run's columns by name, as for
    scoring) are split in time order into a part to fit on and a validation
    part, with no test part. The scaler is refit on the normal rows of the
    first part, the run's model continues training from its saved weights
    (same architecture, Adam at the run's learning rate and batch size,
    early stopping as in training), and the threshold is chosen again on the
    validation part with the run's strategy and margin unless ``threshold``
    or ``margin`` replace them. The newer rows are resampled and split at
    gaps by the run's own rules. The run folder itself is only read.
    ``spec`` says how to read the newer file (its fill and reading options);
    its columns are the run's. ``alarm`` changes the run's alarm policy
    (``min_duration``, ``cooldown``, ``shortest_event``) where it says
    something; the new run keeps the rest of its parent's.

    Parameters
    ----------
    run_folder : str or Path
        The run to start from; it is only read.
    csv_path : str or Path
        The newer rows, carrying every trained sensor by name.
    spec : InputSpec, optional
        The newer file's ``fill`` and reading options (default: the run's
        reading); time, label, drop and group must be left out.
    epochs : int, default=10
        Most epochs of continued training.
    valid_frac : float, default=0.2
        The last share of the newer rows, which chooses the threshold and
        stops training early.
    threshold : str, optional
        A threshold strategy instead of the run's (``"pot"`` for newer data
        without labels).
    margin : float, optional
        A margin instead of the run's.
    name : str, optional
        The new run's name.
    on_epoch : callable, optional
        Called after every epoch with its number and its logs.
    alarm : AlarmPolicy, optional
        The new run's alarm defaults, over its parent's.

    Returns
    -------
    TrainResult
        The new run, whose record names its ``parent``; ``save`` writes it.

    Raises
    ------
    RareEventError
        The run cannot be read, the newer file lacks a trained sensor, or
        a label-based strategy meets a file without the label column.
    """
    spec = spec or InputSpec()
    if spec.time or spec.label or spec.drop or spec.group:
        raise RareEventError(
            "`update` reads the run's own columns: leave time, label, drop and "
            "group out of its input spec"
        )
    whole = TrainSpec(input=spec, split=SplitSpec(valid_frac, 0.0))
    folder = Path(run_folder)
    parent, detector = load_run(folder)
    strategy_text = detector.threshold_strategy_ if threshold is None else threshold
    detector.set_params(
        warm_start=True,
        epochs=epochs,
        # Adam as the run trained: its batch size and learning rate, automatic ones
        # included
        batch_size=detector.batch_size_,
        learning_rate=detector.learning_rate_,
        threshold=strategy_text,
        margin=detector.margin if margin is None else margin,
        context=list(
            detector.context_features_
        ),  # the model reads and reconstructs the same columns
    )
    name = check_options(detector, name)
    trained = Columns(
        features=list(detector.feature_names_in_),
        time=parent.time_column,
        label=parent.label_column,
    )
    data = load_csv(
        csv_path, spec, trained=trained, base=Reading.from_record(parent.reading)
    )
    data, resampled = gaps.regrid(data, gaps.run_grid(parent.resample), spec.fill)
    max_gap_value = gaps.check_time_kind(
        parent.gaps, data.time, data.columns.time, data.path
    )
    starts = gaps.gap_starts(data.time, len(data), max_gap_value)
    strategy = parse_strategy(strategy_text)
    if strategy.needs_labels and data.y is None:
        raise RareEventError(
            f"{data.path}: threshold {strategy} needs the label column "
            f"{parent.label_column!r}, which the file does not have",
            hint="pass `threshold=pot` (or quantile) for a stretch of normal data without labels",
        )
    policy = (alarm or AlarmPolicy()).over(parent.alarm or LEGACY_POLICY)
    result = train_on(detector, data, name, whole, on_epoch, starts, policy=policy)
    result.record = replace(
        result.record,
        gaps=gaps.summary(
            data.time,
            starts,
            detector.lookback,
            None if parent.gaps is None else parent.gaps.max_gap,
            max_gap_value,
        ),
        resample=resampled,
        # the run's column roles, even where this file lacks a column
        time_column=parent.time_column,
        label_column=parent.label_column,
        dropped_columns=parent.dropped_columns or [],
        parent=Parent(
            name=parent.name,
            folder=str(folder.resolve()),
            input_sha256=parent.input_sha256,
        ),
    )
    return result


def check_update_slot(
    parent_folder: str | Path, runs_dir: str | Path, name: str, overwrite: bool
) -> Path:
    """The folder an updated run ``name`` goes to; never the run it was updated from."""
    target = check_run_slot(runs_dir, name, overwrite)
    if (
        Path(parent_folder).resolve().is_relative_to(target.resolve())
    ):  # the run itself, or the per-group run that holds it
        raise RareEventError(
            f"{target}: is the run being updated; an update saves a new run and leaves it as it is",
            hint="choose another `name`",
        )
    return target


def save(result: TrainResult, runs_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the run folder of a training result atomically.

    The folder appears whole or not at all; it is never written over the
    parent of an updated run.

    Parameters
    ----------
    result : TrainResult
        What ``train`` or ``update`` returned.
    runs_dir : str or Path
        The folder of run folders (created when missing).
    overwrite : bool, default=False
        Replace a run folder of the same name (only a run folder).

    Returns
    -------
    Path
        The run folder, ``runs_dir / result.record.name``.

    Raises
    ------
    RareEventError
        A run of that name exists (without ``overwrite``), another process
        is writing it, the name is not a run folder, or the folder cannot be
        written.
    """
    parent = result.record.parent
    if parent is not None:
        check_update_slot(parent.folder, runs_dir, result.record.name, overwrite)
    result.path = save_run(
        runs_dir,
        result.record.name,
        result.detector,
        result.record,
        result.scores,
        overwrite,
    )
    return result.path
