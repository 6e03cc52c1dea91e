"""The operator's policy for Docker runs: bind mounts, copied host variables, runtime sockets."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import BackendError

MOUNTS_VAR = "RUNNER_DOCKER_ALLOWED_MOUNTS"
ENV_ALLOW_VAR = "RUNNER_DOCKER_ALLOWED_ENV"
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|APIKEY|(^|_)KEY(_|$)", re.I)
_MODES = frozenset({"ro", "rw", "z", "Z", "cached", "delegated", "consistent"})
# Sockets and state of container runtimes (docker, containerd, podman, cri-o, buildkit, runc,
# k3s): whoever reaches one can start a privileged container, so a mount may be none of these,
# inside one, or hold one. Whole /run, /var/run, /var/lib and / hold them, so they are refused.
_RUNTIME_PATHS = (
    "/run/docker", "/var/run/docker", "/var/lib/docker",
    "/run/containerd", "/var/run/containerd", "/var/lib/containerd",
    "/run/podman", "/var/run/podman", "/run/containers", "/var/run/containers",
    "/var/lib/containers",
    "/run/crio", "/var/run/crio", "/var/lib/crio",
    "/run/buildkit", "/var/run/buildkit", "/var/lib/buildkit",
    "/run/runc", "/run/k3s", "/var/lib/rancher",
    "/run/dockershim.sock", "/run/cri-dockerd.sock", "/var/run/cri-dockerd.sock",
)  # fmt: skip
# rootless runtimes: under $XDG_RUNTIME_DIR, and their state and desktop sockets under $HOME
_USER_RUNTIME = (
    "docker.sock", "docker", "dockerd-rootless", "containerd", "containerd-rootless", "podman",
    "containers", "buildkit",
)  # fmt: skip
_HOME = (
    ".docker/run", ".docker/desktop", ".local/share/docker", ".local/share/containers",
    ".colima", ".rd", ".lima",
)  # fmt: skip
_RUNTIME_SOCKET = re.compile(
    r"(docker|containerd|podman|crio|cri-dockerd|dockershim|buildkitd?)[\w.-]*\.sock"
)
_SCAN_ENTRIES = 20_000


@dataclass(frozen=True)
class Mount:
    source: str  # an absolute host path, or the name of a Docker-managed volume
    target: str
    mode: str = "rw"

    @property
    def is_bind(self) -> bool:
        return self.source.startswith("/")

    def spec(self) -> str:
        return f"{self.source}:{self.target}:{self.mode}"


def parse_volume(spec: str, project_root: Path) -> Mount:
    """``HOST:CONTAINER[:MODE]``; a host path starting with ``.`` or ``~`` is made absolute."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BackendError(f"docker_env volume {spec!r} is not HOST:CONTAINER[:MODE]")
    mode = parts[2] if len(parts) == 3 else "rw"
    if not set(mode.split(",")) <= _MODES:
        raise BackendError(f"docker_env volume {spec!r} has an unknown mode {mode!r}")
    if not parts[1].startswith("/"):
        raise BackendError(f"docker_env volume {spec!r}: the container path must be absolute")
    source = parts[0]
    if source.startswith(("~", ".")):
        source = str(project_root / os.path.expanduser(source))
    return Mount(os.path.normpath(source) if source.startswith("/") else source, parts[1], mode)


def docker_sockets(env: Mapping[str, str]) -> list[str]:
    """Where this machine's container runtimes may be reached or keep their state: Docker's
    socket first, then the others' sockets and directories (each also resolved through links).
    """
    candidates = ["/var/run/docker.sock", "/run/docker.sock", *_RUNTIME_PATHS]
    for var in ("DOCKER_HOST", "CONTAINER_HOST", "BUILDKIT_HOST", "CONTAINERD_ADDRESS"):
        if env.get(var, "").startswith(("unix://", "/")):
            candidates.append(env[var].removeprefix("unix://"))
    if xdg := env.get("XDG_RUNTIME_DIR"):
        candidates += [f"{xdg}/{name}" for name in _USER_RUNTIME]
    if home := env.get("HOME"):  # only what exists: ~ is not refused for a runtime it never had
        candidates += filter(os.path.lexists, (f"{home}/{name}" for name in _HOME))
    return sorted({*candidates, *map(os.path.realpath, candidates)}, key=_docker_first)


