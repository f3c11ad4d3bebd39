"""Run folders: the saved detector + ``run.json`` (+ ``scores.csv``), saved atomically.

A run folder holds the detector's own files (``detector.json`` and its
weights, see ``RareEventDetector.save``) and ``run.json``: what the run was
trained on and how it did (column roles, splits, metrics, input hash,
versions). Both are untrusted input when loaded: every value is checked
before it is used, and the model is rebuilt from the registry and given
its weights, so a folder cannot run code. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd

from rareevent.detector import RareEventDetector, read_json
from rareevent.errors import RareEventError
from rareevent.gaps import gap_rule_ok, resample_record_ok
from rareevent.load import reading_record_ok
from rareevent.selection import candidates_ok
from rareevent.storage import TEMP_PREFIX, atomic_folder, check_free, hold_name, remove_stale_temporaries

FORMAT_VERSION = 3
OLDEST_FORMAT = 3  # formats 1 and 2 (rareevent 0.1.0 and 0.2.0) kept the whole Keras model, which is not loaded any more
RUN_FILE = "run.json"
SCORES_FILE = "scores.csv"
MAX_NAME_BYTES = 200  # file names end at 255 bytes, and the temporary and lock names add a prefix


def save_run(
    runs_dir: str | Path,
    name: str,
    detector: RareEventDetector,
    record: dict[str, Any],
    scores: pd.DataFrame,
    overwrite: bool = False,
) -> Path:
    """Write the run folder ``runs_dir/name`` atomically and return its path."""
    check_run_name(name)
    runs_dir = check_runs_dir(runs_dir)
    remove_stale_temporaries(runs_dir)
    target = runs_dir / name
    with atomic_folder(target, overwrite=overwrite) as folder:
        detector.write_files(folder)
        scores.to_csv(folder / SCORES_FILE, index=False)
        (folder / RUN_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target


def check_run_name(name: str) -> None:
    """Refuse a run name that is not a plain, visible folder name of a length every file system takes."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name or name in ("..", "."):
        raise RareEventError(f"name {name!r} is not a valid folder name", param="name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise RareEventError(f"name {name[:20]!r}... is {len(name.encode('utf-8'))} bytes long; a run name may have at most {MAX_NAME_BYTES}", param="name")


def check_runs_dir(runs_dir: str | Path) -> Path:
    """``runs_dir`` as a Path; refused when it names a file."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise RareEventError(f"{runs_dir}: `runs_dir` is a file, not a folder", param="runs_dir")
    return runs_dir


@contextmanager
def reserve_run(runs_dir: str | Path, name: str, overwrite: bool) -> Iterator[Path]:
    """Take the name of a new run for the whole block (training and saving): the folder it goes to.

    Everything that would refuse the save is checked here, before minutes
    of training: the name, ``runs_dir``, an existing run without
    ``overwrite``, and another process training a run of the same name.
    """
    check_run_name(name)
    with hold_name(check_runs_dir(runs_dir) / name):
        yield check_run_slot(runs_dir, name, overwrite)


def check_run_slot(runs_dir: str | Path, name: str, overwrite: bool) -> Path:
    """The folder a new run ``name`` goes to; refused when the name is invalid, ``runs_dir`` a file, or the run exists without ``overwrite``."""
    check_run_name(name)
    return check_free(check_runs_dir(runs_dir) / name, overwrite)


def list_runs(runs_dir: str | Path) -> list[Path]:
    """Run folders in ``runs_dir``, oldest first (by ``created`` in run.json)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX) and (p / RUN_FILE).is_file()]

    def created(path: Path) -> str:
        try:
            return str(json.loads((path / RUN_FILE).read_text(encoding="utf-8")).get("created", ""))
        except (OSError, ValueError, AttributeError, RecursionError):  # a damaged run.json sorts first; reading it fails later, naming it
            return ""

    return sorted(found, key=lambda p: (created(p), p.name))


def resolve_run(run: str | None, runs_dir: str | Path) -> Path:
    """A run folder from a path, a name inside ``runs_dir``, or the newest run."""
    runs_dir = Path(runs_dir)
    if run is None:
        runs = list_runs(runs_dir)
        if not runs:
            raise RareEventError(f"{runs_dir}: no runs found", hint="train one with `rareevent train DATA.csv` or pass `run`")
        for folder in reversed(runs):  # a damaged run is skipped with a warning, as `report` does
            try:
                read_run(folder)
            except RareEventError as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
                continue
            return folder
        raise RareEventError(f"{runs_dir}: no readable run found (every run above was skipped)", hint="pass `run` to see why one fails")
    for candidate in (Path(run), runs_dir / run):
        if candidate.is_dir():
            return candidate
    raise RareEventError(f"run {run!r} not found (neither a folder nor a run in {runs_dir})")


