"""Atomic writes: a file or folder appears complete at its final path, or not at all.

Everything is first written under a hidden temporary name in the target's
own folder (same file system), flushed to disk, then renamed into place.
An exception or Ctrl-C removes the temporary; a ``kill -9`` can leave a
hidden ``.tmp-*`` entry, which :func:`remove_stale_temporaries` clears
later, but never a half-written file under the real name.

Temporary names always carry their kind after the process id,
``.tmp-<pid>-new-NAME`` or ``.tmp-<pid>-old-NAME``, so no name can be
read as the other kind (``.tmp-<pid>-new-old-foo`` is new content for
``old-foo``, never the run ``foo`` set aside).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from rareevent.errors import RareEventError

T = TypeVar("T")

TEMP_PREFIX = ".tmp-"
NEW_MARK = "new-"
OLD_MARK = "old-"
LOCK_MARK = "lock-"
# inside a folder set aside by an overwrite: the name to restore it to
SET_ASIDE_FILE = ".rareevent-set-aside"
# the files that make a folder something rareevent wrote, and so something `overwrite` may replace:
# a run (run.json), a per-group run (fleet.json), a detector saved through the library
# (detector.json)
MARK_FILES = ("run.json", "fleet.json", "detector.json")
# every file rareevent writes into such a folder: `overwrite` removes these and nothing else
# (the scores of a run, the weights of a Keras or a pca model); a --per-group run also holds
# one such folder per group
OWN_FILES = frozenset(
    {*MARK_FILES, "scores.csv", "model.weights.h5", "model.npz", SET_ASIDE_FILE}
)
PARQUET_DONE = (
    "_SUCCESS"  # a Parquet folder written by Spark (`score --engine spark --output`)
)
# errors only a write gives: reported as "cannot write here" wherever they surface
# inside an atomic block
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _temp_name(target: Path, kind: str = NEW_MARK) -> Path:
    """``.tmp-<pid>-new-NAME`` (new content) or, with ``kind=OLD_MARK``,
    ``.tmp-<pid>-old-NAME`` (an old run set aside).
    """
    return target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{kind}{target.name}")


def temp_beside(path: Path, suffix: str) -> Path:
    """A temporary entry next to ``path`` for work on its new content,
    ``.tmp-<pid>-new-NAME<suffix>``.

    ``path`` may itself be this process's temporary of ``NAME`` (what
    :func:`atomic_file` yields): the name is that of the final entry, so that
    :func:`remove_stale_temporaries` for ``NAME`` clears it after a ``kill -9``.
    """
    own = f"{TEMP_PREFIX}{os.getpid()}-{NEW_MARK}"
    name = path.name[len(own) :] if path.name.startswith(own) else path.name
    return _temp_name(path.with_name(name + suffix))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``.

    A ``target`` inside a folder rareevent wrote (a run) is refused: an
    output must never replace a run's own files. A full disk, a read-only
    file system or a file-size limit met while the block writes is
    "cannot write here"; ``target`` is then left as it was.
    """
    target = Path(target)
    if target.is_dir():
        raise RareEventError(f"{target}: is a folder, cannot write a file there")
    if not target.parent.is_dir():
        raise RareEventError(
            f"{target.parent}: folder not found for output {target.name}"
        )
    check_not_in_run(target)
    remove_stale_temporaries(target.parent, target.name)
    temp = _temp_name(target)
    try:
        _writable(target, temp.touch)
        with write_errors(target):
            yield temp
        _writable(target, lambda: _replace_durably(temp, target))
    finally:
        _remove_quietly(temp)


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file, folder or link; a failure here (a read-only file system)
    must not hide the error being raised.
    """
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def write_errors(target: str | Path) -> Iterator[None]:
    """Report an error only a write gives (a full disk, a read-only file system, a
    file-size limit) as "cannot write here" for ``target``.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise _cannot_write(Path(target), exc) from None


def open_to_write(target: str | Path) -> IO[str]:
    """``target`` opened for writing text in place (what grows as it goes, like
    ``score --follow``'s output); a refusal is "cannot write here".
    """
    target = Path(target)
    check_not_in_run(target)
    return _writable(target, lambda: open(target, "w", encoding="utf-8", newline=""))


def _cannot_write(target: Path, exc: OSError) -> RareEventError:
    reason = (
        os.strerror(exc.errno)
        if exc.errno
        else " ".join(str(exc.strerror or exc).split())
    )  # the system's words: a library's strerror can run over many lines
    return RareEventError(
        f"{target}: cannot write here ({reason})",
        hint="choose a folder you can write to, or free space",
    )


