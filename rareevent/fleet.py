"""Training over a fleet: one model over many series, or one run per group.

The series of a fleet (see :mod:`rareevent.series`) are split in time order
each on its own; the train parts of all series are then fitted together,
the valid parts choose one threshold, and the test parts measure it. The
rows are laid out part by part (every series' train rows, then every valid
part, then every test part) with a segment starting at each series, so no
window crosses from one series into another. Metrics are kept per series
and pooled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rareevent import gaps, windows
from rareevent.decision import span_windows
from rareevent.errors import RareEventError
from rareevent.load import SensorData
from rareevent.measuring import split_metrics
from rareevent.options import SplitSpec, TrainSpec
from rareevent.progress import EpochCallback
from rareevent.record import SeriesEntry
from rareevent.runs import (
    MAX_NAME_BYTES,
    RUN_FILE,
    check_run_name,
    check_run_slot,
    save_run,
)
from rareevent.series import Series, expand, fleet_sha256, load_series, naming
from rareevent.storage import (
    atomic_file,
    atomic_folder,
    remove_stale_temporaries,
)
from rareevent.training import (
    TrainResult,
    check_options,
    check_parts,
    resolve_context,
    settle_flags,
    train_on,
)

if TYPE_CHECKING:
    from rareevent.estimator import RareEventDetector

PARTS = ("train", "valid", "test")
# the summary of a --per-group run folder, beside one run folder per group
FLEET_FILE = "fleet.json"


def train_fleet(
    inputs: Sequence[str | Path],
    detector: RareEventDetector,
    spec: TrainSpec | None = None,
    *,
    name: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """One model over every series of ``inputs`` (files, globs, Parquet; per
    ``spec.input.group`` value): the fleet model.

    ``spec`` is as for :func:`rareevent.training.train`, checked when it was made.
    """
    spec = spec or TrainSpec()
    name = check_options(detector, name)
    loaded = load_series(inputs, spec.input)
    settled = settle_flags([data for _, data in loaded], detector, spec)
    loaded = [(series, data) for (series, _), data in zip(loaded, settled, strict=True)]
    result = train_series(loaded, detector, spec, name=name, on_epoch=on_epoch)
    files = list(dict.fromkeys(series.path for series, _ in loaded))
    result.record = replace(
        result.record,
        input_file=", ".join(map(str, expand(inputs))),
        input_sha256=fleet_sha256(files),
        group_column=spec.input.group,
    )
    return result


def train_series(
    loaded: Sequence[tuple[Series, SensorData]],
    detector: RareEventDetector,
    spec: TrainSpec,
    *,
    name: str,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Fit ``detector`` on checked series: each split in time order, windows never
    across two of them.
    """
    split, fill = spec.split, spec.input.fill
    regridded = []
    resampled: list[dict[str, Any]] = []
    for series, data in loaded:
        data, record = gaps.regrid(data, split.resample, fill)
        regridded.append((series, data))
        if record is not None:
            resampled.append(record)
    first = regridded[0][1]
    times = [data.time for _, data in regridded if data.time is not None]
    if first.time is not None and len({gaps.is_dated(t) for t in times}) > 1:
        raise RareEventError(
            f"{regridded[0][0].where}: the time columns of the fleet mix dates and plain numbers"
        )
    pooled_time = None if first.time is None else np.concatenate(times)
    max_gap_value = gaps.resolve_max_gap(
        split.max_gap, pooled_time, first.columns.time, regridded[0][0].where
    )
    if spec.context is not None:
        detector.context = resolve_context(spec.context, first.columns.features)
    layout = _Layout(regridded, max_gap_value, detector.lookback, split)
    result = train_on(
        detector, layout.data, name, spec, on_epoch, layout.starts, splits=layout.splits
    )
    assert result.parts is not None
    alarm = result.record.alarm
    gap = (
        0
        if alarm is None
        else span_windows(alarm.cooldown, "cooldown", result.record.time_step, 0)
    )
    result.record = replace(
        result.record,
        gaps=_gap_summary(
            regridded,
            layout.series_starts,
            detector.lookback,
            split.max_gap,
            max_gap_value,
        ),
        resample=(
            None
            if split.resample is None
            else {
                "every": split.resample.every,
                "agg": split.resample.agg,
                "rows": sum(r["rows"] for r in resampled),
                "empty_cells": sum(r["empty_cells"] for r in resampled),
            }
        ),
        series=tuple(
            SeriesEntry(
                name=series.name,
                file=str(series.path),
                group=series.group,
                rows=len(data),
                metrics={
                    part: layout.metrics(detector, result.parts, i, part, gap)
                    for part in ("valid", "test")
                },
            )
            for i, (series, data) in enumerate(regridded)
        ),
    )
    names = np.asarray([series.name for series, _ in regridded], dtype=object)
    scored = [columns for columns in result.parts.values() if len(columns["row"])]
    if scored:
        result.scores.insert(
            1,
            "series",
            names[
                layout.series_of[
                    np.concatenate([columns["position"] for columns in scored])
                ]
            ],
        )
    return result