def read_record(folder: Path) -> dict[str, Any]:
    """Read and validate ``run.json`` of a run folder (the run's metadata; the detector is read apart)."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise RareEventError(f"{folder}: not a run folder ({RUN_FILE} missing)")
    record = read_json(path)
    validate_record(record, path)
    return record


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _is_metrics_part(value: Any) -> bool:
    """None, or a dict of metric values: null, finite numbers or lists of them (a NaN would break ``report --json``)."""
    return value is None or (isinstance(value, dict) and all(v is None or _is_number(v) or (isinstance(v, list) and all(_is_number(x) for x in v)) for v in value.values()))


def _is_metrics(value: Any) -> bool:
    """The ``metrics`` of a run, its baseline or one series: a dict of the ``valid`` and ``test`` parts."""
    return isinstance(value, dict) and all(_is_metrics_part(value.get(k)) for k in ("valid", "test"))


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


def validate_record(record: Any, path: Path) -> None:
    """Raise ``RareEventError`` naming the first field of ``record`` that is wrong."""
    if not isinstance(record, dict):
        raise RareEventError(f"{path}: must hold a JSON object")
    version = record.get("format_version")
    if not _is_int(version):
        raise RareEventError(f"{path}: field 'format_version' is missing or not an integer")
    if version > FORMAT_VERSION:
        raise RareEventError(
            f"{path}: format version {version} is newer than this rareevent understands ({FORMAT_VERSION})",
            hint="upgrade rareevent",
        )
    if version < OLDEST_FORMAT:
        raise RareEventError(
            f"{path}: format version {version} (rareevent 0.1/0.2) saved the whole Keras model, which this rareevent no longer loads",
            hint="train the run again; `rareevent report RUN --recipe` with rareevent 0.2 prints its options",
        )
    checks: dict[str, Any] = {
        "name": lambda v: isinstance(v, str) and v != "",
        "time_column": lambda v: v is None or isinstance(v, str),
        "label_column": lambda v: v is None or isinstance(v, str),
        "metrics": _is_metrics,
    }
    optional: dict[str, Any] = {  # may be missing or null; commands that show them read them too
        "created": lambda v: isinstance(v, str),
        "parameters": lambda v: _is_int(v) and v >= 0,
        "dropped_columns": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "settings": lambda v: isinstance(v, dict),
        "input_file": lambda v: isinstance(v, str),
        "input_sha256": lambda v: isinstance(v, str),
        "parent": lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("name", "folder")),  # written by `update`
        "reading": reading_record_ok,
        "assumed": lambda v: isinstance(v, list) and all(isinstance(a, dict) and all(isinstance(a.get(k), str) for k in ("column", "as", "message")) for a in v),
        "train_range": lambda v: (
            isinstance(v, dict) and all(isinstance(v.get(k), list) and all(_is_number(x) for x in v[k]) for k in ("percentiles", "low", "high")) and len(v["low"]) == len(v["high"])
        ),
        "gaps": gap_rule_ok,
        "resample": resample_record_ok,
        "candidates": candidates_ok,  # written by --arch auto
        "baseline": lambda v: isinstance(v, dict) and v.get("arch") == "pca" and _is_metrics(v.get("metrics")),
        "group_column": lambda v: isinstance(v, str) and v != "",  # a fleet or per-group run
        "series": lambda v: isinstance(v, list) and all(_is_series(s) for s in v),  # a fleet run: one entry per series
    }
    _check_fields(record, checks, optional, path)


def _check_fields(record: dict[str, Any], required: dict[str, Callable[[Any], bool]], optional: dict[str, Callable[[Any], bool]], path: Path) -> None:
    """Raise naming the first field that is missing (``required`` only) or holds an invalid value."""
    for field, ok in {**required, **optional}.items():
        if field in required and field not in record:
            raise RareEventError(f"{path}: required field {field!r} is missing")
        value = record.get(field)
        if (field in required or value is not None) and not ok(value):
            raise RareEventError(f"{path}: field {field!r} has an invalid value {json.dumps(value)[:60]}")


def run_view(record: dict[str, Any], detector: RareEventDetector) -> dict[str, Any]:
    """One flat dict for showing a run: ``run.json``'s metadata with the detector's settings and learned values by name.

    The only place that spells the detector's values out for tables,
    ``train --json`` and ``report``; nothing is written from it.
    """
    names = detector.feature_names_in_
    params = {key: list(value) if isinstance(value, tuple) else value for key, value in detector.get_params().items() if key != "threshold"}
    return {
        **record,
        **params,
        "units": list(detector.units_),  # the sizes trained: --units auto's choice
        "batch_size": detector.batch_size_,  # what training used: the parameter, or the automatic choice
        "learning_rate": detector.learning_rate_,
        "threshold": float(detector.threshold_),
        "threshold_strategy": detector.threshold_strategy_,
        "features": list(names),
        **{f"{role}_features": [names[j] for j in getattr(detector, f"{role}_features_")] for role in ("context", "target", "constant", "trending")},
        "epochs_run": detector.epochs_run_,
        "best_epoch": detector.best_epoch_,
        "history": detector.history_,
        "train_seconds": round(detector.train_seconds_, 3),
    }


def read_run(folder: Path) -> dict[str, Any]:
    """``run_view`` of a run folder, without loading its model (no Keras import)."""
    record = read_record(folder)
    return run_view(record, RareEventDetector.read_config(folder))


def load_run(folder: str | Path) -> tuple[dict[str, Any], RareEventDetector]:
    """Load a run folder: its ``run_view`` and the ready-to-score detector, as it was trained."""
    folder = Path(folder)
    record = read_record(folder)
    detector = RareEventDetector.load(folder)
    return run_view(record, detector), detector


def scores_frame(parts: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The validation/test window scores saved in ``scores.csv`` for reports and plots."""
    frames = [pd.DataFrame({"split": name, **{k: v for k, v in columns.items() if k != "position"}}) for name, columns in parts.items() if len(columns["row"])]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["split", "row", "error", "flagged"])
