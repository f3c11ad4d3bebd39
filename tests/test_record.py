"""The typed run record: one reader (checked), one writer (run.json's keys and order), read -> write gives the same bytes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.errors import RareEventError
from rareevent.gaps import GapSummary
from rareevent.record import Baseline, RunRecord, SeriesEntry
from rareevent.runs import RUN_FILE, SCORES_FILE, load_run, read_record, save_run
from tests.test_errors import assert_one_error_line

OLD_RUN = (
    Path(__file__).parent / "data" / "stream" / "run"
)  # a format-3 run as rareevent 0.3.0 wrote it (no train_range, no assumed)


def rewritten(folder: Path, tmp_path: Path) -> bytes:
    """``run.json`` of ``folder`` read, then saved again by ``save_run`` with the run's own detector and scores."""
    record = read_record(folder)
    _, detector = load_run(folder)
    saved = save_run(
        tmp_path / "again",
        record.name,
        detector,
        record,
        pd.read_csv(folder / SCORES_FILE),
    )
    return (saved / RUN_FILE).read_bytes()


def test_a_run_from_0_3_0_reads_into_typed_fields(tmp_path: Path) -> None:
    record = read_record(OLD_RUN)
    assert (
        record.format_version,
        record.name,
        record.time_column,
        record.label_column,
    ) == (3, "tiny-smooth", "timestamp", "label")
    assert record.splits == {"train": [0, 360], "valid": [360, 480], "test": [480, 600]}
    assert record.windows == {"train_normal": 350, "valid": 118, "test": 118}
    assert record.metrics["test"] is not None and record.metrics["test"]["events"] == 1
    assert (
        record.train_range is None
        and record.assumed is None
        and record.series is None
        and record.parent is None
    )  # 0.3.0 wrote none of them
    assert record.extra == {}


@pytest.mark.parametrize("folder", ["old", "fresh"])
def test_read_then_write_gives_the_same_bytes(
    folder: str, tmp_path: Path, trained_runs: dict[str, Path]
) -> None:
    source = OLD_RUN if folder == "old" else trained_runs["ae"]
    assert rewritten(source, tmp_path) == (source / RUN_FILE).read_bytes()


def test_a_fresh_run_holds_typed_parts(trained_runs: dict[str, Path]) -> None:
    record = read_record(trained_runs["ae"])
    saved = json.loads((trained_runs["ae"] / RUN_FILE).read_text(encoding="utf-8"))
    assert (
        isinstance(record.baseline, Baseline)
        and record.baseline.arch == "pca"
        and record.baseline.metrics == saved["baseline"]["metrics"]
    )
    assert isinstance(record.gaps, GapSummary) and (
        record.gaps.max_gap,
        record.gaps.unit,
        record.gaps.segments,
    ) == ("5x", "s", 1)
    assert record.train_range is not None and len(record.train_range["low"]) == 3
    assert list(record.to_json()) == list(saved)  # the keys, in run.json's order


def test_unknown_fields_and_keys_of_a_newer_version_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(OLD_RUN, folder)
    saved = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    saved["added_later"] = {"x": 1}
    (folder / RUN_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    record = read_record(folder)
    assert record.extra == {"added_later": {"x": 1}}
    assert rewritten(folder, tmp_path) == (folder / RUN_FILE).read_bytes()


def test_an_old_gap_summary_without_counts_loads() -> None:
    saved = json.loads((OLD_RUN / RUN_FILE).read_text(encoding="utf-8"))
    saved["gaps"] = {"max_gap": "5x", "max_gap_value": 300.0, "unit": "s"}
    record = RunRecord.from_json(saved, OLD_RUN / RUN_FILE)
    assert record.gaps == GapSummary(max_gap="5x", max_gap_value=300.0, unit="s")


def test_a_fleet_of_files_writes_its_null_group_column() -> None:
    """``train_fleet`` writes ``group_column: null`` for a fleet of files; a plain run has no such key."""
    metrics: dict[str, Any] = {"valid": None, "test": None}
    entry = SeriesEntry(name="a.csv", file="/data/a.csv", rows=10, metrics=metrics)
    fleet = RunRecord(name="f", series=(entry,)).to_json()
    assert fleet["group_column"] is None and fleet["series"] == [
        {
            "name": "a.csv",
            "file": "/data/a.csv",
            "group": None,
            "rows": 10,
            "metrics": metrics,
        }
    ]
    assert "group_column" not in RunRecord(name="plain").to_json()
    assert RunRecord.from_json(fleet, Path("run.json")) == RunRecord(
        name="f", series=(entry,)
    )


def test_the_record_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunRecord(name="r").name = "s"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("splits", {"train": [0, "360"]}),
        ("windows", {"valid": -1}),
        ("filled_cells", 1.5),
        ("valid_frac", "0.2"),
        ("input_rows", True),
        ("fill", 3),
    ],
)
def test_a_field_read_only_by_commands_is_checked_too(field: str, value: Any) -> None:
    saved = json.loads((OLD_RUN / RUN_FILE).read_text(encoding="utf-8"))
    saved[field] = value
    with pytest.raises(
        RareEventError, match=f"run.json: field '{field}' has an invalid value"
    ):
        RunRecord.from_json(saved, OLD_RUN / RUN_FILE)


def test_an_invalid_field_is_one_error_line_naming_the_file_and_field(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "runs" / "damaged"
    shutil.copytree(OLD_RUN, folder)
    saved = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    saved["splits"] = "all of it"
    (folder / RUN_FILE).write_text(json.dumps(saved), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(folder), "--json"])
    assert result.exit_code == 2
    assert_one_error_line(
        result.stdout,
        result.stderr,
        (f"{folder / RUN_FILE}: field 'splits' has an invalid value",),
    )
