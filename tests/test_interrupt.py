"""Stopping ``rareevent train`` mid-training loses and leaves nothing.

Each test starts the real entry point on a file big enough that training
runs for minutes, waits until the progress line shows a finished epoch
(stdout is a pseudo-terminal so that rich draws it live), then signals it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import STOPPING, TINY, TINY_PCA, snapshot, synthetic_frame
from rareevent.cli.main import app

pytestmark = pytest.mark.skipif(
    not hasattr(os, "openpty") or sys.platform == "win32",
    reason="needs POSIX signals and a pty",
)

RAREEVENT = Path(sys.executable).parent / "rareevent"
SLOW = [
    "--epochs",
    "200",
    "--patience",
    "200",
    "--units",
    "16,8",
    "--threshold",
    "quantile",
]
EPOCH_DONE = re.compile(
    rb"loss \d"
)  # the progress line once an epoch has ended ("loss -" before)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    synthetic_frame(n=20000).to_csv(path, index=False, float_format="%.5f")
    return path


@pytest.fixture
def runs_dir(tmp_path: Path, trained_runs: dict[str, Path]) -> Path:
    """A runs dir that already holds one run, ``tiny-ae``."""
    folder = tmp_path / "runs"
    shutil.copytree(trained_runs["ae"], folder / "tiny-ae")
    return folder


class Training:
    """``rareevent train`` in a child process, stdout on a pty read by a thread."""

    def __init__(self, csv: Path, runs_dir: Path, *extra: str) -> None:
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [
                str(RAREEVENT),
                "train",
                str(csv),
                *SLOW,
                "--runs-dir",
                str(runs_dir),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            cwd=runs_dir.parent,
            env={**os.environ, "COLUMNS": "120", "PYTHONFAULTHANDLER": "1"},
            # Python installs its Ctrl-C handler only when SIGINT is not ignored: undo any inherited SIG_IGN
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.stdout = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO once the child has closed the pty
                return
            if not chunk:
                return
            self.stdout.extend(chunk)

    def wait_for_first_epoch(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not EPOCH_DONE.search(bytes(self.stdout)):
            if self.proc.poll() is not None:
                pytest.fail(
                    f"train ended before its first epoch (exit {self.proc.returncode}): {self.proc.stderr.read().decode(errors='replace')}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no finished epoch after {timeout:.0f} s; stdout so far: {bytes(self.stdout)[-500:]!r}"
                )
            time.sleep(0.1)

    def stop(self, sig: int, timeout: float = 60.0) -> tuple[int, str]:
        """Send ``sig``; return the exit status and stderr."""
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(
                signal.SIGABRT
            )  # faulthandler (PYTHONFAULTHANDLER) prints every thread's stack
            try:
                _, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            pytest.fail(
                f"train did not stop within {timeout:.0f} s of signal {sig}; its stderr ends:\n{err.decode('utf-8', 'replace')[-6000:]}"
            )
        self.reader.join(timeout=5)
        return self.proc.returncode, err.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def assert_interrupted(code: int, stderr: str) -> None:
    assert code == 130, (code, stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted" in errors[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "extra"),
    [
        pytest.param(
            signal.SIGINT,
            ("--name", "tiny-ae", "--overwrite"),
            id="sigint-during-overwrite-keeps-the-old-run",
        ),
        pytest.param(signal.SIGTERM, (), id="sigterm-behaves-like-sigint"),
    ],
)
def test_signal_stops_training_and_leaves_the_runs_dir_as_it_was(
    big_csv: Path, runs_dir: Path, signum: int, extra: tuple[str, ...]
) -> None:
    """Ctrl-C or SIGTERM mid-training: exit 130, and the runs dir byte-for-byte as before (``tiny-ae`` intact when it was being replaced)."""
    before = snapshot(runs_dir)
    training = Training(big_csv, runs_dir, *extra)
    try:
        training.wait_for_first_epoch()
        code, stderr = training.stop(signum)
    finally:
        training.close()
    assert_interrupted(code, stderr)
    assert snapshot(runs_dir) == before


@pytest.mark.slow
def test_sigkill_leaves_no_visible_run_and_next_train_cleans_up(
    big_csv: Path, sensor_csv: Path, runs_dir: Path
) -> None:
    old_run = snapshot(runs_dir / "tiny-ae")
    training = Training(big_csv, runs_dir, "--name", "killed")
    try:
        training.wait_for_first_epoch()
        code, _ = training.stop(signal.SIGKILL)
    finally:
        training.close()
    assert code == -signal.SIGKILL
    visible = sorted(p for p in os.listdir(runs_dir) if not p.startswith("."))
    assert visible == ["tiny-ae"]
    assert snapshot(runs_dir / "tiny-ae") == old_run
    assert all(p.startswith(".tmp-") for p in os.listdir(runs_dir) if p.startswith("."))

    # A kill during saving leaves hidden temporaries named after the dead process: plant one of each kind.
    dead = training.proc.pid
    stale_folder = runs_dir / f".tmp-{dead}-killed"
    stale_folder.mkdir(exist_ok=True)
    (stale_folder / "model.keras").write_bytes(b"half written")
    (runs_dir / f".tmp-{dead}-old-tiny-ae").mkdir(exist_ok=True)

    result = CliRunner().invoke(
        app,
        [
            "train",
            str(sensor_csv),
            *TINY,
            "--runs-dir",
            str(runs_dir),
            "--name",
            "after",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(runs_dir)) == [
        "after",
        "tiny-ae",
    ]  # the stale temporaries are gone
    assert snapshot(runs_dir / "tiny-ae") == old_run


@pytest.mark.slow
def test_loser_of_two_trains_with_one_name_stops_before_training(
    big_csv: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9, case 10: the first ``train --name same`` takes the name when it starts; the second is refused before fitting anything."""
    from rareevent.detector import RareEventDetector

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was fitted before the error")

    monkeypatch.setattr(RareEventDetector, "_train", never)
    long_csv = runs_dir.parent / "long.csv"
    synthetic_frame(n=30_000).to_csv(long_csv, index=False, float_format="%.5f")
    before = snapshot(runs_dir)
    winner = Training(big_csv, runs_dir, "--name", "same")
    try:
        winner.wait_for_first_epoch()
        loser = CliRunner().invoke(
            app, ["train", str(long_csv), "--runs-dir", str(runs_dir), "--name", "same"]
        )
        code, stderr = winner.stop(signal.SIGINT)
    finally:
        winner.close()
    assert loser.exit_code == 2, (loser.exit_code, loser.stderr)
    errors = [line for line in loser.stderr.splitlines() if line.strip()]
    assert (
        len(errors) == 1
        and errors[0].startswith("error: ")
        and "same" in errors[0]
        and "another rareevent process" in errors[0]
    ), errors
    assert_interrupted(code, stderr)
    assert (
        snapshot(runs_dir) == before
    )  # neither left a run, a temporary or a lock file


