"""What a model shows while it trains: ``fit(verbose=...)`` and the CLI's progress bar.

``epoch_bar`` is the rich progress bar over the epochs (``train`` and
``update`` in a terminal, and ``fit(verbose=1)`` where stderr is one).
``fit_progress`` chooses for ``verbose`` what ``fit`` shows on stderr, as
Keras' ``fit(verbose=...)`` does: 0 nothing; 1 the bar in a terminal, else
(a log, a notebook) one line per epoch; 2 one line per epoch. A line is
``epoch 3/40 - loss 0.01234 - val_loss 0.01456 - 1.2s``; ``fit`` ends
with a line that sums the fit up (``fit_summary``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rareevent.errors import RareEventError

EpochCallback = Callable[[int, dict[str, float]], None]
VERBOSE = (0, 1, 2)


def check_verbose(verbose: object) -> int:
    """``verbose`` as 0, 1 or 2 (``True`` is 1); anything else is refused in one line."""
    if isinstance(verbose, bool) or verbose in VERBOSE:
        return int(verbose)
    raise RareEventError(f"verbose must be 0, 1 or 2, got {verbose!r}", param="verbose")


@contextmanager
def epoch_bar(
    what: str, epochs: int, console: object, disable: bool = False
) -> Iterator[EpochCallback]:
    """A rich progress bar over the epochs on ``console``: yields the callback that draws it.

    The bar is shown from the first epoch on, so a data error prints no
    empty bar, and is taken down however the block ends.
    """
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val_loss {task.fields[val_loss]}"),
        TimeElapsedColumn(),
        console=console,  # type: ignore[arg-type]
        disable=disable,
    )
    task = progress.add_task(
        "train", total=epochs, what=escape(what), loss="-", val_loss="-"
    )

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.update(
            task,
            completed=epoch + 1,
            loss=f"{logs.get('loss', 0):.4f}",
            val_loss=f"{logs.get('val_loss', 0):.4f}",
        )

    try:
        yield on_epoch
    finally:
        if progress.live.is_started:
            progress.stop()


@contextmanager
def fit_progress(
    verbose: int, what: str, epochs: int, stream: TextIO | None = None
) -> Iterator[EpochCallback | None]:
    """The per-epoch callback that shows ``verbose``'s progress on ``stream`` (default: stderr).

    ``None`` for ``verbose=0``.
    """
    stream = sys.stderr if stream is None else stream
    if not verbose:
        yield None
        return
    if verbose == 1 and _is_terminal(stream):
        from rich.console import Console

        with epoch_bar(what, epochs, Console(file=stream)) as on_epoch:
            yield on_epoch
        return
    started = time.perf_counter()
    width = len(str(epochs))

    def line(epoch: int, logs: dict[str, float]) -> None:
        losses = " - ".join(
            f"{key} {logs[key]:.4g}" for key in ("loss", "val_loss") if key in logs
        )
        print(
            f"epoch {epoch + 1:>{width}}/{epochs} - {losses} - "
            f"{time.perf_counter() - started:.1f}s",
            file=stream,
            flush=True,
        )

    yield line


def fit_summary(
    arch: str,
    epochs_run: int,
    best_epoch: int,
    threshold: float,
    strategy: str,
    seconds: float,
) -> str:
    """The line ``fit(verbose=1 or 2)`` ends with: how the model fitted, the threshold chosen."""
    fitted = (
        f"{epochs_run} epoch(s), best {best_epoch}" if epochs_run else "in closed form"
    )
    return f"fitted {arch}: {fitted}, threshold {threshold:.6g} ({strategy}), {seconds:.1f}s"


def _is_terminal(stream: TextIO) -> bool:
    """Whether a bar may be drawn on ``stream``: a terminal, and no ``NO_COLOR`` (as in the CLI)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
