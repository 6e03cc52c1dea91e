"""uv environments for real: real uv, real index, small packages (numpy only in the sample)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.commands.lock import lock as lock_command
from runner.envs import PreparedEnv
from runner.envs.cache import MARKER, env_dir
from runner.envs.prepare import lease_env, prepare_env
from runner.envs.python.uvcmd import uv_bin
from runner.errors import EnvBuildError
from runner.project.records import EnvSpec, ProjectSpec
from tests.helpers import run_cli, write_project

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
REPO = Path(__file__).resolve().parents[2]
SHIM = """\
#!/bin/sh
# Logs every uv call, then runs the real uv; knobs let tests slow down or hang a step.
echo "$*" >> "$UV_TRACE_LOG"
if [ "$1" = "venv" ] && [ -n "$SHIM_VENV_SLEEP" ]; then sleep "$SHIM_VENV_SLEEP"; fi
if [ "$1 $2" = "pip install" ] && [ -n "$SHIM_INSTALL_HANG" ]; then
  "$REAL_UV" "$@"
  touch "$SHIM_INSTALL_HANG"
  sleep 120
fi
exec "$REAL_UV" "$@"
"""


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv download cache for the session: tests start cold in runner's cache, not uv's."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(autouse=True)
def uv_trace(tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every uv call of the test is logged to the returned file (through RUNNER_UV)."""
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    shim = tmp_path / "uv-shim"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    log = tmp_path / "uv-calls.log"
    log.touch()
    monkeypatch.setenv("REAL_UV", uv_bin())
    monkeypatch.setenv("RUNNER_UV", str(shim))
    monkeypatch.setenv("UV_TRACE_LOG", str(log))
    return log


def calls(log: Path, prefix: str = "") -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)]


def project(root: Path, deps: list[str], python: str = PY, **files: str) -> ProjectSpec:
    yaml = f"python: '{python}'\ndependencies: {json.dumps(deps)}\n"
    write_project(root, {"python_env.yaml": yaml, **files})
    return ProjectSpec(root, "p", EnvSpec(kind="python_env", file=root / "python_env.yaml"))


