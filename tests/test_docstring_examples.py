"""The Examples sections of the API's docstrings run as written, and print what they show.

They are the examples of the documentation site's Python API reference. They
run in a folder holding ``sample_data`` and a run ``runs/pump-ae`` (a ``pca``
run of the sample data, trained in seconds), as a notebook next to the
checkout would see them.
"""

from __future__ import annotations

import doctest
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rareevent import RareEventDetector, RareEventError, StreamScorer, load_run
from rareevent.options import TrainSpec
from rareevent.record import RunView
from rareevent.runs import read_record
from rareevent.scoring import score_csv
from rareevent.training import save, train

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = [
    RareEventDetector,
    RareEventError,
    StreamScorer,
    load_run,
    read_record,
    RunView,
    score_csv,
    train,
    TrainSpec,
]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.fixture(scope="module")
def notebook_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("notebook")
    os.symlink(ROOT / "sample_data", folder / "sample_data")
    before = os.getcwd()
    os.chdir(folder)
    try:
        save(
            train(
                "sample_data/pump_sensors.csv",
                RareEventDetector(arch="pca"),
                name="pump-ae",
            ),
            "runs",
        )
        yield folder
    finally:
        os.chdir(before)


def examples(obj: Any) -> list[doctest.DocTest]:
    """The doctests of ``obj``'s own docstring (not of its members)."""
    tests = doctest.DocTestFinder(recurse=False).find(obj, obj.__name__)
    return [test for test in tests if test.examples]


def test_each_documented_name_has_an_example() -> None:
    assert all(examples(obj) for obj in DOCUMENTED), [
        obj.__name__ for obj in DOCUMENTED if not examples(obj)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("obj", DOCUMENTED, ids=lambda obj: obj.__name__)
def test_the_example_runs_as_written(obj: Any, notebook_folder: Path) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in examples(obj):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{obj.__name__}: {result.failed} example(s) failed"
