"""Environment managers and the content-addressed environment cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANAGERS = ("local", "uv", "virtualenv", "conda")


@dataclass(frozen=True)
class PreparedEnv:
    """A ready environment: what to put on PATH and what to record on the run."""

    manager: str  # "local", "uv", "conda", "docker"
    key: str | None = None  # sha256 cache key; None for the system environment
    prefix: Path | None = None  # env directory whose bin/ goes first on PATH
    python: str | None = None  # interpreter version, e.g. "3.11.7"
    lock: str | None = None  # pinned requirement lines, as installed
    details: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # True when a cached env was used as is (nothing was installed)
    warnings: tuple[str, ...] = ()  # for the user, e.g. conda deps dropped; not recorded

    def record(self) -> dict[str, Any]:
        """The ``environment`` block of the run record."""
        out: dict[str, Any] = {"manager": self.manager}
        for name in ("key", "python", "lock"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.prefix is not None:
            out["prefix"] = str(self.prefix)
        out.update(self.details)
        return out

    def env_vars(self, base_path: str) -> dict[str, str]:
        """Variables that activate the env without a shell script: bin/ first on PATH."""
        if self.prefix is None:
            return {}
        bin_dir = str(self.prefix / "bin")
        return {"VIRTUAL_ENV": str(self.prefix), "PATH": f"{bin_dir}:{base_path}"}
