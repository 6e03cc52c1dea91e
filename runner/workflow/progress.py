"""How a workflow shows its progress: a live view on a terminal, plain lines otherwise, JSON."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Protocol

from runner.console import say
from runner.display import printable
from runner.home import run_artifacts_dir
from runner.workflow.state import StepState

LIVE_SECONDS = 0.25  # how often the live view redraws
TAIL_BYTES = 4096


class Reporter(Protocol):
    def event(self, step: StepState, message: str) -> None: ...

    def tick(self, steps: Mapping[str, StepState]) -> None: ...

    def close(self, steps: Mapping[str, StepState]) -> None: ...


def reporter_for(*, json_lines: bool, quiet: bool) -> Reporter:
    if json_lines:
        return JsonReporter()
    if not quiet and sys.stderr.isatty():
        return LiveReporter()
    return PlainReporter(quiet)


class PlainReporter:
    """One line per change of a step, on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def event(self, step: StepState, message: str) -> None:
        say(f"step {step.name}: {message}", quiet=self.quiet)

    def tick(self, steps: Mapping[str, StepState]) -> None:
        return None

    def close(self, steps: Mapping[str, StepState]) -> None:
        return None


class JsonReporter:
    """One JSON object per event on stdout (the summary follows at the end)."""

    def event(self, step: StepState, message: str) -> None:
        line = {"event": "step", "step": step.name, "message": message, **step.summary()}
        print(json.dumps(line, separators=(",", ":")), flush=True)

    def tick(self, steps: Mapping[str, StepState]) -> None:
        return None

    def close(self, steps: Mapping[str, StepState]) -> None:
        return None


class LiveReporter:
    """A table redrawn in place: each step's state and time, the last output line of each
    running step; events are kept as lines above it."""

    def __init__(self) -> None:
        self._drawn = 0
        self._last = 0.0

    def event(self, step: StepState, message: str) -> None:
        self._erase()
        say(f"step {step.name}: {message}")

    def tick(self, steps: Mapping[str, StepState]) -> None:
        if time.monotonic() - self._last >= LIVE_SECONDS:
            self._draw(steps)

    def close(self, steps: Mapping[str, StepState]) -> None:
        self._draw(steps)
        self._drawn = 0  # the last table stays on screen

    def _erase(self) -> None:
        if self._drawn:
            sys.stderr.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self, steps: Mapping[str, StepState]) -> None:
        lines = table_lines(steps, tails=True)
        self._erase()
        sys.stderr.write("".join(line + "\n" for line in lines))
        sys.stderr.flush()
        self._drawn, self._last = len(lines), time.monotonic()


def table_lines(steps: Mapping[str, StepState], *, tails: bool) -> list[str]:
    width = max((len(name) for name in steps), default=4)
    lines = []
    for step in steps.values():
        seconds = step.seconds()
        elapsed = "" if seconds is None else f"{seconds:7.1f}s"
        run = f"run {step.run_id[:12]}" if step.run_id else ""
        lines.append(printable(f"  {step.name:<{width}}  {step.status:<8} {elapsed:>8}  {run}"))
        running = tails and step.status == "running" and step.run_id
        if running and (tail := last_line(step.run_id or "")):
            lines.append(printable(f"  {'':<{width}}    | {tail[:100]}"))
    return lines


def last_line(run_id: str) -> str:
    """The last line the run printed (from its output.log)."""
    try:
        with open(run_artifacts_dir(run_id) / "output.log", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""