class _Layout:
    """The rows of all series laid out part by part, and where each series' part lies in it."""

    def __init__(
        self,
        loaded: Sequence[tuple[Series, SensorData]],
        max_gap: float | None,
        lookback: int,
        split: SplitSpec,
    ) -> None:
        pieces: dict[str, list[tuple[int, SensorData, np.ndarray]]] = {
            part: [] for part in PARTS
        }
        self.series_starts: list[np.ndarray] = []
        for i, (series, data) in enumerate(loaded):
            starts = gaps.gap_starts(data.time, len(data), max_gap)
            self.series_starts.append(starts)
            splits = windows.chronological_split(len(data), split)
            check_parts(series.where, len(data), splits, starts, lookback, split)
            for part in PARTS:
                lo, hi = splits[part]
                if hi > lo:
                    pieces[part].append(
                        (
                            i,
                            gaps._take(data, slice(lo, hi)),
                            windows.part_starts(starts, lo, hi),
                        )
                    )
        ordered = [piece for part in PARTS for piece in pieces[part]]
        sizes = np.array([len(piece[1]) for piece in ordered])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.splits: dict[str, tuple[int, int]] = {}
        self.bounds: dict[
            tuple[int, str], tuple[int, int]
        ] = {}  # (series, part) -> rows of the layout
        k = 0
        for part in PARTS:
            start = int(offsets[k])
            for i, _, _ in pieces[part]:
                self.bounds[(i, part)] = (int(offsets[k]), int(offsets[k + 1]))
                k += 1
            self.splits[part] = (start, int(offsets[k]))
        blocks = [piece[1] for piece in ordered]

        def join(get):
            if get(blocks[0]) is None:
                return None
            return np.concatenate([get(b) for b in blocks])

        first = blocks[0]
        self.data = SensorData(
            path=first.path,
            columns=first.columns,
            X=np.concatenate([b.X for b in blocks]),
            y=join(lambda b: b.y),
            time=join(lambda b: b.time),
            rows=np.concatenate([b.rows for b in blocks]),
            n_filled=sum(data.n_filled for _, data in loaded),
            reading=first.reading,
        )
        self.starts = np.concatenate([piece[2] for piece in ordered])
        self.series_of = np.repeat([piece[0] for piece in ordered], sizes)

    def metrics(
        self,
        detector: RareEventDetector,
        parts: dict[str, dict[str, np.ndarray]],
        series: int,
        part: str,
        gap: int,
    ) -> dict[str, Any] | None:
        """The metrics of one series' part (``None`` without labels or without such a part)."""
        bounds = self.bounds.get((series, part))
        columns = parts.get(part)
        if bounds is None or columns is None:
            return None
        inside = (columns["position"] >= bounds[0]) & (columns["position"] < bounds[1])
        return split_metrics(
            detector,
            self.data,
            bounds,
            {key: value[inside] for key, value in columns.items()},
            windows.part_starts(self.starts, *bounds),
            gap,
        )


def _gap_summary(
    loaded: Sequence[tuple[Series, SensorData]],
    starts: Sequence[np.ndarray],
    lookback: int,
    rule: str | None,
    max_gap: float | None,
) -> gaps.GapSummary | None:
    """The gap rule's findings over all series (gaps within a series; a series border is no gap)."""
    found = [
        f
        for (_, data), s in zip(loaded, starts, strict=True)
        if (f := gaps.summary(data.time, s, lookback, rule, max_gap)) is not None
    ]
    if not found:  # no gap rule: no series has a summary
        return None
    longest = [f.longest_gap for f in found if f.longest_gap is not None]
    total = {
        key: sum(getattr(f, key) for f in found)
        for key in ("segments", "gaps", "skipped_segments", "skipped_rows")
    }
    return replace(found[0], **total, longest_gap=max(longest) if longest else None)


