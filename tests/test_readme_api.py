"""The Python API page's blocks (docs/reference/python-api.md) run as written, and the streaming loop gives the windows of scoring in one piece.

The first block trains a detector on the sample data once (module fixture);
the second, the ``StreamScorer`` loop, runs as written and in variants: other
batch sizes, and frames that keep the time column.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rareevent
from rareevent.detector import DETECTOR_FILE
from rareevent.scoring import StreamScorer

ROOT = Path(__file__).resolve().parents[1]


PAGE = ROOT / "docs" / "reference" / "python-api.md"


def readme_blocks() -> list[str]:
    """The Python blocks of the site's Python API page, before its generated reference."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("\n## Reference\n", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def missing_names(code: str) -> list[str]:
    """Names a block imports from ``rareevent`` that this checkout does not have."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module == "rareevent":
            found += [
                alias.name for alias in node.names if not hasattr(rareevent, alias.name)
            ]
    return found


def test_the_readme_has_the_examples() -> None:
    blocks = readme_blocks()
    assert len(blocks) == 3
    assert (
        "detector.fit(sensors" in blocks[0]
        and "RareEventDetector.load(" in blocks[0]
        and "f1_score(" in blocks[0]
    )
    assert (
        "StreamScorer(loaded)" in blocks[1]
        and "scorer.update(" in blocks[1]
        and "scorer.close()" in blocks[1]
    )
    assert (
        "TrainSpec(" in blocks[2]
        and "ScoreSpec(" in blocks[2]
        and "score_csv(" in blocks[2]
    )
    assert missing_names("".join(blocks)) == []


@pytest.fixture(scope="module")
def first_block(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], Path, str]:
    """The first block, run as written in a folder holding ``sample_data``: its namespace, the folder and what it printed."""
    folder = tmp_path_factory.mktemp("readme")
    os.symlink(ROOT / "sample_data", folder / "sample_data")
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    printed = io.StringIO()
    before = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(readme_blocks()[0], str(PAGE), "exec"), namespace)  # noqa: S102 - our own documentation
    finally:
        os.chdir(before)
    return namespace, folder, printed.getvalue()


def _run_second_block(
    first_block: tuple[dict[str, Any], Path, str],
    monkeypatch: pytest.MonkeyPatch,
    edits: dict[str, str],
) -> dict[str, Any]:
    """The second block, with each ``edits`` key (which must occur once) replaced, after the first block's namespace."""
    namespace, folder, _ = first_block
    code = readme_blocks()[1]
    for old, new in edits.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    monkeypatch.chdir(folder)
    scope = dict(namespace)
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102 - our own documentation
    return scope


def _assert_same_as_one_piece(scope: dict[str, Any]) -> None:
    """The streamed windows are exactly those of the same rows scored in one piece, and the detector's window scores."""
    streamed = scope["scorer"].close()
    whole = StreamScorer(scope["loaded"])
    whole.update(scope["newer"])
    one_piece = whole.close()
    assert streamed.n_windows == one_piece.n_windows == len(scope["newer"]) - 9
    np.testing.assert_array_equal(streamed.rows, one_piece.rows)
    np.testing.assert_array_equal(streamed.error, one_piece.error)
    np.testing.assert_array_equal(streamed.flagged, one_piece.flagged)
    assert (streamed.n_segments, streamed.alarms) == (1, one_piece.alarms)
    sensors = scope["newer"][list(scope["loaded"].feature_names_in_)]
    np.testing.assert_allclose(
        streamed.error, scope["loaded"].window_scores(sensors), rtol=1e-6
    )


@pytest.mark.slow
def test_the_first_block_fits_predicts_per_row_and_saves(
    first_block: tuple[dict[str, Any], Path, str],
) -> None:
    namespace, folder, printed = first_block
    assert (folder / "pump-detector" / DETECTOR_FILE).is_file()
    assert namespace["loaded"].feature_names_in_[0] == "motor_current"
    assert "motor_current" in printed and "F1 on the rows fit saw:" in printed
    assert printed.splitlines()[-1] == "2991 windows for 3000 rows"
    assert namespace["flags"].shape == namespace["scores"].shape == (3000,)
    assert np.isfinite(namespace["scores"]).all()  # the first 9 rows too


@pytest.mark.slow
def test_the_streaming_block_runs_as_written(
    first_block: tuple[dict[str, Any], Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 22: this loop printed 491 windows for every batch (1,964 in 4 segments against 1,991 in one piece)."""
    scope = _run_second_block(first_block, monkeypatch, {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" windows,")[0] for line in lines[:4]] == [
        "491",
        "500",
        "500",
        "500",
    ]
    assert re.fullmatch(
        r"ScoreResult\(path='<data>', rows=2000, windows=1991, flagged=\d+, segments=1, alarms=\d+\)",
        lines[4],
    ), lines[4]
    _assert_same_as_one_piece(scope)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("batch", "with_time"),
    [(500, True), (37, False), (37, True), (1, False), (1, True)],
)  # 500 without: as written
def test_the_streaming_block_in_other_batches(
    first_block: tuple[dict[str, Any], Path, str],
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
    with_time: bool,
) -> None:
    edits = {"batch = 500": f"batch = {batch}"}
    if with_time:  # frames that carry the time column too
        edits["[sensors.columns]"] = '[["timestamp", *sensors.columns]]'
    if batch == 1:  # a model call per row: fewer rows
        edits["nrows=2000"] = "nrows=300"
    _assert_same_as_one_piece(_run_second_block(first_block, monkeypatch, edits))


@pytest.mark.slow
def test_the_spec_block_trains_saves_and_scores_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The third block, alone in a fresh folder: a pca run from a TrainSpec, saved, loaded and used to score the file with a ScoreSpec."""
    os.symlink(ROOT / "sample_data", tmp_path / "sample_data")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(readme_blocks()[2], str(PAGE), "exec"), scope)  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(
        r"ScoreResult\(path='sample_data/pump_sensors.csv', rows=30000, windows=29991, flagged=\d+, segments=1, alarms=\d+\)",
        printed,
    ), printed
    assert (
        scope["folder"] == tmp_path / "runs" / "pca-spec"
        or scope["folder"].resolve() == (tmp_path / "runs" / "pca-spec").resolve()
    )
    assert scope["record"].valid_frac == 0.2 and scope["record"].label_column == "label"
