"""Cooperative stopping: a signal asks a run to stop; the run stops at the next safe point.

Raising ``KeyboardInterrupt`` from a signal handler lands anywhere: inside TensorBoard's writer,
a file write or a lock, whose clean-up can then hang or lose the run's record. So clstm's signal
handlers (Ctrl-C and SIGTERM for ``clstm run``; every signal a sweep passes on to its workers)
only *request* a stop. :class:`clstm.plugins.stopping.StopPlugin` checks the request after each
training and evaluation iteration and raises :class:`clstm.errors.Interrupted` there, where the
run records what it measured (status ``interrupted``, resumable). A second signal while a stop is
pending raises at once, for a run stuck outside those loops.

No heavy imports here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from clstm.errors import Interrupted

_requested: str | None = None


def request_stop(cause: str) -> None:
    """Ask the running experiment to stop; a second request while one is pending raises now."""
    global _requested
    if _requested is not None:
        raise Interrupted(_requested)
    _requested = cause


def requested() -> str | None:
    """The cause of a pending stop request (``"Ctrl-C"``, ``"SIGTERM"``, ...), or None."""
    return _requested


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested (called at safe points)."""
    if _requested is not None:
        raise Interrupted(_requested)


def clear() -> None:
    """Forget a pending request (after the interruption was handled)."""
    global _requested
    _requested = None


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a stop instead of raising anywhere.

    Only in the main thread (Python delivers signals there); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        request_stop(signal_name(signum))

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    clear()
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        clear()
