"""Untracked files in a recorded patch: contents up to a cap, names beyond it, the repo untouched.

The patch of a dirty working copy is `git diff HEAD` run against a throwaway copy of the index
in which the untracked (not ignored) files are marked intent-to-add, so git writes them as new
files in its own binary-safe format. Git writes that index and the one object intent-to-add
needs into a temp dir: the user's index and object database are never written.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.source.gitproc import Config, reason, run_git

# Contents of untracked files are kept up to these sizes: enough for scripts, configs and small
# data; a dataset or model someone forgot to ignore is named, not copied into every run.
MAX_FILE_BYTES = 2 << 20  # 2 MiB per file
MAX_TOTAL_BYTES = 8 << 20  # 8 MiB for all untracked files of one run
MAX_FILES = 2_000  # files whose contents are kept
MAX_NAMES = 1_000  # files named (without contents) in the patch header; past it, a count


class UntrackedError(Exception):
    """git could not list or mark the untracked files; ``args[0]`` says why."""


@dataclass(frozen=True)
class Untracked:
    """The untracked files under a project dir, relative to it, split by the caps."""

    included: tuple[str, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()  # (path, why its contents are not in the patch)


def find_untracked(path: Path, neutral: Config) -> Untracked:
    """The untracked, not ignored files under ``path`` (none inside submodules), by the caps."""
    args = ["--literal-pathspecs", "-C", str(path), "ls-files", "--others", "--exclude-standard"]
    result = run_git([*args, "-z", "--", "."], config=neutral)
    if result.returncode != 0:
        raise UntrackedError(reason(result.stderr))
    names = [os.fsdecode(name) for name in result.stdout.split(b"\0") if name]
    return split_by_caps(path, sorted(names))


def split_by_caps(path: Path, names: Sequence[str]) -> Untracked:
    """Which files' contents fit the caps, in name order; the others with the reason."""
    included: list[str] = []
    left_out: list[tuple[str, str]] = []
    total = 0
    for name in names:
        why, size = _excluded(path / name, total, len(included))
        if why is None:
            included.append(name)
            total += size
        else:
            left_out.append((name, why))
    return Untracked(tuple(included), tuple(left_out))


def _excluded(file: Path, total: int, count: int) -> tuple[str | None, int]:
    try:
        info = os.lstat(file)
    except OSError as exc:
        return f"unreadable: {exc.strerror}", 0
    if stat.S_ISDIR(info.st_mode):  # git lists a nested repository as a directory
        return "a nested git repository", 0
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        return "not a regular file", 0
    if info.st_size > MAX_FILE_BYTES:
        return f"{info.st_size:,} bytes, over the {_size(MAX_FILE_BYTES)} per-file cap", 0
    if total + info.st_size > MAX_TOTAL_BYTES:
        return f"{info.st_size:,} bytes, past the {_size(MAX_TOTAL_BYTES)} total cap", 0
    if count >= MAX_FILES:
        return f"past the cap of {MAX_FILES:,} files", 0
    return None, info.st_size


def diff_with_untracked(
    path: Path, diff_args: Sequence[str], untracked: Untracked, neutral: Config
) -> bytes:
    """`git DIFF_ARGS` (run in ``path``) with the included untracked files shown as new files."""
    with tempfile.TemporaryDirectory(prefix="runner-index-") as scratch:
        env = _scratch_git(path, Path(scratch), neutral)
        pathspecs = Path(scratch) / "untracked"
        pathspecs.write_bytes(b"".join(os.fsencode(n) + b"\0" for n in untracked.included))
        add = ["--literal-pathspecs", "-C", str(path), "add", "--intent-to-add"]
        _checked([*add, f"--pathspec-from-file={pathspecs}", "--pathspec-file-nul"], neutral, env)
        return _checked(["-C", str(path), *diff_args], neutral, env)


def _scratch_git(path: Path, scratch: Path, neutral: Config) -> dict[str, str]:
    """Variables that point git's index and new objects at ``scratch``, reading the real ones."""
    where = ["-C", str(path), "rev-parse", "--path-format=absolute"]
    found = _checked([*where, "--git-path", "index", "--git-path", "objects"], neutral, {})
    index, objects = os.fsdecode(found).splitlines()[:2]
    if os.path.exists(index):
        shutil.copyfile(index, scratch / "index")
    (scratch / "objects").mkdir()
    return {
        "GIT_INDEX_FILE": str(scratch / "index"),
        "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects,
    }


def _checked(args: Sequence[str], neutral: Config, env: dict[str, str]) -> bytes:
    result = run_git(args, config=neutral, extra_env=env)
    if result.returncode != 0:
        raise UntrackedError(reason(result.stderr))
    return result.stdout


def left_out_note(prefix: str, untracked: Untracked) -> bytes:
    """Lines for the top of the patch naming the files whose contents it lacks.

    `git apply` skips text before the first ``diff --git`` line; a name with a newline or
    another control character is quoted, so it cannot start a line of its own.
    """
    if not untracked.left_out:
        return b""
    lines = [
        f"# runner: {len(untracked.left_out)} untracked file(s) not in this patch "
        f"(caps: {_size(MAX_FILE_BYTES)} per file, {_size(MAX_TOTAL_BYTES)} in all, "
        f"{MAX_FILES:,} files):"
    ]
    shown = untracked.left_out[:MAX_NAMES]
    lines += [f"#   {_quoted(prefix + name)} ({why})" for name, why in shown]
    if len(untracked.left_out) > MAX_NAMES:
        lines.append(f"#   ... and {len(untracked.left_out) - MAX_NAMES:,} more")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _quoted(name: str) -> str:
    plain = name.isprintable() and '"' not in name and "\\" not in name
    return name if plain else json.dumps(name)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit:,} bytes"
