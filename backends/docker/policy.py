"""The operator's safety policy for Docker runs: bind mounts, copied host variables, the socket."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import BackendError

MOUNTS_VAR = "RUNNER_DOCKER_ALLOWED_MOUNTS"
ENV_ALLOW_VAR = "RUNNER_DOCKER_ALLOWED_ENV"
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|APIKEY|(^|_)KEY(_|$)", re.I)
_MODES = frozenset({"ro", "rw", "z", "Z", "cached", "delegated", "consistent"})


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
    """Paths at which this machine's Docker socket may be reached (resolved through links)."""
    candidates = ["/var/run/docker.sock", "/run/docker.sock"]
    if env.get("DOCKER_HOST", "").startswith("unix://"):
        candidates.append(env["DOCKER_HOST"].removeprefix("unix://"))
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(f"{env['XDG_RUNTIME_DIR']}/docker.sock")
    return sorted({*candidates, *map(os.path.realpath, candidates)})


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_mount(mount: Mount, allowed: Sequence[str] | None, sockets: Sequence[str]) -> None:
    """Refuse a bind mount outside the allowlist, or one that would expose the Docker socket."""
    if not mount.is_bind:
        return  # a named volume is Docker-managed storage, not a host path
    real = os.path.realpath(mount.source)
    if allowed is not None and not any(_within(real, os.path.realpath(a)) for a in allowed):
        raise BackendError(
            f"volume '{mount.source}' not in allowed mounts",
            hint=f"allowed: {', '.join(allowed) or '(none)'}; the operator sets them with "
            f"{MOUNTS_VAR} (':'-separated) or backend config allowed_mounts",
        )
    exposed = [s for s in sockets if _within(s, real)]
    if real.endswith("docker.sock"):  # a socket we don't know of, e.g. a copy of the context's
        exposed.append(real)
    if exposed:
        raise BackendError(
            f"volume '{mount.source}' would expose the Docker socket {exposed[0]}; "
            "this is always refused",
            hint="a container that reaches the Docker socket controls the host",
        )


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
