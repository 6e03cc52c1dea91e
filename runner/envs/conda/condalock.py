"""``conda-lock.yml`` in conda-lock's format (version 1): written by `runner lock`, read back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.envs.conda.envfile import LOCK_NAME
from runner.envs.conda.lockdata import CondaLock, CondaPackage, PipPackage
from runner.errors import SpecError

MAX_LOCK_BYTES = 20_000_000
# conda-lock's metadata has no place for these; custom_metadata (strings) carries them.
_INPUTS_KEY = "runner-inputs"
_DETAILS_KEY = "runner-details"  # url -> [build_number, noarch]


@dataclass(frozen=True)
class CommittedLock:
    text: str  # the file as committed (part of what a resolution is remembered by)
    lock: CondaLock  # this platform's packages
    inputs: str | None  # the CondaSpec digest it was written from, when runner wrote it


def render(lock: CondaLock, inputs: str, source: str) -> str:
    """The lock as conda-lock writes it: metadata, then one entry per package and platform."""
    import yaml

    details = {p.url: [p.build_number, p.noarch] for p in lock.conda}
    metadata = {
        "content_hash": {lock.platform: inputs},
        "channels": [{"url": channel, "used_env_vars": []} for channel in lock.channels],
        "platforms": [lock.platform],
        "sources": [source],
        "custom_metadata": {_INPUTS_KEY: inputs, _DETAILS_KEY: json.dumps(details, sort_keys=True)},
    }
    packages = [_conda_entry(p, lock.platform) for p in sorted(lock.conda, key=lambda p: p.name)]
    packages += [_pip_entry(p, lock.platform) for p in sorted(lock.pip, key=lambda p: p.name)]
    header = (
        "# conda-lock.yml written by `runner lock` (conda-lock's format, version 1).\n"
        "# `runner run` installs it as is, without solving; `conda-lock install` reads it too.\n"
    )
    body = {"version": 1, "metadata": metadata, "package": packages}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def _conda_entry(package: CondaPackage, platform: str) -> dict[str, Any]:
    return {
        "name": package.name,
        "version": package.version,
        "manager": "conda",
        "platform": platform,
        "dependencies": dict(_dependency(dep) for dep in package.depends),
        "url": package.url,
        "hash": {"md5": package.md5, "sha256": package.sha256},
        "category": "main",
        "optional": False,
        "build": package.build,
    }


def _dependency(spec: str) -> tuple[str, str]:
    name, _, constraint = spec.strip().partition(" ")
    return name, constraint.strip()


def _pip_entry(package: PipPackage, platform: str) -> dict[str, Any]:
    return {
        "name": package.name,
        "version": package.version,
        "manager": "pip",
        "platform": platform,
        "dependencies": {},
        "url": package.url,
        "hash": {"sha256": package.sha256},
        "category": "main",
        "optional": False,
    }


def write_lock(root: Path, lock: CondaLock, inputs: str, source: str) -> Path:
    from runner.atomic import write_atomically

    path = root / LOCK_NAME
    write_atomically(path, render(lock, inputs, source))
    return path


def read_committed(
    root: Path, platform: str, variables: tuple[tuple[str, str], ...]
) -> CommittedLock | None:
    """The project's committed conda-lock.yml for this platform (None without one)."""
    if not os.path.lexists(root / LOCK_NAME):
        return None
    from runner.project.files import read_project_file
    from runner.project.yamlsafe import parse_yaml

    data = read_project_file(root, LOCK_NAME, max_bytes=MAX_LOCK_BYTES)
    doc = parse_yaml(data, LOCK_NAME).data
    if not isinstance(doc, dict) or doc.get("version") not in (1, 2):
        raise SpecError(f"{LOCK_NAME}: not a conda-lock file of version 1 or 2")
    try:
        lock, inputs = _parse(doc, platform, variables)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"{LOCK_NAME}: malformed entry ({exc!r})") from exc
    return CommittedLock(data.decode("utf-8", errors="replace"), lock, inputs)


def _parse(
    doc: dict[str, Any], platform: str, variables: tuple[tuple[str, str], ...]
) -> tuple[CondaLock, str | None]:
    metadata = doc["metadata"]
    custom = metadata.get("custom_metadata") or {}
    details = json.loads(custom.get(_DETAILS_KEY) or "{}")
    entries = [e for e in doc.get("package") or [] if e["platform"] == platform and _main(e)]
    if not entries:
        platforms = ", ".join(metadata.get("platforms") or []) or "none"
        raise SpecError(
            f"{LOCK_NAME} has no packages for {platform} (it locks: {platforms})",
            hint=f"run `runner lock` on a {platform} machine, or `conda-lock -p {platform}`",
        )
    conda = tuple(_conda_package(e, details) for e in entries if e["manager"] == "conda")
    pip = tuple(_pip_package(e) for e in entries if e["manager"] == "pip")
    channels = tuple(str(c["url"] if isinstance(c, dict) else c) for c in metadata["channels"])
    lock = CondaLock(platform, channels, conda, pip, variables)
    return lock, custom.get(_INPUTS_KEY)


def _main(entry: dict[str, Any]) -> bool:
    """Packages of the main category (version 1: ``category``; version 2: ``categories``)."""
    categories = entry.get("categories") or [entry.get("category", "main")]
    return "main" in categories


def _conda_package(entry: dict[str, Any], details: dict[str, Any]) -> CondaPackage:
    url = str(entry["url"])
    subdir = url.rsplit("/", 2)[-2]
    depends = tuple(f"{k} {v}".strip() for k, v in (entry.get("dependencies") or {}).items())
    build_number, noarch = details.get(url) or [0, _guess_noarch(subdir, depends)]
    hashes = entry["hash"]
    return CondaPackage(
        name=str(entry["name"]),
        version=str(entry["version"]),
        build=str(entry.get("build") or _build_from_url(url)),
        build_number=int(build_number),
        subdir=subdir,
        noarch=noarch,
        depends=depends,
        url=url,
        md5=str(hashes["md5"]),
        sha256=str(hashes["sha256"]),
    )


def _guess_noarch(subdir: str, depends: tuple[str, ...]) -> str | None:
    """A lock written by conda-lock itself does not say; a noarch package needing python is
    taken as ``noarch: python`` (conda-forge's rule for pure-Python packages)."""
    if subdir != "noarch":
        return None
    return "python" if any(dep.split(" ")[0] == "python" for dep in depends) else "generic"


def _build_from_url(url: str) -> str:
    stem = url.rsplit("/", 1)[-1].removesuffix(".conda").removesuffix(".tar.bz2")
    return stem.rsplit("-", 1)[-1]


def _pip_package(entry: dict[str, Any]) -> PipPackage:
    sha256 = (entry.get("hash") or {}).get("sha256")
    if not sha256:
        raise SpecError(f"{LOCK_NAME}: pip package {entry['name']} has no sha256")
    return PipPackage(str(entry["name"]), str(entry["version"]), str(entry["url"]), str(sha256))
