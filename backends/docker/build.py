"""Pure builders for a Docker run: tracking store access, the command, env and create options."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from backends.docker.args import map_docker_args
from backends.docker.policy import (
    ENV_ALLOW_VAR,
    MOUNTS_VAR,
    Mount,
    allowlist,
    check_mount,
    docker_sockets,
    parse_volume,
    resolve_environment,
)
from runner.backend import LaunchRequest
from runner.errors import BackendError

PROJECT_DIR = "/runner/project"
TRACKING_DIR = "/runner/tracking"
TRACKING_VAR = "RUNNER_TRACKING_URI"
MLFLOW_VAR = "MLFLOW_TRACKING_URI"  # the server or embedded MLflow API code for MLflow logs to
ARTIFACTS_DIR = "/runner/artifacts"
ARTIFACTS_VAR = "RUNNER_ARTIFACTS_DIR"
LIB_DIR = "/runner/lib"
HOST_ALIAS = "host.docker.internal"
LABEL_RUN_ID = "runner.run_id"
LABEL_MANAGED = "runner.managed"
# variables that describe the host's environment, meaningless (or harmful) inside an image
HOST_ONLY_VARS = frozenset(
    {"PATH", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONHOME"}
)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
# bash when the image has it (MLflow runs entry points with bash), else POSIX sh; "$1" is the
# command, passed as an argument so it is never re-quoted
_PICK_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -c "$1"; fi; exec sh -c "$1"'


@dataclass(frozen=True)
class TrackingPlan:
    volumes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    extra_hosts: Mapping[str, str] = field(default_factory=dict)

    def __add__(self, other: TrackingPlan) -> TrackingPlan:
        return TrackingPlan(
            (*self.volumes, *other.volumes),
            {**self.env, **other.env},
            {**self.extra_hosts, **other.extra_hosts},
        )


def tracking_plan(
    run_env: Mapping[str, str], network_mode: str | None, share_db: bool = False
) -> TrackingPlan:
    """What the container needs so the entry point can record into its run.

    Entry points append to the journal in RUNNER_ARTIFACTS_DIR (runner.tracking), so that
    directory and the ``runner_tracking`` module on PYTHONPATH are what must be mounted. The
    SQLite DB itself is mounted only on request (``share_db``): read-write, a container could
    rewrite every run's record.
    """
    plan = _journal_plan(run_env) + _pythonpath_plan(run_env.get("PYTHONPATH", ""))
    uri = run_env.get(TRACKING_VAR)
    if uri and uri.startswith("sqlite:"):
        return plan + _sqlite_plan(uri) if share_db else plan
    if uri:
        return plan + _url_plan(uri, network_mode)
    return plan


def mlflow_plan(run_env: Mapping[str, str], network_mode: str | None) -> TrackingPlan:
    """MLflow's client reaches the host's server (or the run's embedded MLflow API) as the
    runner's own tracking client does: a loopback URL becomes the host-gateway alias."""
    uri = run_env.get(MLFLOW_VAR, "")
    return _url_plan(uri, network_mode, MLFLOW_VAR) if uri.startswith("http") else TrackingPlan()


def _journal_plan(run_env: Mapping[str, str]) -> TrackingPlan:
    host_dir = run_env.get(ARTIFACTS_VAR)
    if not host_dir:
        return TrackingPlan()
    return TrackingPlan((f"{host_dir}:{ARTIFACTS_DIR}:rw",), {ARTIFACTS_VAR: ARTIFACTS_DIR})


def _pythonpath_plan(pythonpath: str) -> TrackingPlan:
    """Only the entry that holds ``runner_tracking.py`` is mounted; host paths mean nothing."""
    for entry in filter(None, pythonpath.split(os.pathsep)):
        if os.path.isfile(os.path.join(entry, "runner_tracking.py")):
            return TrackingPlan((f"{entry}:{LIB_DIR}:ro",), {"PYTHONPATH": LIB_DIR})
    return TrackingPlan()


def _sqlite_plan(uri: str) -> TrackingPlan:
    # the directory, not the file: WAL mode needs the -wal and -shm files beside the DB
    path, _, query = uri.removeprefix("sqlite:").lstrip("/").partition("?")
    if not path or path == ":memory:":
        raise BackendError(f"the SQLite tracking URI {uri!r} names no database file")
    db = Path("/" + path)
    rewritten = f"sqlite:///{TRACKING_DIR}/{db.name}" + (f"?{query}" if query else "")
    return TrackingPlan((f"{db.parent}:{TRACKING_DIR}:rw",), {TRACKING_VAR: rewritten})


def _url_plan(uri: str, network_mode: str | None, variable: str = TRACKING_VAR) -> TrackingPlan:
    """A loopback URL is rewritten to the host as the container sees it (host-gateway)."""
    parts = urlsplit(uri)
    if parts.hostname not in _LOOPBACK or network_mode == "host":
        return TrackingPlan(env={variable: uri})
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + HOST_ALIAS
    netloc += f":{parts.port}" if parts.port else ""
    rewritten = urlunsplit(parts._replace(netloc=netloc))
    return TrackingPlan(env={variable: rewritten}, extra_hosts={HOST_ALIAS: "host-gateway"})


def container_command(command: str) -> list[str]:
    """The argv that runs the rendered command line inside the image."""
    return ["/bin/sh", "-c", _PICK_SHELL, "runner", command]


def container_env(
    run_env: Mapping[str, str], tracking: TrackingPlan, project_env: Mapping[str, str]
) -> dict[str, str]:
    """Run vars, minus host-only ones, then tracking, then the project's (last, as in MLflow)."""
    replaced = HOST_ONLY_VARS | {TRACKING_VAR, ARTIFACTS_VAR}  # the tracking plan sets them
    env = {k: v for k, v in run_env.items() if k not in replaced}
    return {**env, **tracking.env, **project_env}


def container_name(run_id: str) -> str:
    """A stable name, so a retried create after a timeout conflicts instead of duplicating."""
    return "runner-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", run_id)