@pytest.mark.slow
def test_sigkill_while_scoring_leaves_a_partial_output_the_next_score_clears(
    big_csv: Path, runs_dir: Path
) -> None:
    """Issue 9, case 6: the temporary of an output killed mid-write goes with the next score to the same path."""
    out = runs_dir.parent / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            str(RAREEVENT),
            "score",
            str(big_csv),
            "--run",
            str(runs_dir / "tiny-ae"),
            "--output",
            str(out / "out.csv"),
            "--chunk-rows",
            "100",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while (
            not os.listdir(out) and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "scoring ended before it could be killed"
    assert os.listdir(out) == [f".tmp-{proc.pid}-new-out.csv"]
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(big_csv),
            "--run",
            str(runs_dir / "tiny-ae"),
            "--output",
            str(out / "out.csv"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert os.listdir(out) == ["out.csv"]


@pytest.mark.slow
def test_a_signal_no_batch_end_takes_is_raised_after_the_grace_and_a_second_at_once() -> (
    None
):
    """Outside a batch loop (reading a file, saving) Ctrl-C still stops ``train``: after ``INTERRUPT_GRACE_S``, or at once when pressed twice."""
    from rareevent.cli.signals import INTERRUPT_GRACE_S, interrupt_at_batch_end

    before = signal.getsignal(signal.SIGINT)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupt_at_batch_end():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(INTERRUPT_GRACE_S + 10)
    # not before the grace; that it came at all (before the sleep ended) is pytest.raises'
    # to show: an upper bound in wall-clock seconds would fail on a loaded machine
    assert time.monotonic() - started >= INTERRUPT_GRACE_S - 0.1

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupt_at_batch_end():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(INTERRUPT_GRACE_S + 10)
    assert time.monotonic() - started < INTERRUPT_GRACE_S

    started = time.monotonic()
    with (
        pytest.raises(KeyboardInterrupt),
        interrupt_at_batch_end(),
    ):  # the block ends before the grace is over:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
    assert (
        time.monotonic() - started < INTERRUPT_GRACE_S
    )  # raised on leaving it, so that nothing after it runs
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are put back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_deferral_leaves_a_timer_it_did_not_set_and_its_signals_alone() -> None:
    """A program that embeds the app and holds the real-time timer keeps it; Ctrl-C then raises at once, as Python does."""
    from rareevent.cli.signals import interrupt_at_batch_end

    fired: list[int] = []
    before = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    # Python's own Ctrl-C handler, whatever the test process inherited (started in the background, SIGINT is ignored)
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with interrupt_at_batch_end():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert 25 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
        signal.signal(signal.SIGINT, sigint)
    assert fired == []


@pytest.mark.slow
def test_the_app_run_from_a_thread_trains_without_touching_signals(
    sensor_csv: Path, tmp_path: Path
) -> None:
    """Only the main thread may set signal handlers: from another thread (a notebook's worker, say) training runs as before."""
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.append(
            CliRunner().invoke(
                app,
                [
                    "train",
                    str(sensor_csv),
                    *TINY,
                    "--runs-dir",
                    str(tmp_path / "runs"),
                    "--name",
                    "threaded",
                ],
            )
        )
    )
    worker.start()
    worker.join(timeout=300)
    assert results and results[0].exit_code == 0, getattr(results[0], "output", results)
    assert (tmp_path / "runs" / "threaded" / "run.json").exists()


# ---------------------------------------------------------------- Ctrl-C and SIGTERM stop pytest

REPO = Path(__file__).resolve().parents[1]
CHILD_PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-p",
    "tests.conftest",
    "-p",
    "no:cacheprovider",
]
CHILD_TESTS = """
import os, time
from pathlib import Path
from typer.testing import CliRunner
from rareevent.cli.main import app

def test_first():
    env = os.environ
    if env["SCENARIO"] == "inside":  # `score --follow` runs until a signal stops it
        CliRunner().invoke(app, ["score", env["DATA"], "--run", env["RUN"],
                                 "--follow", "--poll", "0.05", "--output", env["OUT"]])
    else:  # a command ran in-process and returned; then the test takes its time
        CliRunner().invoke(app, ["score", env["DATA"], "--run", env["RUN"],
                                 "--output", env["OUT"]])
        Path(env["READY"]).write_text("returned")
        time.sleep(120)

def test_second():
    Path(os.environ["SECOND"]).touch()
"""


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> Path:
    runs = tmp_path_factory.mktemp("pca-runs")
    result = CliRunner().invoke(
        app,
        ["train", str(sensor_csv), *TINY_PCA, "--runs-dir", str(runs), "--name", "pca"],
    )
    assert result.exit_code == 0, result.output
    return runs / "pca"