def check_not_in_run(target: str | Path, runs_dir: bool = False) -> None:
    """Refuse an output file ``target`` inside a run folder (any folder rareevent wrote).

    With ``runs_dir`` the ``target`` is a folder runs are saved into, and is
    refused when it is a run folder itself too: a run saved inside another
    one would be deleted by an ``overwrite`` of the outer run.
    """
    target = Path(target)
    full = Path(os.path.abspath(target))
    for folder in (full, *full.parents) if runs_dir else full.parents:
        found = _mark_of(folder)
        if found is None:
            continue
        if runs_dir:
            where = (
                "is a run folder"
                if folder == full
                else f"is inside the run folder {folder}"
            )
            raise RareEventError(
                f"{target}: {where} (it holds {found}); a run is never saved inside another run",
                hint="choose a `runs_dir` outside the run folders",
            )
        raise RareEventError(
            f"{target}: is inside the run folder {folder} (it holds {found}); "
            "an output never goes into a run",
            hint="choose an output outside the run folders",
        )


def _replace_durably(temp: Path, target: Path) -> None:
    _fsync(temp)
    os.replace(temp, target)


def _writable(target: Path, action: Callable[[], T]) -> T:
    """Run a file-system ``action`` for ``target``, reporting refusals as a user error."""
    try:
        return action()
    except OSError as exc:
        raise _cannot_write(target, exc) from None


def check_free(target: str | Path, overwrite: bool = False) -> Path:
    """``target`` as a Path; refused when it exists and ``overwrite`` is off, or is not
    a folder rareevent wrote.

    ``overwrite`` replaces only a real folder that :func:`is_replaceable`
    says rareevent wrote: never a data folder, the runs folder, a folder
    holding some other file, a file or a symbolic link.
    """
    target = Path(target)
    if not os.path.lexists(target):
        return target
    if not overwrite:
        raise RareEventError(
            f"{target}: a run with this name already exists",
            hint="choose another `name` or pass `overwrite`",
        )
    in_the_way = _not_own(target) if _mark_of(target) is not None else None
    if in_the_way is not None:
        raise RareEventError(
            f"{target}: holds {in_the_way}, which rareevent did not write there; "
            "`overwrite` replaces only a run folder that holds nothing else",
            hint=f"move {in_the_way} out of {target}, or choose another `name`",
        )
    if not is_replaceable(target):
        what = (
            "a symbolic link"
            if target.is_symlink()
            else "a file"
            if not target.is_dir()
            else "a folder that is not a rareevent run"
        )
        raise RareEventError(
            f"{target}: is {what}; `overwrite` replaces only a run folder",
            hint="choose another `name`, or move that folder away yourself",
        )
    return target


def _mark_of(folder: Path) -> str | None:
    """The mark file that makes ``folder`` one rareevent wrote: a regular file of
    :data:`MARK_FILES` holding a JSON object with a ``format_version``.
    """
    for mark in MARK_FILES:
        path = folder / mark
        if not path.is_file() or path.is_symlink():
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(content, dict) and "format_version" in content:
            return mark
    return None


def _not_own(folder: Path) -> str | None:
    """The first entry of the run folder ``folder`` that rareevent did not write, or None.

    The entry is named by its path relative to ``folder``.

    Its own are the files of :data:`OWN_FILES`, this module's hidden
    temporaries and, in a ``--per-group`` run (``fleet.json``), the groups'
    run folders, which must hold only their own files in turn.
    """
    per_group = (folder / "fleet.json").is_file()
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            return entry.name
        if entry.is_file() and (entry.name in OWN_FILES or _is_temporary(entry.name)):
            continue
        if entry.is_dir() and per_group and _mark_of(entry) == "run.json":
            inner = _not_own(entry)
            if inner is None:
                continue
            return f"{entry.name}/{inner}"
        return entry.name + ("/" if entry.is_dir() else "")
    return None


def _is_temporary(name: str) -> bool:
    """Whether ``name`` is one of this module's hidden temporaries (``.tmp-<pid>-...``)."""
    pid, _, _ = name[len(TEMP_PREFIX) :].partition("-")
    return name.startswith(TEMP_PREFIX) and pid.isdigit()


