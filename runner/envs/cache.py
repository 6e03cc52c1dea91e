"""The content-addressed env cache: build once under a per-key lock, publish by rename, lease."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.envs.python.pyspec import canonical_digest
from runner.errors import EnvBuildError

if TYPE_CHECKING:
    import filelock

CACHE_FORMAT_VERSION = 1
MARKER = ".runner-env.json"  # written last: an env without it is garbage
LEASE = ".runner-lease"  # shared flock held while a run uses the env
USAGE = ".runner-usage.jsonl"  # one line per use: time and run id
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LOCK_TIMEOUT = float(os.environ.get("RUNNER_ENV_LOCK_TIMEOUT", "3600"))
# Directory names are a key prefix: short enough for script shebangs, long enough to be unique.
DIR_CHARS = 32

Builder = Callable[[Path], dict[str, Any]]
Progress = Callable[[str], None]


def envs_root() -> Path:
    from runner.home import runner_home

    return runner_home() / "envs"


def platform_tag() -> str:
    return sysconfig.get_platform()


def env_key(manager: str, lock_text: str, python: str, platform: str) -> str:
    """sha256 of canonical JSON of everything that decides the env's contents."""
    return canonical_digest(
        {
            "manager": manager,
            "lock": lock_text,
            "python": python,
            "platform": platform,
            "format": CACHE_FORMAT_VERSION,
        }
    )


def env_dir(manager: str, key: str) -> Path:
    return envs_root() / manager / key[:DIR_CHARS]


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ready_marker(path: Path, key: str | None = None) -> dict[str, Any] | None:
    """The marker of a complete env whose interpreter still exists, else None.

    This cheap check runs on every reuse; the full health check runs once, at build time.
    A venv's ``bin/python`` is a symlink to the base interpreter, so a removed base
    interpreter (e.g. a pruned managed Python) shows up here.
    """
    marker = read_marker(path)
    if marker is None or (key is not None and marker.get("key") != key):
        return None
    if not (path / "bin" / "python").exists():
        return None
    return marker


def ensure_env(
    manager: str, key: str, build: Builder, *, progress: Progress
) -> tuple[Path, dict[str, Any], bool]:
    """The env for ``key``: reused if ready, else built by exactly one process.

    Returns (path, marker, built). ``build(tmp)`` fills ``tmp`` and returns the marker body.
    """
    final = env_dir(manager, key)
    marker = ready_marker(final, key)
    if marker is not None:
        return final, marker, False
    with _build_lock(manager, key, progress):
        marker = ready_marker(final, key)
        if marker is not None:  # another process built it while we waited
            return final, marker, False
        marker = _build(final, key, build)
    return final, marker, True


def _file_lock(manager: str, key: str) -> filelock.FileLock:
    # filelock takes tens of ms to import; only builds and gc need it, never a warm run.
    import filelock

    return filelock.FileLock(str(lock_file(manager, key)))


@contextlib.contextmanager
def _build_lock(manager: str, key: str, progress: Progress) -> Iterator[None]:
    import filelock

    lock = _file_lock(manager, key)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        progress(f"waiting for another process building environment {key[:12]}")
        try:
            lock.acquire(timeout=LOCK_TIMEOUT)
        except filelock.Timeout as exc:
            raise EnvBuildError(
                f"timed out after {LOCK_TIMEOUT:.0f}s waiting for the build "
                f"of environment {key[:12]}",
                hint=f"lock: {lock.lock_file}",
            ) from exc
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def try_build_lock(manager: str, key: str) -> Iterator[bool]:
    """Hold the key's build lock if it is free (yields True), without waiting."""
    import filelock

    lock = _file_lock(manager, key)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def lock_file(manager: str, key: str) -> Path:
    locks = envs_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return locks / f"{manager}-{key[:DIR_CHARS]}.lock"


def _build(final: Path, key: str, build: Builder) -> dict[str, Any]:
    """Build in a temp dir, write the marker last, then rename into place (lock held)."""
    remove_garbage(final, key)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{os.urandom(4).hex()}"
    tmp.mkdir(parents=True)
    try:
        marker = {**build(tmp), "key": key, "format": CACHE_FORMAT_VERSION, "created": time.time()}
        _write_json(tmp / MARKER, marker)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return marker


def remove_garbage(final: Path, key: str | None = None) -> None:
    """Remove leftovers for one key: killed builds' temp dirs and an incomplete final dir.

    Only called with the key's build lock held, so no live build owns these.
    """
    for tmp in final.parent.glob(f"{TMP_PREFIX}{final.name}-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if final.exists() and ready_marker(final, key) is None:
        discard(final)


def discard(path: Path) -> None:
    """Rename away first (atomic: readers stop seeing it at once), then delete."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{os.urandom(4).hex()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # A unique temp name: two processes may save the same resolution at once.
    tmp = path.with_name(f"{path.name}.{os.urandom(4).hex()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
    try:
        fd = os.open(path / LEASE, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        raise _gone(path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        # gc renames an env away while holding the exclusive lock: re-check after waiting.
        if read_marker(path) is None:
            raise _gone(path)
        yield
    finally:
        os.close(fd)


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
    with try_build_lock(manager, key) as free:
        if not free:
            yield False
            return
        with _exclusive_lease(path) as owned:
            yield owned


@contextlib.contextmanager
def _exclusive_lease(path: Path) -> Iterator[bool]:
    try:
        fd = os.open(path / LEASE, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)


def load_resolution(digest: str) -> dict[str, Any] | None:
    """A remembered spec → env resolution, so warm runs start no resolver or interpreter probe."""
    try:
        data = json.loads((envs_root() / ".resolved" / f"{digest}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_resolution(digest: str, data: dict[str, Any]) -> None:
    folder = envs_root() / ".resolved"
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / f"{digest}.json", data)
