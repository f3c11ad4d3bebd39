"""run.json and detector.json schema checks, and loading run folders as untrusted input."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rareevent.detector import DETECTOR_FILE, PCA_FILE, WEIGHTS_FILE, RareEventDetector
from rareevent.errors import RareEventError
from rareevent.runs import (
    FORMAT_VERSION,
    RUN_FILE,
    load_run,
    read_record,
    read_run,
    validate_record,
)

PATH = Path("runs/x/run.json")


@pytest.fixture(scope="module")
def good_record(trained_runs: dict[str, Path]) -> dict[str, Any]:
    """The run.json the library itself wrote for the tiny ``ae`` run."""
    return json.loads((trained_runs["ae"] / RUN_FILE).read_text(encoding="utf-8"))


@pytest.fixture
def record(good_record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(good_record)


@pytest.fixture
def run_copy(tmp_path: Path, trained_runs: dict[str, Path]) -> Path:
    target = tmp_path / "copied-run"
    shutil.copytree(trained_runs["ae"], target)
    return target


def invalid(record: Any) -> str:
    with pytest.raises(RareEventError) as info:
        validate_record(record, PATH)
    message = str(info.value)
    assert message.startswith(str(PATH))
    return message


def edit_detector(folder: Path, part: str, field: str, value: Any) -> None:
    """Set ``part`` (params or fitted) ``field`` of ``folder``'s detector.json; ``...`` deletes it."""
    path = folder / DETECTOR_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    if value is ...:
        del config[part][field]
    else:
        config[part][field] = value
    path.write_text(json.dumps(config), encoding="utf-8")


def refused(folder: Path) -> str:
    with pytest.raises(RareEventError) as info:
        load_run(folder)
    return str(info.value)


# ---------------------------------------------------------------- run.json: run metadata only


def test_written_record_is_valid_and_holds_no_detector_setting(
    record: dict[str, Any],
) -> None:
    validate_record(record, PATH)
    assert record["format_version"] == FORMAT_VERSION == 3
    assert record["time_column"] == "timestamp"
    assert record["label_column"] == "label"
    assert not {
        "arch",
        "lookback",
        "units",
        "threshold",
        "features",
        "scaler_mean",
        "margin",
        "history",
    } & set(record)


@pytest.mark.parametrize("value", [[], "run", None, 3, [{"format_version": 1}]])
def test_not_an_object(value: Any) -> None:
    assert "must hold a JSON object" in invalid(value)


@pytest.mark.parametrize("field", ["name", "time_column", "label_column", "metrics"])
def test_missing_field(record: dict[str, Any], field: str) -> None:
    del record[field]
    assert f"required field '{field}' is missing" in invalid(record)


@pytest.mark.parametrize("version", [None, "1", 1.0, True])
def test_format_version_missing_or_not_an_integer(
    record: dict[str, Any], version: Any
) -> None:
    record["format_version"] = version
    assert "field 'format_version' is missing or not an integer" in invalid(record)
    del record["format_version"]
    assert "field 'format_version' is missing or not an integer" in invalid(record)


def test_format_version_newer(record: dict[str, Any]) -> None:
    record["format_version"] = FORMAT_VERSION + 1
    message = invalid(record)
    assert (
        f"format version {FORMAT_VERSION + 1} is newer than this rareevent understands ({FORMAT_VERSION})"
        in message
    )
    assert "upgrade rareevent" in message


@pytest.mark.parametrize("version", [1, 2])
def test_runs_of_0_1_and_0_2_are_refused_with_one_clear_line(
    run_copy: Path, version: int
) -> None:
    """The 0.1.0/0.2.0 layout (the whole Keras model in model.keras) is refused before any file but run.json is read."""
    (run_copy / "model.keras").write_bytes(b"never looked at")
    record = json.loads((run_copy / RUN_FILE).read_text())
    record["format_version"] = version
    (run_copy / RUN_FILE).write_text(json.dumps(record))
    message = refused(run_copy)
    assert message == (
        f"{run_copy / RUN_FILE}: format version {version} (rareevent 0.1/0.2) saved the whole Keras model, which this rareevent no longer loads "
        "(hint: train the run again; `rareevent report RUN --recipe` with rareevent 0.2 prints its options)"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", 7),
        ("time_column", 3),
        ("label_column", ["label"]),
        ("metrics", []),
        ("dropped_columns", "x"),
    ],
)
def test_wrong_type_or_value(record: dict[str, Any], field: str, value: Any) -> None:
    record[field] = value
    assert f"field {field!r} has an invalid value" in invalid(record)


