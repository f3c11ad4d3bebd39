"""Atomic writes: a file or folder appears complete at its final path, or not at all.

Everything is first written under a hidden temporary name in the target's
own folder (same file system), flushed to disk, then renamed into place.
An exception or Ctrl-C removes the temporary; a ``kill -9`` can leave a
hidden ``.tmp-*`` entry, which :func:`remove_stale_temporaries` clears
later, but never a half-written file under the real name.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rareevent.errors import RareEventError

TEMP_PREFIX = ".tmp-"
OLD_MARK = "old-"


def _temp_name(target: Path, kind: str = "") -> Path:
    """``.tmp-<pid>-NAME`` (new content) or, with ``kind=OLD_MARK``, ``.tmp-<pid>-old-NAME`` (an old run set aside)."""
    return target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{kind}{target.name}")


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
        _writable(target, temp.touch)
        yield temp
        _fsync(temp)
        _writable(target, lambda: os.replace(temp, target))
    finally:
        temp.unlink(missing_ok=True)


def _writable(target: Path, action: Callable[[], object]) -> None:
    """Run a file-system ``action`` for ``target``, reporting refusals as a user error."""
    try:
        action()
    except OSError as exc:
        raise RareEventError(f"{target}: cannot write here ({exc.strerror})", hint="choose a folder you can write to") from None


def check_free(target: str | Path, overwrite: bool = False) -> Path:
    """``target`` as a Path; refused when it exists and ``overwrite`` is off."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise RareEventError(f"{target}: a run with this name already exists", hint="choose another --name or pass --overwrite")
    return target


@contextmanager
def atomic_folder(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``target``.

    With ``overwrite`` an existing ``target`` is replaced only at the very
    end, by an atomic exchange of the two folders where the system offers
    one (Linux ``renameat2``); elsewhere the old folder is renamed aside
    first and put back if the second rename fails, and
    :func:`remove_stale_temporaries` restores it after a crash in between.
    """
    target = check_free(target, overwrite)
    _writable(target, lambda: target.parent.mkdir(parents=True, exist_ok=True))
    temp = _temp_name(target)
    shutil.rmtree(temp, ignore_errors=True)
    _writable(target, temp.mkdir)
    try:
        yield temp
        for item in temp.iterdir():
            _fsync(item)
        if not target.exists():
            os.rename(temp, target)
        elif not _exchange(temp, target):
            old = _temp_name(target, OLD_MARK)
            os.rename(target, old)
            try:
                os.rename(temp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        _fsync(target.parent)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def remove_stale_temporaries(folder: str | Path) -> None:
    """Clear ``.tmp-<pid>-*`` entries left by processes that no longer run.

    A ``.tmp-<pid>-old-NAME`` folder whose ``NAME`` is missing is an old run
    caught between the two renames of an overwrite: it is put back, not deleted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.glob(f"{TEMP_PREFIX}*"):
        pid, _, rest = entry.name[len(TEMP_PREFIX) :].partition("-")
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        original = folder / rest[len(OLD_MARK) :] if rest.startswith(OLD_MARK) else None
        if original is not None and not original.exists():
            os.rename(entry, original)
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
