"""Environment-build progress is shown on a terminal and kept out of logs and pipes."""

from __future__ import annotations

import os
import pty
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


def test_progress_lines_on_a_terminal(tmp_path: Path) -> None:
    code, screen = _run_on_a_terminal("run", str(_python_env_project(tmp_path)))
    assert code == 0, screen
    assert "runner: resolving 1 requirements for Python 3.11" in screen
    assert "runner: installing 1 packages" in screen
    assert "ready in" in screen


def test_no_progress_when_not_a_terminal(tmp_path: Path) -> None:
    result = run_cli("run", str(_python_env_project(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "resolving" not in result.stderr
    assert "FINISHED" in result.stderr
