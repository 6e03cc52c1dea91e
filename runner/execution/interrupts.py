"""Ctrl-C and SIGTERM as exceptions in the main thread, held back while a launch is under way."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Cancelled(BaseException):
    """Raised in the main thread by SIGTERM so the run ends KILLED (a BaseException, like ^C)."""


class _State:
    deferring = False
    pending: BaseException | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    exc: BaseException = KeyboardInterrupt() if signum == signal.SIGINT else Cancelled()
    if _state.deferring:
        _state.pending = exc  # raised by raise_pending() once a handle exists to cancel
        return
    raise exc


@contextmanager
def cancellable() -> Iterator[None]:
    """While active (main thread only), ^C raises KeyboardInterrupt and SIGTERM Cancelled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.deferring, _state.pending = False, None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold signals back: a launch interrupted half-way would leave a container or process
    running with no handle to stop it. Call raise_pending() where the handle can be cancelled."""
    _state.deferring = True
    try:
        yield
    finally:
        _state.deferring = False


def raise_pending() -> None:
    """Raise a signal that arrived while deferred(), if any."""
    exc, _state.pending = _state.pending, None
    if exc is not None:
        raise exc