def test_optional_columns_may_be_null(record: dict[str, Any]) -> None:
    record["time_column"] = None
    record["label_column"] = None
    validate_record(record, PATH)


def test_reading_is_optional(record: dict[str, Any]) -> None:
    assert record["reading"]["decimal"] == "."
    del record["reading"]
    validate_record(record, PATH)
    record["reading"] = None
    validate_record(record, PATH)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("decimal", ";"),
        ("decimal_settled", "yes"),
        ("time_format", 3),
        ("time_unit", "us"),
        ("date_order", "year-first"),
        ("date_order_assumed", None),
        ("extra", 1),
    ],
)
def test_reading_values(record: dict[str, Any], key: str, value: Any) -> None:
    record["reading"][key] = value
    assert "field 'reading' has an invalid value" in invalid(record)
    record["reading"] = "day-first"
    assert "field 'reading' has an invalid value" in invalid(record)


@pytest.mark.parametrize(
    ("field", "value"),
    [("parameters", "abc"), ("parameters", -1), ("created", 5), ("input_sha256", 3)],
)
def test_optional_fields_are_checked_when_present(
    record: dict[str, Any], field: str, value: Any
) -> None:
    record[field] = value
    assert f"field {field!r} has an invalid value" in invalid(record)
    record[field] = None
    validate_record(record, PATH)


@pytest.mark.parametrize(
    "part",
    [{"f1": math.nan}, {"f1": "0.5"}, {"lead_rows": [1, math.inf]}, "valid", [1]],
)
def test_metrics_values_must_be_finite_numbers_or_null(
    record: dict[str, Any], part: Any
) -> None:
    record["metrics"] = {"valid": part, "test": None}
    assert "field 'metrics' has an invalid value" in invalid(record)


# ---------------------------------------------------------------- read_record


@pytest.mark.parametrize(
    "text", [b"{not json", b"", b'{"format_version": 1,}', b"\xff\xfe{}"]
)
def test_read_record_invalid_json(tmp_path: Path, text: bytes) -> None:
    (tmp_path / RUN_FILE).write_bytes(text)
    with pytest.raises(RareEventError, match="not valid JSON"):
        read_record(tmp_path)


def test_read_record_without_run_json(tmp_path: Path) -> None:
    with pytest.raises(RareEventError, match=r"not a run folder \(run.json missing\)"):
        read_record(tmp_path)


def test_read_record_validates(tmp_path: Path, record: dict[str, Any]) -> None:
    record["format_version"] = 99
    (tmp_path / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(RareEventError, match="newer"):
        read_record(tmp_path)


# ---------------------------------------------------------------- detector.json: checked field by field


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lookback", "3", "lookback must be an integer, got '3'"),
        ("lookback", 0, "lookback must be at least 1"),
        ("lookback", 100_001, "lookback must be at most 100000"),
        ("lead", -1, "lead must be between 0 and 100000"),
        ("lead", None, "lead must be between"),
        ("smooth", 0, "smooth must be between 1 and 100000"),
        ("smooth", 2.0, "smooth must be between"),
        ("units", [4], "units must be two positive integers"),
        ("units", [4, 2.0], "units must be two positive integers"),
        ("units", [4, True], "units must be two positive integers"),
        ("units", "4,2", "units must be two positive integers"),
        ("arch", "cnn", "arch must be one of ae, plain, forecast, pca"),
        ("activation", "sigmoid", "activation must be one of tanh, relu"),
        ("score_kind", "median", "score_kind must be one of mean, last, max, tail"),
        ("margin", 1e308, "margin must be above 0 and at most 1000"),
        ("margin", "1", "margin must be above 0"),
        ("seed", -1, "seed must be between 0"),
        ("threshold", 3, "threshold must be a strategy"),
        ("threshold", "best", "threshold 'best': unknown strategy"),
        ("normalize", "yes", "normalize must be true or false"),
        (
            "context",
            {"a": 1},
            "context must be one of auto, none or a list of column indices",
        ),
    ],
)
def test_bad_parameter_is_refused_before_the_model_is_read(
    run_copy: Path, field: str, value: Any, message: str
) -> None:
    (run_copy / WEIGHTS_FILE).write_bytes(b"never looked at")
    edit_detector(run_copy, "params", field, value)
    text = refused(run_copy)
    assert text.startswith(f"{run_copy / DETECTOR_FILE}: {message}"), text


