"""A third-party environment manager registered under `runner.env_managers` runs a project."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import records, run_cli, write_project
from tests.plugins import install_toy_manager


def _project(root: Path) -> Path:
    # toy-tool exists only in the toy env's bin/: the run finds it through the activation
    return write_project(root, {"MLproject": "entry_points:\n  main: {command: toy-tool}\n"})


def test_a_plugin_manager_builds_and_activates_the_env(tmp_path: Path) -> None:
    env = install_toy_manager(tmp_path / "site")
    project = _project(tmp_path / "p")
    result = run_cli("run", str(project), "--env-manager", "toy", env=env)
    assert result.returncode == 0, result.stderr
    [rec] = records()
    environment = rec["environment"]
    assert f"toy says hello from {environment['key'][:12]}" in result.stdout
    assert environment["manager"] == "toy" and environment["lock"] == "hello"
    assert environment["packages"] == ["toy-tool==hello"] and environment["tool"] == "toy-tool"
    assert Path(environment["prefix"]).is_relative_to(Path(os.environ["RUNNER_HOME"]) / "envs")


def test_a_damaged_plugin_env_is_rebuilt_and_the_run_says_why(tmp_path: Path) -> None:
    env = install_toy_manager(tmp_path / "site")
    project = _project(tmp_path / "p")
    assert run_cli("run", str(project), "--env-manager", "toybox", env=env).returncode == 0
    prefix = Path(records()[0]["environment"]["prefix"])
    (prefix / "greeting").unlink()
    result = run_cli("run", str(project), "--env-manager", "toy", env=env)
    assert result.returncode == 0, result.stderr
    newest = records()[0]["environment"]
    assert newest["rebuilt"] == "its greeting is missing" and newest["prefix"] == str(prefix)
    assert "toy says hello" in result.stdout


def test_without_the_plugin_the_name_is_refused(tmp_path: Path) -> None:
    result = run_cli("run", str(_project(tmp_path / "p")), "--env-manager", "toy")
    assert result.returncode != 0
    assert "Invalid value for --env-manager: 'toy'. Must be one of [" in result.stderr
    assert records() == []
