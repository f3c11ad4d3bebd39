"""Ctrl-C and SIGTERM while a model trains: deferred to the end of the current batch."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

# How long a Ctrl-C waits for the end of a training batch before it is raised where it landed.
INTERRUPT_GRACE_S = 2.0


@contextmanager
def interrupt_at_batch_end() -> Iterator[None]:
    """Ctrl-C or SIGTERM while a model trains stops it at the end of the current batch
    (exit 130 as before).

    A KeyboardInterrupt raised wherever the signal lands can strike inside
    TensorFlow or rich while they hold a lock, and then the process hangs
    instead of stopping: once in CI, train ignored a Ctrl-C for 30 s. So the
    first signal is only noted, and training raises at the next batch
    boundary (``stop_between_batches``). Outside a batch loop (reading the
    file, the threshold, the PCA baseline) nobody asks: after
    ``INTERRUPT_GRACE_S`` the interrupt is raised where it lands, as before,
    and a block that ends first raises it on leaving, so that nothing after
    it (saving the run) runs. A second signal is raised at once. Where the
    real-time timer is taken (by a program that embeds the app) or outside
    the main thread, signals are left as they are.
    """
    import threading

    from rareevent.schedule import stop_between_batches

    if threading.current_thread() is not threading.main_thread() or signal.getitimer(
        signal.ITIMER_REAL
    ) != (0.0, 0.0):
        yield
        return
    requested: list[int] = []
    raised: list[bool] = []

    def on_signal(signum: int, frame: object) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
        signal.setitimer(signal.ITIMER_REAL, INTERRUPT_GRACE_S)

    def raise_once() -> bool:
        """Whether the noted request is raised now; never twice (an alarm already due
        must not strike the clean-up).
        """
        if not requested or raised:
            return False
        signal.setitimer(signal.ITIMER_REAL, 0)
        raised.append(True)
        return True

    def on_alarm(signum: int, frame: object) -> None:
        if raise_once():
            raise KeyboardInterrupt

    previous = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGINT, on_signal),
            (signal.SIGTERM, on_signal),
            (signal.SIGALRM, on_alarm),
        )
    }
    try:
        with stop_between_batches(raise_once):
            yield
    finally:
        signal.setitimer(
            signal.ITIMER_REAL, 0
        )  # the timer was free on entry: only this block armed it
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if requested:
        raise KeyboardInterrupt  # the block ended before a batch end or the alarm took the signal