def test_params_must_be_exactly_the_estimators(run_copy: Path) -> None:
    edit_detector(run_copy, "params", "__class__", "os.system")
    assert "'params' must hold exactly the parameters" in refused(run_copy)
    shutil.copy(run_copy / DETECTOR_FILE, run_copy / "x")
    edit_detector(run_copy, "params", "__class__", ...)
    edit_detector(run_copy, "params", "margin", ...)
    assert "'params' must hold exactly the parameters" in refused(run_copy)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("feature_names_in_", ["s1", "s1", "s3"]),
        ("feature_names_in_", ["s1", "", "s3"]),
        ("feature_names_in_", "s1"),
        ("n_features_in_", 4),
        ("target_features_", []),
        ("target_features_", [0, 3]),
        ("context_features_", [5]),
        ("scaler_", {"mean": [0, 0], "scale": [1, 1]}),
        ("scaler_", {"mean": [0, 0, 0], "scale": [1, 0, 1]}),
        ("scaler_", {"mean": [0, math.inf, 0], "scale": [1, 1, 1]}),
        ("error_scale_", [1.0, 1.0]),
        ("error_scale_", [1.0, -1.0, 1.0]),
        ("threshold_", "0.5"),
        ("threshold_", None),
        ("threshold_", True),
        ("threshold_strategy_", "best"),
        ("validation_labels_", [2]),
        ("history_", {"loss": ["x"]}),
        ("train_seconds_", -1),
    ],
)
def test_bad_learned_value_is_refused(run_copy: Path, field: str, value: Any) -> None:
    edit_detector(run_copy, "fitted", field, value)
    assert (
        f"{run_copy / DETECTOR_FILE}: field 'fitted.{field}' has an invalid value"
        in refused(run_copy)
    )


def test_missing_learned_value(run_copy: Path) -> None:
    edit_detector(run_copy, "fitted", "threshold_", ...)
    assert "required field 'fitted.threshold_' is missing" in refused(run_copy)


def test_detector_format_newer(run_copy: Path) -> None:
    path = run_copy / DETECTOR_FILE
    config = json.loads(path.read_text())
    config["format_version"] = 99
    path.write_text(json.dumps(config))
    assert "format version 99 is newer than this rareevent understands" in refused(
        run_copy
    )


def test_missing_detector_file(run_copy: Path) -> None:
    (run_copy / DETECTOR_FILE).unlink()
    assert f"{run_copy}: not a saved detector (detector.json missing)" in refused(
        run_copy
    )


# ---------------------------------------------------------------- load_run


def test_load_run_on_a_copy_gives_the_trained_detector(
    run_copy: Path, trained_runs: dict[str, Path]
) -> None:
    view, detector = load_run(run_copy)
    original = load_run(trained_runs["ae"])[1]
    assert detector.get_params() == original.get_params()
    assert detector.threshold_ == original.threshold_
    assert (
        detector.lookback,
        detector.arch,
        detector.units,
        detector.margin,
        detector.epochs,
        detector.patience,
    ) == (3, "ae", (4, 2), 1.0, 3, 5)
    assert detector.batch_size == 64
    assert detector.feature_names_in_.tolist() == ["s1", "s2", "s3"]
    assert tuple(detector.model_.net.input_shape) == (None, 3, 3)
    assert (
        view.name == "tiny-ae" and view.threshold == detector.threshold_
    )  # the run view shows the detector's values
    assert read_run(run_copy) == view


