"""``rareevent score --follow``: score a file's lines as another program appends them,
until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..console import EXIT_INTERRUPTED, consoles, note, warn
from ..render import file_line

if TYPE_CHECKING:
    from rareevent.options import ScoreSpec
    from rareevent.record import RunView


def follow_file(
    data: Path,
    record: RunView,
    detector: Any,
    spec: ScoreSpec,
    output: Path | None,
    kind: str,
    poll: float,
) -> NoReturn:
    """``score --follow``: score lines as they are written until Ctrl-C or SIGTERM, then
    print a summary; exit 130.

    The windows go to ``output`` (else stdout) line by line as they are
    scored, so that file grows as it goes instead of appearing whole;
    alarm episodes are announced on stderr as they open and close (and as
    events in JSON Lines).
    """
    import time as clock

    from rareevent.follow import Follower

    stopped: list[int] = []
    handlers = {
        signum: signal.signal(signum, lambda number, frame: stopped.append(number))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    err = Console(
        stderr=True,
        highlight=False,
        markup=False,
        soft_wrap=True,
        color_system=None if os.environ.get("NO_COLOR") else "auto",
        quiet=consoles.quiet,
    )
    follower = Follower(data, record, detector, spec)
    lines = FollowLines(output, kind, err)
    try:
        if not data.exists():
            note(f"{data}: waiting for the file to appear")
        while not stopped:
            update = follower.poll()
            if update.restarted:
                warn(f"{update.restarted} (a new segment: no window spans the two)")
            lines.write(update)
            if not update.rows and not update.restarted and not follower.pending:
                clock.sleep(poll)
        summary = follower.summary()
        lines.event("summary", summary)
        lines.finish()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        follower.close()
        lines.close()
    opened = summary["open_episode"]
    err.print(
        f"stopped following [bold]{escape(str(data))}[/]: {summary['rows']:,} "
        f"rows, {summary['windows']:,} windows, {summary['flagged']:,} flagged "
        f"(threshold {summary['threshold']:.6g}), {summary['alarm_episodes']} "
        "alarm episode(s) closed"
        + (f", one open since line {file_line(opened['start_row'])}" if opened else "")
        + (
            f", {summary['restarts']} restart(s) of the file"
            if summary["restarts"]
            else ""
        ),
        markup=True,
    )
    raise typer.Exit(EXIT_INTERRUPTED)


class FollowLines:
    """The windows of ``score --follow`` through a
    :class:`~rareevent.window_writer.WindowWriter` (CSV or JSON Lines), each alarm event right
    after the window it belongs to.

    ``output`` (else stdout) is opened, and so emptied, only when there is
    something to write or at a clean stop: a followed file refused at its
    first lines leaves an existing output as it was. A full disk or a
    file-size limit while writing is "cannot write here", exit 2.
    """

    def __init__(self, output: Path | None, kind: str, err: Console) -> None:
        self.output, self.kind, self.err = output, kind, err
        self._writer: Any = None if output else self._writer_to(sys.stdout)

    def _writer_to(self, handle: Any) -> Any:
        from rareevent.window_writer import WindowWriter

        return WindowWriter(handle, self.kind)

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from rareevent.storage import open_to_write

            assert (
                self.output is not None
            )  # without one, the writer goes to stdout from the start
            self._writer = self._writer_to(open_to_write(self.output))
        return self._writer

    def finish(self) -> None:
        """At a clean stop: ``output`` is this run's (empty when nothing was written to
        it), complete on disk.
        """
        if self.output is not None:
            from rareevent.storage import write_errors

            with write_errors(self.output):
                self.writer.handle.close()

    def close(self) -> None:
        """Close ``output`` if it was opened; stdout stays open."""
        if self.output is not None and self._writer is not None:
            with contextlib.suppress(
                OSError
            ):  # a write error is being reported already
                self._writer.handle.close()

    def write(self, update: Any) -> None:
        if len(update.windows) or update.closed or update.opened:
            from rareevent.storage import write_errors

            with write_errors(self.output or "<stdout>"):
                self._write(update)

    def _write(self, update: Any) -> None:
        frame = update.windows
        rows = frame["row"].tolist() if len(frame) else []
        header = (
            self.kind == "csv" and self.writer.first
        )  # written once, before the first window
        lines = self.writer.lines(frame) if len(frame) else []
        if header and lines:
            self.writer.handle.write(lines.pop(0))
        # at one row: its window, then an alarm it opens, then one it closes (a
        # one-window alarm opens and closes at the same row, in that order)
        items = [(row, 0, line) for row, line in zip(rows, lines, strict=False)]
        items += [
            (alarm["start_row"], 1, ("alarm_opened", alarm)) for alarm in update.opened
        ]
        items += [
            (alarm["end_row"], 2, ("alarm_closed", alarm)) for alarm in update.closed
        ]
        items.sort(key=lambda item: (item[0], item[1]))
        for _, _, item in items:
            if isinstance(item, str):
                self.writer.handle.write(item)
            else:
                self.event(*item)
        self.writer.handle.flush()

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """An alarm event or the summary: a JSON Lines record, and a line on stderr."""
        if self.kind == "jsonl":
            from rareevent.storage import write_errors

            with write_errors(self.output or "<stdout>"):
                self.writer.event(name, fields)
                self.writer.handle.flush()
        when = lambda key: f" ({fields[key]})" if key in fields else ""  # noqa: E731
        if name == "alarm_opened":
            self.err.print(
                "[bold red]alarm opened[/] at line "
                f"{file_line(fields['start_row'])}{when('start_time')}: error "
                f"{fields['error']:.4g}",
                markup=True,
            )
        elif name == "alarm_closed":
            self.err.print(
                "[bold]alarm closed[/]: lines "
                f"{file_line(fields['start_row'])}-{file_line(fields['end_row'])}"
                f"{when('end_time')}, {fields['windows']} window(s), "
                f"peak {fields['peak_error']:.4g}, top sensors "
                f"{escape(fields['top_features'].replace(';', ' '))}",
                markup=True,
            )
