"""The conda lock: every package with its channel URL, build and hashes; its canonical text."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from runner.errors import EnvBuildError

LOCK_FORMAT = 1


@dataclass(frozen=True)
class CondaPackage:
    """One solved conda package, as installed (URLs never carry credentials)."""

    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    noarch: str | None
    depends: tuple[str, ...]
    url: str
    md5: str
    sha256: str

    @property
    def channel(self) -> str:
        """The channel's base URL: the package URL without ``/<subdir>/<file>``."""
        return self.url.rsplit("/", 2)[0]

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PipPackage:
    """One pinned distribution of the ``pip:`` section: the exact file and its sha256."""

    name: str
    version: str
    url: str
    sha256: str


@dataclass(frozen=True)
class CondaLock:
    platform: str  # the conda subdir, e.g. linux-64
    channels: tuple[str, ...]  # redacted channel URLs or names, in priority order
    conda: tuple[CondaPackage, ...]
    pip: tuple[PipPackage, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # conda.yaml's `variables:`, set on activation

    def text(self) -> str:
        """Canonical JSON: the same packages always give the same text (and cache key)."""
        data = {
            "format": LOCK_FORMAT,
            "platform": self.platform,
            "channels": list(self.channels),
            "conda": [asdict(p) for p in sorted(self.conda, key=lambda p: p.name)],
            "pip": [asdict(p) for p in sorted(self.pip, key=lambda p: p.name)],
            "variables": dict(self.variables),
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    def python(self) -> str | None:
        return next((p.version for p in self.conda if p.name == "python"), None)

    def packages(self) -> tuple[str, ...]:
        """``name=version=build`` per conda package, then ``name==version`` per pip one."""
        conda = sorted(f"{p.name}={p.version}={p.build}" for p in self.conda)
        return (*conda, *sorted(f"{p.name}=={p.version}" for p in self.pip))


def parse_lock(text: str) -> CondaLock:
    """The lock ``CondaLock.text`` wrote (read back when an env is built from it)."""
    try:
        data: Any = json.loads(text)
        conda = tuple(_conda_package(item) for item in data["conda"])
        pip = tuple(PipPackage(**item) for item in data["pip"])
        variables = tuple(sorted(dict(data["variables"]).items()))
        return CondaLock(data["platform"], tuple(data["channels"]), conda, pip, variables)
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvBuildError(f"unreadable conda lock: {exc}") from exc


def _conda_package(item: dict[str, Any]) -> CondaPackage:
    return CondaPackage(**{**item, "depends": tuple(item["depends"])})
