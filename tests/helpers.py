"""Test helpers: run the real CLI in a subprocess and write small projects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# The interpreter running the tests (not a pyenv shim) runs the CLI, as `runner` would.
RUNNER = [sys.executable, "-m", "runner"]

# A probe entry point: prints its argv (after the script) as one JSON line.
ARGV_PROBE = "import json, sys; print('ARGV=' + json.dumps(sys.argv[1:]))\n"


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``runner ARGS`` and capture its output as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*RUNNER, *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def spawn_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RUNNER, *args],
        cwd=cwd,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Create a project folder from {relative path: content} (content is dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


def records(status: str | None = None) -> list[dict[str, Any]]:
    args = ["runs", "list", "--json"] + (["--status", status] if status else [])
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def record(run_id: str) -> dict[str, Any]:
    result = run_cli("runs", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def probe_argv(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("ARGV="))
    return list(json.loads(line[len("ARGV=") :]))
