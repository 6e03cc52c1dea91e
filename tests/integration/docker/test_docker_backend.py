"""The Docker backend against the real engine, with locally built base images (nothing pulled)."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from backends.docker.backend import (
    DockerBackend,
    find_container,
)
from runner.backend import LOST, ExitInfo, LaunchRequest, RunRef
from runner.envs import PreparedEnv
from runner.errors import BackendError
from runner.project.records import DockerBuild, DockerEnv, EnvSpec, ProjectSpec
from runner.status import RunStatus
from tests.docker_images import ENV_KEY_PREFIX, PROJECT_PREFIX, RUN_PREFIX

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.docker


def _run_id() -> str:
    return RUN_PREFIX + uuid.uuid4().hex[:8]


def _project(root: Path, files: dict[str, str] | None = None, **docker: Any) -> ProjectSpec:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    name = f"{PROJECT_PREFIX}-{root.name}"
    if "image" not in docker:
        return ProjectSpec(root, name, EnvSpec("python_env"))
    return ProjectSpec(root, name, EnvSpec("docker_env", docker=DockerEnv(**docker)))


def _request(spec: ProjectSpec, command: str, **kwargs: Any) -> LaunchRequest:
    run_id = kwargs.pop("run_id", None) or _run_id()
    env = {"RUNNER_RUN_ID": run_id, **kwargs.pop("env", {})}
    return LaunchRequest(run_id, command, spec.root, env, spec, **kwargs)


def _ref(run_id: str) -> RunRef:
    return RunRef(run_id, RunStatus.RUNNING, {}, Path("/nonexistent"))


def _run(request: LaunchRequest) -> tuple[dict[str, str], ExitInfo, bytes, bytes]:
    backend = DockerBackend()
    prepared = backend.prepare(request)
    facts = dict(prepared.facts)
    handle = backend.launch(prepared)
    chunks = list(handle.logs())
    info = handle.wait(timeout=60)
    out = b"".join(c.data for c in chunks if c.stream == "stdout")
    err = b"".join(c.data for c in chunks if c.stream == "stderr")
    return facts, info, out, err


def _wheel(dest: Path, name: str = "probe_pkg", value: str = "from the wheel") -> Path:
    """A tiny pure-Python wheel, so the dependency layer needs no package index."""
    dist = f"{name}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n"
    wheel = "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": wheel,
    }
    record = [f"{n},sha256={_b64(t)},{len(t.encode())}" for n, t in files.items()]
    path = dest / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for n, text in files.items():
            whl.writestr(n, text)
        whl.writestr(f"{dist}/RECORD", "\n".join([*record, f"{dist}/RECORD,,"]) + "\n")
    return path


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host's pip resolves the lock from this directory only (no index)."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    _wheel(house)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    return house


def _python_env(lock: str = "probe-pkg==1.0\n") -> PreparedEnv:
    key = (ENV_KEY_PREFIX + hashlib.sha256(lock.encode()).hexdigest())[:64]
    return PreparedEnv(manager="uv", key=key, python="3.11.7", lock=lock)


# -- images: built once, reused, layered -----------------------------------------------------


def test_second_prepare_builds_nothing(tmp_path: Path, busybox_image: str) -> None:
    spec = _project(tmp_path / "reuse", {"run.sh": "echo hi\n"}, image=busybox_image)
    first = DockerBackend().prepare(_request(spec, "sh run.sh")).facts
    started = time.perf_counter()
    second = DockerBackend().prepare(_request(spec, "sh run.sh")).facts
    elapsed = time.perf_counter() - started
    assert first["image_built"] == "code" and second["image_built"] == "none"
    assert second["image_id"] == first["image_id"] and second["image"] == first["image"]
    assert second["base_image"] == busybox_image
    print(f"\nunchanged project: prepare took {elapsed * 1000:.0f} ms")


def test_code_change_rebuilds_only_the_code_layer(
    tmp_path: Path, python_image: str, wheelhouse: Path
) -> None:
    spec = _project(tmp_path / "layers", {"main.py": "import probe_pkg\nprint(probe_pkg.VALUE)\n"})
    config = {"base_image": python_image}
    env = _python_env()
    started = time.perf_counter()
    first, info, out, _ = _run(_request(spec, "python main.py", environment=env, config=config))
    print(f"\nfirst build (env + code layers) and run: {time.perf_counter() - started:.1f} s")
    assert info.status is RunStatus.FINISHED and out == b"from the wheel\n"
    assert first["image_built"] == "env,code"
    (spec.root / "main.py").write_text("import probe_pkg\nprint('v2', probe_pkg.VALUE)\n")
    second, info, out, _ = _run(_request(spec, "python main.py", environment=env, config=config))
    assert second["image_built"] == "code" and out == b"v2 from the wheel\n"
    assert second["env_image_id"] == first["env_image_id"]
    assert second["image_id"] != first["image_id"]


def test_dockerignore_and_git_stay_out_of_the_image(tmp_path: Path, busybox_image: str) -> None:
    files = {".dockerignore": "secret.txt\n", "secret.txt": "s", "keep.txt": "k"}
    spec = _project(tmp_path / "ignore", files, image=busybox_image)
    (spec.root / ".git").mkdir()
    (spec.root / ".git" / "config").write_text("[credential]\n")
    _, _, out, _ = _run(_request(spec, "ls -A"))
    assert out.decode().split() == [".dockerignore", "keep.txt"]


def test_project_dockerfile_builds_the_base(tmp_path: Path, busybox_image: str) -> None:
    dockerfile = f"FROM {busybox_image}\nARG WHO\nRUN echo built for $WHO > /marker\n"
    build = DockerBuild(args=(("WHO", "tests"),))
    name = f"{PROJECT_PREFIX}-built:1"
    spec = _project(tmp_path / "built", {"Dockerfile": dockerfile}, image=name, build=build)
    facts, _, out, _ = _run(_request(spec, "cat /marker"))
    assert out == b"built for tests\n" and facts["image_built"] == "base,code"
    assert facts["base_image"].startswith(f"runner/{PROJECT_PREFIX}-built-base:")
    again, *_ = _run(_request(spec, "cat /marker"))
    assert again["image_built"] == "none"


def test_failed_build_reports_its_error_line(
    tmp_path: Path, docker_client: Any, busybox_image: str
) -> None:
    marker = f"step two {uuid.uuid4().hex}"
    dockerfile = f"FROM {busybox_image}\nRUN echo {marker}\nRUN exit 3\n"
    spec = _project(tmp_path / "broken", {"Dockerfile": dockerfile}, image="x", build=DockerBuild())
    dangling_before = _dangling(docker_client)
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(_request(spec, "true"))
    assert info.value.message.startswith(f"building the base image runner/{PROJECT_PREFIX}-")
    assert info.value.message.endswith(
        "failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    )
    assert info.value.hint is not None and marker in info.value.hint
    new = _dangling(docker_client) - dangling_before
    left = [i for i in new if marker in str(docker_client.api.inspect_image(i)["ContainerConfig"])]
    assert left == []  # the step that succeeded is not left behind as a dangling image


def _dangling(client: Any) -> set[str]:
    return {image.id for image in client.images.list(filters={"dangling": True})}


def test_image_without_a_shell_fails_with_its_reason(tmp_path: Path, docker_client: Any) -> None:
    files = {"Dockerfile": "FROM scratch\nCOPY data.txt /data.txt\n", "data.txt": "x"}
    spec = _project(tmp_path / "noshell", files, image="x", build=DockerBuild())
    request = _request(spec, "true")
    _, info, _, err = _run(request)
    # docker-init is PID 1: the missing shell is the entry point's failure, with its message
    assert (info.status, info.exit_code) == (RunStatus.FAILED, 127)
    assert b"/bin/sh" in err and b"No such file or directory" in err
    assert find_container(request.run_id, docker_client) is None


def test_unpullable_base_image_is_a_clear_error(tmp_path: Path) -> None:
    spec = _project(tmp_path / "nopull", image="localhost:1/nothing-here:1")
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(_request(spec, "true"))
    assert info.value.message.startswith(
        "cannot pull the base image 'localhost:1/nothing-here:1': "
    )
    assert info.value.hint is not None and """-c '{"image_override": "<tag>"}'""" in info.value.hint


def test_sample_project_with_image_override(tmp_path: Path, python_image: str) -> None:
    root = tmp_path / "sample"
    shutil.copytree(REPO / "sample_projects" / "docker_project", root)
    spec = _project(root, image="python:3.11-slim", environment=(("GREETING", "hi there"),))
    command = "python train.py --epochs 3 --learning-rate 0.5"
    facts, info, out, _ = _run(_request(spec, command, config={"image_override": python_image}))
    assert info.status is RunStatus.FINISHED, out
    assert out.decode().splitlines() == [
        "hi there",
        "epoch 1/3 loss=0.5000",
        "epoch 2/3 loss=0.2500",
        "epoch 3/3 loss=0.1250",
    ]
    assert facts["base_image"] == python_image


# -- the run: argv, env, exit codes, logs ------------------------------------------------------


PROBE = (
    "import json, os, sys\n"
    "keys = ['RUNNER_RUN_ID', 'SET_BY_PROJECT', 'COPIED', 'PATH', 'VIRTUAL_ENV']\n"
    "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
    "                  'env': {k: os.environ.get(k) for k in keys}}))\n"
)


def test_params_and_env_vars_arrive_intact(
    tmp_path: Path, python_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = ["a b", "it's", "$HOME", '"quoted"', "é ü", "--flag=1;echo no", ""]
    monkeypatch.setenv("COPIED", "from the host = yes")
    environment = (("SET_BY_PROJECT", "x=1 y"), ("COPIED", None))
    spec = _project(
        tmp_path / "probe", {"probe.py": PROBE}, image=python_image, environment=environment
    )
    command = "python probe.py " + " ".join(shlex.quote(v) for v in values)
    request = _request(spec, command, env={"PATH": "/host/only/bin", "VIRTUAL_ENV": "/host/env"})
    _, info, out, err = _run(request)
    assert info.status is RunStatus.FINISHED, err
    seen = json.loads(out)
    assert seen["argv"] == values and seen["cwd"] == "/runner/project"
    assert seen["env"]["RUNNER_RUN_ID"] == request.run_id
    assert seen["env"]["SET_BY_PROJECT"] == "x=1 y"
    assert seen["env"]["COPIED"] == "from the host = yes"
    assert "/host/only/bin" not in seen["env"]["PATH"] and seen["env"]["VIRTUAL_ENV"] is None


def test_secret_never_on_a_command_line(
    tmp_path: Path, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("API_SECRET", secret)
    monkeypatch.setenv("RUNNER_DOCKER_ALLOWED_ENV", "API_SECRET")
    spec = _project(tmp_path / "secret", image=busybox_image, environment=(("API_SECRET", None),))
    backend = DockerBackend()
    request = _request(spec, 'test -n "$API_SECRET" && sleep 30')
    handle = backend.launch(backend.prepare(request))
    try:
        time.sleep(0.5)
        assert handle.status() is RunStatus.RUNNING
        assert not [p for p in _cmdlines() if secret in p]
    finally:
        handle.cancel(grace=1)
        assert handle.wait(timeout=30).status is RunStatus.KILLED


def _cmdlines() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            found.append((proc / "cmdline").read_bytes().decode(errors="replace"))
        except OSError:  # not a pid, or gone meanwhile
            continue
    return found


@pytest.mark.parametrize("code", [0, 3])
def test_exit_codes(tmp_path: Path, busybox_image: str, code: int) -> None:
    spec = _project(tmp_path / f"exit{code}", image=busybox_image)
    _, info, *_ = _run(_request(spec, f"exit {code}"))
    assert info.exit_code == code
    if code == 0:
        assert info.status is RunStatus.FINISHED and info.reason is None
    else:
        assert info.status is RunStatus.FAILED and info.reason == "entry point exited with code 3"


def test_logs_of_a_fast_container_are_complete(tmp_path: Path, busybox_image: str) -> None:
    spec = _project(tmp_path / "fast", image=busybox_image)
    for _ in range(5):  # a race would show up as a missing line now and then
        _, info, out, err = _run(_request(spec, "echo a; echo b >&2"))
        assert (out, err, info.status) == (b"a\n", b"b\n", RunStatus.FINISHED)


def test_large_output_arrives_in_order(tmp_path: Path, busybox_image: str) -> None:
    spec = _project(tmp_path / "large", image=busybox_image)
    _, _, out, _ = _run(_request(spec, "seq 1 50000"))
    assert out.decode().split() == [str(i) for i in range(1, 50001)]


def test_tty_arg_merges_streams(tmp_path: Path, busybox_image: str) -> None:
    spec = _project(tmp_path / "tty", image=busybox_image)
    request = _request(spec, "echo out; echo err >&2", config={"docker_args": {"t": True}})
    _, info, out, err = _run(request)
    assert info.status is RunStatus.FINISHED and err == b""
    assert sorted(out.decode().split()) == ["err", "out"]


def test_memory_arg_reaches_the_container(
    tmp_path: Path, docker_client: Any, busybox_image: str
) -> None:
    spec = _project(tmp_path / "mem", image=busybox_image)
    request = _request(spec, "sleep 30", config={"docker_args": {"memory": "64m"}})
    backend = DockerBackend()
    handle = backend.launch(backend.prepare(request))
    try:
        container_id = find_container(request.run_id, docker_client)
        attrs = docker_client.api.inspect_container(container_id)
        assert attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    finally:
        handle.cancel(grace=0)
        handle.wait(timeout=30)


# -- tracking from inside the container --------------------------------------------------------


def test_entry_point_records_through_the_journal(tmp_path: Path, python_image: str) -> None:
    artifacts, lib = tmp_path / "artifacts", tmp_path / "lib"
    artifacts.mkdir()
    lib.mkdir()
    shutil.copyfile(REPO / "runner" / "tracking.py", lib / "runner_tracking.py")
    spec = _project(tmp_path / "track", image=python_image)
    command = "python -c 'import runner_tracking as t; t.log_metric(\"loss\", 0.5, step=2)'"
    env = {"RUNNER_ARTIFACTS_DIR": str(artifacts), "PYTHONPATH": f"/nowhere:{lib}"}
    _, info, _, err = _run(_request(spec, command, env=env))
    assert info.status is RunStatus.FINISHED, err
    record = json.loads((artifacts / "tracking.jsonl").read_text())
    assert (record["key"], record["value"], record["step"]) == ("loss", 0.5, 2)


def test_sqlite_store_shared_on_request(tmp_path: Path, busybox_image: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "runner.db").write_bytes(b"")
    spec = _project(tmp_path / "sqlite", image=busybox_image)
    env = {"RUNNER_TRACKING_URI": f"sqlite:///{store}/runner.db"}
    request = _request(spec, 'echo "$RUNNER_TRACKING_URI"; ls /runner/tracking', env=env,
                       config={"share_tracking_db": True})  # fmt: skip
    _, _, out, _ = _run(request)
    assert out.decode().split() == ["sqlite:////runner/tracking/runner.db", "runner.db"]


def test_volumes_mount_only_what_is_allowed(
    tmp_path: Path, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("mounted\n")
    monkeypatch.setenv("RUNNER_DOCKER_ALLOWED_MOUNTS", str(tmp_path))
    spec = _project(tmp_path / "vol", image=busybox_image, volumes=(f"{data}:/data:ro",))
    _, _, out, _ = _run(_request(spec, "cat /data/in.txt"))
    assert out == b"mounted\n"
    spec = _project(tmp_path / "vol2", image=busybox_image, volumes=("/etc:/host-etc",))
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(_request(spec, "true"))
    assert info.value.message == "volume '/etc' not in allowed mounts"


def test_docker_socket_mount_refused_before_building(tmp_path: Path, busybox_image: str) -> None:
    volumes = ("/var/run/docker.sock:/var/run/docker.sock",)
    spec = _project(tmp_path / "sock", image=busybox_image, volumes=volumes)
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(_request(spec, "true", config={"allowed_mounts": ["/"]}))
    assert "would expose the Docker socket" in info.value.message


# -- cancel, dead runners, a dead daemon ------------------------------------------------------


def test_cancel_ends_killed_and_leaves_no_container(
    tmp_path: Path, docker_client: Any, busybox_image: str
) -> None:
    spec = _project(tmp_path / "cancel", image=busybox_image)
    request = _request(spec, "echo started; sleep 300")
    backend = DockerBackend()
    handle = backend.launch(backend.prepare(request))
    logs = handle.logs()
    assert next(logs).data == b"started\n"
    handle.cancel(grace=2)
    info = handle.wait(timeout=30)
    assert (info.status, info.reason) == (RunStatus.KILLED, "cancelled")
    assert find_container(request.run_id, docker_client) is None
    handle.cancel(grace=2)  # idempotent after the end
    assert handle.status() is RunStatus.KILLED


def test_container_killed_outside_runner_fails_with_logs(
    tmp_path: Path, docker_client: Any, busybox_image: str
) -> None:
    spec = _project(tmp_path / "external", image=busybox_image)
    request = _request(spec, "echo before; sleep 300")
    backend = DockerBackend()
    handle = backend.launch(backend.prepare(request))
    logs = handle.logs()
    assert next(logs).data == b"before\n"
    docker_client.api.kill(find_container(request.run_id, docker_client))  # `docker kill`
    info = handle.wait(timeout=30)
    assert (info.status, info.exit_code) == (RunStatus.FAILED, 137)
    assert info.reason == "entry point killed by SIGKILL (exit 137)"
    assert list(logs) == [] and find_container(request.run_id, docker_client) is None


_RUNNER_SCRIPT = """
import sys, time
from pathlib import Path
from backends.docker.backend import DockerBackend
from runner.backend import LaunchRequest
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec
root, image, run_id, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
spec = ProjectSpec(root, name, EnvSpec("docker_env", docker=DockerEnv(image)))
request = LaunchRequest(run_id, "sleep 300", root, {}, spec)
backend = DockerBackend()
backend.launch(backend.prepare(request))
print("launched", flush=True)
time.sleep(300)
"""


def test_container_of_a_killed_runner_is_reconciled(
    tmp_path: Path, docker_client: Any, busybox_image: str
) -> None:
    root = tmp_path / "orphan"
    root.mkdir()
    run_id = _run_id()
    name = f"{PROJECT_PREFIX}-orphan"
    argv = [sys.executable, "-c", _RUNNER_SCRIPT, str(root), busybox_image, run_id, name]
    runner = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None and runner.stdout.readline() == "launched\n"
    finally:
        runner.send_signal(signal.SIGKILL)  # the runner dies without cleaning up
        runner.wait()
    assert find_container(run_id, docker_client) is not None
    assert DockerBackend().reconcile([_ref(run_id)]) == {run_id: LOST}
    assert find_container(run_id, docker_client) is None


def test_reconcile_spares_live_runs(tmp_path: Path, docker_client: Any, busybox_image: str) -> None:
    spec = _project(tmp_path / "reconcile", image=busybox_image)
    backend = DockerBackend()
    dead, live = _request(spec, "sleep 300"), _request(spec, "sleep 300")
    handles = [backend.launch(backend.prepare(request)) for request in (dead, live)]
    assert backend.reconcile([_ref(dead.run_id)]) == {dead.run_id: LOST}
    assert handles[0].wait(timeout=30).status is RunStatus.FAILED
    assert find_container(live.run_id, docker_client) is not None
    handles[1].cancel(grace=0)
    assert handles[1].wait(timeout=30).status is RunStatus.KILLED


def test_daemon_down_is_one_clear_error(
    tmp_path: Path, busybox_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    spec = _project(tmp_path / "down", image=busybox_image)
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(_request(spec, "true"))
    assert info.value.message == (
        "cannot reach the Docker daemon at unix:///nonexistent/docker.sock: "
        "No such file or directory"
    )
    assert info.value.hint == (
        "start the Docker daemon, or point DOCKER_HOST (or the backend config's docker_host) "
        "at a running one; `docker info` should answer"
    )


def test_conda_env_refused_clearly(tmp_path: Path, busybox_image: str) -> None:
    spec = _project(tmp_path / "conda")
    env = PreparedEnv(manager="conda", key="k", lock="numpy\n")
    request = _request(spec, "true", environment=env, config={"base_image": busybox_image})
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(request)
    assert info.value.message == (
        "the docker backend cannot install a conda environment into an image yet"
    )


def test_wheel_download_failure_is_clear(
    tmp_path: Path, python_image: str, wheelhouse: Path
) -> None:
    spec = _project(tmp_path / "nowheel", {"main.py": ""})
    env = _python_env("not-in-the-wheelhouse==9.9\n")
    request = _request(spec, "true", environment=env, config={"base_image": python_image})
    with pytest.raises(BackendError) as info:
        DockerBackend().prepare(request)
    assert info.value.message.startswith(
        "could not download the wheels of the locked requirements:\n"
    )
    assert "not-in-the-wheelhouse" in info.value.message
