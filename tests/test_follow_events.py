"""``score --follow`` as operations read it: alarm events in order, the file's encoding, one JSON escaping.

Each test drives the installed ``rareevent`` on a run of the ``pca``
baseline with lookback 1, so that an event of one row is an alarm of one
window: it opens and closes at the same row.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rareevent.errors import RareEventError
from tests.conftest import synthetic_frame
from tests.test_follow import Lines, follow_jsonl

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

FLOW = "Durchfluss m³/h"  # a name with a non-ASCII character and a slash
EVENTS = (150, 400, 530)  # one row each


def _csv_text(first: int, stop: int, header: bool = True) -> str:
    """Rows ``first .. stop-1`` of the sample frame (the sensor ``s2`` named ``FLOW``), as CSV text."""
    frame = synthetic_frame(events=EVENTS, length=1).rename(columns={"s2": FLOW})
    frame["Status"] = "läuft"  # a text column the run ignores, not ASCII
    return frame.iloc[first:stop].to_csv(
        index=False, header=header, float_format="%.5f"
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of the same frame: ``utf8`` trained on a UTF-8 file, ``cp1252`` on a cp1252 one."""
    from rareevent.detector import RareEventDetector
    from rareevent.options import InputSpec, ReadOptions, TrainSpec
    from rareevent.training import save, train

    folder = tmp_path_factory.mktemp("follow-events")
    for encoding in ("utf8", "cp1252"):
        data = folder / f"train-{encoding}.csv"
        data.write_bytes(_csv_text(0, 600).encode(encoding))
        spec = TrainSpec(
            input=InputSpec(drop=("Status",), read=ReadOptions(encoding=encoding))
        )
        result = train(
            data, RareEventDetector(arch="pca", lookback=1), spec, name=encoding
        )
        save(result, folder / "runs")
    return folder / "runs"


def _window(row: int):  # type: ignore[no-untyped-def]
    return lambda line: line.startswith('{"row":') and json.loads(line)["row"] == row


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130


@pytest.mark.slow  # starts the installed command (seconds)
def test_a_one_window_alarm_opens_before_it_closes_scored_whole_and_appended(
    tmp_path: Path, runs_dir: Path
) -> None:
    """Issue 33 (6): ``alarm_closed`` came one line before ``alarm_opened`` of the same alarm."""
    live = tmp_path / "live.csv"
    live.write_text(_csv_text(0, 300), encoding="utf-8")  # the event at row 150
    proc = follow_jsonl(live, runs_dir, "utf8")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for(_window(299))  # the file as it was: scored whole
        with open(live, "a", encoding="utf-8") as fh:  # rows 300-599 in one write
            fh.write(_csv_text(300, 600, header=False))
        out.wait_for(_window(599))
        err.wait_for(lambda line: line.startswith("alarm closed: lines 532-532"))
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = [json.loads(line) for line in out.lines]
    events = [(r["event"], r.get("start_row")) for r in records if "event" in r]
    one_window = [
        r["start_row"]
        for r in records
        if r.get("event") == "alarm_closed" and r["start_row"] == r["end_row"]
    ]
    assert 150 in one_window and 530 in one_window  # whole, and appended
    for row in one_window:  # right after its window: opened, then closed
        at = events.index(("alarm_opened", row))
        assert events[at + 1] == ("alarm_closed", row), events
        opened = next(
            i
            for i, r in enumerate(records)
            if r.get("event") == "alarm_opened" and r["start_row"] == row
        )
        assert records[opened - 1]["row"] == row
        assert records[opened + 1]["event"] == "alarm_closed"
    open_at = None  # anything that pairs the events leaves no alarm open
    for event, row in events:
        if event == "alarm_opened":
            assert open_at is None, events
            open_at = row
        elif event == "alarm_closed":
            assert open_at == row, events
            open_at = None
    # the same order on stderr, with file lines (row + 2)
    said = [line for line in err.lines if line.startswith("alarm ")]
    for row in (150, 530):
        at = said.index(
            next(
                line
                for line in said
                if line.startswith(f"alarm opened at line {row + 2} ")
            )
        )
        assert said[at + 1].startswith(f"alarm closed: lines {row + 2}-{row + 2} ")