def run_in_env(prepared: PreparedEnv, code: str) -> str:
    env = {**os.environ, **prepared.env_vars(os.environ["PATH"])}
    return subprocess.run(
        ["python", "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_cold_build_then_warm_reuse_starts_no_uv(tmp_path: Path, uv_trace: Path) -> None:
    spec = project(tmp_path, ["six"])
    messages: list[str] = []
    cold = prepare_env(spec, None, progress=messages.append)
    assert not cold.reused and cold.manager == "uv" and cold.key and cold.prefix
    assert cold.prefix == env_dir("uv", cold.key) and cold.python and cold.python.startswith(PY)
    assert len(calls(uv_trace, "venv")) == 1 and len(calls(uv_trace, "pip install")) == 1
    assert "resolving 1 requirements for Python " + cold.python in messages
    assert "installing 1 packages" in messages and "installed 1 packages" in messages
    marker_mtime = (cold.prefix / MARKER).stat().st_mtime_ns
    before = calls(uv_trace)

    warm = prepare_env(spec, None)
    assert warm.reused and (warm.key, warm.prefix, warm.lock) == (cold.key, cold.prefix, cold.lock)
    assert calls(uv_trace) == before  # no resolver, no interpreter probe, no installer
    assert (warm.prefix / MARKER).stat().st_mtime_ns == marker_mtime


def test_a_cached_env_whose_interpreter_is_gone_is_rebuilt_from_the_same_lock(
    tmp_path: Path, uv_trace: Path
) -> None:
    spec = project(tmp_path, ["six"])
    first = prepare_env(spec, None)
    assert first.prefix is not None and first.key is not None
    python = first.prefix / "bin" / "python"
    python.unlink()  # as if the base interpreter had been uninstalled
    python.symlink_to(tmp_path / "removed-python")
    messages: list[str] = []
    again = prepare_env(spec, None, progress=messages.append)
    reason = f"its interpreter {tmp_path / 'removed-python'} is gone"
    assert not again.reused and (again.key, again.prefix) == (first.key, first.prefix)
    assert again.record()["rebuilt"] == reason
    assert f"rebuilding environment {first.key[:12]}: {reason}" in messages
    assert len(calls(uv_trace, "pip compile")) == 1  # the remembered lock, not a new one
    assert run_in_env(again, "import six; print('ok')") == "ok"


def test_lock_only_builds_nothing_and_is_remembered(tmp_path: Path, uv_trace: Path) -> None:
    """For a backend that installs the lock itself: resolve once, never create a venv."""
    spec = project(tmp_path, ["six==1.16.0"])
    locked = prepare_env(spec, None, build=False)
    assert locked.prefix is None and locked.key and locked.lock
    assert "six==1.16.0" in locked.lock and locked.record()["packages"] == ["six==1.16.0"]
    assert calls(uv_trace, "venv") == [] and calls(uv_trace, "pip install") == []
    before = calls(uv_trace)
    again = prepare_env(spec, None, build=False)
    assert (again.key, again.lock) == (locked.key, locked.lock)
    assert calls(uv_trace) == before  # remembered: no resolver the second time
    built = prepare_env(spec, None)
    assert built.key == locked.key  # the same key names the local env and the image layer


def test_the_entry_point_runs_with_the_env_interpreter(tmp_path: Path) -> None:
    prepared = prepare_env(project(tmp_path, ["six"]), "virtualenv")
    out = run_in_env(prepared, "import sys, six; print(sys.prefix); print(six.__file__)")
    prefix, six_file = out.splitlines()
    assert Path(prefix) == prepared.prefix
    assert prepared.prefix is not None and Path(six_file).is_relative_to(prepared.prefix)


def test_recorded_lock_equals_what_is_installed(tmp_path: Path) -> None:
    prepared = prepare_env(project(tmp_path, ["six", "idna", "packaging"]), None)
    assert prepared.prefix is not None
    freeze = subprocess.run(
        [uv_bin(), "pip", "freeze", "--python", str(prepared.prefix / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = sorted(line.lower().replace("_", "-") for line in freeze.split())
    assert prepared.details["packages"] == installed
    record = prepared.record()
    assert record["manager"] == "uv" and record["key"] == prepared.key
    assert record["lock"] == prepared.lock and "--hash=sha256:" in record["lock"]
    assert record["python"] == prepared.python and record["lock_source"] == "resolved"


def test_changed_requirements_file_gives_a_new_key(tmp_path: Path) -> None:
    spec = project(tmp_path, ["-r requirements.txt"], **{"requirements.txt": "six==1.16.0\n"})
    first = prepare_env(spec, None)
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    second = prepare_env(spec, None)
    assert second.key != first.key and not second.reused
    assert second.details["packages"] == ["six==1.17.0"]
    assert first.prefix is not None and (first.prefix / MARKER).exists()


def test_bad_pin_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path, ["numpy==0.0.1"]), None)
    message = err.value.message
    assert message.startswith("cannot resolve the dependencies of python_env.yaml for Python")
    assert "numpy==0.0.1" in message and len(message.splitlines()) <= 16
    assert "$ uv pip compile" in err.value.log
    assert not (Path(os.environ["RUNNER_HOME"]) / "envs" / "uv").exists()


def test_install_failure_keeps_nothing_and_carries_the_log(tmp_path: Path) -> None:
    spec = project(tmp_path, ["six"])
    (tmp_path / "runner.lock").write_text(
        "six==1.17.0 --hash=sha256:" + "0" * 64 + "\n"
    )  # a hash no six wheel has
    with pytest.raises(EnvBuildError) as err:
        prepare_env(spec, None)
    assert err.value.message.startswith("cannot install the locked packages: Failed to")
    assert "  failed package: six==1.17.0" in err.value.message.splitlines()
    assert "hash" in err.value.message.lower()
    assert "$ uv venv" in err.value.log and "$ uv pip install" in err.value.log
    envs = Path(os.environ["RUNNER_HOME"]) / "envs" / "uv"
    assert list(envs.iterdir()) == []  # neither a final dir nor a temp dir


def test_killed_build_is_never_reused_and_the_next_run_rebuilds(
    tmp_path: Path, uv_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, ["six"])
    hang = tmp_path / "install-done"
    monkeypatch.setenv("SHIM_INSTALL_HANG", str(hang))
    proc = subprocess.Popen(
        [sys.executable, "-c", PREPARE, str(tmp_path)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(hang, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    envs = Path(os.environ["RUNNER_HOME"]) / "envs" / "uv"
    leftovers = list(envs.iterdir())
    assert [p.name[:5] for p in leftovers] == [".tmp-"]  # installed, but never published
    monkeypatch.delenv("SHIM_INSTALL_HANG")

    prepared = prepare_env(project(tmp_path, ["six"]), None)
    assert not prepared.reused and prepared.prefix is not None
    assert list(envs.iterdir()) == [prepared.prefix]
    assert run_in_env(prepared, "import six; print('ok')") == "ok"


def test_four_concurrent_cold_builds_build_once(
    tmp_path: Path, uv_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, ["six"])
    monkeypatch.setenv("SHIM_VENV_SLEEP", "1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    assert len({out["key"] for out in outputs}) == 1
    assert sorted(out["reused"] for out in outputs) == [False, True, True, True]
    assert len(calls(uv_trace, "venv")) == 1 and len(calls(uv_trace, "pip install")) == 1


def test_runner_lock_is_committed_and_used_as_is(tmp_path: Path, uv_trace: Path) -> None:
    spec = project(tmp_path, ["six"])
    (tmp_path / "MLproject").write_text(
        "name: p\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: 'true'\n"
    )
    result = CliRunner().invoke(lock_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "runner.lock")
    assert "six==" in (tmp_path / "runner.lock").read_text()
    compiles = len(calls(uv_trace, "pip compile"))

    prepared = prepare_env(spec, None)
    assert prepared.details["lock_source"] == "committed" and prepared.warnings == ()
    assert prepare_env(spec, None).details["lock_source"] == "committed"  # warm, too
    assert len(calls(uv_trace, "pip compile")) == compiles  # the lock is not re-resolved

    (tmp_path / "python_env.yaml").write_text(f"python: '{PY}'\ndependencies: [six, idna]\n")
    stale = prepare_env(spec, None)
    assert stale.key == prepared.key and stale.details["packages"] == prepared.details["packages"]
    assert "runner.lock was generated from a different env file" in stale.warnings[0]


def test_no_matching_interpreter_names_what_is_installed(tmp_path: Path) -> None:
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path, ["six"], python="3.99"), None)
    assert err.value.message.startswith(
        "no installed Python interpreter satisfies python: '3.99'; installed: cpython-"
    )
    assert f"cpython-{sys.version_info.major}.{sys.version_info.minor}." in err.value.message
    assert err.value.hint is not None and "RUNNER_ALLOW_PYTHON_DOWNLOADS=1" in err.value.hint


def test_an_unsupported_python_request_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path, ["six"], python="3.5"), None)
    assert err.value.message.startswith("cannot list Python interpreters for '3.5': ")


def test_a_damaged_install_fails_the_health_check(tmp_path: Path) -> None:
    from runner.envs.python.lock import Lock
    from runner.envs.python.venv import _health_check

    prepared = prepare_env(project(tmp_path, ["six"]), None)
    assert prepared.prefix is not None and prepared.lock is not None
    (prepared.prefix / "lib" / f"python{PY}" / "site-packages" / "six.py").unlink()
    with pytest.raises(EnvBuildError) as err:
        _health_check(prepared.prefix, Lock(prepared.lock), [])
    assert err.value.message == "the new environment failed its health check: six: missing six.py"


def test_an_incomplete_committed_lock_is_caught(tmp_path: Path) -> None:
    spec = project(tmp_path, ["importlib-metadata"])
    (tmp_path / "runner.lock").write_text("importlib-metadata==8.5.0\n")  # zipp is missing
    with pytest.raises(EnvBuildError) as err:
        prepare_env(spec, None)
    assert err.value.message.startswith(
        "cannot verify the locked packages' dependencies (is runner.lock complete?)"
    )
    assert "zipp" in err.value.message


def test_console_scripts_survive_the_rename_into_place(tmp_path: Path) -> None:
    prepared = prepare_env(project(tmp_path, ["wheel"]), None)
    assert prepared.prefix is not None
    out = subprocess.run(
        [str(prepared.prefix / "bin" / "wheel"), "version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("wheel ")


def test_conda_yaml_with_uv_drops_conda_only_packages(tmp_path: Path) -> None:
    write_project(
        tmp_path, {"conda.yaml": f"dependencies: ['python={PY}', cudatoolkit, {{pip: [six]}}]\n"}
    )
    spec = ProjectSpec(tmp_path, "p", EnvSpec(kind="conda_env", file=tmp_path / "conda.yaml"))
    prepared = prepare_env(spec, "uv")
    assert prepared.details["packages"][0].startswith("six==")
    assert prepared.warnings == (
        "The following conda dependencies will not be installed in "
        "the resulting environment: ['cudatoolkit']",
    )


def test_gc_never_deletes_an_env_in_use(tmp_path: Path) -> None:
    prepared = prepare_env(project(tmp_path, ["six"]), None)
    assert prepared.prefix is not None
    with lease_env(prepared, run_id="run-1"):
        result = run_cli("env", "gc", "--all")
        assert result.returncode == 0, result.stderr
        assert f"kept {prepared.key[:12] if prepared.key else ''}: in use" in result.stdout
        assert (prepared.prefix / MARKER).exists()
        listed = json.loads(run_cli("env", "list", "--json").stdout)
        assert [(e["runs"], e["in_use"]) for e in listed] == [(["run-1"], True)]
    result = run_cli("env", "gc", "--all")
    assert "removed 1 environment(s)" in result.stderr
    assert not prepared.prefix.exists()


def test_sample_project_cold_then_warm_through_the_cli(uv_trace: Path) -> None:
    sample = REPO / "sample_projects" / "linear_regression"
    cold = run_cli("run", str(sample), "-P", "alpha=0.3", timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert "rmse=" in cold.stdout
    before = calls(uv_trace)
    warm = run_cli("run", str(sample), "-P", "alpha=0.5")
    assert warm.returncode == 0, warm.stderr
    assert "alpha=0.5" in warm.stdout and calls(uv_trace) == before


def test_bad_pin_fails_the_run_with_the_log_as_artifact(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "MLproject": "name: p\npython_env: python_env.yaml\n"
            "entry_points:\n  main:\n    command: 'python -c pass'\n",
            "python_env.yaml": f"python: '{PY}'\ndependencies: [numpy==0.0.1]\n",
        },
    )
    result = run_cli("run", str(tmp_path))
    assert result.returncode == 1
    assert "cannot resolve the dependencies of python_env.yaml" in result.stderr
    record = json.loads(run_cli("runs", "list", "--json").stdout)[0]
    assert record["status"] == "FAILED" and "numpy==0.0.1" in record["failure_reason"]
    log = Path(os.environ["RUNNER_HOME"]) / "artifacts" / record["run_id"] / "env-build.log"
    assert "$ uv pip compile" in log.read_text()


PREPARE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from runner.envs.prepare import prepare_env
    from runner.project.records import EnvSpec, ProjectSpec
    root = Path(sys.argv[1])
    spec = ProjectSpec(root, "p", EnvSpec(kind="python_env", file=root / "python_env.yaml"))
    prepared = prepare_env(spec, None)
    print(json.dumps({"key": prepared.key, "reused": prepared.reused}))
""")


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline, "the install step never started"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _no_leaked_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The developer's own venv must not decide where packages go.
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    yield