def working_dir(request: LaunchRequest) -> str:
    """The command's directory in the image: the project copy, or a sub-directory of it."""
    try:
        rel = request.work_dir.resolve().relative_to(request.spec.root.resolve())
    except ValueError:
        return PROJECT_DIR
    return f"{PROJECT_DIR}/{rel.as_posix()}".removesuffix("/.")


def _checked_mounts(request: LaunchRequest, host_env: Mapping[str, str]) -> list[str]:
    docker_env = request.spec.env.docker
    mounts = [
        parse_volume(v, request.spec.root) for v in (docker_env.volumes if docker_env else ())
    ]
    allowed = allowlist(request.config, "allowed_mounts", host_env, MOUNTS_VAR, ":")
    sockets = docker_sockets(host_env)
    for mount in mounts:
        check_mount(mount, allowed, sockets)
    # the user's own `path` inputs, read-only at the same path; never the Docker socket
    inputs = [Mount(path, path, "ro") for path in request.input_paths]
    for mount in inputs:
        check_mount(mount, None, sockets)
    return [mount.spec() for mount in (*mounts, *inputs)]


def _project_env(request: LaunchRequest, host_env: Mapping[str, str]) -> dict[str, str]:
    docker_env = request.spec.env.docker
    allowed = allowlist(request.config, "allowed_env", host_env, ENV_ALLOW_VAR, ",")
    return resolve_environment(docker_env.environment if docker_env else (), host_env, allowed)


def container_options(request: LaunchRequest, host_env: Mapping[str, str]) -> dict[str, Any]:
    """Every ``containers.create`` argument but the image; raises before anything is built."""
    options = map_docker_args(request.config.get("docker_args", {}))
    share_db = bool(request.config.get("share_tracking_db", False))
    tracking = tracking_plan(request.env, options.get("network_mode"), share_db) + mlflow_plan(
        request.env, options.get("network_mode")
    )
    mounts = _checked_mounts(request, host_env)
    env = container_env(request.env, tracking, _project_env(request, host_env))
    hosts = {**tracking.extra_hosts, **options.pop("extra_hosts", {})}
    return {
        "init": True,  # docker-init forwards SIGTERM to the entry point and reaps zombies
        **options,
        **({"extra_hosts": hosts} if hosts else {}),
        "command": container_command(request.command),
        "environment": env,  # through the API: never on a command line (J1)
        "volumes": [*tracking.volumes, *mounts],
        "labels": {LABEL_RUN_ID: request.run_id, LABEL_MANAGED: "true"},
        "working_dir": working_dir(request),
        "name": container_name(request.run_id),
    }


CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image_override": {"type": "string", "minLength": 1},  # replaces docker_env.image
        "base_image": {"type": "string", "minLength": 1},  # base for non-docker_env projects
        "docker_args": {
            "type": "object",
            "additionalProperties": {"type": ["string", "boolean"]},
        },
        "allowed_mounts": {"type": "array", "items": {"type": "string"}},
        "allowed_env": {"type": "array", "items": {"type": "string"}},
        "share_tracking_db": {"type": "boolean"},
        "docker_host": {"type": "string", "minLength": 1},
        "api_timeout": {"type": "number", "exclusiveMinimum": 0},
        "build_timeout": {"type": "number", "exclusiveMinimum": 0},
    },
}