@pytest.mark.slow  # starts the installed command (seconds)
def test_window_and_event_records_escape_a_name_alike(
    tmp_path: Path, runs_dir: Path
) -> None:
    """Issue 33 (10): windows wrote ``m\\u00b3\\/h``, events ``m\\u00b3/h``."""
    live = tmp_path / "live.csv"
    live.write_text(_csv_text(0, 200), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    proc = follow_jsonl(live, runs_dir, "utf8", "--output", str(output))
    try:
        assert proc.stderr is not None
        err = Lines(proc.stderr)
        err.wait_for(lambda line: line.startswith("alarm closed: lines 152-152"))
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = output.read_text(encoding="utf-8").splitlines()
    window = next(line for line in lines if line.startswith('{"row":150,'))
    closed = next(line for line in lines if '"alarm_closed"' in line)
    assert "m\\u00b3/h:" in window and "m\\u00b3/h:" in closed
    assert "\\/" not in "".join(lines)
    assert f"{FLOW}:" in json.loads(window)["top_features"]


@pytest.mark.slow  # starts the installed command (seconds)
@pytest.mark.parametrize(
    ("run", "options"),
    [("cp1252", ()), ("utf8", ("--encoding", "cp1252"))],
    ids=["as-the-run-was-trained", "as-encoding-says"],
)
def test_follow_reads_a_cp1252_file_being_appended(
    tmp_path: Path, runs_dir: Path, run: str, options: tuple[str, ...]
) -> None:
    """Issue 33 (7): ``--follow`` read every file as UTF-8, whatever the run or ``--encoding`` said."""
    live = tmp_path / "historian.csv"
    live.write_bytes(_csv_text(0, 100).encode("cp1252"))  # m³ and läuft: not UTF-8
    proc = follow_jsonl(live, runs_dir, run, *options)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for(_window(99))
        with open(live, "ab") as fh:
            fh.write(_csv_text(100, 200, header=False).encode("cp1252"))
        out.wait_for(_window(199))
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = [json.loads(line) for line in out.lines]
    assert [r["row"] for r in records if "row" in r] == list(range(200))
    closed = next(r for r in records if r.get("event") == "alarm_closed")
    assert closed["start_row"] == 150 and FLOW in closed["top_features"]
    assert not any(line.startswith("error") for line in err.lines), err.lines


@pytest.mark.slow  # about a second
def test_a_json_output_escapes_windows_as_its_alarms(
    tmp_path: Path, runs_dir: Path
) -> None:
    """Issue 33 (10), ``score --output x.json``: the windows (pandas) and the alarms (json) alike."""
    from rareevent.cli.main import app
    from typer.testing import CliRunner

    data = tmp_path / "data.csv"
    data.write_text(_csv_text(0, 200), encoding="utf-8")
    output = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        ["score", str(data), "--run", "utf8", "--runs-dir", str(runs_dir),
         "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    assert "\\/" not in text and text.count("m\\u00b3/h:") > 200  # windows and alarms
    saved = json.loads(text)
    assert FLOW in saved["windows"][150]["top_features"]
    assert any(FLOW in alarm["top_features"] for alarm in saved["alarms"])


def test_a_tail_reads_ascii_first_lines_as_the_run_s_encoding(tmp_path: Path) -> None:
    """Issue 33 (7): a header in ASCII settles nothing; later cp1252 lines read as the run's file did."""
    from rareevent.follow import CsvTail
    from rareevent.load import Columns, Reading

    def settle(fmt, sample):  # type: ignore[no-untyped-def]
        return Columns(features=["x"], time="time"), Reading()

    live = tmp_path / "live.csv"
    live.write_bytes(b"time,x,Status\n2026-01-01 00:00:00,1.5,ok\n")
    appended = "2026-01-01 00:01:00,2.5,läuft\n".encode("cp1252")
    as_run = CsvTail(live, settle, fallback="cp1252")
    as_utf8 = CsvTail(live, settle)
    for tail in (as_run, as_utf8):
        assert tail.read().frame is not None
    with open(live, "ab") as fh:
        fh.write(appended)
    frame = as_run.read().frame
    assert frame is not None and frame["Status"].tolist() == ["läuft"]
    with pytest.raises(RareEventError, match=r"line 3 is not UTF-8 text") as caught:
        as_utf8.read()
    assert "pass `encoding=cp1252`" in str(caught.value)
    for tail in (as_run, as_utf8):
        tail.close()
