"""conda environments for real: rattler solving and installing from local channels, offline."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.envs import PreparedEnv
from runner.envs.conda.envfile import LOCK_NAME
from runner.envs.prepare import prepare_env
from runner.envs.python.uvcmd import uv_bin
from runner.errors import EnvBuildError, SpecError
from runner.project.records import EnvSpec, ProjectSpec
from tests.conda_channel import build_channel, host_pip, host_python, tiny
from tests.helpers import records, run_cli, write_project

REPO = Path(__file__).resolve().parents[2]
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
ACTIVATE = {
    # only sets variables: honoured
    "etc/conda/activate.d/greeting.sh": (
        '# set by the package\nexport GREETING="hello from conda"\n'
        "export GREETING_HOME=${CONDA_PREFIX}/share/greeting\n"
    ),
    # does more than set variables: skipped (and recorded as skipped)
    "etc/conda/activate.d/zz-shell.sh": 'export A=1\nif [ -n "$X" ]; then echo hi; fi\n',
}


@pytest.fixture(scope="session")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python (the host's, repackaged), pip, and tiny noarch packages."""
    root = tmp_path_factory.mktemp("channel")
    packages = [
        host_python(),
        host_pip(),
        tiny("greeting", "1.0", files=ACTIVATE),
        tiny("greeting", "0.5", build="old_0"),
        tiny("hello", "2.0", depends=["greeting >=1"]),
        tiny("needs-old-greeting", "1.0", depends=["greeting <1", "hello"]),
    ]
    return build_channel(root, packages)


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(autouse=True)
def _isolated(uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    monkeypatch.delenv("RUNNER_CONDA_EXE", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)


def project(root: Path, channel: Path, deps: list[object], command: str = "true") -> ProjectSpec:
    conda = {"name": "t", "channels": [channel.as_uri()], "dependencies": deps}
    mlproject = "name: t\nconda_env: conda.yaml\nentry_points:\n  main:\n"
    mlproject += f"    command: {json.dumps(command)}\n"
    write_project(root, {"MLproject": mlproject, "conda.yaml": json.dumps(conda)})
    return ProjectSpec(root, "t", EnvSpec(kind="conda_env", file=root / "conda.yaml"))


def run_in(prepared: PreparedEnv, *argv: str) -> str:
    env = {**os.environ, **prepared.env_vars(os.environ["PATH"])}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_tiny_packages_solve_install_and_activate(tmp_path: Path, channel: Path) -> None:
    prepared = prepare_env(project(tmp_path, channel, ["hello"]), None)
    assert prepared.manager == "conda" and prepared.prefix is not None
    assert prepared.details["packages"] == ["greeting=1.0=0", "hello=2.0=0"]
    assert run_in(prepared, "hello") == "hello 2.0"  # the env's bin/ comes first
    shown = run_in(prepared, "sh", "-c", 'echo "$CONDA_PREFIX|$GREETING|$GREETING_HOME|$A"')
    prefix = str(prepared.prefix)
    assert shown == f"{prefix}|hello from conda|{prefix}/share/greeting|"
    assert prepared.details["activation_skipped"] == ["etc/conda/activate.d/zz-shell.sh"]


def test_python_pip_and_a_pip_section_run_through_the_cli(tmp_path: Path, channel: Path) -> None:
    code = "import six, sys, os; print(six.__version__, sys.prefix == os.environ['CONDA_PREFIX'])"
    deps = [f"python={PY}", "pip", {"pip": ["six==1.16.0"]}]
    project(tmp_path, channel, deps, command=f'python -c "{code}" && pip --version')
    result = run_cli("run", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1.16.0 True"
    assert lines[1].startswith("pip ") and f"(python {PY})" in lines[1]
    environment = records()[0]["environment"]
    assert environment["manager"] == "conda" and environment["python"].startswith(PY)
    assert "six==1.16.0" in environment["packages"]
    assert any(p.startswith("python=") for p in environment["packages"])


def test_the_recorded_lock_matches_conda_meta(tmp_path: Path, channel: Path) -> None:
    prepared = prepare_env(project(tmp_path, channel, [f"python={PY}", "hello"]), None)
    assert prepared.prefix is not None and prepared.lock is not None
    locked = {p["name"]: p for p in json.loads(prepared.lock)["conda"]}
    installed = {}
    for meta in (prepared.prefix / "conda-meta").glob("*.json"):
        data = json.loads(meta.read_text())
        installed[data["name"]] = data
    assert sorted(installed) == sorted(locked) == ["greeting", "hello", "python"]
    for name, entry in locked.items():
        meta = installed[name]
        assert (meta["version"], meta["build"], meta["url"]) == (
            entry["version"],
            entry["build"],
            entry["url"],
        )
        assert (meta["sha256"], meta["md5"]) == (entry["sha256"], entry["md5"])


def test_second_run_reuses_and_a_changed_spec_builds_anew(tmp_path: Path, channel: Path) -> None:
    first = prepare_env(project(tmp_path, channel, ["hello"]), None)
    again = prepare_env(project(tmp_path, channel, ["hello"]), None)
    assert again.reused and again.key == first.key and again.prefix == first.prefix
    changed = prepare_env(project(tmp_path, channel, ["greeting"]), None)
    older = prepare_env(project(tmp_path, channel, ["greeting<1"]), None)
    assert not changed.reused and not older.reused
    assert len({first.key, changed.key, older.key}) == 3
    assert older.details["packages"] == ["greeting=0.5=old_0"]
    # a spec that solves to the same packages is the same environment
    same = prepare_env(project(tmp_path, channel, ["hello", "greeting>=1"]), None)
    assert same.reused and same.key == first.key


def test_unsatisfiable_specs_are_named(tmp_path: Path, channel: Path) -> None:
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path, channel, ["needs-old-greeting", "greeting>=1"]), None)
    message = err.value.message
    assert message.startswith(
        "cannot solve the conda environment of conda.yaml (needs-old-greeting, greeting>=1):"
    )
    # rattler's explanation names the specs in conflict
    assert "needs-old-greeting 1.0 would require" in message
    assert "greeting <1, for which no candidates were found" in message
    with pytest.raises(EnvBuildError) as missing:
        prepare_env(project(tmp_path, channel, ["no-such-package"]), None)
    assert "No candidates were found for no-such-package" in missing.value.message
    assert missing.value.hint is not None and "unsatisfiable specs" in missing.value.hint


