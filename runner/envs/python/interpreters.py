"""Finding an installed Python interpreter that satisfies a ``python:`` request, through uv."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from runner.envs.python.uvcmd import capture_uv, neutral_cwd
from runner.errors import EnvBuildError

_PLAIN = re.compile(r"^\d+(\.\d+){0,2}$")  # "3", "3.11", "3.11.7"
_PATCH_PIN = re.compile(r"^(?P<minor>\d+\.\d+)\.\d+$")  # "3.8.13": minor "3.8"


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # full version, e.g. "3.11.7"
    implementation: str = "cpython"

    @property
    def tag(self) -> str:
        return f"{self.implementation}-{self.version}"


def downloads_allowed() -> bool:
    return os.environ.get("RUNNER_ALLOW_PYTHON_DOWNLOADS") == "1"


def find_interpreter(request: str, *, match: str = "exact") -> Interpreter:
    """The newest installed interpreter matching ``request`` (CPython first).

    ``match="minor"`` widens a patch pin to its minor version: "3.8.13" takes 3.8.18.
    """
    wanted = minor_of(request) if match == "minor" else request
    found = list_interpreters(wanted)
    if not found and downloads_allowed():
        _install(request)
        found = list_interpreters(request)
    if not found:
        raise _not_found(request)
    return found[0]


def minor_of(request: str) -> str:
    """``3.8`` for the patch pin ``3.8.13``; any other request as it is."""
    pinned = _PATCH_PIN.match(request)
    return pinned.group("minor") if pinned else request


def list_interpreters(request: str | None = None) -> list[Interpreter]:
    """Installed interpreters uv can see (pyenv shims replaced by the real installs)."""
    args = ["python", "list", "--only-installed", "--output-format", "json"]
    if request:
        args += ["--", request]
    env = {**os.environ, "PATH": discovery_path(os.environ.get("PATH", ""), request)}
    code, out, err = capture_uv(args, cwd=neutral_cwd(), env=env)
    if code != 0:
        raise EnvBuildError(
            f"cannot list Python interpreters for {request!r}: {_last_line(err)}", log=err
        )
    return _parse(out)


def _parse(out: str) -> list[Interpreter]:
    try:
        rows = json.loads(out or "[]")
    except json.JSONDecodeError as exc:
        raise EnvBuildError("uv printed an interpreter list runner cannot read", log=out) from exc
    found = [
        Interpreter(Path(row["path"]), row["version"], row.get("implementation", "cpython"))
        for row in rows
        if row.get("path")
    ]
    # uv lists newest first; a stable sort keeps that order within each implementation.
    return sorted(found, key=lambda interp: interp.implementation != "cpython")


def discovery_path(path: str, request: str | None = None) -> str:
    """PATH for discovery: version-manager shims swapped for the versions they point to.

    A pyenv shim for a version that is not "global" exits 127 and uv gives up on it, so the
    real ``versions/*/bin`` directories are listed instead, only those that may match
    ``request`` (uv runs each interpreter once to learn its version: seconds when cold).
    The runner's own interpreter comes first so that, among equal versions, it is preferred.
    """
    dirs = [str(Path(sys.base_prefix) / "bin")]
    for entry in path.split(os.pathsep):
        versions = Path(entry).parent / "versions"
        if Path(entry).name == "shims" and versions.is_dir():
            found = sorted(versions.iterdir(), reverse=True)
            dirs += [str(v / "bin") for v in found if _may_match(v, request)]
        elif entry and Path(entry).name != "shims":
            dirs.append(entry)
    return os.pathsep.join(dict.fromkeys(dirs))


def _may_match(install: Path, request: str | None) -> bool:
    """Whether a pyenv install dir (named after its version) can satisfy a plain request."""
    if not (install / "bin").is_dir():
        return False
    if request is None or not _PLAIN.match(request) or not _PLAIN.match(install.name):
        return True  # a range, or a virtualenv name: let uv decide
    return install.name == request or install.name.startswith(request + ".")


def _install(request: str) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "automatic"}
    code, _out, err = capture_uv(["python", "install", "--", request], cwd=neutral_cwd(), env=env)
    if code != 0:
        raise EnvBuildError(f"cannot download Python {request}: {_last_line(err)}", log=err)


def _not_found(request: str) -> EnvBuildError:
    installed = list_interpreters()
    versions = list(dict.fromkeys(interp.tag for interp in installed))
    hint = (
        f"install one (e.g. `uv python install {request}` or pyenv), change python: "
        "in the env file, or set RUNNER_ALLOW_PYTHON_DOWNLOADS=1 to let runner download it"
    )
    minor = minor_of(request)
    near = [i.version for i in installed if minor != request and i.version.startswith(minor + ".")]
    if near:
        hint = f"run with --python-match minor to use Python {near[0]}; or {hint}"
    return EnvBuildError(
        f"no installed Python interpreter satisfies python: {request!r}; "
        f"installed: {', '.join(versions) or 'none found'}",
        hint=hint,
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip().removeprefix("error: ") if lines else "no output"
