"""Atomic file and folder writes, and clean-up of stale temporaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rareevent.errors import RareEventError
from rareevent.storage import (
    SET_ASIDE_FILE,
    TEMP_PREFIX,
    atomic_file,
    atomic_folder,
    hold_name,
    remove_stale_temporaries,
)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- atomic_file


def test_atomic_file_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with atomic_file(target) as temp:
        assert temp != target
        assert temp.parent == tmp_path
        assert temp.name.startswith(f"{TEMP_PREFIX}{os.getpid()}-")
        temp.write_text("new\n")
        assert target.read_text() == "old\n"  # not visible until the end
    assert target.read_text() == "new\n"
    assert temporaries(tmp_path) == []


def test_atomic_file_creates_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "fresh.json"
    with atomic_file(target) as temp:
        temp.write_bytes(b"{}")
    assert target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_atomic_file_keeps_old_file_when_body_raises(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(type(error)):
        with atomic_file(target) as temp:
            temp.write_text("half-writ")
            raise error
    assert target.read_text() == "old\n"
    assert temporaries(tmp_path) == []


def test_atomic_file_failure_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "out.csv") as temp:
            temp.write_text("x")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_refuses_folder_and_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(RareEventError, match="is a folder"):
        with atomic_file(tmp_path):
            pass
    with pytest.raises(RareEventError, match="folder not found for output out.csv"):
        with atomic_file(tmp_path / "missing" / "out.csv"):
            pass


# ---------------------------------------------------------------- atomic_folder


def make_run(folder: Path, text: str) -> None:
    """A folder that counts as a run (``overwrite`` may replace it), whose ``run.json`` holds ``text``."""
    folder.mkdir()
    (folder / "run.json").write_text(run_json(text))


def run_json(text: str) -> str:
    return json.dumps({"format_version": 3, "text": text})


def test_atomic_folder_creates_target(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "r1"  # parents are created
    with atomic_folder(target) as temp:
        assert temp.is_dir()
        assert not target.exists()
        (temp / "run.json").write_text("new")
    assert (target / "run.json").read_text() == "new"
    assert temporaries(target.parent) == []


def test_atomic_folder_refuses_existing_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "r1"
    make_run(target, "old")
    with pytest.raises(RareEventError, match="already exists") as info:
        with atomic_folder(target) as temp:
            (temp / "run.json").write_text("new")
    assert "`overwrite`" in str(info.value)
    assert (target / "run.json").read_text() == run_json("old")
    assert temporaries(tmp_path) == []


def test_atomic_folder_overwrite_replaces(tmp_path: Path) -> None:
    target = tmp_path / "r1"
    make_run(target, "old")
    (target / "scores.csv").write_text("gone after overwrite")  # a file runs write
    with atomic_folder(target, overwrite=True) as temp:
        (temp / "run.json").write_text("new")
        assert (target / "run.json").read_text() == run_json(
            "old"
        )  # old one stays until the end
    assert sorted(p.name for p in target.iterdir()) == ["run.json"]
    assert (target / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("overwrite", [False, True])
def test_atomic_folder_body_raising_keeps_old_and_leaves_no_temp(
    tmp_path: Path, error: BaseException, overwrite: bool
) -> None:
    target = tmp_path / "r1"
    if overwrite:
        make_run(target, "old")
    with pytest.raises(type(error)):
        with atomic_folder(target, overwrite=overwrite) as temp:
            (temp / "run.json").write_text("half")
            (temp / "model.keras").write_bytes(b"\x00" * 10)
            raise error
    assert temporaries(tmp_path) == []
    if overwrite:
        assert sorted(p.name for p in target.iterdir()) == ["run.json"]
        assert (target / "run.json").read_text() == run_json("old")
    else:
        assert not target.exists()


def test_a_failed_final_move_is_a_user_error_that_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last rename failing (a full disk, a permission lost meanwhile) names the folder and leaves neither it nor a temporary."""
    import errno

    import rareevent.storage as storage

    target = tmp_path / "r1"
    real_rename = os.rename

    def failing_rename(source: object, destination: object) -> None:
        if Path(str(destination)) == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_rename(source, destination)

    monkeypatch.setattr(storage.os, "rename", failing_rename)
    with pytest.raises(
        RareEventError, match=r"r1: cannot write here \(No space left on device\)"
    ):
        with atomic_folder(target) as temp:
            (temp / "run.json").write_text("new")
    assert temporaries(tmp_path) == [] and not target.exists()


def test_atomic_folder_clears_own_leftover_temp(tmp_path: Path) -> None:
    target = tmp_path / "r1"
    leftover = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-new-r1"
    leftover.mkdir()
    (leftover / "junk").write_text("x")
    with atomic_folder(target) as temp:
        assert list(temp.iterdir()) == []
        (temp / "run.json").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["run.json"]


# ---------------------------------------------------------------- stale temporaries


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    dead = dead_pid()
    stale_file = tmp_path / f"{TEMP_PREFIX}{dead}-x"
    stale_file.write_text("left by kill -9")
    stale_dir = tmp_path / f"{TEMP_PREFIX}{dead}-run"
    stale_dir.mkdir()
    (stale_dir / "model.keras").write_text("x")
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-x"
    mine.write_text("in use")
    parent = (
        tmp_path / f"{TEMP_PREFIX}{os.getppid()}-x"
    )  # a live process that is not us
    parent.write_text("in use elsewhere")
    odd = tmp_path / f"{TEMP_PREFIX}notapid-x"
    odd.write_text("not ours to judge")
    normal = tmp_path / "run1"
    normal.mkdir()

    remove_stale_temporaries(tmp_path)

    assert not stale_file.exists()
    assert not stale_dir.exists()
    assert mine.read_text() == "in use"
    assert parent.exists()
    assert odd.exists()
    assert normal.is_dir()


