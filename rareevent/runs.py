"""Run folders: the saved detector + ``run.json`` (+ ``scores.csv``), saved atomically.

A run folder holds the detector's own files (``detector.json`` and its
weights, see ``RareEventDetector.save``) and ``run.json``: what the run was
trained on and how it did (column roles, splits, metrics, input hash,
versions). Both are untrusted input when loaded: every value is checked
before it is used, and the model is rebuilt from the registry and given
its weights, so a folder cannot run code. Nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from rareevent.detector import Detector
from rareevent.detector_file import read_json
from rareevent.errors import RareEventError
from rareevent.record import (
    FORMAT_VERSION as FORMAT_VERSION,
    OLDEST_FORMAT as OLDEST_FORMAT,
    RunRecord,
    RunView,
    validate_record as validate_record,
)
from rareevent.storage import (
    TEMP_PREFIX,
    atomic_folder,
    check_free,
    check_not_in_run,
    hold_name,
    remove_stale_temporaries,
)

if TYPE_CHECKING:
    from rareevent.estimator import RareEventDetector

D = TypeVar("D", bound=Detector)

RUN_FILE = "run.json"
SCORES_FILE = "scores.csv"
MAX_NAME_BYTES = (
    200  # file names end at 255 bytes, and the temporary and lock names add a prefix
)


def save_run(
    runs_dir: str | Path,
    name: str,
    detector: Detector,
    record: RunRecord,
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
        (folder / RUN_FILE).write_text(
            json.dumps(record.to_json(), indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    return target


def check_run_name(name: str) -> None:
    """Refuse a run name that is not a plain, visible folder name of a length every file
    system takes.
    """
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name in ("..", ".")
    ):
        raise RareEventError(f"name {name!r} is not a valid folder name", param="name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise RareEventError(
            f"name {name[:20]!r}... is {len(name.encode('utf-8'))} bytes long; a "
            f"run name may have at most {MAX_NAME_BYTES}",
            param="name",
        )


def check_runs_dir(runs_dir: str | Path) -> Path:
    """``runs_dir`` as a Path; refused when it names a file or lies in a run folder.

    A run saved inside another run would be deleted by an ``overwrite`` of
    the outer one.
    """
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise RareEventError(
            f"{runs_dir}: `runs_dir` is a file, not a folder", param="runs_dir"
        )
    check_not_in_run(runs_dir, runs_dir=True)
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
    """The folder a new run ``name`` goes to; refused when the name is invalid,
    ``runs_dir`` a file, or the run exists without ``overwrite``.
    """
    check_run_name(name)
    return check_free(check_runs_dir(runs_dir) / name, overwrite)


def list_runs(runs_dir: str | Path) -> list[Path]:
    """Run folders in ``runs_dir``, oldest first (by ``created`` in run.json)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [
        p
        for p in runs_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(TEMP_PREFIX)
        and (p / RUN_FILE).is_file()
    ]

    def created(path: Path) -> str:
        try:
            return str(
                json.loads((path / RUN_FILE).read_text(encoding="utf-8")).get(
                    "created", ""
                )
            )
        except (
            OSError,
            ValueError,
            AttributeError,
            RecursionError,
        ):  # a damaged run.json sorts first; reading it fails later, naming it
            return ""

    return sorted(found, key=lambda p: (created(p), p.name))


def resolve_run(run: str | None, runs_dir: str | Path) -> Path:
    """A run folder from a path, a name inside ``runs_dir``, or the newest run."""
    runs_dir = Path(runs_dir)
    if run is None:
        runs = list_runs(runs_dir)
        if not runs:
            raise RareEventError(
                f"{runs_dir}: no runs found",
                hint="train one with `rareevent train DATA.csv` or pass `run`",
            )
        for folder in reversed(
            runs
        ):  # a damaged run is skipped with a warning, as `report` does
            try:
                read_run(folder)
            except RareEventError as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
                continue
            return folder
        raise RareEventError(
            f"{runs_dir}: no readable run found (every run above was skipped)",
            hint="pass `run` to see why one fails",
        )
    for candidate in (Path(run), runs_dir / run):
        if candidate.is_dir():
            return candidate
    raise RareEventError(
        f"run {run!r} not found (neither a folder nor a run in {runs_dir})",
        hint=_existing_runs(runs_dir),
    )


