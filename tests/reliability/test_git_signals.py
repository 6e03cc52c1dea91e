"""Ctrl-C or SIGTERM while git waits on a stalled server: the runner exits and no git is left.

The server on 127.0.0.1 accepts and never answers, as a hung remote does; the credentials of
the URL must never be in any process's argv (argv is readable by every user of the machine).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import RUNNER


def process_table() -> dict[int, tuple[int, str, bytes]]:
    """pid -> (parent pid, state, argv) of every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(stat[1]), stat[0], (entry / "cmdline").read_bytes())
            except (OSError, IndexError):
                continue  # it ended while we looked
    return table


def descendants(root: int, table: dict[int, tuple[int, str, bytes]]) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def wait_gone(pids: set[int], seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


@pytest.fixture
def stalled() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        yield server


@pytest.fixture
def runner_on(
    stalled: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> Iterator[subprocess.Popen[str]]:
    """`runner run http://u:SECRET@127.0.0.1:PORT/repo.git`, in its own process group (as a
    shell runs a foreground job), once git has connected to the stalled server."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    url = f"http://u:SECRET@127.0.0.1:{stalled.getsockname()[1]}/repo.git"
    proc = subprocess.Popen(
        [*RUNNER, "run", url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    connection, _ = stalled.accept()
    family = descendants(proc.pid, process_table())
    yield proc
    connection.close()
    for pid in alive(family | {proc.pid}):  # only what a failed test left behind
        with contextlib.suppress(ProcessLookupError):  # it may end between the look and the kill
            os.kill(pid, signal.SIGKILL)
    proc.communicate()


def test_credentials_are_in_no_argv(runner_on: subprocess.Popen[str]) -> None:
    table = process_table()
    gits = [pid for pid in descendants(runner_on.pid, table) if b"git" in table[pid][2]]
    assert gits, "git is not running: the test saw nothing"
    # the runner's own argv has the URL: the user typed it there; what it started must not
    # (only its own processes: another program on this machine may have SECRET in its argv)
    started = descendants(runner_on.pid, table)
    leaks = [table[pid][2] for pid in started if b"SECRET" in table[pid][2]]
    assert leaks == []


def ctrl_c(pid: int) -> None:
    os.killpg(pid, signal.SIGINT)  # a terminal signals the whole foreground process group


def terminate(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)  # as `kill PID`, a service manager or a batch system does


@pytest.mark.parametrize(("send", "code"), [(ctrl_c, 130), (terminate, 143)])
def test_a_signal_ends_the_runner_and_every_git(
    runner_on: subprocess.Popen[str], send: Callable[[int], None], code: int
) -> None:
    family = descendants(runner_on.pid, process_table())
    assert family, "git is not running: the test saw nothing"
    send(runner_on.pid)
    try:
        runner_on.communicate(timeout=30)  # a hang guard, not a timing goal
    except subprocess.TimeoutExpired:
        pytest.fail("the runner is still running long after the signal")
    assert runner_on.returncode == code
    assert wait_gone(family) == set()