def test_remove_stale_temporaries_missing_folder_is_fine(tmp_path: Path) -> None:
    remove_stale_temporaries(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_stale_old_run_caught_between_renames_is_restored(tmp_path: Path) -> None:
    pid = dead_pid()
    old = tmp_path / f"{TEMP_PREFIX}{pid}-old-run1"
    old.mkdir()
    (old / "run.json").write_text("{}")
    (old / SET_ASIDE_FILE).write_text("run1")
    kept = (
        tmp_path / f"{TEMP_PREFIX}{pid}-old-run2"
    )  # its run exists: the overwrite had finished
    kept.mkdir()
    (kept / SET_ASIDE_FILE).write_text("run2")
    (tmp_path / "run2").mkdir()
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run1", "run2"]
    assert sorted(p.name for p in (tmp_path / "run1").iterdir()) == [
        "run.json"
    ]  # the mark is gone
    assert (tmp_path / "run1" / "run.json").read_text() == "{}"


def test_recovery_restores_only_what_it_set_aside(tmp_path: Path) -> None:
    """Issue 9, case 5: ``.tmp-<dead>-old-foo`` is what a run named ``old-foo`` left when killed while saving (0.1.0 names)."""
    pid = dead_pid()
    unmarked = tmp_path / f"{TEMP_PREFIX}{pid}-old-foo"
    unmarked.mkdir()
    (unmarked / "model.keras").write_bytes(b"half written")
    other = tmp_path / f"{TEMP_PREFIX}{pid}-old-bar"  # marked, but for another name
    other.mkdir()
    (other / SET_ASIDE_FILE).write_text("baz")
    remove_stale_temporaries(tmp_path)
    assert (
        list(tmp_path.iterdir()) == []
    )  # no run 'foo' or 'bar' invented, the leftovers are gone


def test_temporary_names_carry_their_kind(tmp_path: Path) -> None:
    """New content for a run named ``old-foo`` cannot be read as the run ``foo`` set aside."""
    with atomic_folder(tmp_path / "old-foo") as temp:
        assert temp.name == f"{TEMP_PREFIX}{os.getpid()}-new-old-foo"


def test_overwrite_marks_the_old_run_it_sets_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an atomic exchange the old run is renamed aside with a mark naming it, removed when it goes back."""
    import rareevent.storage

    target = tmp_path / "run"
    make_run(target, "old")
    (target / "scores.csv").write_text("old")
    real_rename = os.rename
    marks: list[str] = []

    def rename(src: Path, dst: Path) -> None:
        if (
            Path(dst) == target and "-new-" in Path(src).name
        ):  # the new run's rename in: the old one is aside now
            marks.append(
                (
                    tmp_path / f"{TEMP_PREFIX}{os.getpid()}-old-run" / SET_ASIDE_FILE
                ).read_text()
            )
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(rareevent.storage, "_exchange", lambda a, b: False)
    monkeypatch.setattr(rareevent.storage.os, "rename", rename)
    with pytest.raises(
        RareEventError, match=r"run: cannot write here \(Input/output error\)"
    ):  # one error line, not a traceback
        with atomic_folder(target, overwrite=True) as folder:
            (folder / "scores.csv").write_text("new")
    assert marks == ["run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (
        sorted(p.name for p in target.iterdir()) == ["run.json", "scores.csv"]
        and (target / "scores.csv").read_text() == "old"
    )


def test_stale_output_temporaries_are_cleared_next_to_the_output(
    tmp_path: Path,
) -> None:
    pid = dead_pid()
    stale = tmp_path / f"{TEMP_PREFIX}{pid}-new-out.csv"
    stale.write_text("partial")
    foreign = (
        tmp_path / f"{TEMP_PREFIX}{pid}-notes.txt"
    )  # not ours to judge next to a user's file
    foreign.write_text("x")
    with atomic_file(tmp_path / "out.csv") as temp:
        temp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name, "out.csv"]


def test_hold_name_refuses_a_second_holder_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "same"
    with hold_name(target):
        with pytest.raises(
            RareEventError, match="another rareevent process is writing this run now"
        ):
            with hold_name(target):
                pass
        remove_stale_temporaries(target.parent)  # a held lock is not stale
        assert temporaries(target.parent) == [f"{TEMP_PREFIX}lock-same"]
    assert (
        list(tmp_path.iterdir()) == []
    )  # the lock file and the runs folder made for it are gone
    (tmp_path / f"{TEMP_PREFIX}lock-killed").write_text(
        ""
    )  # its holder died by kill -9: the kernel freed the lock
    remove_stale_temporaries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_overwrite_exchanges_without_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rareevent.storage

    target = tmp_path / "run"
    make_run(target, "old")
    (target / "scores.csv").write_text("old")
    renames: list[tuple[str, str]] = []
    monkeypatch.setattr(
        rareevent.storage.os, "rename", lambda a, b: renames.append((a, b))
    )
    with atomic_folder(target, overwrite=True) as folder:
        (folder / "scores.csv").write_text("new")
    assert renames == []  # renameat2(RENAME_EXCHANGE) swapped the folders in one step
    assert (target / "scores.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
