"""The content-addressed env cache: build once under a per-key lock, publish by rename, lease."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.atomic import write_atomically
from runner.envs.base import EnvLock, EnvManager, Progress
from runner.envs.digest import CACHE_FORMAT_VERSION, canonical_digest, platform_tag
from runner.errors import EnvBuildError
from runner.locks import LockTimeout, exclusive_lock, flock, try_exclusive_lock

MARKER = ".runner-env.json"  # written last: an env without it is garbage
LEASE = ".runner-lease"  # shared flock held while a run uses the env
USAGE = ".runner-usage.jsonl"  # one line per use: time and run id
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LOCK_TIMEOUT = float(os.environ.get("RUNNER_ENV_LOCK_TIMEOUT", "3600"))
# Directory names are a key prefix: short enough for script shebangs, long enough to be unique.
DIR_CHARS = 32


@dataclass(frozen=True)
class CachedEnv:
    """An env in the cache; ``rebuilt`` says why a cached env was unusable and built again."""

    path: Path
    marker: dict[str, Any]
    built: bool
    rebuilt: str | None = None


def envs_root() -> Path:
    from runner.home import runner_home

    return runner_home() / "envs"


def env_dir(manager: str, key: str) -> Path:
    return envs_root() / manager / key[:DIR_CHARS]


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ready_marker(path: Path, key: str | None = None) -> dict[str, Any] | None:
    """The marker of a complete env (for ``key``, if given), else None."""
    marker = read_marker(path)
    if marker is None or (key is not None and marker.get("key") != key):
        return None
    return marker


def _inspect(manager: EnvManager, path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(marker, None) for a usable env; (None, why not) for an unusable one; (None, None)."""
    if not path.exists():
        return None, None
    marker = read_marker(path)
    if marker is None:
        return None, "its marker is missing or unreadable"
    if marker.get("key") != key:
        return None, "its marker names another key"
    reason = manager.health(path, marker)
    return (None, reason) if reason else (marker, None)


def ensure_env(manager: EnvManager, key: str, lock: EnvLock, *, progress: Progress) -> CachedEnv:
    """The env for ``key``: reused if usable, else built (or rebuilt) by exactly one process.

    Nothing here knows a manager or an env's layout: the marker (written last) says an env is
    complete, the manager's ``health`` whether it is still usable.
    """
    final = env_dir(manager.name, key)
    marker, _reason = _inspect(manager, final, key)
    if marker is not None:
        return CachedEnv(final, marker, built=False)
    with _build_lock(manager.name, key, progress):
        marker, reason = _inspect(manager, final, key)
        if marker is not None:  # another process built it while we waited
            return CachedEnv(final, marker, built=False)
        if reason is not None:
            progress(f"rebuilding environment {key[:12]}: {reason}")
        marker = _build(manager, final, key, lock, progress)
    return CachedEnv(final, marker, built=True, rebuilt=reason)


@contextlib.contextmanager
def _build_lock(manager: str, key: str, progress: Progress) -> Iterator[None]:
    def waiting() -> None:
        progress(f"waiting for another process building environment {key[:12]}")

    try:
        with exclusive_lock(lock_file(manager, key), timeout=LOCK_TIMEOUT, on_wait=waiting):
            yield
    except LockTimeout as exc:
        raise EnvBuildError(
            f"timed out after {exc.timeout:.0f}s waiting for the build of environment {key[:12]}",
            hint=f"lock: {exc.path}",
        ) from exc


@contextlib.contextmanager
def try_build_lock(manager: str, key: str) -> Iterator[bool]:
    """Hold the key's build lock if it is free (yields True), without waiting."""
    with try_exclusive_lock(lock_file(manager, key)) as held:
        yield held


def lock_file(manager: str, key: str) -> Path:
    return envs_root() / ".locks" / f"{manager}-{key[:DIR_CHARS]}.lock"


