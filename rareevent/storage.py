"""Atomic writes: a file or folder appears complete at its final path, or not at all.

Everything is first written under a hidden temporary name in the target's
own folder (same file system), flushed to disk, then renamed into place.
An exception or Ctrl-C removes the temporary; a ``kill -9`` can leave a
hidden ``.tmp-*`` entry, which :func:`remove_stale_temporaries` clears
later, but never a half-written file under the real name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rareevent.errors import RareEventError

TEMP_PREFIX = ".tmp-"


def _temp_name(target: Path) -> Path:
    return target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{target.name}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``."""
    target = Path(target)
    if target.is_dir():
        raise RareEventError(f"{target}: is a folder, cannot write a file there")
    if not target.parent.is_dir():
        raise RareEventError(f"{target.parent}: folder not found for output {target.name}")
    temp = _temp_name(target)
    try:
        yield temp
        _fsync(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``target``.

    With ``overwrite`` an existing ``target`` is replaced only at the very
    end: it is renamed aside, the new folder renamed in, then the old one
    deleted.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise RareEventError(f"{target}: a run with this name already exists", hint="choose another --name or pass --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(target)
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        yield temp
        for item in temp.iterdir():
            _fsync(item)
        if target.exists():
            old = target.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{target.name}")
            os.rename(target, old)
            os.rename(temp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temp, target)
        _fsync(target.parent)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete ``.tmp-<pid>-*`` entries left by processes that no longer run."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.glob(f"{TEMP_PREFIX}*"):
        pid = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
