"""Listing cached environments and removing old or unusable ones, never one in use."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.envs.cache import (
    LEASE,
    TMP_PREFIX,
    TRASH_PREFIX,
    discard,
    envs_root,
    exclusive,
    load_resolution,
    read_marker,
    read_usage,
    ready_marker,
    remove_garbage,
    try_build_lock,
)
from runner.errors import RunnerError
from runner.locks import flock


@dataclass(frozen=True)
class EnvInfo:
    key: str
    manager: str
    python: str
    path: Path
    size: int
    created: float
    last_used: float
    runs: tuple[str, ...]
    in_use: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "manager": self.manager,
            "python": self.python,
            "path": str(self.path),
            "size": self.size,
            "created": self.created,
            "last_used": self.last_used,
            "runs": list(self.runs),
            "in_use": self.in_use,
        }


@dataclass
class GcReport:
    removed: list[EnvInfo] = field(default_factory=list)
    in_use: list[EnvInfo] = field(default_factory=list)
    garbage: list[Path] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(info.size for info in self.removed)


def list_envs() -> list[EnvInfo]:
    """Every complete env in the cache, most recently used first."""
    found = [_info(path, marker) for path, marker in _complete_envs()]
    return sorted(found, key=lambda info: info.last_used, reverse=True)


def _complete_envs() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in _env_dirs():
        marker = ready_marker(path)
        if marker is not None and isinstance(marker.get("key"), str):
            out.append((path, marker))
    return out


def _env_dirs(*, hidden: bool = False) -> list[Path]:
    """Env directories under each manager; ``hidden`` adds temp and trash dirs."""
    root = envs_root()
    if not root.is_dir():
        return []
    managers = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    found = (p for m in managers for p in m.iterdir() if p.is_dir())
    return sorted(p for p in found if hidden or not p.name.startswith("."))


def _info(path: Path, marker: dict[str, Any]) -> EnvInfo:
    created = float(marker.get("created") or 0.0)
    last, runs = read_usage(path)
    return EnvInfo(
        key=marker["key"],
        manager=str(marker.get("manager") or path.parent.name),
        python=str(marker.get("python") or ""),
        path=path,
        size=dir_size(path),
        created=created,
        last_used=max(last or 0.0, created),
        runs=tuple(runs),
        in_use=_in_use(path),
    )


def dir_size(path: Path) -> int:
    """Bytes used, each hard-linked inode counted once (uv links files from its cache)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                stat = os.lstat(os.path.join(folder, name))
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_size
    return total


def _in_use(path: Path) -> bool:
    """A run holds a shared lease: an exclusive probe would fail (and is released at once)."""
    if not (path / LEASE).exists():
        return False
    try:
        with flock(path / LEASE, shared=False, wait=False) as free:
            return not free
    except FileNotFoundError:  # removed meanwhile
        return False


def collect_garbage(
    *,
    older_than: float | None,
    remove_all: bool = False,
    dry_run: bool = False,
    now: float | None = None,
) -> GcReport:
    """Remove unusable envs and those unused for ``older_than`` seconds (or all), not in use."""
    now = time.time() if now is None else now
    report = GcReport()
    for info in list_envs():
        old = older_than is not None and now - info.last_used > older_than
        if remove_all or old or _unusable(info):
            _remove_env(info, report, dry_run)
    report.garbage = _remove_partial(dry_run, now)
    if not dry_run:
        _prune_resolutions(remove_all)
    return report


def _unusable(info: EnvInfo) -> bool:
    """Its manager's health check fails: the next run would rebuild it anyway."""
    from runner.envs.registry import find_manager

    try:
        manager = find_manager(info.manager)
    except RunnerError:  # a plugin that no longer loads cannot judge; age will remove it
        return False
    marker = read_marker(info.path)
    if manager is None or marker is None:
        return False
    return manager.health(info.path, marker) is not None


def _remove_env(info: EnvInfo, report: GcReport, dry_run: bool) -> None:
    with exclusive(info.path, info.manager, info.key) as owned:
        if not owned:
            report.in_use.append(info)
            return
        if not dry_run:
            discard(info.path)
        report.removed.append(info)


def _remove_partial(dry_run: bool, now: float) -> list[Path]:
    """Temp dirs of killed builds and resolutions, half-deleted trash, marker-less dirs."""
    removed = [path for path in _env_dirs(hidden=True) if _remove_if_partial(path, dry_run)]
    # A resolver's scratch dir lives for seconds; one a day old belongs to a killed process.
    for scratch in envs_root().glob(".resolve-*"):
        if now - scratch.stat().st_mtime > 86400:
            if not dry_run:
                shutil.rmtree(scratch, ignore_errors=True)
            removed.append(scratch)
    return removed


def _remove_if_partial(path: Path, dry_run: bool) -> bool:
    if path.name.startswith(TRASH_PREFIX):
        if not dry_run:
            shutil.rmtree(path, ignore_errors=True)
        return True
    if not path.name.startswith(TMP_PREFIX) and (ready_marker(path) or _in_use(path)):
        return False
    prefix = path.name.removeprefix(TMP_PREFIX).split("-")[0]
    with try_build_lock(path.parent.name, prefix) as free:
        # a build holding the lock owns its temp dir: that is not garbage
        if free and not dry_run:
            remove_garbage(path.parent / prefix)
        return free


def _prune_resolutions(remove_all: bool) -> None:
    """Drop remembered resolutions whose env is gone, so they cannot point at nothing."""
    folder = envs_root() / ".resolved"
    if not folder.is_dir():
        return
    live = {info.key for info in list_envs()}
    for entry in folder.glob("*.json"):
        remembered = load_resolution(entry.stem)
        if remove_all or not remembered or remembered.get("key") not in live:
            entry.unlink(missing_ok=True)


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` → seconds; a bare number means days."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    unit = value[-1] if value and value[-1] in units else "d"
    number = value[:-1] if value and value[-1] in units else value
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"invalid age {text!r}: use e.g. 30d, 12h, 90m or 2w") from None
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"invalid age {text!r}: must be zero or more")
    return seconds
