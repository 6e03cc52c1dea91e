"""Lock files, uv's environment, interpreter discovery and the env/lock commands (no uv run)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.commands.env import ago, env, human_size
from runner.commands.lock import lock as lock_command
from runner.envs import PreparedEnv
from runner.envs.base import BaseEnvManager, EnvLock
from runner.envs.cache import ensure_env, record_use
from runner.envs.digest import env_key
from runner.envs.prepare import lease_env, prepare_env
from runner.envs.python.interpreters import _parse, discovery_path
from runner.envs.python.lock import LOCK_NAME, Lock, parse_lock, read_committed_lock, write_lock
from runner.envs.python.uvcmd import uv_bin, uv_env
from runner.errors import EnvBuildError, SpecError
from runner.project.records import EnvSpec, ProjectSpec
from tests.helpers import write_project

LOCK_TEXT = """\
six==1.16.0 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
Typing_Extensions[x]==4.12.2 ; python_version >= "3.8" \\
    --hash=sha256:ccc
"""


def test_lock_packages_are_normalised_and_sorted() -> None:
    lock = Lock(LOCK_TEXT)
    assert lock.packages() == ["six==1.16.0", "typing-extensions==4.12.2"]
    assert lock.has_hashes()


def test_lock_without_hashes_for_every_line() -> None:
    assert not Lock("six==1.16.0 --hash=sha256:a\n./local-pkg\n").has_hashes()
    assert not Lock("").has_hashes()


def test_options_and_comments_are_not_requirements() -> None:
    lock = Lock("--index-url https://pkgs.example.invalid/simple\n# note\nsix==1.16.0\n")
    assert lock.requirements() == ["six==1.16.0"]


def test_render_and_parse_round_trip(tmp_path: Path) -> None:
    lock = Lock(LOCK_TEXT, python="3.11.7", inputs="d" * 64)
    path = write_lock(tmp_path, lock)
    assert path == tmp_path / LOCK_NAME
    assert path.read_text().startswith("# runner lock v1")
    assert read_committed_lock(tmp_path) == Lock(LOCK_TEXT, "3.11.7", "d" * 64, "committed")
    assert not list(tmp_path.glob(f".{LOCK_NAME}.*"))


def test_a_hand_written_lock_needs_no_header() -> None:
    parsed = parse_lock("six==1.16.0\r\n\r\n", source="committed")
    assert (parsed.text, parsed.python, parsed.inputs) == ("six==1.16.0\n", "", "")


def test_no_committed_lock(tmp_path: Path) -> None:
    assert read_committed_lock(tmp_path) is None


def test_a_runaway_committed_lock_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.envs.python import lock as lock_module

    monkeypatch.setattr(lock_module, "MAX_LOCK_BYTES", 10)
    (tmp_path / LOCK_NAME).write_text("six==1.16.0\n")
    with pytest.raises(SpecError) as err:
        read_committed_lock(tmp_path)
    assert err.value.message == "runner.lock exceeds size limit (12 bytes > 10 bytes)"


def test_a_committed_lock_linked_out_of_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("six==1.16.0\n")
    project = tmp_path / "proj"
    project.mkdir()
    (project / LOCK_NAME).symlink_to("../elsewhere.txt")
    with pytest.raises(SpecError) as err:
        read_committed_lock(project)
    assert err.value.message == (
        f"runner.lock is a link to {(tmp_path / 'elsewhere.txt').resolve()}, outside the "
        "project: refused"
    )


def test_a_committed_lock_linked_inside_the_project_is_read(tmp_path: Path) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "v1.lock").write_text("six==1.16.0\n")
    (tmp_path / LOCK_NAME).symlink_to("locks/v1.lock")
    lock = read_committed_lock(tmp_path)
    assert lock is not None and lock.text == "six==1.16.0\n"


def test_committed_lock_must_be_utf8(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_bytes(b"six\xff\n")
    with pytest.raises(SpecError, match=r"runner\.lock: invalid UTF-8"):
        read_committed_lock(tmp_path)


# --- uv's environment -----------------------------------------------------------------

INDEX = "https://pkgs.example.invalid/simple"


def test_pip_index_settings_are_mapped_for_uv() -> None:
    env = uv_env({"PIP_INDEX_URL": INDEX, "PIP_FIND_LINKS": "/wheels", "HOME": "/nonexistent"})
    assert env["UV_INDEX_URL"] == INDEX and env["UV_FIND_LINKS"] == "/wheels"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"


def test_uv_settings_win_over_pip_settings() -> None:
    env = uv_env({"PIP_INDEX_URL": INDEX, "UV_DEFAULT_INDEX": "x", "HOME": "/nonexistent"})
    assert "UV_INDEX_URL" not in env


def test_pip_config_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "pip.conf").write_text(
        f"[global]\nindex-url = {INDEX}\n[install]\nextra-index-url = a\n  b\n"
    )
    env = uv_env({"PIP_CONFIG_FILE": str(tmp_path / "pip.conf"), "HOME": str(tmp_path)})
    assert env["UV_INDEX_URL"] == INDEX and env["UV_EXTRA_INDEX_URL"] == "a b"


def test_python_downloads_only_when_allowed_and_no_venv_leaks() -> None:
    env = uv_env({"RUNNER_ALLOW_PYTHON_DOWNLOADS": "1", "VIRTUAL_ENV": "/v", "HOME": "/x"})
    assert "UV_PYTHON_DOWNLOADS" not in env and "VIRTUAL_ENV" not in env


def test_uv_binary_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_UV", "/opt/uv")
    assert uv_bin() == "/opt/uv"
    monkeypatch.delenv("RUNNER_UV")
    assert Path(uv_bin()).name == "uv"


def test_uv_that_cannot_start_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from runner.envs.python.uvcmd import run_uv

    monkeypatch.setenv("RUNNER_UV", str(tmp_path / "missing-uv"))
    with pytest.raises(EnvBuildError) as err:
        run_uv(["--version"], cwd=tmp_path)
    assert err.value.message.startswith(f"cannot start uv ({tmp_path / 'missing-uv'})")
    assert err.value.hint is not None and "RUNNER_UV" in err.value.hint


# --- interpreter discovery ------------------------------------------------------------


def test_pyenv_shims_are_swapped_for_the_real_installs(tmp_path: Path) -> None:
    for version in ("3.10.13", "3.12.1"):
        (tmp_path / "pyenv" / "versions" / version / "bin").mkdir(parents=True)
    (tmp_path / "pyenv" / "shims").mkdir()
    path = discovery_path(
        os.pathsep.join([str(tmp_path / "pyenv" / "shims"), "/usr/bin", "/other/shims"])
    )
    dirs = path.split(os.pathsep)
    assert dirs[0] == str(Path(sys.base_prefix) / "bin")
    assert dirs[1:] == [
        str(tmp_path / "pyenv/versions/3.12.1/bin"),
        str(tmp_path / "pyenv/versions/3.10.13/bin"),
        "/usr/bin",
    ]


def test_only_pyenv_installs_that_may_match_are_probed(tmp_path: Path) -> None:
    for name in ("3.10.13", "3.11.7", "3.11.2", "3.12.1", "my-venv"):
        (tmp_path / "pyenv" / "versions" / name / "bin").mkdir(parents=True)
    (tmp_path / "pyenv" / "shims").mkdir()

    def probed(request: str) -> list[str]:
        dirs = discovery_path(str(tmp_path / "pyenv" / "shims"), request).split(os.pathsep)
        return [Path(d).parent.name for d in dirs[1:]]

    assert probed("3.11") == ["my-venv", "3.11.7", "3.11.2"]
    assert probed("3.11.2") == ["my-venv", "3.11.2"]
    assert probed(">=3.11") == ["my-venv", "3.12.1", "3.11.7", "3.11.2", "3.10.13"]


def test_cpython_is_preferred_and_uv_order_kept() -> None:
    rows = [
        {"path": "/pypy", "version": "3.11.9", "implementation": "pypy"},
        {"path": "/a", "version": "3.11.8", "implementation": "cpython"},
        {"path": "/b", "version": "3.11.7", "implementation": "cpython"},
    ]
    assert [i.path.name for i in _parse(json.dumps(rows))] == ["a", "b", "pypy"]


def test_unreadable_interpreter_list() -> None:
    with pytest.raises(EnvBuildError, match="interpreter list runner cannot read"):
        _parse("not json")


# --- prepare_env without building -------------------------------------------------------


def test_local_builds_nothing(tmp_path: Path, runner_home: Path) -> None:
    write_project(tmp_path, {"python_env.yaml": "dependencies: [six]\n"})
    env = EnvSpec(kind="python_env", file=tmp_path / "python_env.yaml")
    prepared = prepare_env(ProjectSpec(tmp_path, "p", env), "local")
    assert prepared == PreparedEnv(manager="local", python=prepared.python)
    assert prepared.env_vars("/usr/bin") == {}
    assert not (runner_home / "envs").exists()
    with lease_env(prepared, run_id="r1"):
        pass


def test_lease_env_records_the_run() -> None:
    class Empty(BaseEnvManager):
        name = "uv"

    key = env_key("uv", "", "cpython-3.11.7", "x")
    lock = EnvLock(python="3.11.7")
    path = ensure_env(Empty(), key, lock, progress=lambda m: None).path
    with lease_env(PreparedEnv(manager="uv", key=key, prefix=path), run_id="run-9"):
        result = CliRunner().invoke(env, ["list", "--json"])
    listed = json.loads(result.output)
    assert [(e["key"], e["runs"], e["in_use"]) for e in listed] == [(key, ["run-9"], True)]
    table = CliRunner().invoke(env, ["list"]).output.splitlines()
    assert table[0].split() == [
        "KEY",
        "MANAGER",
        "PYTHON",
        "SIZE",
        "LAST",
        "USED",
        "RUNS",
        "IN",
        "USE",
    ]
    assert table[1].split()[:3] == [key[:12], "uv", "3.11.7"]
    record_use(path)


# --- commands ---------------------------------------------------------------------------


def test_env_list_when_empty() -> None:
    result = CliRunner().invoke(env, ["list"])
    assert result.exit_code == 0 and "no cached environments" in result.output


def test_env_gc_rejects_a_bad_age() -> None:
    result = CliRunner().invoke(env, ["gc", "--older-than", "soon"])
    assert isinstance(result.exception, Exception)
    assert "invalid age 'soon'" in str(result.exception)


def test_env_gc_dry_run_reports_nothing_to_do() -> None:
    result = CliRunner().invoke(env, ["gc", "--dry-run"])
    assert result.exit_code == 0 and "would remove 0 environment(s), 0 B" in result.output


def test_lock_refuses_a_project_without_a_python_env(tmp_path: Path) -> None:
    write_project(tmp_path, {"MLproject": "name: p\nentry_points:\n  main:\n    command: 'true'\n"})
    result = CliRunner().invoke(lock_command, [str(tmp_path)])
    assert isinstance(result.exception, SpecError)
    assert "nothing to lock" in result.exception.message


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (2048, "2.0 KB"), (5 * 1024**3, "5.0 GB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_ago() -> None:
    assert (ago(100, now=130), ago(0, now=7200), ago(0, now=3 * 86400)) == (
        "just now",
        "2h ago",
        "3d ago",
    )
