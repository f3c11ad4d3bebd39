"""The run record: what ``run.json`` holds, typed, with its one reader and one writer.

``RunRecord.from_json`` checks every field of an untrusted ``run.json``
(the error names the file and the field) and ``RunRecord.to_json`` writes
it back with the keys and key order rareevent has always written, so an
older rareevent reads a new run and a record read and written again is the
same bytes. ``RunView`` adds the detector's settings and learned values: what
commands show, score with and print as ``--json``.

Imports no TensorFlow: ``report`` and ``score --run`` read records before
any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from rareevent.errors import RareEventError
from rareevent.gaps import GapSummary, gap_rule_ok, resample_record_ok
from rareevent.load import reading_record_ok
from rareevent.options import AlarmPolicy, Spec, TrainSpec

FORMAT_VERSION = 3
# formats 1 and 2 (rareevent 0.1.0 and 0.2.0) kept the whole Keras model, which is not
# loaded any more
OLDEST_FORMAT = 3

Metrics = dict[
    str, dict[str, Any] | None
]  # per part (``valid``, ``test``): metric name -> value; ``None`` without labels


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """``baseline``: the PCA model trained on the same split, for comparison."""

    arch: str
    parameters: int | None = None
    threshold: float | None = None
    metrics: Metrics


@dataclass(frozen=True, kw_only=True)
class SeriesEntry:
    """One entry of a fleet run's ``series``: a series' file, group value, rows and own metrics."""

    name: str
    file: str
    group: str | None = None
    rows: int
    metrics: Metrics


@dataclass(frozen=True, kw_only=True)
class Parent:
    """``parent``: the run an ``update`` started from."""

    name: str
    folder: str
    input_sha256: str | None = None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    ) and math.isfinite(value)


def _is_metrics_part(value: Any) -> bool:
    """None, or a dict of metric values: null, finite numbers or lists of them (a NaN
    would break ``report --json``).
    """
    return value is None or (
        isinstance(value, dict)
        and all(
            v is None
            or _is_number(v)
            or (isinstance(v, list) and all(_is_number(x) for x in v))
            for v in value.values()
        )
    )


def _is_metrics(value: Any) -> bool:
    """The ``metrics`` of a run, its baseline or one series: a dict of the ``valid`` and
    ``test`` parts.
    """
    return isinstance(value, dict) and all(
        _is_metrics_part(value.get(k)) for k in ("valid", "test")
    )


def _is_series(value: Any) -> bool:
    """One series of a fleet run's ``series``, as ``fleet.train_fleet`` writes it."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and isinstance(value.get("file"), str)
        and (value.get("group") is None or isinstance(value.get("group"), str))
        and _is_int(value.get("rows"))
        and value["rows"] >= 0
        and _is_metrics(value.get("metrics"))
    )


def _is_counts(value: Any) -> bool:
    return isinstance(value, dict) and all(
        _is_int(v) and v >= 0 for v in value.values()
    )


def _candidates_ok(value: Any) -> bool:
    """The ``candidates`` field of run.json: each architecture's validation F1, PR-AUC
    and false-alarm episodes.
    """
    return (
        isinstance(value, dict)
        and all(
            isinstance(arch, str) and (summary is None or isinstance(summary, dict))
            for arch, summary in value.items()
        )
        and all(
            all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in summary.values()
            )
            for summary in value.values()
            if summary is not None
        )
    )


def _spec_ok(value: Any, kind: type[Spec] = TrainSpec) -> bool:
    """Whether a run.json ``spec`` (or ``alarm``) is a record whose values pass its checks."""
    try:
        kind.from_record(value)
    except (TypeError, AttributeError, ValueError):  # a RareEventError is a ValueError
        return False
    return isinstance(value, dict)


