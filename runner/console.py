"""What the runner itself prints: the entry point's output as-is, its own lines on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable

from runner.backend import LogChunk

ProgressFn = Callable[[str], None]


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
    if not quiet:
        print(f"runner: {message}", file=sys.stderr, flush=True)


def progress_printer(quiet: bool) -> ProgressFn:
    """Environment-build progress on a terminal only; warnings always (unless quiet)."""
    if quiet:
        return lambda message: None
    if sys.stderr.isatty():
        return lambda message: say(message)
    return lambda message: say(message) if message.startswith("warning:") else None
