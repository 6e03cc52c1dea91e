"""Progress before the entry point starts: a line per step in a pipe, a live line on a terminal.

The interface for whatever reports progress (an environment manager's ``lock`` and ``build``,
the cache, a backend) is a plain ``Callable[[str], None]`` taking one line of text:

- a message whose first word ends in "-ing" ("resolving 3 requirements", "installing 12
  packages", "solving", "waiting for ...") is a step in progress: on a terminal it stays on a
  live line with its elapsed time until the next message, then it is kept with its duration;
- any other message ("resolved 12 packages", "environment ab12 ready in 4.1s") is a result;
- a message starting "warning:" is always printed as a line of its own.

In a pipe or a log every message is one plain line, as it arrives.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

from runner.display import printable

TICK_SECONDS = 0.1
_CLEAR_LINE = "\r\x1b[K"


def is_step(message: str) -> bool:
    """Whether ``message`` announces a step in progress (its first word ends in -ing)."""
    first = message.split(" ", 1)[0]
    return first.endswith("ing") and not message.startswith("warning:")


class ProgressView:
    """Shows progress lines on ``stream``; ``live`` animates steps in place (a terminal)."""

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self._stream, self._live = stream, live
        self._lock = threading.Lock()
        self._step: tuple[str, float] | None = None  # the live step and when it began
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.entry_point_started = False

    def __call__(self, message: str) -> None:
        with self._lock:
            self._end_step()
            if self._live and is_step(message):
                self._step = (message, time.monotonic())
                self._draw()
                self._start_ticker()
            else:
                self._write(f"runner: {printable(message, one_line=False)}\n")

    def started(self, message: str) -> None:
        """The entry point has started: from here its output owns the terminal."""
        self(message)
        with self._lock:
            self.entry_point_started, self._live = True, False

    def close(self) -> None:
        """End the live line (if any) and its ticker; later messages are plain lines."""
        with self._lock:
            self._end_step()
            self._live = False
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()

    def _end_step(self) -> None:
        if self._step is not None:
            message, began = self._step
            self._step = None
            shown = printable(message)
            self._write(f"{_CLEAR_LINE}runner: {shown} ({time.monotonic() - began:.1f}s)\n")

    def _draw(self) -> None:
        if self._step is None:
            return
        message, began = self._step
        line = f"runner: {printable(message)} {time.monotonic() - began:.1f}s"
        width = shutil.get_terminal_size((80, 24)).columns - 1  # a wrapped line cannot be redrawn
        self._write(_CLEAR_LINE + line[:width])

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # the terminal is gone: progress is not worth failing for
            pass

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="runner-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                if self._live:
                    self._draw()


def progress_view(quiet: bool) -> ProgressView:
    """The view of `runner run`: live on a terminal, lines in a pipe, nothing when ``quiet``."""
    if quiet:
        return _QuietView(sys.stderr, live=False)
    return ProgressView(sys.stderr, live=sys.stderr.isatty())


class _QuietView(ProgressView):
    def __call__(self, message: str) -> None:
        return None
