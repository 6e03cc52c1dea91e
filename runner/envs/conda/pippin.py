"""Pinning a conda env's ``pip:`` section with ``uv pip compile`` to exact files and hashes."""

from __future__ import annotations

import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from runner.envs.base import Progress
from runner.envs.conda.envfile import CondaSpec
from runner.envs.conda.lockdata import PipPackage
from runner.envs.python.uvfailure import failure_summary
from runner.errors import EnvBuildError


def resolve_pip(spec: CondaSpec, python: str, progress: Progress) -> tuple[PipPackage, ...]:
    """Resolve for ``python`` (the conda env's version) on this platform; pick one file each."""
    from runner.envs.python.uvcmd import neutral_cwd

    progress(f"resolving {len(spec.pip)} pip requirements for Python {python}")
    work = Path(tempfile.mkdtemp(prefix=".resolve-conda-", dir=neutral_cwd()))
    try:
        packages = _compile(spec, python, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tags = _supported_tags(python)
    return tuple(_pick(package, tags) for package in packages)


def _compile(spec: CondaSpec, python: str, work: Path) -> list[dict[str, Any]]:
    from runner.envs.python.uvcmd import run_uv

    lines = [*spec.pip_options, *spec.pip]
    (work / "requirements.in").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The host interpreter only drives the resolver; --python-version is the env's python.
    args = ["pip", "compile", "requirements.in", "-o", "pylock.toml", "--no-header"]
    args += ["--python", sys.executable, "--python-version", python]
    if spec.pip_constraints:
        (work / "constraints.txt").write_text("\n".join(spec.pip_constraints) + "\n")
        args += ["--constraint", "constraints.txt"]
    result = run_uv(args, cwd=work)
    if result.returncode != 0:
        raise EnvBuildError(
            f"cannot resolve the pip section of {spec.origin} for Python {python}:\n"
            f"{failure_summary(result.log)}",
            hint="fix the pip requirements (the full resolver log is attached to the run)",
            log=result.log,
        )
    document = tomllib.loads((work / "pylock.toml").read_text(encoding="utf-8"))
    return list(document.get("packages", []))


def _supported_tags(python: str) -> list[str]:
    """Wheel tags the env's interpreter accepts, best first (this machine's platforms)."""
    from packaging import tags

    major, minor = (int(part) for part in python.split(".")[:2])
    version = (major, minor)
    found = [*tags.cpython_tags(python_version=version), *tags.compatible_tags(version)]
    return [str(tag) for tag in found]


def _pick(package: dict[str, Any], supported: list[str]) -> PipPackage:
    """The best wheel for the env, else the sdist; its sha256 is required."""
    from packaging.utils import parse_wheel_filename

    rank = {tag: index for index, tag in enumerate(supported)}
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in package.get("wheels", []):
        name = str(wheel.get("name") or wheel["url"].rsplit("/", 1)[-1])
        scores = [rank[str(t)] for t in parse_wheel_filename(name)[3] if str(t) in rank]
        if scores and (best is None or min(scores) < best[0]):
            best = (min(scores), wheel)
    artifact = best[1] if best else package.get("sdist")
    if not artifact or "url" not in artifact:
        raise EnvBuildError(
            f"pip package {package['name']} {package.get('version')} has no file for this "
            "platform and Python"
        )
    sha256 = (artifact.get("hashes") or {}).get("sha256")
    if not sha256:
        raise EnvBuildError(f"the index gives no sha256 for {artifact['url']}: it cannot be locked")
    return PipPackage(
        str(package["name"]), str(package.get("version", "")), artifact["url"], sha256
    )
