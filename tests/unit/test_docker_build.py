"""The Docker backend's pure builders: -A args, mounts, env, tracking, layers, tags, exit info."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.docker import layers
from backends.docker.args import map_docker_args
from backends.docker.backend import _exit_info
from backends.docker.build import (
    CONFIG_SCHEMA,
    TrackingPlan,
    container_command,
    container_env,
    container_name,
    container_options,
    tracking_plan,
    working_dir,
)
from backends.docker.client import daemon_url, root_cause
from backends.docker.policy import (
    Mount,
    allowlist,
    check_mount,
    contained,
    docker_sockets,
    parse_volume,
    resolve_environment,
)
from runner.backend import LaunchRequest
from runner.errors import BackendError
from runner.execution.plan import parse_docker_args
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec
from runner.status import RunStatus

SOCKETS = ["/run/docker.sock", "/var/run/docker.sock"]


def _error(fn, *args, **kwargs) -> BackendError:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendError) as info:
        fn(*args, **kwargs)
    return info.value


# -- -A/--docker-args ----------------------------------------------------------------------


def test_parse_docker_args_mlflow_form() -> None:
    assert parse_docker_args(["memory=1g", "t", "gpus=all", "env=A=B"]) == {
        "memory": "1g",
        "t": True,
        "gpus": "all",
        "env": "A=B",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"memory": "1g"}, {"mem_limit": "1g"}),
        ({"m": "512m"}, {"mem_limit": "512m"}),
        ({"t": True}, {"tty": True}),
        ({"privileged": True}, {"privileged": True}),
        ({"privileged": "false"}, {"privileged": False}),
        ({"gpus": "all"}, {"device_requests": [{"capabilities": [["gpu"]], "count": -1}]}),
        ({"gpus": "2"}, {"device_requests": [{"capabilities": [["gpu"]], "count": 2}]}),
        (
            {"gpus": '"device=0,1"'},
            {"device_requests": [{"capabilities": [["gpu"]], "device_ids": ["0", "1"]}]},
        ),
        ({"cpus": "1.5"}, {"nano_cpus": 1_500_000_000}),
        ({"shm-size": "2g"}, {"shm_size": "2g"}),
        ({"network": "host"}, {"network_mode": "host"}),
        ({"net": "mynet"}, {"network": "mynet"}),
        ({"add-host": "db:10.0.0.5"}, {"extra_hosts": {"db": "10.0.0.5"}}),
        ({"cap-add": "SYS_PTRACE"}, {"cap_add": ["SYS_PTRACE"]}),
        ({"user": "1000:1000"}, {"user": "1000:1000"}),
        ({"rm": True}, {}),
    ],
)
def test_map_docker_args(args: dict[str, str | bool], expected: dict[str, object]) -> None:
    assert map_docker_args(args) == expected


def test_map_docker_args_mlflow_example_together() -> None:
    mapped = map_docker_args({"memory": "1g", "t": True, "gpus": "all", "privileged": True})
    assert mapped["mem_limit"] == "1g" and mapped["tty"] is True and mapped["privileged"] is True


def test_every_mapped_arg_is_a_create_option_the_sdk_knows() -> None:
    from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS

    from backends.docker.args import _DOCKER_ARGS

    known = {*RUN_CREATE_KWARGS, *RUN_HOST_CONFIG_KWARGS, "network"}
    samples = {"gpus": "all", "add-host": "h:1.2.3.4", "cpus": "1", "cpu-shares": "2"}
    for name in _DOCKER_ARGS:
        value = samples.get(name, "x")
        flags = ("privileged", "tty", "read-only", "rm")
        mapped = map_docker_args({name: True if name in flags else value})
        assert set(mapped) <= known, name


def test_unknown_docker_arg_lists_supported() -> None:
    err = _error(map_docker_args, {"oom-score-adj": "5"})
    assert err.message == "unsupported docker argument '-A oom-score-adj'"
    assert err.hint is not None and "memory" in err.hint and "gpus" in err.hint


@pytest.mark.parametrize(("name", "where"), [("v", "volumes"), ("env", "environment")])
def test_volume_and_env_args_refused(name: str, where: str) -> None:
    err = _error(map_docker_args, {name: "/:/host"})
    assert err.message == f"docker argument '-A {name}' is not allowed"
    assert err.hint == (
        f"declare it in the MLproject's docker_env.{where}, where the operator's allowlist applies"
    )


def test_docker_arg_value_errors() -> None:
    assert _error(map_docker_args, {"memory": True}).message == (
        "docker argument '-A memory' needs a value, e.g. -A memory=VALUE"
    )
    assert _error(map_docker_args, {"privileged": "yes"}).message == (
        "docker argument '-A privileged' is a flag; got the value 'yes'"
    )
    assert _error(map_docker_args, {"cpus": "lots"}).message == (
        "docker argument '-A cpus' expects a number, got 'lots'"
    )
    assert _error(map_docker_args, {"add-host": "db"}).message == (
        "docker argument '-A add-host' expects HOST:IP, got 'db'"
    )


# -- volumes and the allowlist -------------------------------------------------------------


def test_parse_volume_forms(tmp_path: Path) -> None:
    assert parse_volume("/data:/data", tmp_path) == Mount("/data", "/data", "rw")
    assert parse_volume("/data/:/in:ro", tmp_path) == Mount("/data", "/in", "ro")
    assert parse_volume("./cache:/cache", tmp_path) == Mount(f"{tmp_path}/cache", "/cache")
    assert parse_volume("named:/v", tmp_path).is_bind is False
    assert parse_volume("/a:/b:ro", tmp_path).spec() == "/a:/b:ro"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/data", "docker_env volume '/data' is not HOST:CONTAINER[:MODE]"),
        ("/a:/b:ro:x", "docker_env volume '/a:/b:ro:x' is not HOST:CONTAINER[:MODE]"),
        ("/a:/b:rx", "docker_env volume '/a:/b:rx' has an unknown mode 'rx'"),
        ("/a:b", "docker_env volume '/a:b': the container path must be absolute"),
    ],
)
def test_parse_volume_errors(tmp_path: Path, spec: str, message: str) -> None:
    assert _error(parse_volume, spec, tmp_path).message == message


def test_mount_outside_allowlist_refused(tmp_path: Path) -> None:
    err = _error(check_mount, Mount("/", "/host"), [str(tmp_path)], SOCKETS)
    assert err.message == "volume '/' not in allowed mounts"
    assert err.hint == (
        f"allowed: {tmp_path}; the operator sets them with RUNNER_DOCKER_ALLOWED_MOUNTS "
        "(':'-separated) or backend config allowed_mounts"
    )


def test_mount_inside_allowlist_accepted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert check_mount(Mount(str(tmp_path / "data"), "/data"), [str(tmp_path)], SOCKETS) is None


def test_symlink_escaping_the_allowlist_refused(tmp_path: Path) -> None:
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "etc").symlink_to("/etc")
    err = _error(check_mount, Mount(f"{tmp_path}/allowed/etc", "/x"), [f"{tmp_path}/allowed"], [])
    assert err.message == f"volume '{tmp_path}/allowed/etc' not in allowed mounts"


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/"])
def test_docker_socket_always_refused_even_if_allowlisted(source: str) -> None:
    err = _error(check_mount, Mount(source, "/s"), ["/"], SOCKETS)
    # which socket path is named depends on the host's /var/run -> /run link
    assert err.message.startswith(f"volume '{source}' would expose the Docker socket /")
    assert err.message.endswith("docker.sock; this is always refused")
    assert err.hint == "a container that reaches the Docker socket controls the host"


def test_link_to_the_socket_refused(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    sock.touch()
    (tmp_path / "innocent").symlink_to(sock)
    err = _error(check_mount, Mount(str(tmp_path / "innocent"), "/s"), None, [str(sock)])
    assert "would expose the Docker socket" in err.message


def test_unknown_socket_named_docker_sock_refused(tmp_path: Path) -> None:
    err = _error(check_mount, Mount(f"{tmp_path}/docker.sock", "/s"), None, [])
    assert err.message.endswith("this is always refused")


def test_named_volume_passes_the_allowlist() -> None:
    assert check_mount(Mount("cache", "/cache"), [], SOCKETS) is None


def test_docker_sockets_include_docker_host_and_rootless() -> None:
    found = docker_sockets({"DOCKER_HOST": "unix:///custom/d.sock", "XDG_RUNTIME_DIR": "/run/u"})
    assert {"/custom/d.sock", "/run/u/docker.sock", "/var/run/docker.sock"} <= set(found)


def test_allowlist_sources() -> None:
    assert allowlist({"allowed_mounts": ["/a"]}, "allowed_mounts", {"V": "/b"}, "V", ":") == ["/a"]
    assert allowlist({}, "allowed_mounts", {"V": "/b:/c"}, "V", ":") == ["/b", "/c"]
    assert allowlist({}, "allowed_mounts", {"V": ""}, "V", ":") == []  # set but empty: none
    assert allowlist({}, "allowed_mounts", {}, "V", ":") is None


def test_contained_paths(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    assert contained(tmp_path, "ctx", "docker_env.build.context") == (tmp_path / "ctx").resolve()
    err = _error(contained, tmp_path, "../elsewhere", "docker_env.build.context")
    assert err.message == "docker_env.build.context '../elsewhere' escapes the project directory"
    err = _error(contained, tmp_path, "Dockerfile", "docker_env.build.dockerfile")
    assert err.message == "docker_env.build.dockerfile 'Dockerfile' does not exist in the project"


# -- environment variables -----------------------------------------------------------------


def test_environment_copies_and_sets() -> None:
    entries = [("VAR1", None), ("VAR2", "v2")]
    assert resolve_environment(entries, {"VAR1": "value1"}, None) == {
        "VAR1": "value1",
        "VAR2": "v2",
    }


def test_missing_host_variable_mlflow_message() -> None:
    err = _error(resolve_environment, [("VAR1", None), ("VAR2", "x")], {}, None)
    assert err.message == (
        "This project expects the VAR1 environment variables to be set on the machine running "
        "the project, but VAR1 was not set."
    )


def test_several_missing_host_variables() -> None:
    err = _error(resolve_environment, [("A", None), ("B", None), ("C", None)], {"B": "1"}, None)
    assert err.message.endswith("expects the A, B, C environment variables to be set on the "
                                "machine running the project, but A, C were not set.")  # fmt: skip


def test_secret_looking_copy_refused_unless_allowed() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    err = _error(resolve_environment, [("AWS_SECRET_ACCESS_KEY", None)], env, None)
    assert err.message == (
        "docker_env.environment copies the host variable AWS_SECRET_ACCESS_KEY, which looks "
        "like a secret; refused unless the operator allows it"
    )
    assert err.hint == (
        "the operator allows host variables with RUNNER_DOCKER_ALLOWED_ENV (comma-separated) "
        "or backend config allowed_env"
    )
    allowed = resolve_environment([("AWS_SECRET_ACCESS_KEY", None)], env, ["AWS_SECRET_ACCESS_KEY"])
    assert allowed == env


def test_copy_outside_allowlist_refused() -> None:
    err = _error(resolve_environment, [("HOME", None)], {"HOME": "/root"}, ["USER"])
    assert err.message == (
        "docker_env.environment copies the host variable HOME, which is not in allowed host "
        "variables"
    )


def test_set_values_need_no_allowlist() -> None:
    assert resolve_environment([("API_TOKEN", "literal")], {}, []) == {"API_TOKEN": "literal"}


# -- tracking ------------------------------------------------------------------------------


def test_journal_and_tracking_module_are_mounted(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "runner_tracking.py").write_text("")
    run_env = {
        "RUNNER_ARTIFACTS_DIR": "/home/u/.runner/artifacts/r1",
        "PYTHONPATH": f"/host/site:{lib}",
    }
    plan = tracking_plan(run_env, None)
    assert plan.volumes == (
        "/home/u/.runner/artifacts/r1:/runner/artifacts:rw",
        f"{lib}:/runner/lib:ro",
    )
    assert plan.env == {"RUNNER_ARTIFACTS_DIR": "/runner/artifacts", "PYTHONPATH": "/runner/lib"}


def test_sqlite_store_not_mounted_by_default() -> None:
    plan = tracking_plan({"RUNNER_TRACKING_URI": "sqlite:////home/u/.runner/runner.db"}, None)
    assert plan == TrackingPlan()


def test_sqlite_store_shared_on_request() -> None:
    uri = "sqlite:////home/u/.runner/runner.db?timeout=30"
    plan = tracking_plan({"RUNNER_TRACKING_URI": uri}, None, share_db=True)
    assert plan.volumes == ("/home/u/.runner:/runner/tracking:rw",)
    assert plan.env == {"RUNNER_TRACKING_URI": "sqlite:////runner/tracking/runner.db?timeout=30"}


def test_sqlite_without_file_refused() -> None:
    err = _error(tracking_plan, {"RUNNER_TRACKING_URI": "sqlite://"}, None, share_db=True)
    assert err.message == "the SQLite tracking URI 'sqlite://' names no database file"


@pytest.mark.parametrize(
    ("uri", "rewritten"),
    [
        ("http://localhost:5000", "http://host.docker.internal:5000"),
        ("http://127.0.0.1:5000/api", "http://host.docker.internal:5000/api"),
        ("https://u:p@localhost/x", "https://u:p@host.docker.internal/x"),
    ],
)
def test_loopback_url_rewritten_to_the_host_gateway(uri: str, rewritten: str) -> None:
    plan = tracking_plan({"RUNNER_TRACKING_URI": uri}, None)
    assert plan.env == {"RUNNER_TRACKING_URI": rewritten}
    assert plan.extra_hosts == {"host.docker.internal": "host-gateway"}


def test_loopback_url_unchanged_on_host_network() -> None:
    plan = tracking_plan({"RUNNER_TRACKING_URI": "http://localhost:5000"}, "host")
    assert plan.env == {"RUNNER_TRACKING_URI": "http://localhost:5000"} and not plan.extra_hosts


def test_remote_url_passed_through() -> None:
    plan = tracking_plan({"RUNNER_TRACKING_URI": "https://track.example.com"}, None)
    assert plan.env == {"RUNNER_TRACKING_URI": "https://track.example.com"}


# -- the container -------------------------------------------------------------------------


def test_container_env_drops_host_only_vars_and_project_wins() -> None:
    run_env = {
        "RUNNER_RUN_ID": "r1",
        "PATH": "/host/env/bin:/usr/bin",
        "VIRTUAL_ENV": "/host/env",
        "PYTHONPATH": "/host/lib",
        "RUNNER_TRACKING_URI": "sqlite:////host/db",
    }
    plan = TrackingPlan(env={"PYTHONPATH": "/runner/lib"})
    env = container_env(run_env, plan, {"RUNNER_RUN_ID": "mine", "X": "1"})
    assert env == {"RUNNER_RUN_ID": "mine", "PYTHONPATH": "/runner/lib", "X": "1"}


def test_container_command_keeps_the_line_verbatim() -> None:
    line = "printf '%s|' 'a b' \"it's\" '$HOME' && echo"
    out = subprocess.run(container_command(line), capture_output=True, text=True, check=True)
    assert out.stdout == "a b|it's|$HOME|\n"


def test_container_command_falls_back_to_sh_without_bash(tmp_path: Path) -> None:
    (tmp_path / "sh").symlink_to("/bin/sh")
    argv = container_command("echo $0")
    env = {"PATH": str(tmp_path)}  # only sh: no bash to find
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    assert out.stdout == "sh\n"


def test_container_name_is_stable_and_valid() -> None:
    assert container_name("0a1b/c d") == "runner-0a1b-c-d"


def _request(tmp_path: Path, **docker: object) -> LaunchRequest:
    spec = ProjectSpec(tmp_path, "p", EnvSpec("docker_env", docker=DockerEnv("img", **docker)))  # type: ignore[arg-type]
    return LaunchRequest(
        "run-1", "python train.py --x 'a b'", tmp_path, {"RUNNER_RUN_ID": "run-1"}, spec
    )


def test_working_dir_follows_the_project(tmp_path: Path) -> None:
    request = _request(tmp_path)
    assert working_dir(request) == "/runner/project"
    sub = LaunchRequest("r", "c", tmp_path / "src", {}, request.spec)
    assert working_dir(sub) == "/runner/project/src"


def test_container_options(tmp_path: Path) -> None:
    request = _request(tmp_path, environment=(("TOKEN_NAME", "t"), ("HOME_COPY", None)))
    options = container_options(request, {"HOME_COPY": "/root"})
    assert options["labels"] == {"runner.run_id": "run-1", "runner.managed": "true"}
    assert options["environment"] == {
        "RUNNER_RUN_ID": "run-1",
        "TOKEN_NAME": "t",
        "HOME_COPY": "/root",
    }
    assert options["command"][-1] == "python train.py --x 'a b'"
    assert "/root" not in json.dumps(options["command"])  # values only through the API
    assert options["init"] is True and options["name"] == "runner-run-1"
    assert "auto_remove" not in options  # auto-remove loses the logs of fast containers


def test_container_options_refuse_before_anything(tmp_path: Path) -> None:
    request = _request(tmp_path, volumes=("/var/run/docker.sock:/var/run/docker.sock",))
    err = _error(container_options, request, {})
    assert err.message.startswith("volume '/var/run/docker.sock' would expose the Docker socket")


def test_container_options_allowlist_from_env(tmp_path: Path) -> None:
    request = _request(tmp_path, volumes=("/:/host",))
    err = _error(container_options, request, {"RUNNER_DOCKER_ALLOWED_MOUNTS": str(tmp_path)})
    assert err.message == "volume '/' not in allowed mounts"


def test_config_schema_is_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(CONFIG_SCHEMA)
    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    assert validator.is_valid({"docker_args": {"memory": "1g", "t": True}, "image_override": "x"})
    assert not validator.is_valid({"imag_override": "x"})


# -- image layers --------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "m.py").write_text("print(1)\n")
    (root / "train.py").write_text("import src\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "sub" / ".git").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(b"\0" * 10)
    return root


def test_project_files_respect_dockerignore_and_never_git(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / ".dockerignore").write_text("# comment\n\ndata/\n!.git\n")
    assert layers.project_files(root) == [".dockerignore", "src", "src/m.py", "sub", "train.py"]


def test_read_dockerignore(tmp_path: Path) -> None:
    assert layers.read_dockerignore(tmp_path) == []
    (tmp_path / ".dockerignore").write_text("  *.pyc  \n# c\n\n!keep.pyc\n")
    assert layers.read_dockerignore(tmp_path) == ["*.pyc", "!keep.pyc"]


def test_tree_digest_tracks_what_copy_copies(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / ".dockerignore").write_text("data/\n")

    def digest() -> str:
        return layers.tree_digest(root, layers.project_files(root))

    first = digest()
    assert digest() == first
    (root / "data" / "big.bin").write_bytes(b"changed")  # ignored: same hash
    (root / ".git" / "HEAD").write_text("other\n")
    assert digest() == first
    (root / "train.py").chmod(0o755)
    assert digest() != first
    second = digest()
    (root / "src" / "m.py").write_text("print(2)\n")
    assert digest() != second
    third = digest()
    (root / "link").symlink_to("src")
    assert digest() != third


def test_tags_are_valid_docker_references() -> None:
    from docker.utils.build import match_tag

    tags = [
        layers.code_tag("My Project!", "sha256:" + "a" * 64, "b" * 64),
        layers.env_tag("c" * 64, "sha256:" + "d" * 64),
        layers.base_tag(None, "e" * 64),
    ]
    assert tags[1] == f"runner-env:{'c' * 16}-{'d' * 12}"
    assert tags[0].startswith("runner/my-project:") and tags[2].startswith("runner/project-base:")
    assert all(match_tag(tag) for tag in tags)


def test_tags_change_with_their_inputs() -> None:
    assert layers.code_tag("p", "sha256:1", "t") != layers.code_tag("p", "sha256:2", "t")
    assert layers.code_tag("p", "sha256:1", "t") != layers.code_tag("p", "sha256:1", "u")
    assert layers.env_tag("k" * 16, "sha256:1") != layers.env_tag("k" * 16, "sha256:2")
    assert layers.build_digest("t", "Dockerfile", [("A", "1")]) != layers.build_digest(
        "t", "Dockerfile", [("A", "2")]
    )


def test_env_dockerfile_installs_offline() -> None:
    text = layers.env_dockerfile("runner-test/python:3.11", layers.layer_labels("env", env_key="k"))
    assert text.startswith("FROM runner-test/python:3.11\nCOPY wheels/ /tmp/runner-wheels/\n")
    assert "--no-index" in text and "--find-links /tmp/runner-wheels" in text
    assert "ENV VIRTUAL_ENV=/opt/runner-env PATH=/opt/runner-env/bin:$PATH" in text
    assert text.endswith('LABEL runner.env_key="k" runner.layer="env" runner.managed="true"\n')


def test_code_dockerfile() -> None:
    text = layers.code_dockerfile("base:1", {"runner.layer": "code"})
    assert text == 'FROM base:1\nCOPY project/ /runner/project/\nLABEL runner.layer="code"\n'


def test_pip_download_argv_only_wheels_no_deps(tmp_path: Path) -> None:
    argv = layers.pip_download_argv(tmp_path / "lock", tmp_path / "w", "3.11.7")
    assert argv[1:4] == ["-m", "pip", "download"]
    assert "--only-binary=:all:" in argv and "--no-deps" in argv
    assert argv[-2:] == ["--python-version", "3.11"]


def test_default_base_image() -> None:
    assert layers.default_base_image("3.12.1") == "python:3.12-slim"
    assert layers.default_base_image(None).startswith("python:3.")


def test_env_layer_wanted_for_locked_python_envs_only() -> None:
    assert layers.wants_env_layer("uv", "k", "six==1.16.0\n") is True
    assert layers.wants_env_layer("uv", "k", "") is False
    assert layers.wants_env_layer("local", None, None) is False
    err = _error(layers.wants_env_layer, "conda", "k", "numpy")
    assert err.message == "the docker backend cannot install a conda environment into an image yet"


def test_image_facts_say_there_is_no_registry_digest() -> None:
    image = {"tag": "runner/p:1", "id": "sha256:1"}
    base = {"tag": "python:3.11-slim", "id": "sha256:0", "repo_digests": ["python@sha256:9"]}
    facts = layers.image_facts(image, base, None, [])
    assert facts["image_digest"] == "sha256:1" and facts["image_built"] == "none"
    assert facts["image_digest_source"] == (
        "image id (built locally, never pushed: no registry digest)"
    )
    assert facts["base_image_digest"] == "python@sha256:9"
    env = {"tag": "runner-env:k", "id": "sha256:e"}
    facts = layers.image_facts(image, base, env, ["env", "code"])
    assert facts["env_image_id"] == "sha256:e" and facts["image_built"] == "env,code"


# -- the daemon connection and exit statuses -----------------------------------------------


def test_daemon_url_precedence() -> None:
    assert daemon_url({"docker_host": "tcp://h:2375"}, {"DOCKER_HOST": "unix:///x"}) == (
        "tcp://h:2375"
    )
    assert daemon_url({}, {"DOCKER_HOST": "unix:///x"}) == "unix:///x"
    assert daemon_url({}, {}) == "unix:///var/run/docker.sock"


def test_root_cause_digs_through_requests_nesting() -> None:
    inner = FileNotFoundError(2, "No such file or directory")
    middle = ConnectionError("Connection aborted.", inner)
    try:
        try:
            raise middle
        except ConnectionError as exc:
            raise RuntimeError("Error while fetching server API version") from exc
    except RuntimeError as outer:
        assert root_cause(outer) == "No such file or directory"


@pytest.mark.parametrize(
    ("code", "cancelled", "oom", "expected"),
    [
        (0, False, False, (RunStatus.FINISHED, 0, None)),
        (3, False, False, (RunStatus.FAILED, 3, "entry point exited with code 3")),
        (137, False, False, (RunStatus.FAILED, 137, "entry point killed by SIGKILL (exit 137)")),
        (
            137,
            False,
            True,
            (RunStatus.FAILED, 137, "entry point killed: out of memory (oom_killed)"),
        ),
        (143, True, False, (RunStatus.KILLED, 143, "cancelled")),
    ],
)
def test_exit_info(code: int, cancelled: bool, oom: bool, expected: tuple[object, ...]) -> None:
    info = _exit_info(code, cancelled, oom, None)
    assert (info.status, info.exit_code, info.reason) == expected


def test_exit_info_when_the_daemon_was_lost() -> None:
    info = _exit_info(None, False, False, "lost the Docker daemon while waiting: refused")
    assert info.status is RunStatus.FAILED and info.reason == (
        "lost the Docker daemon while waiting: refused"
    )


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    code = "import sys, backends.docker.backend; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_path_parameters_are_mounted_read_only_at_the_same_path(tmp_path: Path) -> None:
    import dataclasses

    data = tmp_path / "data.csv"
    data.write_text("x\n")
    request = dataclasses.replace(_request(tmp_path), input_paths=(str(data),))
    volumes = container_options(request, {})["volumes"]
    assert f"{data}:{data}:ro" in volumes


def test_a_path_parameter_never_mounts_the_docker_socket(tmp_path: Path) -> None:
    import dataclasses

    request = dataclasses.replace(_request(tmp_path), input_paths=("/var/run",))
    with pytest.raises(BackendError, match="would expose the Docker socket"):
        container_options(request, {})
