"""prepare_env through a plugin manager: lock, key, build, reuse, rebuild, activation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.envs.cache import MARKER, env_dir
from runner.envs.inventory import collect_garbage
from runner.envs.prepare import lease_env, prepare_env
from runner.project.records import EnvSpec, ProjectSpec
from tests.plugins import install_toy_manager, use_site


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectSpec:
    """A system project, with the toy manager installed from a distribution on sys.path."""
    install_toy_manager(tmp_path / "site")
    use_site(tmp_path / "site", monkeypatch)
    (tmp_path / "p").mkdir()
    return ProjectSpec(tmp_path / "p", "p", EnvSpec(kind="system"))


def tool_output(prepared_env: dict[str, str]) -> str:
    env = {**os.environ, **prepared_env}
    return subprocess.run(["toy-tool"], env=env, capture_output=True, text=True).stdout.strip()


def test_a_plugin_env_is_built_once_then_reused(project: ProjectSpec) -> None:
    messages: list[str] = []
    cold = prepare_env(project, "toy", progress=messages.append)
    assert cold.prefix == env_dir("toy", cold.key or "") and not cold.reused
    assert "building the toy" in messages
    assert messages[-1].startswith(f"environment {(cold.key or '')[:12]} ready in ")
    assert cold.record() == {
        "manager": "toy",
        "key": cold.key,
        "lock": "hello",
        "prefix": str(cold.prefix),
        "packages": ["toy-tool==hello"],
        "lock_source": "toy",
        "tool": "toy-tool",
    }
    warm = prepare_env(project, "toybox", progress=messages.append)
    assert warm.reused and (warm.key, warm.prefix) == (cold.key, cold.prefix)
    assert messages[-1] == f"using cached environment {(cold.key or '')[:12]}"


def test_activation_puts_the_env_on_path(project: ProjectSpec) -> None:
    prepared = prepare_env(project, "toy")
    assert prepared.prefix is not None
    env = prepared.env_vars("/usr/bin:/bin")
    assert env == {
        "TOY_ENV": prepared.prefix.name[:12],
        "PATH": f"{prepared.prefix}/bin:/usr/bin:/bin",
    }
    assert tool_output(env) == f"toy says hello from {prepared.prefix.name[:12]}"


def test_a_changed_lock_is_a_new_env(project: ProjectSpec) -> None:
    first = prepare_env(project, "toy")
    (project.root / "toy.lock").write_text("bonjour\n")
    second = prepare_env(project, "toy")
    assert second.key != first.key and not second.reused
    assert tool_output(second.env_vars(os.environ["PATH"])).startswith("toy says bonjour")


def test_an_unhealthy_env_is_rebuilt_and_the_reason_recorded(project: ProjectSpec) -> None:
    first = prepare_env(project, "toy")
    assert first.prefix is not None
    (first.prefix / "greeting").unlink()
    messages: list[str] = []
    again = prepare_env(project, "toy", progress=messages.append)
    assert not again.reused and again.prefix == first.prefix
    assert again.record()["rebuilt"] == "its greeting is missing"
    assert f"rebuilding environment {(first.key or '')[:12]}: its greeting is missing" in messages
    assert "rebuilt" not in prepare_env(project, "toy").record()  # healthy again


def test_lock_only_builds_nothing(project: ProjectSpec) -> None:
    locked = prepare_env(project, "toy", build=False)
    assert locked.prefix is None and locked.key and locked.lock == "hello"
    assert locked.env_vars("/usr/bin") == {}
    assert not env_dir("toy", locked.key).exists()
    assert prepare_env(project, "toy").key == locked.key  # the same key names both


def test_a_leased_plugin_env_records_the_run(project: ProjectSpec) -> None:
    prepared = prepare_env(project, "toy")
    assert prepared.prefix is not None
    with lease_env(prepared, run_id="run-7"):
        assert (prepared.prefix / MARKER).exists()
    assert '"run_id": "run-7"' in (prepared.prefix / ".runner-usage.jsonl").read_text()


def test_gc_removes_an_unhealthy_env_unless_it_is_in_use(project: ProjectSpec) -> None:
    healthy = prepare_env(project, "toy")
    (project.root / "toy.lock").write_text("bonjour\n")
    broken = prepare_env(project, "toy")
    assert broken.prefix is not None and healthy.prefix is not None
    (broken.prefix / "greeting").unlink()
    with lease_env(broken):
        assert collect_garbage(older_than=None).in_use[0].key == broken.key
    report = collect_garbage(older_than=None)
    assert [info.key for info in report.removed] == [broken.key]
    assert not broken.prefix.exists() and healthy.prefix.exists()