def test_an_unsatisfiable_run_fails_and_nothing_is_left_running(
    tmp_path: Path, channel: Path
) -> None:
    project(tmp_path, channel, ["python=2.7"], command="echo never")
    result = run_cli("run", str(tmp_path))
    assert result.returncode == 1 and "never" not in result.stdout
    assert "cannot solve the conda environment of conda.yaml (python=2.7" in result.stderr
    assert "No candidates were found for python 2.7.*" in result.stderr
    runs = records()
    assert [run["status"] for run in runs] == ["FAILED"]
    assert "python=2.7" in runs[0]["failure_reason"]
    assert records("RUNNING") == []


def test_an_unreadable_channel_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path, tmp_path / "missing-channel", ["hello"]), None)
    assert err.value.message.startswith("cannot read the conda channels of conda.yaml:")
    assert "missing-channel" in err.value.message


def test_a_relative_channel_path_is_read_against_the_project(tmp_path: Path, channel: Path) -> None:
    build_channel(tmp_path / "proj" / "chan", [tiny("solo", "3.0")])
    spec = project(tmp_path / "proj", channel, ["solo"])
    conda = json.loads((tmp_path / "proj" / "conda.yaml").read_text())
    conda["channels"] = ["./chan"]
    (tmp_path / "proj" / "conda.yaml").write_text(json.dumps(conda))
    prepared = prepare_env(spec, None)
    assert run_in(prepared, "solo") == "solo 3.0"
    assert json.loads(prepared.lock or "")["channels"] == [(tmp_path / "proj/chan").as_uri()]


