"""Environment-build progress: a live line per step on a terminal, plain lines in a pipe."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from tests.helpers import RUNNER, run_cli, write_project


def _python_env_project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "p",
        {
            "MLproject": """
                entry_points:
                  main: {command: "python -c 'import six'"}
            """,
            "python_env.yaml": "python: '3.11'\ndependencies: ['six==1.16.0']\n",
        },
    )


def _run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns (code, screen text)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*RUNNER, *args], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, close_fds=True)  # fmt: skip
    os.close(follower)
    screen = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        screen += data
    os.close(leader)
    return proc.wait(timeout=300), screen.decode(errors="replace")


def test_progress_is_live_on_a_terminal(tmp_path: Path) -> None:
    code, screen = _run_on_a_terminal("run", str(_python_env_project(tmp_path)))
    assert code == 0, screen
    # a step is drawn in place (carriage return, erase line) with its elapsed time...
    assert "\r\x1b[Krunner: resolving 1 requirements for Python 3.11" in screen
    # ...and kept, when the next message comes, with how long it took
    assert re.search(r"\r\x1b\[Krunner: installing 1 packages \(\d+\.\ds\)\r\n", screen)
    assert "ready in" in screen
    # the entry point's output starts on a line of its own, after the started line
    started = screen.index(") started: python -c 'import six'\r\n")
    assert started > screen.index("ready in") and "\x1b[K" not in screen[started:]


def test_progress_lines_in_a_pipe(tmp_path: Path) -> None:
    result = run_cli("run", str(_python_env_project(tmp_path)))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    steps = [
        "runner: resolving 1 requirements for Python 3.11",
        "runner: creating environment with Python 3.11",
        "runner: installing 1 packages",
        "runner: installed 1 packages",
        "runner: compiling bytecode",
        "runner: compiled 1 files to bytecode",
        "runner: checking environment",
        "runner: environment ",
        "runner: run ",
    ]
    found = [next(i for i, line in enumerate(lines) if line.startswith(step)) for step in steps]
    assert found == sorted(found), lines
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert ") started: python -c 'import six'" in lines[found[-1]]
    assert lines[-1].startswith("runner: run ") and "FINISHED" in lines[-1]


def test_a_resolve_failure_never_says_started(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        {
            "MLproject": "entry_points:\n  main: {command: 'true'}\n",
            "python_env.yaml": "python: '3.11'\ndependencies: ['six==0.0.0.404']\n",
        },
    )
    result = run_cli("run", str(project))
    assert result.returncode == 1
    assert ") started:" not in result.stderr
    lines = result.stderr.splitlines()
    failed = next(line for line in lines if " FAILED" in line)
    assert re.fullmatch(r"runner: run [0-9a-f]{32} FAILED before its entry point started", failed)
    assert lines[lines.index(failed) + 1].startswith(
        "error: cannot resolve the dependencies of python_env.yaml for Python 3.11"
    )


def test_quiet_shows_only_the_entry_points_output(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        {
            "MLproject": "entry_points:\n  main: {command: 'python -c \"import six; print(1)\"'}\n",
            "python_env.yaml": "python: '3.11'\ndependencies: ['six==1.16.0']\n",
        },
    )
    result = run_cli("run", "-q", str(project))
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("1\n", "")
