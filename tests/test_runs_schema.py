"""run.json schema checks and loading run folders as untrusted input."""

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

from rareevent.errors import RareEventError
from rareevent.runs import FORMAT_VERSION, MODEL_FILE, RUN_FILE, load_run, read_record, validate_record

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


# ---------------------------------------------------------------- validate_record


def test_written_record_is_valid(record: dict[str, Any]) -> None:
    validate_record(record, PATH)
    assert record["format_version"] == FORMAT_VERSION
    assert record["arch"] == "ae"
    assert record["features"] == ["s1", "s2", "s3"]


@pytest.mark.parametrize("value", [[], "run", None, 3, [{"format_version": 1}]])
def test_not_an_object(value: Any) -> None:
    assert "must hold a JSON object" in invalid(value)


@pytest.mark.parametrize(
    "field",
    ["name", "arch", "lookback", "lead", "units", "activation", "score_kind", "threshold", "threshold_strategy",
     "features", "time_column", "label_column", "scaler_mean", "scaler_scale", "metrics"],
)
def test_missing_field(record: dict[str, Any], field: str) -> None:
    del record[field]
    assert f"required field '{field}' is missing" in invalid(record)


@pytest.mark.parametrize("version", [None, "1", 1.0, True])
def test_format_version_missing_or_not_an_integer(record: dict[str, Any], version: Any) -> None:
    record["format_version"] = version
    assert "field 'format_version' is missing or not an integer" in invalid(record)
    del record["format_version"]
    assert "field 'format_version' is missing or not an integer" in invalid(record)


def test_format_version_newer(record: dict[str, Any]) -> None:
    record["format_version"] = FORMAT_VERSION + 1
    message = invalid(record)
    assert f"format version {FORMAT_VERSION + 1} is newer than this rareevent understands ({FORMAT_VERSION})" in message
    assert "upgrade rareevent" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", 7),
        ("arch", "cnn"),
        ("lookback", "3"),
        ("lookback", 3.0),
        ("lookback", True),
        ("lookback", 0),
        ("lookback", 100_001),
        ("lead", -1),
        ("lead", None),
        ("smooth", 0),
        ("activation", "sigmoid"),
        ("score_kind", "max"),
        ("threshold", "0.5"),
        ("threshold", True),
        ("threshold", None),
        ("threshold", math.inf),
        ("threshold", math.nan),
        ("threshold_strategy", 1),
        ("time_column", 3),
        ("label_column", ["label"]),
        ("metrics", []),
        ("features", "s1"),
        ("features", []),
        ("features", ["s1", "s1", "s3"]),
        ("features", ["s1", "", "s3"]),
        ("features", ["s1", 2, "s3"]),
    ],
)
def test_wrong_type_or_value(record: dict[str, Any], field: str, value: Any) -> None:
    record[field] = value
    message = invalid(record)
    assert f"field {field!r} has an invalid value" in message


@pytest.mark.parametrize("units", [[4], [4, 2, 1], [], [4, 0], [4, 2.0], [4, True], "4,2", None])
def test_units(record: dict[str, Any], units: Any) -> None:
    record["units"] = units
    assert "field 'units' has an invalid value" in invalid(record)


@pytest.mark.parametrize("field", ["scaler_mean", "scaler_scale"])
def test_scaler_length_must_match_features(record: dict[str, Any], field: str) -> None:
    assert len(record["features"]) == 3
    record[field] = record[field][:2]
    assert f"field {field!r} has an invalid value" in invalid(record)
    record[field] = [1.0, 1.0, 1.0, 1.0]
    assert f"field {field!r} has an invalid value" in invalid(record)


@pytest.mark.parametrize("bad", [0.0, -1.0, "1", None, math.nan])
def test_scaler_scale_values(record: dict[str, Any], bad: Any) -> None:
    record["scaler_scale"] = [1.0, bad, 1.0]
    assert "field 'scaler_scale' has an invalid value" in invalid(record)


def test_scaler_mean_may_be_negative_or_zero_but_finite(record: dict[str, Any]) -> None:
    record["scaler_mean"] = [-1.0, 0, 2]
    validate_record(record, PATH)
    record["scaler_mean"] = [-1.0, math.inf, 2]
    assert "field 'scaler_mean' has an invalid value" in invalid(record)


def test_optional_columns_may_be_null(record: dict[str, Any]) -> None:
    record["time_column"] = None
    record["label_column"] = None
    validate_record(record, PATH)


def test_reading_is_optional_for_runs_saved_before_it(record: dict[str, Any]) -> None:
    assert record["reading"]["decimal"] == "."
    del record["reading"]
    validate_record(record, PATH)
    record["reading"] = None
    validate_record(record, PATH)


