"""What the runner itself prints: the entry point's output as-is, its own lines on stderr."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from runner.backend import LogChunk
from runner.display import printable

Sink = Callable[[LogChunk], None]
RELAY_BYTES = 4 << 20  # output waiting for a slow terminal; past this it is skipped there


def terminal_sink(chunk: LogChunk) -> None:
    """Pass the entry point's bytes through unchanged to the matching stream."""
    stream = sys.stdout if chunk.stream == "stdout" else sys.stderr
    stream.flush()
    stream.buffer.write(chunk.data)
    stream.buffer.flush()


def discard_sink(chunk: LogChunk) -> None:
    """Detached runs: output goes only to the log artifact."""


def say(message: str, *, quiet: bool = False) -> None:
    """A runner status line on stderr, so stdout stays the entry point's."""
    if not quiet:  # messages carry names and commands from projects: no terminal escapes
        print(f"runner: {printable(message, one_line=False)}", file=sys.stderr, flush=True)


class TerminalRelay:
    """Shows the run's output from a thread of its own, through a bounded buffer: a slow or
    stuck terminal never holds up the run or grows the runner. When the buffer is full, output
    is skipped on the terminal (``log_path`` has all of it) and a note says how much."""

    def __init__(self, sink: Sink, log_path: Path, limit: int = RELAY_BYTES) -> None:
        self._sink, self._log_path, self._limit = sink, log_path, limit
        self._chunks: deque[LogChunk] = deque()
        self._size = self._skipped = 0
        self._closed = self._gone = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._show, name="runner-terminal", daemon=True)
        self._thread.start()

    def __call__(self, chunk: LogChunk) -> None:
        with self._ready:
            if self._gone:
                return
            if self._must_skip(len(chunk.data)):
                self._skipped += len(chunk.data)
                return
            self._note_skipped()
            self._chunks.append(chunk)
            self._size += len(chunk.data)
            self._ready.notify()

    def _must_skip(self, size: int) -> bool:
        if self._skipped:  # one gap, one note: skip until the terminal has caught up
            return self._size > self._limit // 4
        return self._size > 0 and self._size + size > self._limit

    def close(self) -> None:
        """Wait until what is buffered has been shown (a ^C meanwhile cuts it short)."""
        with self._ready:
            self._note_skipped()
            self._closed = True
            self._ready.notify()
        self._thread.join()

    def _note_skipped(self) -> None:
        if self._skipped:
            note = (
                f"\n[runner: {self._skipped:,} bytes of output not shown here, the terminal was "
                f"too slow; {self._log_path} has all of it]\n"
            )
            self._chunks.append(LogChunk("stderr", note.encode()))
            self._skipped = 0

    def _show(self) -> None:
        while (chunk := self._next()) is not None:
            try:
                self._sink(chunk)
            except Exception:  # the terminal is gone (a closed pipe): the run goes on
                with self._ready:
                    self._gone, self._size = True, 0
                    self._chunks.clear()

    def _next(self) -> LogChunk | None:
        with self._ready:
            while not self._chunks and not self._closed:
                self._ready.wait()
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._size -= len(chunk.data)
            return chunk