def validate_record(record: Any, path: Path) -> None:
    """Raise ``RareEventError`` naming the first field of ``record`` that is wrong."""
    if not isinstance(record, dict):
        raise RareEventError(f"{path}: must hold a JSON object")
    version = record.get("format_version")
    if not _is_int(version):
        raise RareEventError(
            f"{path}: field 'format_version' is missing or not an integer"
        )
    if version > FORMAT_VERSION:
        raise RareEventError(
            f"{path}: format version {version} is newer than this rareevent "
            f"understands ({FORMAT_VERSION})",
            hint="upgrade rareevent",
        )
    if version < OLDEST_FORMAT:
        raise RareEventError(
            f"{path}: format version {version} (rareevent 0.1/0.2) saved the whole "
            "Keras model, which this rareevent no longer loads",
            hint="train the run again; `rareevent report RUN --recipe` with rareevent "
            "0.2 prints its options",
        )
    checks: dict[str, Any] = {
        "name": lambda v: isinstance(v, str) and v != "",
        "time_column": lambda v: v is None or isinstance(v, str),
        "label_column": lambda v: v is None or isinstance(v, str),
        "metrics": _is_metrics,
    }
    optional: dict[
        str, Any
    ] = {  # may be missing or null; commands that show them read them too
        "created": lambda v: isinstance(v, str),
        "parameters": lambda v: _is_int(v) and v >= 0,
        "dropped_columns": lambda v: (
            isinstance(v, list) and all(isinstance(c, str) for c in v)
        ),
        "fill": lambda v: isinstance(v, str),
        "filled_cells": lambda v: _is_int(v) and v >= 0,
        "valid_frac": lambda v: _is_number(v) and 0 < v < 1,
        "test_frac": lambda v: _is_number(v) and 0 <= v < 1,
        "splits": lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(b, list) and len(b) == 2 and all(_is_int(x) for x in b)
                for b in v.values()
            )
        ),
        "windows": _is_counts,
        "input_rows": lambda v: _is_int(v) and v >= 0,
        "versions": lambda v: isinstance(v, dict),
        "settings": lambda v: isinstance(v, dict),
        "spec": _spec_ok,
        "alarm": lambda v: _spec_ok(v, AlarmPolicy),
        "time_step": lambda v: _is_number(v) and v > 0,
        "input_file": lambda v: isinstance(v, str),
        "input_sha256": lambda v: isinstance(v, str),
        "parent": lambda v: (
            isinstance(v, dict)
            and all(isinstance(v.get(k), str) for k in ("name", "folder"))
        ),  # written by `update`
        "reading": reading_record_ok,
        "assumed": lambda v: (
            isinstance(v, list)
            and all(
                isinstance(a, dict)
                and all(isinstance(a.get(k), str) for k in ("column", "as", "message"))
                for a in v
            )
        ),
        "train_range": lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(v.get(k), list) and all(_is_number(x) for x in v[k])
                for k in ("percentiles", "low", "high")
            )
            and len(v["low"]) == len(v["high"])
        ),
        "normal_error": lambda v: (
            isinstance(v, dict)
            and _is_number(v.get("percentile"))
            and isinstance(v.get("features"), list)
            and all(isinstance(name, str) for name in v["features"])
            and isinstance(v.get("error"), list)
            and len(v["error"]) == len(v["features"])
            and all(_is_number(x) and x >= 0 for x in v["error"])
        ),
        "gaps": gap_rule_ok,
        "resample": resample_record_ok,
        "candidates": _candidates_ok,  # written by --arch auto
        "baseline": lambda v: (
            isinstance(v, dict)
            and v.get("arch") == "pca"
            and _is_metrics(v.get("metrics"))
        ),
        "group_column": lambda v: (
            isinstance(v, str) and v != ""
        ),  # a fleet or per-group run
        "series": lambda v: (
            isinstance(v, list) and all(_is_series(s) for s in v)
        ),  # a fleet run: one entry per series
    }
    _check_fields(record, checks, optional, path)


def _check_fields(
    record: dict[str, Any],
    required: dict[str, Callable[[Any], bool]],
    optional: dict[str, Callable[[Any], bool]],
    path: Path,
) -> None:
    """Raise naming the first field that is missing (``required`` only) or holds an
    invalid value.
    """
    for name, ok in {**required, **optional}.items():
        if name in required and name not in record:
            raise RareEventError(f"{path}: required field {name!r} is missing")
        value = record.get(name)
        if (name in required or value is not None) and not ok(value):
            raise RareEventError(
                f"{path}: field {name!r} has an invalid value {json.dumps(value)[:60]}"
            )


def _no_metrics() -> Metrics:
    return {"valid": None, "test": None}