def _build(
    manager: EnvManager, final: Path, key: str, lock: EnvLock, progress: Progress
) -> dict[str, Any]:
    """Build in a temp dir, check it, write the marker last, rename into place (lock held)."""
    remove_garbage(final)
    if final.exists():  # complete but unusable: its reason was reported
        discard(final)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{os.urandom(4).hex()}"
    tmp.mkdir(parents=True)
    started = time.monotonic()
    try:
        marker = _marker(manager, key, lock, manager.build(lock, tmp, progress=progress))
        _check_new(manager, tmp, marker)
        write_atomically(tmp / MARKER, json.dumps(marker, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"environment {key[:12]} ready in {time.monotonic() - started:.1f}s")
    return marker


def _marker(manager: EnvManager, key: str, lock: EnvLock, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "manager": manager.name,
        "key": key,
        "python": lock.python,
        "facts": facts,
        "format": CACHE_FORMAT_VERSION,
        "created": time.time(),
    }


def _check_new(manager: EnvManager, tmp: Path, marker: dict[str, Any]) -> None:
    # an env its own reuse check would reject would be rebuilt on every run: fail it now
    reason = manager.health(tmp, marker)
    if reason is not None:
        raise EnvBuildError(
            f"the new {manager.name} environment is unusable: {reason}",
            hint=f"this is a bug in the {manager.name!r} environment manager",
        )


def remove_garbage(final: Path) -> None:
    """Remove leftovers for one key: killed builds' temp dirs and a final dir without a marker.

    Only called with the key's build lock held, so no live build owns these.
    """
    for tmp in final.parent.glob(f"{TMP_PREFIX}{final.name}-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if final.exists() and read_marker(final) is None:
        discard(final)


def discard(path: Path) -> None:
    """Rename away first (atomic: readers stop seeing it at once), then delete."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{os.urandom(4).hex()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def record_use(path: Path, run_id: str | None = None) -> None:
    """Append one usage line; a single small O_APPEND write is atomic between processes."""
    line = json.dumps({"at": time.time(), "run_id": run_id}) + "\n"
    with contextlib.suppress(OSError):
        fd = os.open(path / USAGE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def read_usage(path: Path) -> tuple[float | None, list[str]]:
    """(last use time, distinct run ids in order of first use) from the usage log."""
    last: float | None = None
    runs: dict[str, None] = {}
    with contextlib.suppress(OSError):
        for raw in (path / USAGE).read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a torn line from a crash loses one entry, not the log
            last = max(last or 0.0, float(entry.get("at") or 0.0))
            if entry.get("run_id"):
                runs[str(entry["run_id"])] = None
    return last, list(runs)


@contextlib.contextmanager
def lease(path: Path) -> Iterator[None]:
    """Hold a shared lock on the env so ``runner env gc`` (exclusive, non-blocking) skips it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(flock(path / LEASE, shared=True))
        except FileNotFoundError:
            raise _gone(path) from None
        # gc renames an env away while holding the exclusive lock: re-check after waiting.
        if read_marker(path) is None:
            raise _gone(path)
        yield


def _gone(path: Path) -> EnvBuildError:
    return EnvBuildError(
        f"environment {path.name[:12]} was removed (runner env gc?) before the run could use it",
        hint="run again: it will be rebuilt",
    )


@contextlib.contextmanager
def exclusive(path: Path, manager: str, key: str) -> Iterator[bool]:
    """Try to own an env for deletion: its build lock and an exclusive lease, without waiting.

    Yields False when a build or a run holds it.
    """
    with try_build_lock(manager, key) as free, contextlib.ExitStack() as stack:
        owned = False
        if free:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: not ours
                owned = stack.enter_context(flock(path / LEASE, shared=False, wait=False))
        yield owned


def remembered_lock(
    manager: EnvManager,
    inputs: Any,
    resolve: Callable[[], EnvLock],
    *,
    refresh: bool,
    valid: Callable[[EnvLock], bool] = lambda lock: True,
) -> EnvLock:
    """``resolve()``, remembered by the manager's ``inputs``: a warm run starts no resolver.

    ``valid`` rejects a remembered lock that no longer applies (its interpreter is gone).
    """
    scope = {"manager": manager.name, "platform": platform_tag(), "format": CACHE_FORMAT_VERSION}
    digest = canonical_digest({**scope, "inputs": inputs})
    saved = None if refresh else load_resolution(digest)
    lock = EnvLock.from_json(saved.get("lock")) if saved else None
    if lock is None or not valid(lock):
        lock = resolve()
        save_resolution(digest, {"key": manager.key(lock), "lock": lock.to_json()})
    return lock


def load_resolution(digest: str) -> dict[str, Any] | None:
    """A remembered resolution: ``{"key": ..., "lock": ...}``."""
    try:
        data = json.loads((envs_root() / ".resolved" / f"{digest}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_resolution(digest: str, data: dict[str, Any]) -> None:
    path = envs_root() / ".resolved" / f"{digest}.json"
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
