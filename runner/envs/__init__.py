"""Environment managers behind one protocol, and the content-addressed environment cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.envs.base import Activation


@dataclass(frozen=True)
class PreparedEnv:
    """A ready environment: how a run enters it and what to record on the run."""

    manager: str  # the canonical manager name: "local", "uv", "docker", a plugin's
    key: str | None = None  # sha256 cache key; None when nothing is built on the host
    prefix: Path | None = None  # the env directory; None when nothing was built here
    python: str | None = None  # interpreter version, e.g. "3.11.7"
    lock: str | None = None  # the lock text, as installed
    details: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # True when a cached env was used as is (nothing was installed)
    warnings: tuple[str, ...] = ()  # for the user, e.g. conda deps dropped
    activation: Activation = field(default_factory=Activation)

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
        """Variables that activate the env for a run whose PATH is ``base_path``."""
        return self.activation.env_vars(base_path)
