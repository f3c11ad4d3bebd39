"""Scoring a file on every core: the next chunk is read, and the last one written, on threads.

``score_csv`` reads a chunk, scores it (the forward pass spread over
threads itself, ``forward.threads()``) and writes its windows. pandas'
parser, numpy and pyarrow's writer release the GIL for most of their work,
so these run side by side: :func:`read_ahead` parses the next chunk while
this one is scored, and :class:`WriteBehind` writes a block while the next
is scored. Each holds at most ``depth`` items beyond the one its taker is
working on (one chunk read ahead, one block behind), so memory stays bounded, and
the order of everything is kept, so the output is the same bytes as when
the stages run one after the other. An error on either thread is raised on
the caller's, where it would have been raised without the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1  # how often a blocked thread looks whether it should stop


class _Channel(Generic[T]):
    """A queue between two threads that holds at most ``depth`` items counting the one the
    taker is still working on (``done`` frees its slot), and a flag that tells both to stop."""

    def __init__(self, depth: int) -> None:
        self.items: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
        self.slots = threading.Semaphore(depth)
        self.stop = threading.Event()

    def reserve(self) -> bool:
        """Wait for a free slot (before making the next item); False when the other side stopped."""
        while not self.stop.is_set():
            if self.slots.acquire(timeout=_POLL_S):
                return True
        return False

    def put(self, item: Any, error: BaseException | None = None) -> None:
        self.items.put((item, error))

    def get(self) -> tuple[Any, BaseException | None]:
        """The next item; ``(_END, None)`` when the other side stopped."""
        while not self.stop.is_set():
            try:
                return self.items.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END, None

    def done(self) -> None:
        """The taker finished with an item: its slot is free."""
        self.slots.release()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced on a thread: at most ``depth`` made but not yet taken by the consumer."""
    channel: _Channel[T] = _Channel(depth)
    source = iter(items)

    def produce() -> None:
        try:
            while channel.reserve():
                item = next(source, _END)
                channel.put(item)
                if item is _END:
                    return
        except BaseException as exc:  # raised on the consumer's thread, in its place
            channel.put(None, exc)

    thread = threading.Thread(target=produce, name="rareevent-read", daemon=True)
    thread.start()
    try:
        while True:
            item, error = channel.get()
            if error is not None:
                raise error
            if item is _END:
                return
            channel.done()
            yield item
    finally:
        channel.stop.set()
        thread.join()


class WriteBehind:
    """A sink that hands each block to ``sink`` on a thread: at most ``depth`` not yet written.

    Used as a context manager: leaving the block normally waits for the
    last block to be written (and raises the writer's error, if any);
    leaving it on an error stops the writer at once.
    """

    def __init__(self, sink: Callable[[Any], None], depth: int = 1) -> None:
        self.sink = sink
        self._channel: _Channel[Any] = _Channel(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._write, name="rareevent-write", daemon=True
        )
        self._thread.start()

    def _write(self) -> None:
        while True:
            item, _ = self._channel.get()
            if item is _END:
                return
            try:
                self.sink(item)
            except (
                BaseException
            ) as exc:  # raised on the caller's thread at its next call
                self._error = exc
                self._channel.stop.set()
                return
            self._channel.done()

    def __call__(self, block: Any) -> None:
        if self._error is None and self._channel.reserve():
            self._channel.put(block)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self._channel.put(_END)
        else:
            self._channel.stop.set()
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error