def _existing_runs(runs_dir: Path, shown: int = 10) -> str:
    """The runs that do exist in ``runs_dir`` (newest first), for the "not found" error."""
    names = [folder.name for folder in reversed(list_runs(runs_dir))]
    if not names:
        return f"{runs_dir} holds no run: train one with `rareevent train DATA.csv`"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"runs in {runs_dir}, newest first: {', '.join(names[:shown])}{more}"


def read_record(folder: Path) -> RunRecord:
    """Read and check ``run.json`` of a run folder, without loading its model.

    Parameters
    ----------
    folder : Path
        A run folder written by ``rareevent train`` or ``update``.

    Returns
    -------
    RunRecord
        The run's metadata; the detector is read apart (``load_run``).

    Raises
    ------
    RareEventError
        The folder holds no ``run.json``, or a field of it is missing or
        invalid (the message names the field).

    Examples
    --------
    >>> from pathlib import Path
    >>> from rareevent.runs import read_record
    >>> record = read_record(Path("runs/pump-ae"))
    >>> record.label_column, record.splits["test"]
    ('label', [24000, 30000])
    """
    path = folder / RUN_FILE
    if not path.is_file():
        raise RareEventError(f"{folder}: not a run folder ({RUN_FILE} missing)")
    return RunRecord.from_json(read_json(path), path)


def run_view(record: RunRecord, detector: Detector) -> RunView:
    """A run for showing and scoring: ``record`` with the detector's settings and learned values.

    The only place that spells the detector's values out for tables,
    ``train --json``, ``report`` and the scorers; nothing is written from it.
    """
    names = list(detector.feature_names_in_)
    params = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in detector.get_params().items()
        if key != "threshold"
    }
    return RunView(
        **{f.name: getattr(record, f.name) for f in dataclasses.fields(RunRecord)},
        params=params,
        arch=detector.arch,
        lookback=detector.lookback,
        lead=detector.lead,
        units=list(detector.units_),
        batch_size=detector.batch_size_,
        learning_rate=detector.learning_rate_,
        margin=detector.margin,
        score_kind=detector.score_kind,
        smooth=detector.smooth,
        threshold=float(detector.threshold_),
        threshold_strategy=detector.threshold_strategy_,
        features=names,
        context_features=[names[j] for j in detector.context_features_],
        target_features=[names[j] for j in detector.target_features_],
        constant_features=[names[j] for j in detector.constant_features_],
        trending_features=[names[j] for j in detector.trending_features_],
        epochs_run=detector.epochs_run_,
        best_epoch=detector.best_epoch_,
        history=detector.history_,
        train_seconds=round(detector.train_seconds_, 3),
    )


def read_run(folder: Path) -> RunView:
    """``run_view`` of a run folder, without loading its model (no Keras import)."""
    return run_view(read_record(folder), Detector.read_config(folder))


def load_run(folder: str | Path) -> tuple[RunView, RareEventDetector]:
    """Load a run folder: its metadata and the ready-to-score detector, as it was trained.

    Parameters
    ----------
    folder : str or Path
        A run folder written by ``rareevent train`` or ``update``.

    Returns
    -------
    record : RunView
        The fields of ``run.json`` with the detector's settings and learned
        values (``record.threshold``, ``record.features``, ``record.units``).
    detector : RareEventDetector
        The fitted detector; it scores in numpy, without TensorFlow
        (``load_scorer`` loads it without scikit-learn, for scoring alone).

    Raises
    ------
    RareEventError
        The folder is not a run, or ``run.json``, ``detector.json`` or the
        weights are damaged (the message names the file and the field).

    Examples
    --------
    >>> from rareevent import load_run
    >>> record, detector = load_run("runs/pump-ae")
    >>> record.arch, record.lookback, record.time_column
    ('pca', 1, 'timestamp')
    >>> record.threshold == detector.threshold_
    True
    """
    from rareevent.estimator import RareEventDetector

    return _loaded(Path(folder), RareEventDetector)


def load_scorer(folder: str | Path) -> tuple[RunView, Detector]:
    """``load_run`` for scoring alone: the detector as a :class:`Detector`, without scikit-learn."""
    return _loaded(Path(folder), Detector)


def _loaded(folder: Path, kind: type[D]) -> tuple[RunView, D]:
    record = read_record(folder)
    detector = kind.load(folder)
    return run_view(record, detector), detector


def scores_frame(parts: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The validation/test window scores saved in ``scores.csv`` for reports and plots."""
    frames = [
        pd.DataFrame(
            {"split": name, **{k: v for k, v in columns.items() if k != "position"}}
        )
        for name, columns in parts.items()
        if len(columns["row"])
    ]
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["split", "row", "error", "flagged"])
    )
