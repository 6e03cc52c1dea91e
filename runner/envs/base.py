"""The EnvManager protocol, its shared defaults, and the lock and activation records."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EnvLock:
    """What a manager resolved a project's env spec to.

    ``content`` and ``interpreter`` decide the cache key (with the manager and the platform).
    ``python``, ``packages`` and ``source`` are recorded on the run with ``content``;
    ``build_inputs`` is what ``build`` needs beyond the lock without changing the key (an
    interpreter's path); ``warnings`` are told to the user and kept with the run.
    """

    content: str = ""  # the lock text, exactly what build installs
    interpreter: str = ""  # e.g. "cpython-3.11.7"
    python: str | None = None  # the interpreter version, e.g. "3.11.7"
    packages: tuple[str, ...] = ()  # "name==version", sorted
    source: str | None = None  # e.g. "resolved" or "committed"; None: nothing was locked
    build_inputs: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # the env file's python pin when the interpreter was matched by minor version only
    python_requested: str | None = None

    def details(self) -> dict[str, Any]:
        """What the run records about the lock besides its text and python."""
        if self.source is None:
            return {}
        found = {"packages": list(self.packages), "lock_source": self.source}
        if self.python_requested is not None:
            return {**found, "python_requested": self.python_requested, "python_match": "minor"}
        return found

    def to_json(self) -> dict[str, Any]:
        """Everything but the warnings, which are recomputed from the spec on every run."""
        data = asdict(self)
        del data["warnings"]
        return {**data, "packages": list(self.packages)}  # as JSON will give it back

    @classmethod
    def from_json(cls, data: Any) -> EnvLock | None:
        """The lock ``to_json`` saved; None when ``data`` is not one (an older or damaged file)."""
        names = {f.name for f in fields(cls)} - {"warnings"}
        if not isinstance(data, dict) or set(data) != names:
            return None
        if not isinstance(data["packages"], list) or not isinstance(data["build_inputs"], dict):
            return None
        return cls(**{**data, "packages": tuple(data["packages"])})


@dataclass(frozen=True)
class Activation:
    """How a run enters an env without a shell script: PATH entries first, variables set."""

    path: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)

    def env_vars(self, base_path: str) -> dict[str, str]:
        out = dict(self.variables)
        if self.path:
            # never an empty entry: an empty PATH element means the current directory
            out["PATH"] = os.pathsep.join([*self.path, *filter(None, [base_path])])
        return out


@runtime_checkable
class EnvManager(Protocol):
    """One kind of environment, registered under the ``runner.env_managers`` entry points.

    Declarations: ``name`` and ``aliases`` are what ``--env-manager`` accepts; ``kinds`` are
    the project env kinds it serves ("system", "python_env", "conda_env", "docker_env");
    ``default_for`` the kinds it serves when ``--env-manager`` is not given; ``forced_for``
    the kinds it serves whatever ``--env-manager`` names; ``default_backend`` the backend a
    run gets when none is requested (None: local); ``builds_prefix`` False when nothing is
    built on the host (no key, no cache entry); optionally ``python_matches``, the
    ``--python-match`` values it honours ("exact", and "minor" for a manager that picks an
    installed interpreter by the env file's pin: its ``lock`` then also takes
    ``python_match="minor"``).

    Members, all raising ``runner.errors`` types:

    - ``preflight(spec)``: cheap checks when the manager is chosen, before a run exists.
    - ``lock(spec, progress=, refresh=)``: the spec resolved to an ``EnvLock``. A warm run
      should start no resolver: remember resolutions (``cache.remembered_lock``) unless
      ``refresh``.
    - ``key(lock)``: the cache key (``digest.env_key`` of the manager, lock and platform).
    - ``build(lock, prefix, progress=)``: fill the empty temp dir ``prefix`` and verify it
      thoroughly; returns facts kept in the marker and recorded on the run. The dir is
      renamed into place afterwards, so nothing in it may name its own path.
    - ``health(prefix, marker)``: a cheap check on every reuse (and once after the build):
      None when usable, else the reason, which is reported and recorded as the env is rebuilt.
    - ``activate(prefix)``: the PATH entries and variables of a run in the env.
    - ``commit_lock(spec, progress=)``: resolve afresh and write the project's lock file
      (what `runner lock` does); returns its path.
    """

    # read-only declarations (properties here, so that plain class attributes satisfy them)
    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def default_for(self) -> tuple[str, ...]: ...

    @property
    def forced_for(self) -> tuple[str, ...]: ...

    @property
    def default_backend(self) -> str | None: ...

    @property
    def builds_prefix(self) -> bool: ...

    def preflight(self, spec: ProjectSpec) -> None: ...

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock: ...

    def key(self, lock: EnvLock) -> str: ...

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]: ...

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None: ...

    def activate(self, prefix: Path) -> Activation: ...

    def commit_lock(self, spec: ProjectSpec, *, progress: Progress) -> Path: ...


class BaseEnvManager:
    """Defaults for an EnvManager: serves nothing, locks nothing, builds an empty env."""

    name: str
    aliases: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    default_for: tuple[str, ...] = ()
    forced_for: tuple[str, ...] = ()
    default_backend: str | None = None
    builds_prefix: bool = True
    python_matches: tuple[str, ...] = ("exact",)

    def preflight(self, spec: ProjectSpec) -> None:
        return None

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock:
        return EnvLock()

    def key(self, lock: EnvLock) -> str:
        # imported here: hashing is for managers that build, and every run loads every manager
        from runner.envs.digest import env_key, platform_tag

        return env_key(self.name, lock.content, lock.interpreter, platform_tag())

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        return {}

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        return None

    def activate(self, prefix: Path) -> Activation:
        return Activation()

    def commit_lock(self, spec: ProjectSpec, *, progress: Progress) -> Path:
        from runner.errors import SpecError

        raise SpecError(
            f"nothing to lock: {spec.root} has no python_env or conda_env file",
            hint="add python_env: python_env.yaml to MLproject",
        )
