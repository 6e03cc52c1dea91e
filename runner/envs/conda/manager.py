"""The ``conda`` manager: conda.yaml solved and installed with py-rattler (no conda needed)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.envs.base import Activation, BaseEnvManager, EnvLock, Progress

if TYPE_CHECKING:
    from runner.envs.conda.condalock import CommittedLock
    from runner.envs.conda.envfile import CondaSpec
    from runner.envs.conda.lockdata import CondaLock
    from runner.project.records import ProjectSpec


class CondaManager(BaseEnvManager):
    name = "conda"
    # "system": a project without an env file gets MLflow's conda env (python from conda-forge)
    kinds = ("system", "conda_env")
    default_for = ("conda_env",)

    def preflight(self, spec: ProjectSpec) -> None:
        """A committed conda-lock.yml leading out of the project, or a configured conda
        executable that is missing, is refused before a run exists."""
        from runner.envs.conda.envfile import LOCK_NAME
        from runner.envs.conda.exe import configured_exe
        from runner.project.files import contained

        if os.path.lexists(spec.root / LOCK_NAME):
            contained(spec.root, LOCK_NAME)
        configured_exe()

    def lock(self, spec: ProjectSpec, *, progress: Progress, refresh: bool) -> EnvLock:
        """The committed conda-lock.yml or a solve, remembered by spec, lock file and solver."""
        # Imported here: the registry loads every manager on every run, local ones too.
        from runner.envs.cache import remembered_lock
        from runner.envs.conda.exe import configured_exe

        cspec = _conda_spec(spec)
        committed = _committed(spec.root, cspec)
        exe = configured_exe()
        inputs = {"spec": cspec.digest(), "lock": committed.text if committed else None}
        lock = remembered_lock(
            self,
            {**inputs, "exe": exe},
            lambda: _resolve(cspec, committed, exe, progress),
            refresh=refresh,
        )
        return replace(lock, warnings=_warnings(cspec, committed))

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        from runner.envs.cache import env_dir
        from runner.envs.conda import install
        from runner.envs.conda.lockdata import parse_lock

        clock = parse_lock(lock.content)
        final = env_dir(self.name, self.key(lock))  # where the cache renames the env to
        exe = lock.build_inputs.get("conda_exe")
        if exe:
            from runner.envs.conda.external import install_with

            install_with(exe, clock, prefix, progress)
            install.relocate_prefix(prefix, final)
        else:
            secrets = json.loads(lock.build_inputs.get("channel_credentials") or "{}")
            install.link_packages(clock, prefix, final, secrets, progress)
            if secrets:
                install.scrub_conda_meta(prefix)
        logs: list[str] = []
        if clock.pip:
            install.install_pip(clock, prefix, progress, logs)
            install.relocate_scripts(prefix, final)
        progress("checking environment")
        install.check_env(prefix, clock, logs)
        return {**install.finish(prefix, clock), "installer": Path(exe).name if exe else "rattler"}

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        if not (prefix / "conda-meta").is_dir():
            return "conda-meta/ is missing"
        if marker.get("python") and not (prefix / "bin" / "python").exists():
            return "bin/python is missing"
        return None

    def activate(self, prefix: Path) -> Activation:
        from runner.envs.conda.activation import read_activation

        variables = {"CONDA_PREFIX": str(prefix), "CONDA_DEFAULT_ENV": str(prefix)}
        return Activation(
            path=(str(prefix / "bin"),), variables={**read_activation(prefix), **variables}
        )

    def commit_lock(self, spec: ProjectSpec, *, progress: Progress) -> Path:
        """Solve afresh and write conda-lock.yml next to MLproject."""
        if spec.env.kind != "conda_env":
            return super().commit_lock(spec, progress=progress)
        return write_project_lock(spec, progress)


def _conda_spec(spec: ProjectSpec) -> CondaSpec:
    from runner.envs.conda.envfile import read_conda_spec

    return read_conda_spec(spec)


def _committed(root: Path, cspec: CondaSpec) -> CommittedLock | None:
    from runner.envs.conda.envfile import LOCK_NAME

    if not os.path.lexists(root / LOCK_NAME):
        return None  # the usual case, one lstat: no platform probe, no lock reader
    from runner.envs.conda.condalock import read_committed
    from runner.envs.conda.solve import current_subdir

    return read_committed(root, current_subdir(), cspec.variables)


def solve_spec(cspec: CondaSpec, exe: str | None, progress: Progress) -> CondaLock:
    """A fresh solve (rattler, or the configured executable) with the pip section pinned."""
    from runner.envs.conda.solve import current_subdir, pin_pip, solve_conda

    if exe is None:
        return solve_conda(cspec, progress)
    from runner.envs.conda.external import solve_with

    lock = solve_with(exe, cspec, current_subdir(), progress)
    pip = pin_pip(cspec, lock, progress) if cspec.pip else ()
    return replace(lock, pip=pip)


def _resolve(
    cspec: CondaSpec, committed: CommittedLock | None, exe: str | None, progress: Progress
) -> EnvLock:
    """Solve (unless a lock is committed): the cold path."""
    from runner.envs.conda.channels import channel_urls, secrets_of

    solved = committed.lock if committed else solve_spec(cspec, exe, progress)
    clock = replace(solved, variables=cspec.variables)
    inputs: dict[str, str] = {}
    secrets = secrets_of(channel_urls(cspec.channels, cspec.root))
    if secrets:  # needed to download, never recorded (build inputs stay out of the key)
        inputs["channel_credentials"] = json.dumps(secrets, sort_keys=True)
    if exe:
        inputs["conda_exe"] = exe
    return EnvLock(
        content=clock.text(),
        interpreter=f"conda-{clock.platform}",
        python=clock.python(),
        packages=clock.packages(),
        source="committed" if committed else "resolved",
        build_inputs=inputs,
    )


def _warnings(cspec: CondaSpec, committed: CommittedLock | None) -> tuple[str, ...]:
    if committed is not None and committed.inputs and committed.inputs != cspec.digest():
        stale = (
            f"conda-lock.yml was generated from a different {cspec.origin}; it is used as is "
            f"(run `runner lock {cspec.root}` to update it)"
        )
        return (*cspec.warnings, stale)
    return cspec.warnings


def write_project_lock(spec: ProjectSpec, progress: Progress) -> Path:
    """`runner lock` for a conda project: solve afresh and write conda-lock.yml."""
    from runner.envs.conda.condalock import write_lock
    from runner.envs.conda.exe import configured_exe

    cspec = _conda_spec(spec)
    lock = replace(solve_spec(cspec, configured_exe(), progress), variables=cspec.variables)
    return write_lock(spec.root, lock, cspec.digest(), cspec.origin)
