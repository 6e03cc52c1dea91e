"""The ``uv`` manager: a python_env (or a conda file's python pin and pip section) in a venv."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.envs.base import Activation, BaseEnvManager, EnvLock, Progress

if TYPE_CHECKING:
    from runner.envs.python.lock import Lock
    from runner.envs.python.pyspec import PythonSpec
    from runner.project.records import ProjectSpec


class UvManager(BaseEnvManager):
    name = "uv"
    aliases = ("virtualenv",)  # MLflow's name for a venv-based env
    kinds = ("system", "python_env", "conda_env")
    default_for = ("python_env",)
    python_matches = ("exact", "minor")

    def preflight(self, spec: ProjectSpec) -> None:
        """A committed runner.lock that leads out of the project is refused before a run exists
        (a stat or two: the lock itself is read at the environment stage)."""
        from runner.envs.python.lock import LOCK_NAME
        from runner.project.files import contained

        if os.path.lexists(spec.root / LOCK_NAME):
            contained(spec.root, LOCK_NAME)

    def lock(
        self, spec: ProjectSpec, *, progress: Progress, refresh: bool, python_match: str = "exact"
    ) -> EnvLock:
        """The committed ``runner.lock`` or a resolution, remembered by spec and lock file.

        ``python_match="minor"``: the pin's newest installed patch release (3.8.18 for 3.8.13).
        """
        # Imported here: the registry loads every manager on every run, local ones too.
        from runner.envs.cache import remembered_lock
        from runner.envs.python.lock import read_committed_lock
        from runner.envs.python.pyspec import read_python_spec

        pyspec = read_python_spec(spec)
        committed = read_committed_lock(spec.root)
        inputs = {"spec": pyspec.digest(), "lock": committed.text if committed else None}
        if python_match != "exact":  # (exact keeps the inputs, and so the resolutions, of before)
            inputs["python_match"] = python_match
        lock = remembered_lock(
            self,
            inputs,
            lambda: _resolve(pyspec, committed, progress, python_match),
            refresh=refresh,
            valid=_interpreter_exists,
        )
        return replace(lock, warnings=_warnings(pyspec, committed, spec.root))

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        from runner.envs.python.interpreters import Interpreter
        from runner.envs.python.lock import Lock
        from runner.envs.python.venv import build_venv

        interp = Interpreter(Path(lock.build_inputs["interpreter"]), lock.python or "")
        locked = Lock(lock.content, lock.python or "", source=lock.source or "resolved")
        return build_venv(prefix, interp, locked, progress)

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        if not (prefix / "pyvenv.cfg").is_file():
            return "pyvenv.cfg is missing"
        if (marker.get("facts") or {}).get("bytecode") != "compiled":
            return "it was built without compiled bytecode (runner now compiles it when it builds)"
        python = prefix / "bin" / "python"
        if python.exists():
            return None
        if python.is_symlink():  # the base interpreter was removed (e.g. a pruned Python)
            return f"its interpreter {os.readlink(python)} is gone"
        return "bin/python is missing"

    def activate(self, prefix: Path) -> Activation:
        return Activation(path=(str(prefix / "bin"),), variables={"VIRTUAL_ENV": str(prefix)})

    def commit_lock(self, spec: ProjectSpec, *, progress: Progress) -> Path:
        """Resolve afresh and write runner.lock next to MLproject."""
        from runner.envs.python.interpreters import find_interpreter
        from runner.envs.python.lock import write_lock
        from runner.envs.python.pyspec import read_python_spec
        from runner.envs.python.resolve import resolve_lock

        if spec.env.kind not in ("python_env", "conda_env"):
            return super().commit_lock(spec, progress=progress)
        pyspec = read_python_spec(spec)
        for warning in pyspec.warnings:
            progress(f"warning: {warning}")
        resolved = resolve_lock(pyspec, find_interpreter(pyspec.python), progress=progress)
        return write_lock(spec.root, resolved)


def _resolve(
    pyspec: PythonSpec, committed: Lock | None, progress: Progress, python_match: str
) -> EnvLock:
    """Probe for an interpreter, then resolve (unless a lock is committed): the cold path."""
    from runner.envs.python.interpreters import find_interpreter
    from runner.envs.python.resolve import resolve_lock

    interp = find_interpreter(pyspec.python, match=python_match)
    lock = committed or resolve_lock(pyspec, interp, progress=progress)
    return EnvLock(
        content=lock.text,
        interpreter=interp.tag,
        python=interp.version,
        packages=tuple(lock.packages()),
        source=lock.source,
        build_inputs={"interpreter": str(interp.path)},
        python_requested=pyspec.python if python_match == "minor" else None,
    )


def _interpreter_exists(lock: EnvLock) -> bool:
    """A remembered lock applies while its interpreter is installed (one stat)."""
    path = lock.build_inputs.get("interpreter")
    return path is not None and os.path.exists(path)


def _warnings(pyspec: PythonSpec, committed: Lock | None, root: Path) -> tuple[str, ...]:
    from runner.envs.python.lock import LOCK_NAME

    if committed is not None and committed.inputs and committed.inputs != pyspec.digest():
        stale = (
            f"{LOCK_NAME} was generated from a different env file; it is used as is "
            f"(run `runner lock {root}` to update it)"
        )
        return (*pyspec.warnings, stale)
    return pyspec.warnings
