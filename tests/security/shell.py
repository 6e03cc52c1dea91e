"""Run rendered commands under the real bash, in a throwaway directory, as runner does."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}


def run_bash(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``bash -c command`` with no input, captured output and a short timeout."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )


def files_made_by(command: str) -> set[str]:
    """The names of the files ``command`` leaves in the empty directory it runs in."""
    with tempfile.TemporaryDirectory() as tmp:
        run_bash(command, Path(tmp))
        return {p.name for p in Path(tmp).iterdir()}
