"""A detector's one saved artifact: ``detector.json`` and the weights file, written and read back.

``detector.json`` holds the parameters and every learned value but the
weights; ``FITTED`` says how each learned value is written, checked and read
back, so that a damaged or tampered file is refused field by field. The
model is rebuilt from the architecture registry and given the saved weights:
a folder cannot make it run code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np

import rareevent
from rareevent import scaling
from rareevent.detector_params import is_batch_size, is_int, is_number
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, MAX_UNITS, KerasModel
from rareevent.pca import PCAModel
from rareevent.protocol import ReconstructionModel
from rareevent.reconstruction import Reconstruction
from rareevent.storage import atomic_folder
from rareevent.threshold import parse_strategy

DETECTOR_FILE = "detector.json"
DETECTOR_FORMAT = 2
RENAMED_IN_FORMAT_2 = {
    "decision_scores_": "validation_scores_",
    "labels_": "validation_labels_",
}  # format 1 names, read still
# parameters newer than format 1 (0.3.0): a format 1 detector.json gets their defaults
ADDED_PARAMS = ("horizon", "mask_rate")
WEIGHTS_FILE = KerasModel.file  # Keras models: the weights alone (no model description)
PCA_FILE = PCAModel.file  # the pca baseline: three arrays, read without pickle
# as Python floats: a comparison with a float32 would cast 1e39 to it
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


class DetectorFile(Reconstruction):
    """``save`` and ``load`` of ``detector.json`` and the weights (a mixin of ``Detector``)."""

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``detector.json`` and the weights into the new folder ``folder``, atomically.

        ``detector.json`` holds the parameters and the learned values as
        JSON; the weights file (``model.weights.h5``, or ``model.npz`` for
        ``pca``) holds numbers only. The folder appears whole or not at all.

        Parameters
        ----------
        folder : str or Path
            The folder to create.
        overwrite : bool, default=False
            Replace ``folder`` when it exists.

        Returns
        -------
        Path
            ``folder``.

        Raises
        ------
        RareEventError
            ``folder`` exists and ``overwrite`` is False, or it cannot be
            written (no permission, a full disk).
        sklearn.exceptions.NotFittedError
            Before ``fit``.

        """
        self._check_fitted()
        if Path(folder).exists() and not overwrite:
            raise RareEventError(
                f"{folder}: already exists", hint="pass overwrite=True to replace it"
            )
        with atomic_folder(folder, overwrite=overwrite) as temp:
            self.write_files(temp)
        return Path(folder)

    def write_files(self, folder: Path) -> None:
        """Write ``detector.json`` and the weights file into ``folder``.

        ``folder`` is a temporary folder being filled (see ``save``).
        """
        self.model_.save(folder)
        config = {
            "format_version": DETECTOR_FORMAT,
            "rareevent_version": rareevent.__version__,
            "params": {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in self.get_params().items()
            },
            "fitted": {
                name: field.encode(getattr(self, name))
                for name, field in FITTED.items()
            },
        }
        (folder / DETECTOR_FILE).write_text(
            json.dumps(config, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: str | Path) -> Self:
        """The detector saved in ``folder``, ready to score.

        ``detector.json`` is checked field by field; the model is rebuilt
        from the architecture registry and given the saved weights, so no
        code is run from the folder. Scoring a loaded LSTM runs in numpy and
        imports neither TensorFlow nor Keras.

        Parameters
        ----------
        folder : str or Path
            A folder written by ``save`` (or a run folder of ``rareevent train``).

        Returns
        -------
        RareEventDetector
            The fitted detector.

        Raises
        ------
        RareEventError
            The folder holds no ``detector.json``, a field is missing or
            invalid, the format is newer than this rareevent reads, or the
            weights do not fit the model.
        """
        detector = cls.read_config(folder)
        detector.model_ = detector._load_model(Path(folder))
        return detector

    @classmethod
    def read_config(cls, folder: str | Path) -> Self:
        """The detector of ``folder`` without its model (``model_`` unset).

        It shows a run without importing Keras.
        """
        path = Path(folder) / DETECTOR_FILE
        if not path.is_file():
            raise RareEventError(
                f"{folder}: not a saved detector ({DETECTOR_FILE} missing)"
            )
        config = read_json(path)
        if not isinstance(config, dict) or not is_int(config.get("format_version")):
            raise RareEventError(
                f"{path}: must hold a JSON object with an integer 'format_version'"
            )
        if config["format_version"] > DETECTOR_FORMAT:
            raise RareEventError(
                f"{path}: format version {config['format_version']} is newer than this "
                f"rareevent understands ({DETECTOR_FORMAT})",
                hint="upgrade rareevent",
            )
        params, fitted = config.get("params"), config.get("fitted")
        # 0.3.0's: results renamed since, parameters and units_ added since
        old = config["format_version"] < 2
        if old and isinstance(fitted, dict):
            fitted = {
                RENAMED_IN_FORMAT_2.get(key, key): value
                for key, value in fitted.items()
            }
        # saved before these parameters existed: they had today's defaults
        if old and isinstance(params, dict):
            params = {
                **{
                    key: value
                    for key, value in cls().get_params().items()
                    if key in ADDED_PARAMS
                },
                **params,
            }
        expected = set(cls().get_params())
        if not isinstance(params, dict) or set(params) != expected:
            raise RareEventError(
                f"{path}: 'params' must hold exactly the parameters {', '.join(sorted(expected))}"
            )
        settings: dict[str, Any] = {
            key: tuple(value) if key == "units" and isinstance(value, list) else value
            for key, value in params.items()
        }
        detector = cls(**settings)
        try:
            detector.check_params()
        except RareEventError as exc:
            raise RareEventError(f"{path}: {exc.message}", hint=exc.hint) from None
        if not isinstance(fitted, dict):
            raise RareEventError(f"{path}: field 'fitted' is missing or not an object")
        # saved before units_ existed: the units given were used
        if old and "units_" not in fitted and isinstance(detector.units, tuple):
            fitted = {**fitted, "units_": list(detector.units)}
        for name, field in FITTED.items():
            if name not in fitted:
                raise RareEventError(
                    f"{path}: required field 'fitted.{name}' is missing"
                )
            if not field.valid(fitted[name], fitted):
                raise RareEventError(
                    f"{path}: field 'fitted.{name}' has an invalid value "
                    f"{json.dumps(fitted[name])[:60]}"
                )
            setattr(detector, name, field.decode(fitted[name]))
        return detector

    def _load_model(self, folder: Path) -> ReconstructionModel:
        """The model rebuilt from the parameters, with the saved weights.

        Numbers only are read from the folder.
        """
        return ARCHITECTURES[self.arch].model.load(folder, self._model_config())


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; an unreadable or invalid file is an error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RareEventError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RareEventError(f"{path}: not valid JSON ({exc})") from None
    # json's decoder recurses once per level: '[' * 100000 exhausts the stack
    except RecursionError:
        raise RareEventError(f"{path}: not valid JSON (nested too deeply)") from None


def _is_float32(value: Any, positive: bool = False) -> bool:
    """A number that stays finite (and above 0 when ``positive``) as the float32 it is used as.

    As float32, 1e39 would be inf and 1e-50 zero.
    """
    return (
        is_number(value)
        and abs(value) <= FLOAT32_MAX
        and (value >= FLOAT32_TINY or not positive)
    )


class _Field:
    """How one learned attribute is written to ``detector.json``, checked and read back."""

    def __init__(
        self,
        valid: Callable[[Any, dict[str, Any]], bool],
        encode: Callable[[Any], Any] = lambda v: v,
        decode: Callable[[Any], Any] = lambda v: v,
    ) -> None:
        self.valid, self.encode, self.decode = valid, encode, decode


def _n(fitted: dict[str, Any]) -> int:
    names = fitted.get("feature_names_in_")
    return len(names) if isinstance(names, list) else -1


def _indices(value: Any, fitted: dict[str, Any]) -> bool:
    return (
        isinstance(value, list)
        and all(is_int(j) and 0 <= j < _n(fitted) for j in value)
        and len(set(value)) == len(value)
    )


def _numbers(value: Any, length: int, positive: bool = False) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(is_number(x) and (x > 0 or not positive) for x in value)
    )