def is_replaceable(folder: str | Path) -> bool:
    """Whether ``folder`` is a real folder rareevent wrote and holds nothing else.

    That is a run, a per-group run or a saved detector (its mark file holds a
    JSON object, and every entry is one rareevent writes there), or a Spark
    Parquet output.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    if _mark_of(folder) is not None:
        return _not_own(folder) is None
    names = [entry.name for entry in folder.iterdir()]
    return PARQUET_DONE in names and all(
        name == PARQUET_DONE or name.startswith(("part-", "._SUCCESS.", ".part-"))
        for name in names
    )


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
    _remove_quietly(temp)
    _writable(target, temp.mkdir)
    try:
        with write_errors(target):
            yield temp
        _writable(
            target, lambda: _move_into_place(temp, target)
        )  # a full disk or a lost permission: a user error, the old folder kept
        _fsync(
            target.parent
        )  # the new folder is in place: a failure here is not "cannot write here"
    finally:
        _remove_quietly(temp)


def _move_into_place(temp: Path, target: Path) -> None:
    """Make the finished ``temp`` folder ``target``, replacing an existing one (see
    :func:`atomic_folder`).
    """
    for item in temp.iterdir():
        _fsync(item)
    check_free(
        target, overwrite=True
    )  # again at the moment of replacing: the folder may have changed while the block ran
    if not target.exists():
        os.rename(temp, target)
    elif not _exchange(temp, target):
        old = _temp_name(target, OLD_MARK)
        mark = target / SET_ASIDE_FILE
        mark.write_text(
            target.name, encoding="utf-8"
        )  # recovery restores only folders marked so
        os.rename(target, old)
        try:
            os.rename(temp, target)
        except BaseException:
            os.rename(old, target)
            mark.unlink()
            raise
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where
    unavailable.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return (
        renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
        == 0
    )


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> None:
    """Clear ``.tmp-<pid>-*`` entries left by processes that no longer run, and unheld name locks.

    A ``.tmp-<pid>-old-NAME`` folder whose ``NAME`` is missing and which
    holds the set-aside mark this module wrote (naming ``NAME``) is an old
    run caught between the two renames of an overwrite: it is put back, not
    deleted. With ``name`` only the new-content temporaries of that one
    entry are cleared: next to an output file other programs' files may lie.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.glob(f"{TEMP_PREFIX}*"):
        pid, _, rest = entry.name[len(TEMP_PREFIX) :].partition("-")
        if entry.name.startswith(TEMP_PREFIX + LOCK_MARK):
            if name is None:
                _remove_unheld_lock(entry)
            continue
        if (
            not pid.isdigit()
            or int(pid) == os.getpid()
            or _alive(int(pid))
            or (name is not None and not _belongs(rest, name))
        ):
            continue
        original = folder / rest[len(OLD_MARK) :] if rest.startswith(OLD_MARK) else None
        if (
            original is not None
            and not original.exists()
            and _set_aside_from(entry) == original.name
        ):
            os.rename(entry, original)
            (original / SET_ASIDE_FILE).unlink()
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _belongs(rest: str, name: str) -> bool:
    """Whether a temporary named ``.tmp-<pid>-REST`` holds new content for the entry
    ``name`` (itself or work beside it).
    """
    return rest == NEW_MARK + name or rest.startswith(f"{NEW_MARK}{name}.")


def _set_aside_from(entry: Path) -> str | None:
    """The name in the set-aside mark of ``entry``; None when it has none."""
    try:
        return (entry / SET_ASIDE_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _lock_path(target: Path) -> Path:
    return target.with_name(f"{TEMP_PREFIX}{LOCK_MARK}{target.name}")


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding ``flock`` on ``path`` (created if missing); None when
    another process holds it.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(
            fd
        )  # its last holder removed this file meanwhile: lock the one at the path now


def _remove_unheld_lock(path: Path) -> None:
    """Remove a lock file no process holds (its holder was killed; the kernel freed the
    lock itself).
    """
    fd = _try_lock(path)
    if fd is not None:
        path.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def hold_name(target: str | Path) -> Iterator[None]:
    """Hold the name of ``target`` for this process while the block runs.

    The lock is ``flock`` on the hidden file ``.tmp-lock-NAME`` next to
    ``target``: a second process asking for the same name is refused at
    once, and the kernel releases the lock when its holder dies, even by
    ``kill -9``. The lock file, and the folders made for it, are removed on exit.
    """
    target = Path(target)
    made = [
        folder
        for folder in (target.parent, *target.parent.parents)
        if not folder.exists()
    ]
    _writable(target, lambda: target.parent.mkdir(parents=True, exist_ok=True))
    lock = _lock_path(target)
    try:
        fd = _writable(target, lambda: _try_lock(lock))
        if fd is None:
            raise RareEventError(
                f"{target}: another rareevent process is writing this run now",
                hint="wait for it to finish, or choose another `name`",
            )
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            os.close(fd)
    finally:
        for folder in made:  # deepest first; a folder that now holds something stays
            try:
                folder.rmdir()
            except OSError:
                break


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
