"""--python-match: exact (default) refuses a patch pin that is not installed and names the
option; minor takes the newest installed patch of that minor and records both versions."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from runner.envs.python.interpreters import list_interpreters
from tests.helpers import record, run_cli, write_project

MINOR = ".".join(platform.python_version_tuple()[:2])  # this interpreter's: installed for sure
PIN = f"{MINOR}.99"  # a patch release nobody has


def _project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "p",
        {
            "MLproject": "entry_points:\n  main: {command: 'python -c \"import sys; "
            "print(sys.version.split()[0])\"'}\n",
            "python_env.yaml": f"python: {PIN}\n",
        },
    )


def _run_id(stderr: str) -> str:
    found = re.search(r"run ([0-9a-f]{32}) ", stderr)
    assert found, stderr
    return found.group(1)


def test_exact_refuses_a_missing_patch_and_offers_minor(tmp_path: Path) -> None:
    newest = list_interpreters(MINOR)[0].version
    result = run_cli("run", str(_project(tmp_path)))
    assert result.returncode == 1
    error, hint = result.stderr.splitlines()[-2:]
    assert error.startswith(f"error: no installed Python interpreter satisfies python: '{PIN}'")
    assert hint.startswith(f"hint: run with --python-match minor to use Python {newest}; or ")
    assert record(_run_id(result.stderr))["status"] == "FAILED"


def test_minor_uses_the_newest_patch_and_records_both(tmp_path: Path) -> None:
    newest = list_interpreters(MINOR)[0].version
    result = run_cli("run", "--python-match", "minor", str(_project(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{newest}\n"
    environment = record(_run_id(result.stderr))["environment"]
    assert (environment["python"], environment["python_requested"]) == (newest, PIN)
    assert environment["python_match"] == "minor"


def test_a_minor_pin_gives_the_same_env_either_way(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "python_env.yaml").write_text(f"python: '{MINOR}'\n")  # exact finds it too
    exact = run_cli("run", str(project))
    minor = run_cli("run", "--python-match", "minor", str(project))
    assert exact.returncode == minor.returncode == 0, exact.stderr + minor.stderr
    exact_env = record(_run_id(exact.stderr))["environment"]
    minor_env = record(_run_id(minor.stderr))["environment"]
    assert "python_requested" not in exact_env and "python_match" not in exact_env
    assert minor_env["python_requested"] == MINOR
    assert exact_env["python"] == minor_env["python"]
    assert exact_env["key"] == minor_env["key"]  # same interpreter, same lock: one env


def test_minor_with_a_manager_that_picks_no_interpreter_is_a_warning(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", {"MLproject": "entry_points:\n  main: {command: 'true'}\n"}
    )
    result = run_cli("run", "--python-match", "minor", str(project))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "runner: warning: --python-match minor has no effect with the local environment manager"
    )


def test_an_unknown_match_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("run", "--python-match", "major", str(_project(tmp_path)))
    assert result.returncode == 2
    assert "'major' is not one of 'exact', 'minor'" in result.stderr