@pytest.mark.parametrize(
    ("key", "value"),
    [("decimal", ";"), ("decimal_settled", "yes"), ("time_format", 3), ("time_unit", "us"), ("date_order", "year-first"), ("date_order_assumed", None), ("extra", 1)],
)
def test_reading_values(record: dict[str, Any], key: str, value: Any) -> None:
    record["reading"][key] = value
    assert "field 'reading' has an invalid value" in invalid(record)
    record["reading"] = "day-first"
    assert "field 'reading' has an invalid value" in invalid(record)


# ---------------------------------------------------------------- read_record


@pytest.mark.parametrize("text", [b"{not json", b"", b'{"format_version": 1,}', b"\xff\xfe{}"])
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


# ---------------------------------------------------------------- load_run


def test_load_run_on_a_copy(run_copy: Path, trained_runs: dict[str, Path]) -> None:
    record, detector = load_run(run_copy)
    saved = json.loads((trained_runs["ae"] / RUN_FILE).read_text())
    assert record == saved
    assert detector.threshold_ == saved["threshold"]
    assert detector.lookback == 3
    assert detector.arch == "ae"
    np.testing.assert_array_equal(detector.scaler_.mean_, saved["scaler_mean"])
    np.testing.assert_array_equal(detector.scaler_.scale_, saved["scaler_scale"])
    assert tuple(detector.model_.input_shape) == (None, 3, 3)
    # the original run loads to the very same threshold
    assert load_run(trained_runs["ae"])[1].threshold_ == detector.threshold_


def test_run_without_reading_scores_as_before(run_copy: Path, trained_runs: dict[str, Path], sensor_csv: Path) -> None:
    from rareevent.scoring import score_csv

    record = json.loads((run_copy / RUN_FILE).read_text())
    del record["reading"]
    (run_copy / RUN_FILE).write_text(json.dumps(record))
    old = score_csv(sensor_csv, *load_run(run_copy))
    new = score_csv(sensor_csv, *load_run(trained_runs["ae"]))
    np.testing.assert_array_equal(old.error, new.error)
    np.testing.assert_array_equal(old.time, new.time)


def test_load_plain_run(trained_runs: dict[str, Path]) -> None:
    record, detector = load_run(trained_runs["plain"])
    assert record["arch"] == "plain"
    assert detector.threshold_ == record["threshold"]


def test_corrupt_model_file(run_copy: Path) -> None:
    (run_copy / MODEL_FILE).write_bytes(os.urandom(2048))
    with pytest.raises(RareEventError, match="not a readable Keras model") as info:
        load_run(run_copy)
    assert "model.keras" in str(info.value)


def test_missing_model_file(run_copy: Path) -> None:
    (run_copy / MODEL_FILE).unlink()
    with pytest.raises(RareEventError, match="model file missing"):
        load_run(run_copy)


def test_model_shape_must_match_record(run_copy: Path) -> None:
    record = json.loads((run_copy / RUN_FILE).read_text())
    record["lookback"] = 5
    (run_copy / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(RareEventError, match=r"does not match run.json \(lookback 5, 3 features\)"):
        load_run(run_copy)


def test_invalid_record_is_refused_before_the_model_is_read(run_copy: Path) -> None:
    (run_copy / MODEL_FILE).write_bytes(b"never looked at")
    record = json.loads((run_copy / RUN_FILE).read_text())
    record["units"] = [4]
    (run_copy / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(RareEventError, match="field 'units' has an invalid value"):
        load_run(run_copy)


@pytest.mark.parametrize("field", ["lookback", "lead", "smooth"])
def test_option_bounds_are_the_loading_bounds(record: dict[str, Any], field: str) -> None:
    """Issue 9, case 3: a value train accepts is one run.json loads with, and one beyond is refused by both."""
    from rareevent.detector import MAX_SPAN, RareEventDetector

    for value, ok in ((MAX_SPAN, True), (MAX_SPAN + 1, False)):
        record[field] = value
        detector = RareEventDetector(**{field: value})
        if ok:
            validate_record(record, PATH)
            detector.check_params()
        else:
            assert f"field {field!r} has an invalid value" in invalid(record)
            with pytest.raises(RareEventError, match=f"--{field}"):
                detector.check_params()


@pytest.mark.parametrize(
    ("field", "value"),
    [("parameters", "abc"), ("parameters", -1), ("created", 5), ("margin", 1e308), ("seed", -1), ("train_seconds", math.nan), ("input_sha256", 3)],
)
def test_optional_fields_are_checked_when_present(record: dict[str, Any], field: str, value: Any) -> None:
    record[field] = value
    assert f"field {field!r} has an invalid value" in invalid(record)
    record[field] = None
    validate_record(record, PATH)


@pytest.mark.parametrize("part", [{"f1": math.nan}, {"f1": "0.5"}, {"lead_rows": [1, math.inf]}, "valid", [1]])
def test_metrics_values_must_be_finite_numbers_or_null(record: dict[str, Any], part: Any) -> None:
    record["metrics"] = {"valid": part, "test": None}
    assert "field 'metrics' has an invalid value" in invalid(record)