def test_load_plain_run(trained_runs: dict[str, Path]) -> None:
    view, detector = load_run(trained_runs["plain"])
    assert detector.arch == view.arch == "plain"
    assert not any(
        type(layer).__name__ == "RepeatVector" for layer in detector.model_.net.layers
    )


def test_corrupt_weights_file(run_copy: Path) -> None:
    (run_copy / WEIGHTS_FILE).write_bytes(os.urandom(2048))
    message = refused(run_copy)
    assert message.startswith(
        f"{run_copy / WEIGHTS_FILE}: not the weights of this 'ae' model"
    )
    assert "retrain the run" in message


def test_missing_weights_file(run_copy: Path) -> None:
    (run_copy / WEIGHTS_FILE).unlink()
    assert "model weights file missing" in refused(run_copy)


@pytest.mark.slow
def test_weights_of_another_shape_are_refused(
    run_copy: Path, tmp_path: Path, sensor_csv: Path
) -> None:
    """Weights of a model with other units cannot be put into the model detector.json describes."""
    import pandas as pd

    frame = pd.read_csv(sensor_csv)[["s1", "s2", "s3"]]
    other = RareEventDetector(lookback=3, units=(6, 2), epochs=1, batch_size=64).fit(
        frame
    )
    other.save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / WEIGHTS_FILE, run_copy / WEIGHTS_FILE)
    assert "not the weights of this 'ae' model" in refused(run_copy)


def test_a_different_lookback_loads_the_same_weights(
    run_copy: Path, trained_runs: dict[str, Path]
) -> None:
    """LSTM weights do not depend on the window length: an edited lookback is a valid detector, not a crash."""
    edit_detector(run_copy, "params", "lookback", 5)
    detector = load_run(run_copy)[1]
    assert tuple(detector.model_.net.input_shape) == (None, 5, 3)
    for ours, theirs in zip(
        detector.model_.net.get_weights(),
        load_run(trained_runs["ae"])[1].model_.net.get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_pca_model_file_must_match_the_detector(
    tmp_path: Path, sensor_csv: Path
) -> None:
    import pandas as pd

    frame = pd.read_csv(sensor_csv)[["s1", "s2", "s3"]]
    folder = RareEventDetector(arch="pca", lookback=3).fit(frame).save(tmp_path / "pca")
    assert RareEventDetector.load(folder).model_.components.shape[1] == 3
    edit_detector(folder, "fitted", "target_features_", [0, 1])
    edit_detector(folder, "fitted", "error_scale_", [1.0, 1.0])
    with pytest.raises(RareEventError, match="PCA model reconstructs other columns"):
        RareEventDetector.load(folder)
    (folder / PCA_FILE).write_bytes(b"junk")
    with pytest.raises(RareEventError, match="not a readable PCA model"):
        RareEventDetector.load(folder)


@pytest.mark.parametrize("field", ["lookback", "lead", "smooth"])
def test_option_bounds_are_the_loading_bounds(run_copy: Path, field: str) -> None:
    """Issue 9, case 3: a value train accepts is one a saved detector loads with, and one beyond is refused by both."""
    from rareevent.detector import MAX_SPAN

    edit_detector(run_copy, "params", field, MAX_SPAN)
    assert getattr(RareEventDetector.read_config(run_copy), field) == MAX_SPAN
    RareEventDetector(**{field: MAX_SPAN}).check_params()
    edit_detector(run_copy, "params", field, MAX_SPAN + 1)
    with pytest.raises(RareEventError, match=f"{DETECTOR_FILE}: {field} must be"):
        RareEventDetector.read_config(run_copy)
    with pytest.raises(RareEventError, match=f"^{field} must be") as info:
        RareEventDetector(**{field: MAX_SPAN + 1}).check_params()
    assert info.value.param == field
