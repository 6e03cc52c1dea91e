"""A working copy git cannot read still runs, says so, and the record keeps the warning."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import records, run_cli, write_project


def test_a_corrupt_index_is_said_and_recorded(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", {"MLproject": "entry_points:\n  main: {command: 'true'}\n"}
    )
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(project), "commit", "-qm", "init"], check=True)
    (project / ".git" / "index").write_bytes(b"not an index")
    result = run_cli("run", str(project))
    assert result.returncode == 0, result.stderr
    warning = (
        f"git cannot read the working copy at {project.resolve()}: .git/index: index file "
        "smaller than expected; the run is recorded without a git commit"
    )
    assert f"runner: warning: {warning}" in result.stderr
    [rec] = records()
    assert rec["source"]["commit"] is None
    assert rec["tags"]["runner.source_warning"] == warning
