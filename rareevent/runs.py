"""Run folders: ``model.keras`` + ``run.json`` (+ ``scores.csv``), saved atomically.

A run folder is untrusted input when it is loaded: ``run.json`` is checked
against its schema before any value is used, and the model is loaded with
Keras safe mode and only the layer types rareevent builds, so a folder
cannot run code. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rareevent import scaling
from rareevent.detector import MAX_MARGIN, MAX_SEED, MAX_SPAN, SCORE_KINDS, RareEventDetector
from rareevent.errors import RareEventError
from rareevent.gaps import gap_rule_ok, resample_record_ok
from rareevent.load import reading_record_ok
from rareevent.model import ACTIVATIONS, ARCHS, PCAModel, import_keras
from rareevent.storage import TEMP_PREFIX, atomic_folder, check_free, hold_name, remove_stale_temporaries
from rareevent.threshold import parse_strategy

if TYPE_CHECKING:
    import keras

FORMAT_VERSION = 2
MODEL_FILE = "model.keras"
PCA_FILE = "model.npz"
RUN_FILE = "run.json"
SCORES_FILE = "scores.csv"
LAYER_SEQUENCE = {
    "ae": ["InputLayer", "LSTM", "LSTM", "RepeatVector", "LSTM", "LSTM", "TimeDistributed"],
    "plain": ["InputLayer", "LSTM", "LSTM", "LSTM", "LSTM", "TimeDistributed"],
}
ALLOWED_LAYERS = {layer for sequence in LAYER_SEQUENCE.values() for layer in sequence}
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
        detector.model_.save(folder / (PCA_FILE if detector.arch == "pca" else MODEL_FILE))
        scores.to_csv(folder / SCORES_FILE, index=False)
        (folder / RUN_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target


def check_run_name(name: str) -> None:
    """Refuse a run name that is not a plain, visible folder name of a length every file system takes."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..", "."):
        raise RareEventError(f"--name {name!r} is not a valid folder name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise RareEventError(f"--name {name[:20]!r}... is {len(name.encode('utf-8'))} bytes long; a run name may have at most {MAX_NAME_BYTES}")


def check_runs_dir(runs_dir: str | Path) -> Path:
    """``runs_dir`` as a Path; refused when it names a file."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise RareEventError(f"{runs_dir}: --runs-dir is a file, not a folder")
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
        except (OSError, ValueError, AttributeError):
            return ""

    return sorted(found, key=lambda p: (created(p), p.name))


def resolve_run(run: str | None, runs_dir: str | Path) -> Path:
    """A run folder from a path, a name inside ``runs_dir``, or the newest run."""
    runs_dir = Path(runs_dir)
    if run is None:
        runs = list_runs(runs_dir)
        if not runs:
            raise RareEventError(f"{runs_dir}: no runs found", hint="train one with `rareevent train DATA.csv` or pass --run")
        return runs[-1]
    for candidate in (Path(run), runs_dir / run):
        if candidate.is_dir():
            return candidate
    raise RareEventError(f"run {run!r} not found (neither a folder nor a run in {runs_dir})")


def read_record(folder: Path) -> dict[str, Any]:
    """Read and validate ``run.json`` of a run folder."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise RareEventError(f"{folder}: not a run folder ({RUN_FILE} missing)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RareEventError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RareEventError(f"{path}: not valid JSON ({exc})") from None
    validate_record(record, path)
    return record


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _is_metrics_part(value: Any) -> bool:
    """None, or a dict of metric values: null, finite numbers or lists of them (a NaN would break ``report --json``)."""
    return value is None or (
        isinstance(value, dict) and all(v is None or _is_number(v) or (isinstance(v, list) and all(_is_number(x) for x in v)) for v in value.values())
    )


def _margin_ok(value: Any) -> bool:
    return _is_number(value) and 0 < value <= MAX_MARGIN


def _seed_ok(value: Any) -> bool:
    return _is_int(value) and 0 <= value <= MAX_SEED


def _strategy_ok(value: Any) -> bool:
    try:
        return isinstance(value, str) and parse_strategy(value) is not None
    except RareEventError:
        return False


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
    features = record.get("features")
    n = len(features) if isinstance(features, list) else -1
    checks: dict[str, Any] = {
        "name": lambda v: isinstance(v, str) and v != "",
        "arch": lambda v: v in ARCHS,
        "lookback": lambda v: _is_int(v) and 1 <= v <= MAX_SPAN,
        "lead": lambda v: _is_int(v) and 0 <= v <= MAX_SPAN,
        "units": lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(u) and u >= 1 for u in v),
        "activation": lambda v: v in ACTIVATIONS,
        "score_kind": lambda v: v in SCORE_KINDS,
        "smooth": lambda v: _is_int(v) and 1 <= v <= MAX_SPAN,
        "threshold": _is_number,
        "threshold_strategy": _strategy_ok,
        "features": lambda v: isinstance(v, list) and n >= 1 and all(isinstance(f, str) and f for f in v) and len(set(v)) == n,
        "time_column": lambda v: v is None or isinstance(v, str),
        "label_column": lambda v: v is None or isinstance(v, str),
        "scaler_mean": lambda v: isinstance(v, list) and len(v) == n and all(_is_number(x) for x in v),
        "scaler_scale": lambda v: isinstance(v, list) and len(v) == n and all(_is_number(x) and x > 0 for x in v),
        "metrics": lambda v: isinstance(v, dict) and all(_is_metrics_part(v.get(k)) for k in ("valid", "test")),
    }
    if version >= 2:  # context columns and normalised errors arrived with format 2
        targets = record.get("target_features")
        m = len(targets) if isinstance(targets, list) else -1
        checks |= {
            "context_features": lambda v: isinstance(v, list) and all(f in features for f in v),
            "target_features": lambda v: isinstance(v, list) and m >= 1 and all(f in features for f in v) and len(set(v)) == m
            and not set(v) & set(record.get("context_features") or []),
            "error_scale": lambda v: isinstance(v, list) and len(v) == m and all(_is_number(x) and x > 0 for x in v),
        }
    optional: dict[str, Any] = {  # may be missing or null; commands that show them read them too
        "created": lambda v: isinstance(v, str),
        "parameters": lambda v: _is_int(v) and v >= 0,
        "margin": _margin_ok,
        "seed": _seed_ok,
        "normalize": lambda v: isinstance(v, bool),
        "settings": lambda v: isinstance(v, dict),
        "train_seconds": lambda v: _is_number(v) and v >= 0,
        "input_file": lambda v: isinstance(v, str),
        "input_sha256": lambda v: isinstance(v, str),
        "parent": lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("name", "folder")),  # written by `update`
        "reading": reading_record_ok,  # runs saved before files were read as today have none
        "gaps": gap_rule_ok,  # runs saved before gaps have neither
        "resample": resample_record_ok,
        "baseline": lambda v: isinstance(v, dict)
        and v.get("arch") == "pca"
        and isinstance(v.get("metrics"), dict)
        and all(_is_metrics_part(v["metrics"].get(k)) for k in ("valid", "test")),
    }
    _check_fields(record, checks, optional, path)


