"""``score --follow`` and ``score -``: the installed entry point, run as a user would.

The follow test drives a real ``rareevent score --follow`` process: rows are
appended to the file (one line in two writes, as a writer flushing mid-line
would), the file is truncated and written again, and SIGINT ends it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

RAREEVENT = Path(sys.executable).parent / "rareevent"
DATA = Path(__file__).parent / "data" / "stream"


class Lines:
    """The lines a child writes to one of its pipes, collected by a thread."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, test: Callable[[str], bool], timeout: float = 60.0) -> str:
        """The first line ``test`` accepts, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if test(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such line in time; got {self.lines[-5:]}")
                self._changed.wait(left)


def _rows(first: int, stop: int) -> str:
    """Data rows ``first .. stop-1`` of the sample file, as text."""
    lines = (DATA / "sensors.csv").read_text().splitlines(keepends=True)
    return "".join(lines[1 + first : 1 + stop])


def _header() -> str:
    return (DATA / "sensors.csv").read_text().split("\n", 1)[0] + "\n"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "run", tmp_path / "runs" / "tiny")
    return tmp_path / "runs"


def _window(row: int) -> Callable[[str], bool]:
    return lambda line: line.startswith('{"row":') and json.loads(line)["row"] == row


@pytest.mark.slow
def test_follow_scores_appended_rows_announces_episodes_survives_truncation_and_stops_on_sigint(
    tmp_path: Path, runs_dir: Path
) -> None:
    live = tmp_path / "live.csv"
    live.write_text(_header() + _rows(0, 90))
    proc = follow_jsonl(live, runs_dir, "tiny")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for(_window(89))  # the rows already there are scored first
        appended = _rows(90, 120)
        cut = (
            appended.index("\n", appended.index("2026-01-01 01:45")) - 7
        )  # in the middle of row 105's line
        with open(live, "a") as fh:  # the writer flushes half a line, then the rest
            fh.write(appended[:cut])
            fh.flush()
            out.wait_for(_window(104))
            time.sleep(0.3)
            assert not any(
                _window(105)(line) for line in out.lines
            )  # a partly written line waits for its newline
            fh.write(appended[cut:])
        out.wait_for(_window(119))
        err.wait_for(lambda line: line.startswith("alarm closed: lines 103-111"))
        records = [json.loads(line) for line in out.lines]
        windows = [r for r in records if "row" in r and "event" not in r]
        assert [w["row"] for w in windows] == list(
            range(2, 120)
        )  # every window once, in order, as its row arrived
        assert [w["row"] for w in windows if w["flagged"]] == list(range(101, 110))
        events = [r["event"] for r in records if "event" in r]
        opened_at = records.index(
            next(r for r in records if r.get("event") == "alarm_opened")
        )
        closed_at = records.index(
            next(r for r in records if r.get("event") == "alarm_closed")
        )
        assert events == ["alarm_opened", "alarm_closed"]
        assert (
            records[opened_at - 1]["row"] == 101
            and records[opened_at]["start_row"] == 101
        )  # announced right after the window that opened it
        assert (
            records[closed_at - 1]["row"] == 109
            and records[closed_at]["end_row"] == 109
            and records[closed_at]["windows"] == 9
        )
        assert any(
            line.startswith("alarm opened at line 103 (2026-01-01T01:41:00)")
            for line in err.lines
        )

        live.write_text(
            _header() + _rows(400, 420)
        )  # truncated and written again: fewer bytes than were read
        restarted = out.wait_for(
            lambda line: (
                line.startswith('{"row":')
                and json.loads(line)["time"] == "2026-01-01T08:59:00"
            )
        )
        assert json.loads(restarted)["row"] == 19  # rows are numbered in the new file
        err.wait_for(
            lambda line: "was truncated: reading it again from its start" in line
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        summary = json.loads(out.wait_for(lambda line: '"summary"' in line))
        assert (
            summary["rows"],
            summary["windows"],
            summary["flagged"],
            summary["alarm_episodes"],
            summary["restarts"],
        ) == (140, 136, 9, 1, 1)
        err.wait_for(
            lambda line: (
                line.startswith("stopped following")
                and "140 rows, 136 windows, 9 flagged" in line
                and "1 restart" in line
            )
        )
        assert not any("Traceback" in line for line in err.lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_score_dash_reads_standard_input_like_the_file(
    tmp_path: Path, runs_dir: Path
) -> None:
    output = tmp_path / "piped.csv"
    data = (DATA / "sensors.csv").read_bytes()
    run = subprocess.run(
        [
            str(RAREEVENT),
            "score",
            "-",
            "--run",
            "tiny",
            "--runs-dir",
            str(runs_dir),
            "--output",
            str(output),
        ],
        input=data,
        capture_output=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert output.read_bytes() == (DATA / "golden_windows.csv").read_bytes()
    assert (
        b"700 rows, 696 windows, 33 flagged" in run.stdout
        and b"4 alarm episode(s)" in run.stdout
    )
    broken = data.replace(b"0.", b"x.", 1)
    run = subprocess.run(
        [str(RAREEVENT), "score", "-", "--run", "tiny", "--runs-dir", str(runs_dir)],
        input=broken,
        capture_output=True,
    )
    assert run.returncode == 2
    assert run.stderr.decode().startswith("error: <stdin>: non-numeric value 'x.")
    assert "at line 2" in run.stderr.decode()


def follow_jsonl(
    live: Path, runs_dir: Path, run: str, *options: str
) -> subprocess.Popen:
    """``score --follow`` of ``live`` with ``run`` in a subprocess, JSON Lines on its stdout."""
    return subprocess.Popen(
        [
            str(RAREEVENT),
            "score",
            "--follow",
            str(live),
            "--run",
            run,
            "--runs-dir",
            str(runs_dir),
            "--format",
            "jsonl",
            "--poll",
            "50ms",
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "250"},
    )


def test_tail_waits_for_a_newline_and_reads_a_rotated_or_truncated_file_from_its_start(
    tmp_path: Path,
) -> None:
    from rareevent.follow import CsvTail
    from rareevent.load import Columns, Reading

    live = tmp_path / "live.csv"
    tail = CsvTail(
        live,
        lambda fmt, sample: (
            Columns(features=["s1", "s2", "s3"], time="timestamp", label="label"),
            Reading(),
        ),
    )
    assert tail.read().frame is None  # not there yet: waited for
    live.write_text(_header() + _rows(0, 2) + _rows(2, 3)[:15])
    first = tail.read()
    assert (
        first.frame is not None
        and first.frame.index.tolist() == [0, 1]
        and first.restarted is None
    )
    with open(live, "a") as fh:
        fh.write(_rows(2, 3)[15:])
    second = tail.read().frame
    assert (
        second is not None
        and second.index.tolist() == [2]
        and second["timestamp"].iloc[0] == "2026-01-01 00:02:00"
    )
    rotated = tmp_path / "next.csv"
    rotated.write_text(_header() + _rows(10, 12))
    rotated.replace(live)  # a new file under the name
    piece = tail.read()
    assert (
        piece.restarted
        == f"{live} was replaced by a new file: reading it again from its start"
    )
    assert (
        piece.frame is not None
        and piece.frame.index.tolist() == [0, 1]
        and piece.frame["timestamp"].iloc[0] == "2026-01-01 00:10:00"
    )  # the header line skipped
    live.write_text(_rows(20, 21))  # truncated, and rows go on without a header
    piece = tail.read()
    assert piece.restarted == f"{live} was truncated: reading it again from its start"
    assert piece.frame is not None and piece.frame["timestamp"].tolist() == [
        "2026-01-01 00:20:00"
    ]
    tail.close()