def _float32s_ok(value: Any, length: int, positive: bool = False) -> bool:
    """``_numbers`` for the values kept as float32 (``error_scale_``, ``validation_scores_``)."""
    return (
        isinstance(value, list)
        and len(value) == length
        and all(_is_float32(x, positive) for x in value)
    )


def _strategy_ok(value: Any) -> bool:
    try:
        return isinstance(value, str) and parse_strategy(value) is not None
    except RareEventError:
        return False


def _float32s(value: Any) -> list[float]:
    return np.asarray(value, np.float32).tolist()


# every learned attribute but model_ (the weights file): writing, checking, reading it back
FITTED: dict[str, _Field] = {
    "feature_names_in_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) >= 1
            and all(isinstance(x, str) and x for x in v)
            and len(set(v)) == len(v)
        ),
        encode=lambda names: [str(name) for name in names],
        decode=lambda v: np.asarray(v, dtype=object),  # as scikit-learn holds it
    ),
    "n_features_in_": _Field(lambda v, f: is_int(v) and v == _n(f)),
    "context_features_": _Field(_indices),
    "target_features_": _Field(
        lambda v, f: (
            _indices(v, f)
            and len(v) >= 1
            and not set(v) & set(f.get("context_features_") or [])
        )
    ),
    "constant_features_": _Field(_indices),
    "trending_features_": _Field(_indices),
    "scaler_": _Field(
        lambda v, f: (
            isinstance(v, dict)
            and set(v) == {"mean", "scale"}
            and _numbers(v["mean"], _n(f))
            and _numbers(v["scale"], _n(f), positive=True)
            and scaling.plausible_scale(v["mean"], v["scale"])
        ),
        encode=lambda scaler: {
            "mean": scaler.mean_.tolist(),
            "scale": scaler.scale_.tolist(),
        },
        decode=lambda v: scaling.Standardization(v["mean"], v["scale"]),
    ),
    "error_scale_": _Field(
        lambda v, f: _float32s_ok(
            v, len(f.get("target_features_") or []), positive=True
        ),
        encode=_float32s,
        decode=lambda v: np.asarray(v, np.float32),
    ),
    # window scores are errors, never below 0
    "threshold_": _Field(lambda v, f: is_number(v) and v >= 0, encode=float),
    "threshold_strategy_": _Field(lambda v, f: _strategy_ok(v)),
    "validation_scores_": _Field(
        lambda v, f: isinstance(v, list) and _float32s_ok(v, len(v)),
        encode=_float32s,
        decode=lambda v: np.asarray(v, np.float32),
    ),
    "validation_labels_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) == len(f.get("validation_scores_") or [])
            and all(x in (0, 1) and is_int(x) for x in v)
        ),
        encode=lambda v: v.tolist(),
        decode=lambda v: np.asarray(v, np.int8),
    ),
    "n_train_windows_": _Field(lambda v, f: is_int(v) and v >= 1),
    "units_": _Field(
        lambda v, f: (
            isinstance(v, list)
            and len(v) == 2
            and all(is_int(u) and 1 <= u <= MAX_UNITS for u in v)
        ),
        encode=list,
        decode=tuple,
    ),
    "batch_size_": _Field(lambda v, f: v is None or is_batch_size(v)),
    "learning_rate_": _Field(lambda v, f: v is None or (is_number(v) and 0 < v < 1)),
    "epochs_run_": _Field(lambda v, f: is_int(v) and v >= 0),
    "best_epoch_": _Field(lambda v, f: is_int(v) and v >= 0),
    "history_": _Field(
        lambda v, f: (
            isinstance(v, dict)
            and all(
                isinstance(k, str) and isinstance(x, list) and _numbers(x, len(x))
                for k, x in v.items()
            )
        )
    ),
    "train_seconds_": _Field(lambda v, f: is_number(v) and v >= 0, encode=float),
}