def train_per_group(
    inputs: Sequence[str | Path],
    detector: RareEventDetector,
    spec: TrainSpec,
    *,
    runs_dir: str | Path,
    name: str | None = None,
    overwrite: bool = False,
    on_group: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """One run per value of ``spec.input.group``: ``runs_dir/NAME/<group>/``, plus
    ``fleet.json`` with every group's metrics.

    The folder appears whole or not at all. Each run is trained with a fresh
    copy of ``detector``'s parameters; ``on_group`` hears each group as it starts.
    """
    group = spec.input.group
    if group is None:
        raise RareEventError(
            "a run per group needs the group column: give `group` in the input spec",
            param="group",
        )
    name = check_options(detector, name)
    loaded = load_series(inputs, spec.input)
    for series, _ in loaded:
        check_group_folder(series)
    settled = settle_flags([data for _, data in loaded], detector, spec)
    loaded = [(series, data) for (series, _), data in zip(loaded, settled, strict=True)]
    remove_stale_temporaries(
        runs_dir
    )  # what a killed training left, as save_run clears it for a plain run
    target = check_run_slot(runs_dir, name, overwrite)
    summary: dict[str, Any] = {
        "format_version": 1,
        "name": name,
        "group_column": group,
        "runs": {},
    }
    with atomic_folder(target, overwrite=overwrite) as folder:
        for series, data in loaded:
            if on_group is not None:
                on_group(series.name)
            one = type(detector)(**detector.get_params())
            with naming(series):
                result = train_series([(series, data)], one, spec, name=series.name)
            summary["runs"][series.name] = save_group_run(folder, result, group)
        write_fleet_summary(folder, summary)
    return target, summary


def check_group_folder(series: Series) -> None:
    """Refuse a group value that cannot name its run's folder in a ``--per-group`` run:
    the error names the input and the group.
    """
    value = series.name
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise RareEventError(
            f"{series.path}: group {value[:20]!r}... is {size} bytes long; a group "
            "value names a folder of the `per_group` run and may have at most "
            f"{MAX_NAME_BYTES} bytes"
        )
    if value == FLEET_FILE:
        raise RareEventError(
            f"{series.where}: the group value is the name of the `per_group` run's "
            f"summary file {FLEET_FILE}",
            hint="rename the group in the data",
        )
    try:
        check_run_name(value)
    except RareEventError:
        raise RareEventError(
            f"{series.where}: the group value cannot be a run folder name",
            hint="a group value is a folder of the `per_group` run: no '/', no leading '.'",
        ) from None


def save_group_run(folder: Path, result: TrainResult, group: str) -> dict[str, Any]:
    """Save one group's run into the ``--per-group`` folder; its line of ``fleet.json``."""
    record = replace(result.record, group_column=group)
    save_run(folder, record.name, result.detector, record, result.scores)
    return {
        "rows": record.input_rows,
        "threshold": float(result.detector.threshold_),
        "metrics": record.metrics,
    }


def write_fleet_summary(folder: Path, summary: dict[str, Any]) -> None:
    """Write ``fleet.json`` (atomically) into a ``--per-group`` folder."""
    with atomic_file(folder / FLEET_FILE) as temp:
        temp.write_text(
            json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )


def read_fleet(folder: str | Path) -> dict[str, Any] | None:
    """The ``fleet.json`` of a ``--per-group`` folder, checked; ``None`` when ``folder``
    is an ordinary run.
    """
    path = Path(folder) / FLEET_FILE
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RareEventError(f"{path}: cannot read ({type(exc).__name__})") from None
    ok = (
        isinstance(summary, dict)
        and isinstance(summary.get("group_column"), str)
        and isinstance(summary.get("runs"), dict)
    )
    if not ok or not all(
        isinstance(k, str) and (Path(folder) / k / RUN_FILE).is_file()
        for k in summary["runs"]
    ):
        raise RareEventError(
            f"{path}: not a per-group summary rareevent wrote (a group's run "
            "folder is missing or a field is wrong)"
        )
    return summary


def group_run(folder: str | Path, summary: dict[str, Any], series: Series) -> Path:
    """The run folder of ``series``' group in a ``--per-group`` run; a group the run has
    no model for is an error.
    """
    if series.group is None or series.group not in summary["runs"]:
        known = ", ".join(sorted(summary["runs"])[:5]) + (
            ", ..." if len(summary["runs"]) > 5 else ""
        )
        raise RareEventError(
            f"{series.where}: the per-group run {Path(folder).name!r} has no run for this group",
            hint=f"its groups are {known}; train one for it",
        )
    return Path(folder) / series.group
