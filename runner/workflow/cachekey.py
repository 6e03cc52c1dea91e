"""The step cache key: what a step's result depends on, hashed (sha256 of canonical JSON).

Source (commit + dirty-diff digest, or the content of a folder that is not in git), entry point,
canonical typed parameters (the content of path parameters, not their names), the environment
key, the backend and its config, and the keys of the steps it needs. Two steps with the same
key produce the same result, so the later one reuses the earlier FINISHED run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.execution.plan import Plan
    from runner.project.records import ProjectSpec

KEY_VERSION = 1  # bump when what goes into a key changes: every older key then misses
_SKIPPED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})


class KeyParts:
    """Memoises the expensive parts (a folder's content, an environment's lock) for one
    workflow run, where many steps share a project."""

    def __init__(self) -> None:
        self._contents: dict[tuple[str, int, int], str] = {}
        self._envs: dict[tuple[str, str], str] = {}

    def step_key(self, plan: Plan, needs: Sequence[str]) -> str:
        """The cache key of the step ``plan`` describes, given the keys of its needs."""
        assert plan.spec is not None, "a plan made in this process keeps its spec"
        parts = {
            "version": KEY_VERSION,
            "source": self.source(plan),
            "entry_point": plan.entry_point,
            "parameters": canonical_parameters(plan, self.content),
            "environment": self.environment(plan.spec, plan.env_manager),
            "backend": plan.backend,
            "backend_config": result_config(plan.backend, plan.backend_config),
            "needs": sorted(needs),
        }
        return digest(parts)

    def source(self, plan: Plan) -> dict[str, Any]:
        src = plan.source
        if not src.get("commit"):
            return {"content": self.content(str(plan.project_dir))}
        parts = {
            "commit": src["commit"],
            "diff": src.get("diff_digest"),
            "subdirectory": src.get("subdirectory"),
        }
        if src.get("dirty"):  # new files are no part of the diff, but are of the project
            parts["untracked"] = self.untracked(plan.project_dir)
        return parts

    def untracked(self, project_dir: Path) -> str:
        from runner.source.worktree import untracked_files

        hasher = hashlib.sha256()
        for name in untracked_files(project_dir):
            _add_file(hasher, project_dir / name, name)
        return hasher.hexdigest()

    def content(self, path: str) -> str:
        """The digest of a file's or a folder's content (names, bytes, link targets)."""
        stat = os.stat(path)
        memo = (path, stat.st_mtime_ns, stat.st_size)
        if memo not in self._contents:
            self._contents[memo] = content_digest(Path(path))
        return self._contents[memo]

    def environment(self, spec: ProjectSpec, manager_name: str) -> str:
        memo = (str(spec.root), manager_name)
        if memo not in self._envs:
            self._envs[memo] = environment_key(spec, manager_name)
        return self._envs[memo]


def result_config(backend: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The backend config without the keys its backend declares do not change results: an
    optional ``result_neutral_config`` (a set of top-level keys, e.g. a queue or a memory
    limit) on the backend class. Without it, every key counts."""
    from runner.backend import load_backend

    neutral: frozenset[str] = getattr(load_backend(backend), "result_neutral_config", frozenset())
    return {key: value for key, value in config.items() if key not in neutral}


def digest(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_parameters(plan: Plan, content: Any) -> dict[str, str]:
    """Each value in its canonical typed form: ``0.50`` and ``.5`` are one float; a path is
    its content, wherever the file lies (a runs:/ copy or a local file)."""
    assert plan.spec is not None
    entry = next((e for e in plan.spec.entry_points if e.name == plan.entry_point), None)
    types = {p.name: p.type for p in entry.parameters} if entry is not None else {}
    paths = iter(plan.input_paths)  # in the order of the entry point's path parameters
    canonical = {}
    for name, value in plan.parameters.items():
        ptype = types.get(name, "string")
        canonical[name] = content(next(paths)) if ptype == "path" else canonical_value(ptype, value)
    return canonical


def canonical_value(ptype: str, value: str) -> str:
    if ptype == "int":
        return str(int(value))
    if ptype == "float":
        return repr(float(value))
    if ptype == "bool":
        return "true" if value.lower() in ("true", "1", "yes") else "false"
    return value


def content_digest(root: Path) -> str:
    """sha256 over the sorted relative names and contents below ``root`` (or of one file)."""
    hasher = hashlib.sha256()
    if not root.is_dir():
        _add_file(hasher, root, ".")
        return hasher.hexdigest()
    for parent, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(".pyc"):
                path = Path(parent) / name
                _add_file(hasher, path, path.relative_to(root).as_posix())
    return hasher.hexdigest()


def _add_file(hasher: Any, path: Path, name: str) -> None:
    hasher.update(name.encode("utf-8", "surrogateescape") + b"\0")
    if path.is_symlink():
        hasher.update(b"link:" + os.readlink(path).encode("utf-8", "surrogateescape"))
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                hasher.update(block)
    hasher.update(b"\0")


def environment_key(spec: ProjectSpec, manager_name: str) -> str:
    """The environment's cache key from its lock (resolved, never built, here)."""
    from runner.envs.select import choose

    manager = choose(spec, manager_name)
    lock = manager.lock(spec, progress=lambda message: None, refresh=False)
    if manager.builds_prefix:
        return manager.key(lock)
    return digest({"manager": manager.name, "lock": lock.content, "python": lock.python})