def _docker_first(path: str) -> tuple[bool, str]:
    return not path.endswith("docker.sock"), path


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_mount(mount: Mount, allowed: Sequence[str] | None, sockets: Sequence[str]) -> None:
    """Refuse a bind mount outside the allowlist, or one that would expose a container
    runtime: its socket or state directory at, inside or below the host path."""
    if not mount.is_bind:
        return  # a named volume is Docker-managed storage, not a host path
    real = os.path.realpath(mount.source)
    if allowed is not None and not any(_within(real, os.path.realpath(a)) for a in allowed):
        raise BackendError(
            f"volume '{mount.source}' not in allowed mounts",
            hint=f"allowed: {', '.join(allowed) or '(none)'}; the operator sets them with "
            f"{MOUNTS_VAR} (':'-separated) or backend config allowed_mounts",
        )
    # Docker cleans the path as written before the kernel follows links: check both readings
    seen = {real, os.path.realpath(os.path.normpath(mount.source))}
    known = sorted({*sockets, *docker_sockets({})}, key=_docker_first)
    if exposed := next(filter(None, (_exposed(path, known) for path in sorted(seen))), None):
        raise BackendError(
            f"volume '{mount.source}' would expose {exposed}; this is always refused",
            hint=f"a container that reaches {_what_reached(exposed)} controls the host",
        )


def _exposed(real: str, known: Sequence[str]) -> str | None:
    """What of a container runtime the host path `real` would show a container, if anything."""
    hit = next((p for p in known if _within(p, real) or _within(real, p)), None)
    if hit is None and _RUNTIME_SOCKET.fullmatch(os.path.basename(real)):
        hit = real  # a socket we don't know of, e.g. a copy of the context's
    hit = hit or _socket_below(real)
    if hit is None:
        return None
    if hit.endswith("docker.sock"):
        return f"the Docker socket {hit}"
    if _RUNTIME_SOCKET.fullmatch(os.path.basename(hit)):
        return f"the container runtime socket {hit}"
    return f"the container runtime directory {hit}"


def _what_reached(exposed: str) -> str:
    return "the Docker socket" if "Docker socket" in exposed else "a container runtime"


def _socket_below(root: str) -> str | None:
    """A unix socket named like a runtime's anywhere under `root` (links not followed). The
    walk is bounded: the known places above are checked whatever the size of the tree."""
    budget = _SCAN_ENTRIES
    for parent, dirs, files in os.walk(root):
        for name in filter(_RUNTIME_SOCKET.fullmatch, files):
            path = os.path.join(parent, name)
            with suppress(OSError):
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    return path
        budget -= len(dirs) + len(files)
        if budget < 0:
            return None
    return None


def allowlist(config: Mapping[str, Any], key: str, env: Mapping[str, str], var: str,
              sep: str) -> list[str] | None:  # fmt: skip
    """The operator's allowlist: backend config first, else the env var; None = unrestricted."""
    if key in config:
        return list(config[key])
    if var in env:
        return [item for item in env[var].split(sep) if item]
    return None


# -- environment variables -------------------------------------------------------------------


def _check_copy(name: str, allowed: Collection[str] | None) -> None:
    hint = f"the operator allows host variables with {ENV_ALLOW_VAR} (comma-separated) or "
    hint += "backend config allowed_env"
    if allowed is not None and name not in allowed:
        raise BackendError(
            f"docker_env.environment copies the host variable {name}, "
            "which is not in allowed host variables",
            hint=hint,
        )
    if allowed is None and SECRET_NAME.search(name):
        raise BackendError(
            f"docker_env.environment copies the host variable {name}, which looks like a "
            "secret; refused unless the operator allows it",
            hint=hint,
        )


def resolve_environment(
    entries: Iterable[tuple[str, str | None]],
    host_env: Mapping[str, str],
    allowed: Collection[str] | None,
) -> dict[str, str]:
    """docker_env.environment → values: ``(NAME, None)`` copies from the host, else sets."""
    entries = list(entries)
    copies = [name for name, value in entries if value is None]
    for name in copies:
        _check_copy(name, allowed)
    missing = [name for name in copies if name not in host_env]
    if missing:
        verb = "was" if len(missing) == 1 else "were"
        raise BackendError(
            f"This project expects the {', '.join(copies)} environment variables to be set on "
            f"the machine running the project, but {', '.join(missing)} {verb} not set.",
            hint="export them before running, or remove them from docker_env.environment",
        )
    return {name: host_env[name] if value is None else value for name, value in entries}


def contained(root: Path, rel: str, what: str) -> Path:
    """``root/rel``, resolved; it must exist and stay inside ``root`` (links included)."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BackendError(f"{what} {rel!r} escapes the project directory")
    if not path.exists():
        raise BackendError(f"{what} {rel!r} does not exist in the project")
    return path
