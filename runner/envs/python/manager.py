"""The uv manager: lock the spec, then build (or reuse) a cached venv for the lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.envs import PreparedEnv
from runner.envs.cache import (
    CACHE_FORMAT_VERSION,
    ensure_env,
    env_dir,
    env_key,
    load_resolution,
    platform_tag,
    ready_marker,
    record_use,
    save_resolution,
)
from runner.envs.python.lock import LOCK_NAME, Lock, read_committed_lock
from runner.envs.python.pyspec import PythonSpec, canonical_digest, read_python_spec

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec

Progress = Callable[[str], None]


def _silent(message: str) -> None:
    """Progress goes nowhere unless the caller asks for it."""


def prepare_python_env(
    spec: ProjectSpec,
    manager: str,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
    build: bool = True,
) -> PreparedEnv:
    """A ready venv for the project's Python spec; built only if no cached one matches.

    ``refresh`` re-resolves unpinned requirements instead of reusing the last resolution.
    ``build=False`` only locks: for backends that install the lock themselves (a container).
    """
    report = progress or _silent
    pyspec = read_python_spec(spec)
    committed = read_committed_lock(spec.root)
    warnings = _warnings(pyspec, committed, spec.root)
    source = "committed" if committed else "resolved"
    digest = _resolution_digest(manager, pyspec, committed)
    if not build:
        return _locked_only(manager, pyspec, committed, digest, report, warnings, source, refresh)
    hit = None if refresh else _reuse(manager, digest)
    if hit is not None:
        report(f"using cached environment {hit[0].name[:12]} (Python {hit[1]['python']})")
        return _prepared(manager, hit[0], hit[1], warnings, source, reused=True)
    path, marker, built = _build_or_find(manager, pyspec, committed, report)
    save_resolution(digest, {"key": marker["key"], "python": marker["python"]})
    return _prepared(manager, path, marker, warnings, source, reused=not built)


def _locked_only(
    manager: str,
    pyspec: PythonSpec,
    committed: Lock | None,
    digest: str,
    report: Progress,
    warnings: tuple[str, ...],
    source: str,
    refresh: bool,
) -> PreparedEnv:
    """The lock and its key without a local venv; remembered like a built resolution."""
    remembered = None if refresh else load_resolution(digest)
    if remembered is None or not isinstance(remembered.get("lock"), str):
        from runner.envs.python.interpreters import find_interpreter
        from runner.envs.python.resolve import resolve_lock

        interp = find_interpreter(pyspec.python)
        lock = committed or resolve_lock(pyspec, interp, progress=report)
        key = env_key(manager, lock.text, interp.tag, platform_tag())
        remembered = {"key": key, "python": interp.version, "lock": lock.text,
                      "packages": lock.packages()}  # fmt: skip
        save_resolution(digest, remembered)
    details = {"packages": remembered.get("packages", []), "lock_source": source}
    return PreparedEnv(
        manager=manager,
        key=remembered["key"],
        python=remembered["python"],
        lock=remembered["lock"],
        details=details,
        warnings=warnings,
    )


def _resolution_digest(manager: str, pyspec: PythonSpec, committed: Lock | None) -> str:
    """What a remembered resolution is keyed by: the spec and the committed lock, if any."""
    lock = committed.text if committed else None
    inputs = {"manager": manager, "spec": pyspec.digest(), "lock": lock}
    return canonical_digest(inputs | {"platform": platform_tag(), "format": CACHE_FORMAT_VERSION})


def _warnings(pyspec: PythonSpec, committed: Lock | None, root: Path) -> tuple[str, ...]:
    if committed is not None and committed.inputs and committed.inputs != pyspec.digest():
        stale = (
            f"{LOCK_NAME} was generated from a different env file; it is used as is "
            f"(run `runner lock {root}` to update it)"
        )
        return (*pyspec.warnings, stale)
    return pyspec.warnings


def _reuse(manager: str, digest: str) -> tuple[Path, dict[str, Any]] | None:
    remembered = load_resolution(digest)
    key = remembered.get("key") if remembered else None
    if not isinstance(key, str):
        return None
    path = env_dir(manager, key)
    marker = ready_marker(path, key)
    return (path, marker) if marker is not None else None


def _build_or_find(
    manager: str, pyspec: PythonSpec, committed: Lock | None, report: Progress
) -> tuple[Path, dict[str, Any], bool]:
    # Imported here: a warm run never needs the resolver, the installer or subprocess.
    from runner.envs.python.interpreters import find_interpreter
    from runner.envs.python.resolve import resolve_lock
    from runner.envs.python.venv import build_venv

    interp = find_interpreter(pyspec.python)
    lock = committed or resolve_lock(pyspec, interp, progress=report)
    key = env_key(manager, lock.text, interp.tag, platform_tag())
    started = time.monotonic()

    def build(tmp: Path) -> dict[str, Any]:
        return build_venv(tmp, interp, lock, report) | {
            "manager": manager,
            "spec_digest": pyspec.digest(),
        }

    path, marker, built = ensure_env(manager, key, build, progress=report)
    if built:
        report(f"environment {key[:12]} ready in {time.monotonic() - started:.1f}s")
    return path, marker, built


def _prepared(
    manager: str,
    path: Path,
    marker: dict[str, Any],
    warnings: tuple[str, ...],
    source: str,
    *,
    reused: bool,
) -> PreparedEnv:
    record_use(path)
    details = {
        "packages": marker.get("packages", []),
        "lock_source": source,
        "interpreter": marker.get("interpreter"),
    }
    return PreparedEnv(
        manager=manager,
        key=marker["key"],
        prefix=path,
        python=marker.get("python"),
        lock=marker.get("lock"),
        details=details,
        reused=reused,
        warnings=warnings,
    )
