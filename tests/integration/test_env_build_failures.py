"""A failed environment build says what failed first (uv's headline, the package), then the
last lines; the whole log is the run's env-build.log. Real uv, a local sdist that cannot build."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_project

SETUP = 'raise RuntimeError("this package cannot be built: the compiler is missing")\n'


@pytest.fixture
def broken_sdist(tmp_path: Path) -> str:
    """A local sdist whose setup.py fails: a direct reference to it, offline."""
    path = tmp_path / "dist" / "brokenpkg-1.0.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        data = SETUP.encode()
        info = tarfile.TarInfo("brokenpkg-1.0/setup.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return f"brokenpkg @ {path.as_uri()}"


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {"MLproject": "entry_points:\n  main: {command: 'echo ran'}\n"}
    return write_project(tmp_path / "p", {**base, **files})


def _failed_run(result_stderr: str) -> dict[str, object]:
    run_id = re.search(r"run ([0-9a-f]{32}) FAILED", result_stderr)
    assert run_id, result_stderr
    shown = run_cli("runs", "show", run_id.group(1), "--json")
    return dict(json.loads(shown.stdout))


def test_install_failure_leads_with_uvs_headline_and_the_package(
    tmp_path: Path, broken_sdist: str, runner_home: Path
) -> None:
    # a committed lock is installed as is: the build fails in the install step
    project = _project(
        tmp_path, {"python_env.yaml": "python: '3.11'\n", "runner.lock": broken_sdist}
    )
    result = run_cli("run", str(project), timeout=300)
    assert result.returncode == 1 and "ran" not in result.stdout
    error = result.stderr[result.stderr.index("error: ") :].splitlines()
    assert (
        error[0] == f"error: cannot install the locked packages: Failed to build `{broken_sdist}`"
    )
    assert error[1] == f"  failed package: {broken_sdist}"
    assert error[2] == "  because: The build backend returned an error"
    assert "  last lines of the log:" in error
    assert "    RuntimeError: this package cannot be built: the compiler is missing" in error
    record = _failed_run(result.stderr)
    assert record["status"] == "FAILED"
    log = runner_home / "artifacts" / str(record["run_id"]) / "env-build.log"
    assert error[-1] == f"hint: the full log is the run's env-build.log: {log}"
    text = log.read_text()
    assert "$ uv venv" in text and "$ uv pip install" in text and "Traceback" in text


def test_resolve_failure_names_the_package_that_failed(tmp_path: Path, broken_sdist: str) -> None:
    env = f"python: '3.11'\ndependencies: ['{broken_sdist}']\n"
    result = run_cli("run", str(_project(tmp_path, {"python_env.yaml": env})), timeout=300)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert lines[at].startswith("error: cannot resolve the dependencies of python_env.yaml")
    assert lines[at].endswith(f": Failed to build `{broken_sdist}`")
    assert lines[at + 1] == f"  failed package: {broken_sdist}"
    assert re.fullmatch(r"runner: run [0-9a-f]{32} FAILED before its entry point started",
                        lines[at - 1])  # fmt: skip


def test_an_unsatisfiable_pin_names_it(tmp_path: Path) -> None:
    env = "python: '3.11'\ndependencies: ['six==0.0.0.404']\n"
    result = run_cli("run", str(_project(tmp_path, {"python_env.yaml": env})), timeout=300)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert lines[at].endswith(": No solution found when resolving dependencies")
    assert lines[at + 1] == "  failed package: six==0.0.0.404"
    assert lines[at + 2].startswith("  because: Because there is no version of six==0.0.0.404")