@pytest.mark.slow
def test_an_in_process_command_puts_back_the_signal_handlers_it_found(
    sensor_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train`` and the entry point take SIGINT and SIGTERM while they run, then give the host its own handlers back."""
    from rareevent.cli.main import main

    def host(signum: int, frame: object) -> None:
        raise AssertionError("the host's handler is only put back, never called")

    found = {
        signum: signal.signal(signum, host) for signum in (*STOPPING, signal.SIGALRM)
    }
    try:
        result = CliRunner().invoke(
            app,
            ["train", str(sensor_csv), *TINY_PCA, "--runs-dir", str(tmp_path / "runs")],
        )
        assert result.exit_code == 0, result.output
        for signum in found:
            assert signal.getsignal(signum) is host, signal.Signals(signum).name

        monkeypatch.setattr(sys, "argv", ["rareevent", "--help"])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 0
        for signum in found:
            assert signal.getsignal(signum) is host, signal.Signals(signum).name
    finally:
        for signum, handler in found.items():
            signal.signal(signum, handler)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "signum"),
    [
        ("inside", signal.SIGINT),
        ("inside", signal.SIGTERM),
        ("after", signal.SIGINT),
    ],
    ids=["ctrl-c-in-follow", "sigterm-in-follow", "ctrl-c-after-a-command"],
)
def test_a_signal_stops_pytest_also_inside_an_in_process_command(
    scenario: str, signum: int, pca_run: Path, sensor_csv: Path, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM stop a pytest run with this suite's conftest, as they stop any suite.

    Inside ``score --follow`` the command takes the signal and ends cleanly
    (exit 130), so without the conftest's check the test passed and the
    next one ran; after a command has returned, Python's own handler must be
    back.
    """
    child = tmp_path / "test_child.py"
    child.write_text(CHILD_TESTS)
    out, second = tmp_path / "out.csv", tmp_path / "second"
    ready = out if scenario == "inside" else tmp_path / "ready"
    proc = subprocess.Popen(
        [*CHILD_PYTEST, str(child)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "SCENARIO": scenario,
            "DATA": str(sensor_csv),
            "RUN": str(pca_run),
            "OUT": str(out),
            "SECOND": str(second),
            "READY": str(ready),
        },
        # Python installs its Ctrl-C handler only when SIGINT is not ignored: undo any inherited SIG_IGN
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.stat().st_size):
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "the child test never scored"
            time.sleep(0.1)
        proc.send_signal(signum)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert not second.exists(), "the suite went on after the signal"
