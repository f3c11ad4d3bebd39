"""Issue 33.1: a 0/1 column that marks events never becomes a model input silently.

The rule (:mod:`rareevent.roles`) is measured here on every 0/1 column of
the shared benchmark data (MSL's 54 command flags, SKAB's changepoints, the
labels) and of sample_data: it must never take a flag for a label.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rareevent.cli.main import app
from typer.testing import CliRunner

from rareevent.roles import MAX_SHARE, has_label_word, looks_like_events, run_shape
from tests.test_first_hour import german_frame

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PCA = ["--arch", "pca", "--lookback", "3"]


def _flag_columns(path: Path) -> dict[str, np.ndarray]:
    frame = pd.read_csv(path, sep=";" if "skab" in path.parts else ",")
    found = {}
    for name in frame.columns:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy()
        if np.isin(values, (0.0, 1.0)).all() and len(np.unique(values)) == 2:
            found[name] = values
    return found


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not checked out")
def test_the_rule_never_misfires_on_msl_skab_and_the_sample_data() -> None:
    files = [
        *sorted((SHARED / "msl").glob("*.csv")),
        *sorted((SHARED / "skab").rglob("*.csv")),
        ROOT / "sample_data" / "pump_sensors.csv",
    ]
    flags, labels = [], []
    for path in files:
        for name, values in _flag_columns(path).items():
            (labels if name in ("anomaly", "label") else flags).append(
                (path.name, name, values)
            )
    # 427 MSL command flags and 34 SKAB changepoints; 16 MSL, 34 SKAB and 1 sample label
    assert (len(flags), len(labels)) == (461, 51)
    misfires = [(f, n) for f, n, v in flags if looks_like_events(v)]
    assert misfires == []
    assert max(run_shape(v)[2] for _, _, v in flags) == 3.0
    # labels: those whose ones are rare are caught; the rest (SKAB's ~35%, MSL M-1's
    # 50%) are not rare, and all of them are found by their names
    caught = [looks_like_events(v) for _, _, v in labels]
    assert sum(caught) == 13
    assert all(
        ok or run_shape(v)[0] > MAX_SHARE
        for ok, (_, _, v) in zip(caught, labels, strict=True)
    )
    assert min(run_shape(v)[2] for _, _, v in labels) == 9.7
    assert not any(has_label_word(n) for _, n, _ in flags)


def test_label_words_ignore_case_and_accents() -> None:
    for name in (
        "Störung",
        "STÖRUNG",
        "Pumpenstörung",
        "Motorausfall",
        "Fehler",
        "pump_failure",
        "Fault flag",
        "ALARM",
        "event",
        "web break",
        "défaut",
        "DEFAUT",
        "Panne",
        "guasto",
        "Allarme",
        "fallo",
        "avería",
        "AVERIA",
    ):
        assert has_label_word(name), name
    for name in ("cmd14", "changepoint", "prevent", "Druck [bar]", "Betrieb", "valve"):
        assert not has_label_word(name), name


def test_run_shape_counts_runs_of_ones() -> None:
    values = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0], dtype=float)
    assert run_shape(values) == (0.5, 2, 2.5)


def _export(tmp_path: Path, column: str) -> Path:
    path = tmp_path / "Anlage.csv"
    frame = german_frame().rename(columns={"Störung": column})
    text = frame.to_csv(sep=";", decimal=",", index=False, float_format="%.4f")
    path.write_bytes(text.encode("cp1252"))
    return path


def _train(path: Path, runs: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "train",
            str(path),
            "--encoding",
            "cp1252",
            "--tz",
            "Europe/Berlin",
            *PCA,
            "--runs-dir",
            str(runs),
            "--name",
            "r",
            *extra,
        ],
        env={"COLUMNS": "400"},
    )
    return result.exit_code, " ".join(result.output.split())


def test_an_unnamed_event_column_is_refused_with_both_options(tmp_path: Path) -> None:
    path = _export(tmp_path, "Zustand")
    code, output = _train(path, tmp_path / "runs")
    assert code == 2
    assert output.startswith(
        f"error: {path}: column 'Zustand' holds 0/1 flags whose ones are rare and come "
        "in runs (3 run(s), 3.0% of the rows)"
    )
    assert "--label Zustand" in output and "--context Zustand" in output
    assert not (tmp_path / "runs" / "r").exists()


def test_a_named_role_is_taken_as_given(tmp_path: Path) -> None:
    path = _export(tmp_path, "Zustand")
    code, output = _train(path, tmp_path / "runs", "--context", "Zustand")
    assert code == 0, output
    detector = json.loads((tmp_path / "runs" / "r" / "detector.json").read_bytes())
    assert "Zustand" in detector["fitted"]["feature_names_in_"]
    assert "leak" not in output


def test_a_label_word_beside_a_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Anlage.csv"
    frame = german_frame()
    frame["label"] = frame["Störung"]
    path.write_bytes(frame.to_csv(sep=";", index=False).encode("cp1252"))
    code, output = _train(path, tmp_path / "runs")
    assert code == 2
    assert "column 'Störung' holds 0/1 flags" in output
    assert "--label Störung" in output and "--context Störung" in output


def test_a_fleet_judges_the_column_over_all_its_series(tmp_path: Path) -> None:
    for i in range(2):
        text = german_frame(seed=i).to_csv(
            sep=";", decimal=",", index=False, float_format="%.4f"
        )
        (tmp_path / f"pumpe{i}.csv").write_bytes(text.encode("cp1252"))
    code, output = _train(tmp_path / "pumpe*.csv", tmp_path / "runs")
    assert code == 0, output
    assert "warning: column 'Störung' is named like an event label" in output
    record = json.loads((tmp_path / "runs" / "r" / "run.json").read_bytes())
    assert record["label_column"] == "Störung" and len(record["series"]) == 2
    for i in range(2):
        path = tmp_path / f"pumpe{i}.csv"
        path.write_bytes(path.read_bytes().replace(b"St\xf6rung", b"Zustand"))
    code, output = _train(tmp_path / "pumpe*.csv", tmp_path / "runs2")
    assert code == 2 and "column 'Zustand' holds 0/1 flags" in output
    assert "--label Zustand" in output and "--context Zustand" in output