# Fields a run of this version writes even when they are null; the others are left out
# when null (absent in older runs).
_WRITTEN_WHEN_NULL = frozenset(
    {
        "time_column",
        "label_column",
        "fill",
        "input_sha256",
        "baseline",
        "gaps",
        "resample",
    }
)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """What ``run.json`` holds: the run's data, column roles, splits, metrics and provenance.

    The fields are in the order ``run.json`` has always had them. Optional
    fields are ``None`` in runs that do not have them (older runs, runs
    without labels, time or gap rule). ``extra`` keeps fields this version
    does not know, so reading and writing a run loses nothing. Each field
    is described in the documentation's "run.json and detector.json" page.

    See Also
    --------
    rareevent.runs.read_record : Reads and checks the ``run.json`` of a folder.
    RunView : The record with the detector's settings, as ``load_run`` gives it.
    """

    format_version: int = FORMAT_VERSION
    name: str
    created: str | None = None
    parameters: int | None = None
    time_column: str | None = None
    label_column: str | None = None
    dropped_columns: list[str] | None = None
    fill: str | None = None
    filled_cells: int | None = None
    reading: dict[str, Any] | None = (
        None  # ``Reading.to_record()``: how the training file's cells were read
    )
    valid_frac: float | None = None
    test_frac: float | None = None
    splits: dict[str, list[int]] | None = None  # part -> [first row, end row]
    windows: dict[str, int] | None = (
        None  # part -> windows scored (``train_normal``: windows trained on)
    )
    metrics: Metrics = field(default_factory=_no_metrics)
    input_file: str | None = None
    input_sha256: str | None = None
    input_rows: int | None = None
    train_range: dict[str, list[float]] | None = (
        None  # percentiles, low, high: each feature's band in raw units
    )
    normal_error: dict[str, Any] | None = (
        None  # percentile, features, error: |reading - expected| of normal validation rows
    )
    versions: dict[str, Any] | None = None
    baseline: Baseline | None = None
    assumed: list[dict[str, str]] | None = (
        None  # what was inferred about columns no option named
    )
    candidates: dict[str, dict[str, Any] | None] | None = (
        None  # --arch auto: each architecture's validation summary
    )
    gaps: GapSummary | None = None
    resample: dict[str, Any] | None = (
        None  # every, agg, rows, empty_cells (see ``gaps.run_grid``)
    )
    series: tuple[SeriesEntry, ...] | None = None  # a fleet run: one entry per series
    group_column: str | None = (
        None  # a fleet (``None`` with ``series``: a fleet of files) or per-group run
    )
    parent: Parent | None = None  # an ``update``'s run
    settings: dict[str, Any] | None = (
        None  # the options `train` was given, for ``report --recipe``
    )
    spec: TrainSpec | None = (
        None  # what the library was given: the input, split and context (runs before 0.5 have none)
    )
    alarm: AlarmPolicy | None = (
        None  # the alarm policy `score` applies unless told otherwise (`update` sets it)
    )
    time_step: float | None = (
        None  # seconds: the training rows' median step (a dated time column only)
    )
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any, path: Path) -> RunRecord:
        """The record of a parsed ``run.json`` at ``path``; every field checked first
        (the error names the file and field).
        """
        validate_record(value, path)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        fields = {key: v for key, v in value.items() if key in known}
        for key, kind in (
            ("gaps", GapSummary),
            ("baseline", Baseline),
            ("parent", Parent),
        ):
            if fields.get(key) is not None:
                fields[key] = kind(**_known(kind, fields[key]))
        if fields.get("series") is not None:
            fields["series"] = tuple(
                SeriesEntry(**_known(SeriesEntry, s)) for s in fields["series"]
            )
        if fields.get("spec") is not None:
            fields["spec"] = TrainSpec.from_record(fields["spec"])
        if fields.get("alarm") is not None:
            fields["alarm"] = AlarmPolicy.from_record(fields["alarm"])
        return cls(
            **fields, extra={key: v for key, v in value.items() if key not in known}
        )

    def to_json(self) -> dict[str, Any]:
        """The ``run.json`` object: the keys this version writes, in their order, then ``extra``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(RunRecord):
            value = getattr(self, f.name)
            if f.name == "extra" or (
                value is None
                and f.name not in _WRITTEN_WHEN_NULL
                and not (f.name == "group_column" and self.series is not None)
            ):
                continue
            if f.name == "series":
                value = [dataclasses.asdict(s) for s in value]
            elif isinstance(value, Spec):
                value = value.to_record()
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)  # type: ignore[arg-type]
            out[f.name] = value
        return {**out, **self.extra}


def _known(kind: type[Any], value: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``value`` that are fields of ``kind`` (a sub-record may carry keys a
    newer version added).
    """
    names = {f.name for f in dataclasses.fields(kind)}
    return {key: v for key, v in value.items() if key in names}


@dataclass(frozen=True, kw_only=True)
class RunView(RunRecord):
    """A run record with the detector's settings and learned values: what commands show
    and score with.

    Built by :func:`rareevent.runs.run_view`; nothing is written from it.
    ``params`` holds every ``get_params()`` value; the typed fields are the
    ones commands read (``units``, ``batch_size`` and ``learning_rate`` as
    training used them: ``--units auto``'s choice, the automatic batch).

    Examples
    --------
    >>> from rareevent import load_run
    >>> view, _ = load_run("runs/pump-ae")
    >>> view.features[:2], view.gaps.max_gap, round(view.metrics["test"]["f1"], 3)
    (['motor_current', 'vibration_rms'], '5x', 0.896)
    """

    params: dict[str, Any]
    arch: str
    lookback: int
    lead: int
    units: list[int]  # the sizes trained: --units auto's choice
    batch_size: int | None  # what training used: the parameter, or the automatic choice
    learning_rate: float | None
    margin: float
    score_kind: str
    smooth: int
    threshold: float
    threshold_strategy: str
    features: list[str]
    context_features: list[str]
    target_features: list[str]
    constant_features: list[str]
    trending_features: list[str]
    epochs_run: int | None
    best_epoch: int | None
    history: dict[str, list[float]] | None
    train_seconds: float
