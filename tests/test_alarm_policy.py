"""Alarm policy at scoring time, through the real CLI (issue 31).

The decision stage carries its state from one window to the next, so the
alarms must not depend on how the rows arrive: whole, in chunks of any
size, from standard input, in a worker process, or appended while
``--follow`` tails the file. And the policy options change the alarms,
never the scores.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app

RAREEVENT = Path(sys.executable).parent / "rareevent"
DATA = Path(__file__).parent / "data" / "stream"
POLICY = ["--shortest-event", "6", "--min-duration", "2", "--cooldown", "3"]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "run", tmp_path / "runs" / "tiny")
    return tmp_path / "runs"


def score(runs_dir: Path, *args: str, data: str | None = None) -> str:
    """``score`` through CliRunner; its stdout."""
    result = CliRunner().invoke(
        app,
        ["score", *args, "--run", "tiny", "--runs-dir", str(runs_dir), "--quiet"],
        input=data,
    )
    assert result.exit_code == 0, result.output
    return result.output


def windows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def test_the_same_alarms_whole_in_chunks_and_from_stdin(
    tmp_path: Path, runs_dir: Path
) -> None:
    source = DATA / "sensors.csv"
    outputs = {}
    for chunk in ("7", "1000", "1000000"):
        out = tmp_path / f"chunk{chunk}.csv"
        score(
            runs_dir, str(source), *POLICY, "--chunk-rows", chunk, "--output", str(out)
        )
        outputs[chunk] = out.read_bytes()
    assert len(set(outputs.values())) == 1
    piped = tmp_path / "piped.csv"
    score(runs_dir, "-", *POLICY, "--output", str(piped), data=source.read_text())
    assert piped.read_bytes() == outputs["7"]
    scored = windows(tmp_path / "chunk7.csv")
    assert scored["flagged"].sum() > 0


def test_the_same_alarms_from_worker_processes(tmp_path: Path, runs_dir: Path) -> None:
    for name in ("a", "b"):
        shutil.copy(DATA / "sensors.csv", tmp_path / f"{name}.csv")
    alone = tmp_path / "alone.csv"
    score(runs_dir, str(tmp_path / "a.csv"), *POLICY, "--output", str(alone))
    many = tmp_path / "many.csv"
    score(
        runs_dir,
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
        *POLICY,
        "--jobs",
        "2",
        "--output",
        str(many),
    )
    both = windows(many)
    expected = windows(alone)
    for _, part in both.groupby(both.columns[0]):
        part = part.drop(columns=both.columns[0]).reset_index(drop=True)
        assert part["flagged"].tolist() == expected["flagged"].tolist()
        assert part["error"].tolist() == expected["error"].tolist()


def test_policy_options_change_the_alarms_never_the_scores(
    tmp_path: Path, runs_dir: Path
) -> None:
    source = str(DATA / "sensors.csv")
    runs = {
        "default": [],
        "threshold": ["--threshold", "0.5"],
        "margin": ["--margin", "3"],
        "min": ["--min-duration", "4"],
        "cool": ["--cooldown", "250"],
        "event": ["--shortest-event", "6"],
    }
    scored = {}
    for name, options in runs.items():
        out = tmp_path / f"{name}.json"
        score(runs_dir, source, *options, "--output", str(out))
        scored[name] = json.loads(out.read_text())
    errors = {name: [w["error"] for w in s["windows"]] for name, s in scored.items()}
    flags = {name: [w["flagged"] for w in s["windows"]] for name, s in scored.items()}
    assert all(e == errors["default"] for e in errors.values())
    base = flags["default"]
    assert sum(base) > 0
    threshold = scored["default"]["summary"]["threshold"]
    assert flags["threshold"] == [int(e >= 0.5) for e in errors["default"]]
    assert flags["margin"] == [int(e >= 3 * threshold) for e in errors["default"]]
    assert sum(flags["min"]) < sum(base)  # only runs of 4 high windows alarm
    assert flags["cool"] == base  # a cooldown merges episodes, the flags stay
    assert len(scored["cool"]["alarms"]) < len(scored["default"]["alarms"])
    assert scored["min"]["summary"]["alarm"]["min_duration"] == 4
    assert scored["cool"]["summary"]["alarm"]["cooldown"] == 250


def test_a_strategy_threshold_and_bad_values(tmp_path: Path, runs_dir: Path) -> None:
    source = str(DATA / "sensors.csv")
    out = tmp_path / "q.json"
    score(runs_dir, source, "--threshold", "quantile:0.5", "--output", str(out))
    summary = json.loads(out.read_text())["summary"]
    assert (
        summary["threshold"]
        < json.loads((runs_dir / "tiny" / "detector.json").read_text())["fitted"][
            "threshold_"
        ]
    )
    for options, message in (
        (["--threshold", "f1"], "needs the validation labels"),
        (["--threshold", "-2"], "threshold must be a finite number"),
        (["--cooldown", "ten"], "cooldown 'ten'"),
        (["--min-duration", "5min"], "is a duration, but the run's time column"),
    ):
        result = CliRunner().invoke(
            app,
            ["score", source, "--run", "tiny", "--runs-dir", str(runs_dir), *options],
        )
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error:"), result.output
        assert message in result.output


@pytest.mark.slow
def test_follow_appended_in_pieces_gives_the_same_alarms(
    tmp_path: Path, runs_dir: Path
) -> None:
    lines = (DATA / "sensors.csv").read_text().splitlines(keepends=True)
    whole = tmp_path / "whole.csv"
    score(runs_dir, str(DATA / "sensors.csv"), *POLICY, "--output", str(whole))
    live = tmp_path / "live.csv"
    live.write_text("".join(lines[:50]))
    out = tmp_path / "followed.csv"
    proc = subprocess.Popen(
        [
            str(RAREEVENT),
            "score",
            "--follow",
            str(live),
            "--run",
            "tiny",
            "--runs-dir",
            str(runs_dir),
            *POLICY,
            "--output",
            str(out),
            "--poll",
            "20ms",
            "--quiet",
        ],
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        for start in range(50, len(lines), 97):  # appended in uneven pieces
            with open(live, "a") as fh:
                fh.write("".join(lines[start : start + 97]))
            time.sleep(0.1)
        expected = whole.read_text()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= expected.count("\n"):
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    followed = pd.read_csv(io.StringIO(out.read_text()))
    assert followed.to_csv(index=False) == windows(whole).to_csv(index=False)


@pytest.mark.slow
def test_update_makes_a_policy_the_runs_default(tmp_path: Path, runs_dir: Path) -> None:
    source = str(DATA / "sensors.csv")
    updated = CliRunner().invoke(
        app,
        [
            "update",
            str(runs_dir / "tiny"),
            source,
            "--epochs",
            "1",
            "--cooldown",
            "4",
            "--min-duration",
            "2",
            "--runs-dir",
            str(runs_dir),
            "--name",
            "held",
            "--quiet",
        ],
    )
    assert updated.exit_code == 0, updated.output
    record = json.loads((runs_dir / "held" / "run.json").read_text())
    assert record["alarm"]["cooldown"] == "4"
    assert record["alarm"]["min_duration"] == "2"
    assert record["alarm"]["shortest_event"] == "off"  # the parent's, kept
    out = tmp_path / "held.json"
    result = CliRunner().invoke(
        app,
        ["score", source, "--run", "held", "--runs-dir", str(runs_dir)]
        + ["--output", str(out), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["summary"]["alarm"] == {
        "threshold": json.loads(out.read_text())["summary"]["threshold"],
        "shortest_event": 0,
        "min_duration": 2,
        "cooldown": 4,
    }


def test_the_html_report_echoes_the_policy(tmp_path: Path, runs_dir: Path) -> None:
    page = tmp_path / "report.html"
    score(runs_dir, str(DATA / "sensors.csv"), *POLICY, "--html", str(page))
    text = page.read_text()
    assert "alarm policy" in text
    assert "shortest event 6 window(s), min duration 2 window(s), cooldown 3" in text
    plain = tmp_path / "plain.html"
    score(runs_dir, str(DATA / "sensors.csv"), "--html", str(plain))
    assert "alarm policy" not in plain.read_text()
