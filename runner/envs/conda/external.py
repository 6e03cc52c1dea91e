"""A conda-compatible executable (conda, mamba, micromamba) instead of rattler, if configured.

``RUNNER_CONDA_EXE`` names it (a path or a name on PATH); ``auto`` takes the first of conda,
mamba, micromamba on PATH. It solves with ``create --dry-run --json`` and installs the lock as
an ``@EXPLICIT`` file, so the recorded lock has the same form as rattler's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.envs.base import Progress
from runner.envs.conda.channels import channel_urls, redact, redact_text
from runner.envs.conda.envfile import CondaSpec
from runner.envs.conda.lockdata import CondaLock, CondaPackage
from runner.errors import EnvBuildError

TIMEOUT = float(os.environ.get("RUNNER_CONDA_EXE_TIMEOUT", "3600"))


def solve_with(exe: str, spec: CondaSpec, subdir: str, progress: Progress) -> CondaLock:
    """The solve of ``create --dry-run --json`` as a lock (the executable's own channels off)."""
    urls = channel_urls(spec.channels, spec.root)
    progress(f"solving {len(spec.specs)} conda specs with {Path(exe).name}")
    with tempfile.TemporaryDirectory(prefix="runner-conda-dry-") as scratch:
        args = ["create", "--dry-run", "--json", "--yes", "--override-channels"]
        for url in urls:
            args += ["--channel", url]
        args += ["--prefix", str(Path(scratch) / "env"), "--", *spec.specs]
        proc = _run(exe, args)
    report = _json(proc, exe)
    if proc.returncode != 0 or not report.get("success", True):
        from runner.envs.conda.solve import unsatisfiable

        detail = str(report.get("message") or report.get("error") or proc.stderr[-2000:])
        raise unsatisfiable(spec, redact_text(detail))
    packages = tuple(_package(item, exe) for item in _linked(report))
    return CondaLock(subdir, tuple(redact(u) for u in urls), packages)


def install_with(exe: str, lock: CondaLock, prefix: Path, progress: Progress) -> None:
    """Create the env from the lock's exact URLs (``@EXPLICIT``: no solve)."""
    lines = ["@EXPLICIT", *(f"{p.url}#{p.md5}" for p in lock.conda)]
    progress(f"installing {len(lock.conda)} conda packages with {Path(exe).name}")
    with tempfile.TemporaryDirectory(prefix="runner-conda-explicit-") as scratch:
        explicit = Path(scratch) / "explicit.txt"
        explicit.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["create", "--yes", "--quiet", "--prefix", str(prefix), "--file", str(explicit)]
        proc = _run(exe, args)
    if proc.returncode != 0:
        raise EnvBuildError(
            f"{Path(exe).name} could not create the environment (exit {proc.returncode}):\n"
            + redact_text("\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])),
            log=redact_text(f"$ {exe} {' '.join(args)}\n{proc.stdout}{proc.stderr}"),
        )


def _run(exe: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvBuildError(f"cannot run {exe}: {exc}") from exc


def _json(proc: subprocess.CompletedProcess[str], exe: str) -> dict[str, Any]:
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise EnvBuildError(
            f"{Path(exe).name} did not answer with JSON (exit {proc.returncode}):\n"
            + redact_text((proc.stderr or proc.stdout)[-2000:])
        )
    return data


def _linked(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The packages the env would hold: LINK entries, completed from FETCH (conda gives the
    full record only for packages it would download)."""
    actions = report.get("actions") or {}
    fetched = {str(item.get("name")): item for item in actions.get("FETCH") or []}
    return [
        {**item, **fetched.get(str(item.get("name")), {})} for item in actions.get("LINK") or []
    ]


def _package(item: dict[str, Any], exe: str) -> CondaPackage:
    missing = [key for key in ("url", "md5", "sha256") if not item.get(key)]
    if missing:
        raise EnvBuildError(
            f"{Path(exe).name} did not report the {' and '.join(missing)} of "
            f"{item.get('name')} (already in its package cache?): it cannot be locked",
            hint="unset RUNNER_CONDA_EXE to solve with rattler",
        )
    noarch = item.get("noarch")
    return CondaPackage(
        name=str(item["name"]),
        version=str(item["version"]),
        build=str(item.get("build") or item.get("build_string")),
        build_number=int(item.get("build_number") or 0),
        subdir=str(item.get("subdir") or item.get("platform")),
        noarch=str(noarch) if noarch in ("python", "generic") else None,
        depends=tuple(item.get("depends") or ()),
        url=redact(str(item["url"])),
        md5=str(item["md5"]),
        sha256=str(item["sha256"]),
    )