HANG_SHIM = """\
#!/bin/sh
# Runs the real uv; once its pip install is done, says so and hangs (to be killed there).
if [ "$1 $2" = "pip install" ]; then
  "$REAL_UV" "$@"
  touch "$SHIM_INSTALL_HANG"
  sleep 120
fi
exec "$REAL_UV" "$@"
"""

PREPARE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from runner.envs.prepare import prepare_env
    from runner.project.records import EnvSpec, ProjectSpec
    root = Path(sys.argv[1])
    spec = ProjectSpec(root, "t", EnvSpec(kind="conda_env", file=root / "conda.yaml"))
    prepared = prepare_env(spec, None)
    print(json.dumps({"key": prepared.key, "reused": prepared.reused}))
""")


def test_a_killed_build_is_never_reused(
    tmp_path: Path, channel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = [f"python={PY}", "pip", {"pip": ["six==1.16.0"]}]
    spec = project(tmp_path / "p", channel, deps)
    shim = tmp_path / "uv-shim"
    shim.write_text(HANG_SHIM)
    shim.chmod(0o755)
    hang = tmp_path / "pip-installed"
    env = {**os.environ, "REAL_UV": uv_bin(), "RUNNER_UV": str(shim)}
    env["SHIM_INSTALL_HANG"] = str(hang)
    argv = [sys.executable, "-c", PREPARE, str(spec.root)]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not hang.exists():
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "the pip step never ran"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    envs = Path(os.environ["RUNNER_HOME"]) / "envs" / "conda"
    assert [p.name[:5] for p in envs.iterdir()] == [".tmp-"]  # linked, never published

    prepared = prepare_env(spec, None)
    assert not prepared.reused and prepared.prefix is not None
    assert list(envs.iterdir()) == [prepared.prefix]
    assert run_in(prepared, "python", "-c", "import six; print(six.__version__)") == "1.16.0"


def test_concurrent_builds_share_the_package_cache(tmp_path: Path, channel: Path) -> None:
    roots = []
    for index, extra in enumerate(["greeting", "hello"]):
        roots.append(project(tmp_path / f"p{index}", channel, [f"python={PY}", extra]).root)
    argv = [[sys.executable, "-c", PREPARE, str(root)] for root in roots * 2]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for args in argv]
    outputs = [json.loads(proc.communicate(timeout=300)[0]) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    assert len({out["key"] for out in outputs}) == 2
    assert sorted(out["reused"] for out in outputs) == [False, False, True, True]
    for root in roots:
        spec = ProjectSpec(root, "t", EnvSpec("conda_env", root / "conda.yaml"))
        prepared = prepare_env(spec, None)
        assert prepared.reused
        assert run_in(prepared, "python", "-c", "print('ok')") == "ok"


def test_a_project_without_an_env_file_gets_python_from_conda_forge(
    tmp_path: Path, channel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's `conda create python` from conda-forge; here conda-forge is a local mirror
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "conda-forge").symlink_to(channel)
    monkeypatch.setenv("RUNNER_CONDA_CHANNEL_ALIAS", (tmp_path / "mirror").as_uri())
    prepared = prepare_env(ProjectSpec(tmp_path, "t", EnvSpec(kind="system")), "conda")
    assert [p.split("=")[0] for p in prepared.details["packages"]] == ["python"]
    assert json.loads(prepared.lock or "")["channels"] == ["conda-forge"]
    assert run_in(prepared, "python", "-c", "import sys; print(sys.prefix)") == str(prepared.prefix)


# --- runner lock: conda-lock.yml, read back by conda-lock and installed as is -------------


@pytest.fixture(scope="session")
def conda_lock_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real conda-lock, from the package index, in a venv of its own."""
    venv = tmp_path_factory.mktemp("conda-lock-venv")
    subprocess.run([uv_bin(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [uv_bin(), "pip", "install", "-q", "--python", str(python), "conda-lock>=2.5"]
    subprocess.run(install, check=True, timeout=600)
    return venv / "bin" / "conda-lock"


def test_runner_lock_is_read_back_by_conda_lock(
    tmp_path: Path, channel: Path, conda_lock_tool: Path
) -> None:
    deps = [f"python={PY}", "pip", "hello", {"pip": ["six==1.16.0"]}]
    spec = project(tmp_path, channel, deps)
    result = run_cli("lock", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / LOCK_NAME)
    script = (
        "import json, sys, pathlib\n"
        "from conda_lock.lockfile import parse_conda_lock_file\n"
        "lock = parse_conda_lock_file(pathlib.Path(sys.argv[1]))\n"
        "print(json.dumps(sorted([p.manager, p.name, p.version, p.url, p.hash.sha256 or '']"
        " for p in lock.package)))\n"
    )
    python = conda_lock_tool.parent / "python"
    read = subprocess.run(
        [str(python), "-c", script, str(tmp_path / LOCK_NAME)], capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    prepared = prepare_env(spec, None)
    assert prepared.lock is not None
    locked = json.loads(prepared.lock)
    expected = sorted(
        [["conda", p["name"], p["version"], p["url"], p["sha256"]] for p in locked["conda"]]
        + [["pip", p["name"], p["version"], p["url"], p["sha256"]] for p in locked["pip"]]
    )
    assert json.loads(read.stdout) == expected
    render = subprocess.run(
        [str(conda_lock_tool), "render", "--kind", "explicit", "-p", "linux-64", LOCK_NAME],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert render.returncode == 0, render.stderr
    explicit = (tmp_path / "conda-linux-64.lock").read_text()
    assert all(f"{p['url']}#{p['md5']}" in explicit for p in locked["conda"])


def test_a_committed_lock_is_installed_without_solving(tmp_path: Path, channel: Path) -> None:
    private = build_channel(tmp_path / "chan", [tiny("greeting", "1.0"), tiny("solo", "1.0")])
    spec = project(tmp_path / "p", private, ["solo", "greeting"])
    assert run_cli("lock", str(spec.root)).returncode == 0
    resolved = prepare_env(spec, None, build=False)
    for repodata in private.glob("*/repodata.json"):
        repodata.unlink()  # a solve would fail now: only the package files are left
    (Path(os.environ["RUNNER_HOME"]) / "envs" / ".resolved").rename(tmp_path / "forgotten")
    prepared = prepare_env(spec, None)
    assert prepared.details["lock_source"] == "committed"
    assert prepared.key == resolved.key  # the same packages, so the same environment
    assert run_in(prepared, "solo") == "solo 1.0"
    assert prepared.warnings == ()


def test_a_committed_lock_from_another_env_file_warns(tmp_path: Path, channel: Path) -> None:
    spec = project(tmp_path, channel, ["hello"])
    assert run_cli("lock", str(tmp_path)).returncode == 0
    project(tmp_path, channel, ["hello", "greeting"])
    prepared = prepare_env(spec, None)
    assert prepared.details["packages"] == ["greeting=1.0=0", "hello=2.0=0"]
    assert prepared.warnings == (
        "conda-lock.yml was generated from a different conda.yaml; it is used as is "
        f"(run `runner lock {tmp_path}` to update it)",
    )


def test_a_committed_lock_without_this_platform_is_refused(tmp_path: Path, channel: Path) -> None:
    spec = project(tmp_path, channel, ["hello"])
    assert run_cli("lock", str(tmp_path)).returncode == 0
    text = (tmp_path / LOCK_NAME).read_text().replace("linux-64", "osx-arm64")
    (tmp_path / LOCK_NAME).write_text(text)
    with pytest.raises(SpecError) as err:
        prepare_env(spec, None)
    assert err.value.message == "conda-lock.yml has no packages for linux-64 (it locks: osx-arm64)"


# --- a conda-compatible executable instead of rattler ------------------------------------


def standin(directory: Path, log: Path) -> Path:
    """An executable called ``conda`` that answers like conda (tests/conda_standin.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "conda"
    exe.write_text(
        f"#!/bin/sh\nSTANDIN_LOG={log} exec {sys.executable} "
        f'{REPO / "tests" / "conda_standin.py"} "$@"\n'
    )
    exe.chmod(0o755)
    return exe


def test_an_external_conda_gives_the_same_lock(
    tmp_path: Path, channel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = [f"python={PY}", "pip", "hello", {"pip": ["six==1.16.0"]}]
    spec = project(tmp_path / "p", channel, deps)
    by_rattler = prepare_env(spec, None, build=False)
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    standin(bin_dir, log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RUNNER_CONDA_EXE", "auto")  # finds the stand-in first on PATH
    by_exe = prepare_env(spec, None)
    assert by_exe.lock == by_rattler.lock and by_exe.key == by_rattler.key
    assert by_exe.details["installer"] == "conda"
    calls = log.read_text().splitlines()
    assert [call.split()[:2] for call in calls] == [["create", "--dry-run"], ["create", "--yes"]]
    # installed by the executable into the temp dir, then moved: its files name the final path
    assert by_exe.prefix is not None
    assert run_in(by_exe, "hello") == "hello 2.0"
    out = run_in(
        by_exe, "python", "-c", "import six, sysconfig; print(sysconfig.get_paths()['data'])"
    )
    assert out == str(by_exe.prefix)
    assert (by_exe.prefix / "bin" / "pip").read_text().startswith(f"#!{by_exe.prefix}/bin/")


def test_an_external_conda_reports_unsatisfiable_specs(
    tmp_path: Path, channel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_CONDA_EXE", str(standin(tmp_path / "bin", tmp_path / "log")))
    with pytest.raises(EnvBuildError) as err:
        prepare_env(project(tmp_path / "p", channel, ["hello>=9"]), None)
    assert err.value.message.startswith(
        "cannot solve the conda environment of conda.yaml (hello>=9):"
    )
    assert "hello >=9" in err.value.message


def test_a_missing_external_conda_is_refused_before_a_run_exists(
    tmp_path: Path, channel: Path
) -> None:
    project(tmp_path, channel, ["hello"])
    result = run_cli("run", str(tmp_path), "--conda-exe", str(tmp_path / "no-conda"))
    assert result.returncode == 1
    assert f"RUNNER_CONDA_EXE: '{tmp_path / 'no-conda'}' is not an executable" in result.stderr
    assert records() == []
    auto = run_cli("run", str(tmp_path), env={"RUNNER_CONDA_EXE": "auto", "PATH": "/usr/bin:/bin"})
    assert "RUNNER_CONDA_EXE=auto: none of conda, mamba, micromamba is on PATH" in auto.stderr


# --- the sample project --------------------------------------------------------------------


def test_sample_project_runs_from_the_channel_its_readme_prepares(tmp_path: Path) -> None:
    sample = tmp_path / "conda_project"
    shutil.copytree(REPO / "sample_projects" / "conda_project", sample)
    made = subprocess.run(
        [sys.executable, "-m", "tests.conda_channel", str(sample / "channel")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    result = run_cli("run", str(sample), "-P", "name=you", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"hi you: python {PY}.")
    assert lines[1:] == [
        "six 1.16.0 from the pip section",
        "GREETING=hello from conda (set by the greeting package's activate.d)",
        "hello 2.0",
    ]
    warm = run_cli("run", str(sample))
    assert warm.returncode == 0, warm.stderr
    assert records()[0]["environment"]["prefix"] == records()[1]["environment"]["prefix"]
    assert len(list((Path(os.environ["RUNNER_HOME"]) / "envs" / "conda").iterdir())) == 1


def test_channel_names_resolve_through_the_channel_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what an air-gapped site does: channel names point at its own mirror
    mirror = tmp_path / "mirror"
    build_channel(mirror / "mychan", [tiny("solo", "4.0")])
    monkeypatch.setenv("RUNNER_CONDA_CHANNEL_ALIAS", mirror.as_uri())
    spec = project(tmp_path / "p", mirror, ["solo"])
    (spec.root / "conda.yaml").write_text('{"channels": ["mychan"], "dependencies": ["solo"]}')
    prepared = prepare_env(spec, None)
    assert run_in(prepared, "solo") == "solo 4.0"
    lock = json.loads(prepared.lock or "")
    assert lock["channels"] == ["mychan"]
    assert lock["conda"][0]["url"] == f"{mirror.as_uri()}/mychan/noarch/solo-4.0-0.tar.bz2"


def test_a_package_that_differs_from_the_lock_is_refused(tmp_path: Path) -> None:
    private = build_channel(tmp_path / "chan", [tiny("solo", "1.0")])
    spec = project(tmp_path / "p", private, ["solo"])
    locked = prepare_env(spec, None, build=False)
    # the same file name with other contents, as a tampered mirror would serve it
    other = build_channel(tmp_path / "other", [tiny("solo", "1.0", files={"bin/evil": "x"})])
    (private / "noarch" / "solo-1.0-0.tar.bz2").write_bytes(
        (other / "noarch" / "solo-1.0-0.tar.bz2").read_bytes()
    )
    with pytest.raises(EnvBuildError) as err:
        prepare_env(spec, None)
    sha256 = json.loads(locked.lock or "")["conda"][0]["sha256"]
    assert err.value.message.startswith("cannot install the conda packages: file://")
    assert "does not match the lock: sha256 " in err.value.message
    assert err.value.message.endswith(f"locked {sha256}")
    assert list((Path(os.environ["RUNNER_HOME"]) / "envs" / "conda").iterdir()) == []


class _AuthChannel(http.server.SimpleHTTPRequestHandler):
    """A channel over HTTP that answers only with basic auth user:s3cret or the /t/tok-9/ token."""

    def do_GET(self) -> None:
        basic = "Basic " + base64.b64encode(b"user:s3cret").decode()
        if self.headers.get("Authorization") != basic and not self.path.startswith("/t/tok-9/"):
            self.send_response(401)
            self.end_headers()
            return
        self.path = self.path.removeprefix("/t/tok-9")
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def auth_channel(tmp_path: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT serving a channel (at /chan) only to callers with credentials."""
    build_channel(tmp_path / "served" / "chan", [tiny("solo", "1.0")])
    handler = functools.partial(_AuthChannel, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.parametrize("form", ["http://user:s3cret@{host}/chan", "http://{host}/t/tok-9/chan"])
def test_channel_credentials_are_used_and_never_recorded(
    tmp_path: Path, auth_channel: str, form: str
) -> None:
    url = form.format(host=auth_channel)
    project(tmp_path / "p", tmp_path, ["solo"], command="solo")
    (tmp_path / "p" / "conda.yaml").write_text(
        json.dumps({"channels": [url], "dependencies": ["solo"]})
    )
    result = run_cli("run", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "solo 1.0"
    assert run_cli("lock", str(tmp_path / "p")).returncode == 0
    [run] = records()
    recorded = [
        json.dumps(run),
        (tmp_path / "p" / LOCK_NAME).read_text(),
        *(p.read_text() for p in Path(run["environment"]["prefix"]).glob("conda-meta/*.json")),
    ]
    assert f"http://{auth_channel}/chan" in recorded[1]
    for text in recorded:
        assert "s3cret" not in text and "tok-9" not in text


def test_a_refused_channel_login_is_reported_without_the_password(
    tmp_path: Path, auth_channel: str
) -> None:
    url = f"http://user:badpass-7@{auth_channel}/chan"
    project(tmp_path / "p", tmp_path, ["solo"], command="solo")
    (tmp_path / "p" / "conda.yaml").write_text(
        json.dumps({"channels": [url], "dependencies": ["solo"]})
    )
    result = run_cli("run", str(tmp_path / "p"))
    assert result.returncode == 1
    assert "cannot read the conda channels of conda.yaml:" in result.stderr
    assert f"http://{auth_channel}/chan" in result.stderr and "badpass-7" not in result.stderr
    [run] = records()
    assert run["status"] == "FAILED" and "badpass-7" not in json.dumps(run)
