"""A slow terminal never grows the runner: output waits in bounded buffers, output.log has all."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runner.backend import LogChunk
from runner.console import TerminalRelay
from runner.home import run_artifacts_dir
from tests.helpers import records, spawn_cli, write_project

LINES = 200_000
LINE = b"y" * 1023 + b"\n"  # 200,000 lines of 1 KiB: 200 MB
TALKER = f"""
    import sys

    out = sys.stdout.buffer
    for _ in range({LINES}):
        out.write({LINE!r})
    out.write(b"END-OF-OUTPUT\\n")
"""
PEAK_RSS_KB = 100 * 1024  # loose: the interpreter and its imports take about 40 MB


def _peak_rss_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match[1]) if match else None


def _slow_reader(pipe, got: list[int]) -> None:  # type: ignore[no-untyped-def]
    while chunk := pipe.read(4096):
        got.append(len(chunk))
        time.sleep(0.002)  # a terminal far slower than the entry point


def test_200_mb_to_a_slow_terminal(tmp_path: Path) -> None:
    mlproject = """
        name: t
        entry_points:
          main:
            command: "python3 talk.py"
    """
    project = write_project(tmp_path / "proj", {"MLproject": mlproject, "talk.py": TALKER})
    runner = spawn_cli("run", str(project))
    shown: list[int] = []
    reader = threading.Thread(target=_slow_reader, args=(runner.stdout.buffer, shown))  # type: ignore[union-attr]
    errors: list[str] = []
    error_reader = threading.Thread(target=lambda: errors.append(runner.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    error_reader.start()
    peak = 0
    while runner.poll() is None:
        peak = max(peak, _peak_rss_kb(runner.pid) or 0)
        time.sleep(0.05)
    reader.join()
    error_reader.join()
    [err] = errors
    assert runner.returncode == 0, err
    assert 0 < peak < PEAK_RSS_KB, f"the runner peaked at {peak} kB"
    [rec] = records()
    log = run_artifacts_dir(rec["run_id"]) / "output.log"
    assert log.stat().st_size == LINES * len(LINE) + len(b"END-OF-OUTPUT\n")  # all of it
    assert log.read_bytes().endswith(b"END-OF-OUTPUT\n")
    assert 0 < sum(shown) < log.stat().st_size  # the terminal got some and skipped the rest
    notes = re.findall(
        rf"\[runner: [\d,]+ bytes of output not shown here, the terminal was too slow; "
        rf"{re.escape(str(log))} has all of it\]",
        err,
    )
    assert 0 < len(notes) < 100  # one note per gap, not one per chunk


def test_the_terminal_skips_one_gap_with_one_note_and_keeps_the_order(tmp_path: Path) -> None:
    shown: list[bytes] = []
    holding, release = threading.Event(), threading.Event()

    def stuck_terminal(chunk: LogChunk) -> None:
        holding.set()
        release.wait()
        shown.append(chunk.data)

    log = tmp_path / "output.log"
    relay = TerminalRelay(stuck_terminal, log, limit=8)  # room for two chunks of 4 bytes
    chunks = [LogChunk("stdout", f"{i:03}\n".encode()) for i in range(6)]
    relay(chunks[0])
    holding.wait(timeout=30)  # the terminal is stuck on the first chunk
    for chunk in chunks[1:5]:
        relay(chunk)  # two fit; the next two are skipped
    release.set()
    _wait_until(lambda: len(shown) == 3)  # the terminal caught up
    relay(chunks[5])
    relay.close()
    note = (
        "\n[runner: 8 bytes of output not shown here, the terminal was too slow; "
        f"{log} has all of it]\n"
    )
    assert shown == [b"000\n", b"001\n", b"002\n", note.encode(), b"005\n"]


def _wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, "the terminal never caught up"
        time.sleep(0.01)