# what a warm start (`rareevent update`) continues training with; a `pca` run has no batch size or learning rate
TRAINING_CHECKS: dict[str, Callable[[Any], bool]] = {
    "margin": _margin_ok,
    "batch_size": lambda v: v is None or (_is_int(v) and v >= 1),
    "learning_rate": lambda v: v is None or (_is_number(v) and 0 < v < 1),
    "patience": lambda v: _is_int(v) and v >= 0,
    "seed": _seed_ok,
}


def training_settings(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """The training settings of a run, checked: detector parameters for continuing its training."""
    _check_fields(record, TRAINING_CHECKS, {}, path)
    return {field: record[field] for field in TRAINING_CHECKS}


def _check_fields(record: dict[str, Any], required: dict[str, Callable[[Any], bool]], optional: dict[str, Callable[[Any], bool]], path: Path) -> None:
    """Raise naming the first field that is missing (``required`` only) or holds an invalid value."""
    for field, ok in {**required, **optional}.items():
        if field in required and field not in record:
            raise RareEventError(f"{path}: required field {field!r} is missing")
        value = record.get(field)
        if (field in required or value is not None) and not ok(value):
            raise RareEventError(f"{path}: field {field!r} has an invalid value {json.dumps(value)[:60]}")


def load_run(folder: str | Path) -> tuple[dict[str, Any], RareEventDetector]:
    """Load a run folder: its validated record and a ready-to-score detector."""
    folder = Path(folder)
    record = read_record(folder)
    features = record["features"]
    targets = record.get("target_features", features)
    if record["arch"] == "pca":
        model = PCAModel.load(folder / PCA_FILE, n_features=len(features), targets=[features.index(f) for f in targets])
    else:
        model = load_model(folder / MODEL_FILE, arch=record["arch"], lookback=record["lookback"], n_features=len(features), n_outputs=len(targets))
    detector = RareEventDetector(
        arch=record["arch"],
        lookback=record["lookback"],
        units=tuple(record["units"]),
        activation=record["activation"],
        lead=record["lead"],
        score_kind=record["score_kind"],
        smooth=record["smooth"],
        threshold=record["threshold_strategy"],
        seed=record.get("seed", 0),
        context=[features.index(f) for f in record.get("context_features", [])],
        normalize=record.get("normalize", False),
    )
    detector.model_ = model
    detector.target_features_ = [features.index(f) for f in targets]
    detector.context_features_ = detector.context
    detector.error_scale_ = np.asarray(record.get("error_scale", [1.0] * len(targets)), np.float32)
    detector.scaler_ = scaling.scaler_from_arrays(record["scaler_mean"], record["scaler_scale"])
    detector.threshold_ = float(record["threshold"])
    return record, detector


def load_model(path: Path, arch: str, lookback: int, n_features: int, n_outputs: int | None = None) -> keras.Model:
    """Load ``model.keras`` in safe mode and check it is a model rareevent builds."""
    if not path.is_file():
        raise RareEventError(f"{path}: model file missing")
    keras = import_keras()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a corrupt or unsafe archive
        text = str(exc)
        unsafe = re.search(r"deserialization of an? (`[^`]+`|Python lambda)", text)
        if unsafe or "safe_mode" in text:
            what = unsafe.group(1).strip("`") if unsafe else "object Keras safe mode does not load"
            raise RareEventError(f"{path}: refused: the model holds a {what}, which could run arbitrary code") from None
        if "Could not locate" in text or "custom" in text.lower():
            raise RareEventError(f"{path}: refused: the model uses custom objects rareevent does not build") from None
        raise RareEventError(f"{path}: not a readable Keras model ({type(exc).__name__})", hint="retrain the run") from None
    layers = [type(layer).__name__ for layer in model.layers]
    stray = sorted(set(layers) - ALLOWED_LAYERS)
    if stray:
        raise RareEventError(f"{path}: refused: unexpected layer type(s) {', '.join(stray)}")
    if layers != LAYER_SEQUENCE[arch]:
        raise RareEventError(f"{path}: refused: not a rareevent {arch!r} model (layers {', '.join(layers)})")
    expected = (None, lookback, n_features)
    if tuple(model.input_shape) != expected or tuple(model.output_shape) != (None, lookback, n_outputs or n_features):
        raise RareEventError(f"{path}: model shape {model.input_shape} does not match run.json (lookback {lookback}, {n_features} features)")
    return model


def scores_frame(parts: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The validation/test window scores saved in ``scores.csv`` for reports and plots."""
    frames = [
        pd.DataFrame({"split": name, **{k: v for k, v in columns.items() if k != "position"}})
        for name, columns in parts.items()
        if len(columns["row"])
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["split", "row", "error", "flagged"])
