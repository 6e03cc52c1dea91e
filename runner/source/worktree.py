"""Read-only looks at a user's git working copy that run none of the commands its config names."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import SourceError
from runner.redact import strip_credentials
from runner.source.gitproc import Completed, Config, reason, run_git, run_parallel
from runner.source.giturl import FULL_SHA

# Config the user did not write: the repository's own file, its worktree file and their includes.
_PROJECT_SCOPES = frozenset({"local", "worktree"})
_FILTER_KEYS = ("clean", "smudge", "process")
# Status and diff look into submodules by running git there, under *their* config: never.
_NO_SUBMODULE_GIT = "--ignore-submodules=dirty"


class UnreadableWorkingCopy(SourceError):
    """git finds a repository holding the path but cannot read its state (e.g. a corrupt index)."""

    code = "unreadable-working-copy"


@dataclass(frozen=True)
class WorkingCopy:
    """What a read-only look at a git working copy found."""

    top: Path
    prefix: str  # the inspected dir relative to `top`, "" or ending in "/"
    commit: str | None  # None on an unborn branch
    branch: str | None  # None when HEAD is detached
    remote_url: str | None
    dirty: bool
    neutral: Config = ()  # settings that disarm the filter drivers the repository's config names


def inspect_working_copy(path: Path) -> WorkingCopy | None:
    """Commit, branch, remote and dirtiness of the working copy holding `path`; None if none.

    Dirty means tracked changes or untracked, non-ignored files under `path` (submodules
    included), or `path` itself untracked/ignored: a project dir that is not in the commit
    cannot be rebuilt from it, so we still record the enclosing repo's HEAD but flag it dirty.
    Raises UnreadableWorkingCopy when git sees a repository but cannot read it.
    """
    where = ["-C", str(path)]
    top, config = run_parallel([
        [*where, "rev-parse", "--show-toplevel", "--show-prefix"],
        [*where, "config", "-z", "--show-scope", "--get-regexp", r"^(remote\..*\.url|filter\..*)$"],
    ])  # fmt: skip
    if top.returncode != 0:
        _not_a_repo(top, path)
        return None
    top_dir, prefix = os.fsdecode(top.stdout).split("\n")[:2]
    entries = _entries(config.stdout, scoped=True)
    neutral = _neutralised_filters(entries)
    commit, branch, dirty = _status(path, prefix, neutral)
    dirty = dirty or _dirty_submodule(Path(top_dir), prefix)
    return WorkingCopy(
        Path(top_dir), prefix, commit, branch, _first_remote(entries), dirty, neutral
    )


def locate(path: Path) -> tuple[Path, str] | None:
    """The top of the working copy holding `path` and `path` relative to it; None if none."""
    top = run_git(["-C", str(path), "rev-parse", "--show-toplevel", "--show-prefix"])
    if top.returncode != 0:
        _not_a_repo(top, path)
        return None
    top_dir, prefix = os.fsdecode(top.stdout).split("\n")[:2]
    return Path(top_dir), prefix


def first_remote(top: Path) -> str | None:
    """The URL of the repository's first remote, credentials stripped; None if it has none."""
    args = ["-C", str(top), "config", "-z", "--show-scope", "--get-regexp", r"^remote\..*\.url$"]
    return _first_remote(_entries(run_git(args).stdout, scoped=True))


def diff_head(copy: WorkingCopy, path: Path) -> bytes:
    """`git diff HEAD` of the files under `path`, binary-safe, with no external diff, textconv
    or filter from the repository's config, and submodules shown by commit only.

    Untracked, not ignored files are in it as new files, up to the caps of
    ``runner.source.untracked``; the files past the caps are named at the top of the patch.
    """
    from runner.source import untracked as found  # only a dirty working copy gets here

    args = ["diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv", "--no-color"]
    args += ["--submodule=short", _NO_SUBMODULE_GIT, "--", "."]
    try:
        files = found.find_untracked(path, copy.neutral)
        if files.included:
            patch = found.diff_with_untracked(path, args, files, copy.neutral)
            return found.left_out_note(copy.prefix, files) + patch
    except found.UntrackedError as exc:
        raise UnreadableWorkingCopy(f"git cannot diff the working copy at {path}: {exc}") from exc
    result = run_git(["-C", str(path), *args], config=copy.neutral)
    if result.returncode != 0:
        why = reason(result.stderr)
        raise UnreadableWorkingCopy(f"git cannot diff the working copy at {path}: {why}")
    return found.left_out_note(copy.prefix, files) + result.stdout


def _not_a_repo(result: Completed, path: Path) -> None:
    why = reason(result.stderr)
    if "dubious ownership" in why:
        # Recording "no commit" here would hide the repo's history; make the user decide.
        raise SourceError(
            f"cannot determine the git commit of {path}: {why}",
            hint="If you trust this repository: git config --global --add safe.directory <dir>",
        )
    dot_git = next((p / ".git" for p in _searched(path) if (p / ".git").exists()), None)
    if "not a git repository" not in why or dot_git is not None:
        raise UnreadableWorkingCopy(f"git cannot read the repository at {dot_git or path}: {why}")


def _searched(path: Path) -> list[Path]:
    """Where git looks for a repository holding `path`: up to a GIT_CEILING_DIRECTORIES entry."""
    ceilings = {Path(p) for p in os.environ.get("GIT_CEILING_DIRECTORIES", "").split(":") if p}
    searched = [path]
    for parent in path.parents:
        if parent in ceilings:
            break
        searched.append(parent)
    return searched


def _status(path: Path, prefix: str, neutral: Config) -> tuple[str | None, str | None, bool]:
    args = ["-C", str(path), "status", "--porcelain=v2", "--branch", "-z", _NO_SUBMODULE_GIT]
    args += ["--untracked-files=normal", "--ignored=matching", "--", "."]
    result = run_git(args, config=neutral)
    if result.returncode != 0:
        why = reason(result.stderr)
        raise UnreadableWorkingCopy(f"git cannot read the working copy at {path}: {why}")
    return _parse_status(result.stdout, prefix)


def _parse_status(out: bytes, prefix: str) -> tuple[str | None, str | None, bool]:
    commit = branch = None
    dirty = False
    for entry in os.fsdecode(out).split("\0"):
        if entry.startswith("# branch.oid "):
            commit = entry[13:] if FULL_SHA.fullmatch(entry[13:]) else None
        elif entry.startswith("# branch.head "):
            branch = None if entry[14:] == "(detached)" else entry[14:]
        elif entry.startswith("! ") and entry.endswith("/"):
            dirty |= prefix.startswith(entry[2:])  # the project dir itself (or a parent) is ignored
        elif entry[:2] in ("1 ", "2 ", "u ", "? "):
            dirty = True
    return commit, branch, dirty


def _dirty_submodule(top: Path, prefix: str) -> bool:
    """Whether a checked-out submodule under the project dir has changes of its own, each looked
    at by a call like this one (its commit moving is already in the superproject's status)."""
    if not (top / ".gitmodules").is_file():
        return False
    args = ["-C", str(top), "config", "-z", "--file", ".gitmodules", "--get-regexp"]
    listed = run_git([*args, r"^submodule\..*\.path$"]).stdout
    paths = [value for _scope, _key, value in _entries(listed, scoped=False)]
    subs = [top / p for p in paths if p and (p + "/").startswith(prefix)]
    # a path in .gitmodules is the project's word: only checked-out ones inside the repo count
    subs = [s for s in subs if s.resolve().is_relative_to(top.resolve()) and (s / ".git").exists()]
    return any(copy.dirty for copy in map(inspect_working_copy, subs) if copy)


# --- the repository's config, listed by `config -z --show-scope --get-regexp` ---------------


def _entries(out: bytes, *, scoped: bool) -> list[tuple[str, str, str]]:
    # scoped: "scope\0key\nvalue\0" per entry; "key\0" alone for a key without a value
    fields = os.fsdecode(out).split("\0")[:-1]
    pairs = zip(fields[::2], fields[1::2], strict=True) if scoped else (("", f) for f in fields)
    return [(scope, *_key_value(item)) for scope, item in pairs]


def _key_value(item: str) -> tuple[str, str]:
    key, _, value = item.partition("\n")
    return key, value


def _first_remote(entries: list[tuple[str, str, str]]) -> str | None:
    # in config-file order, like `git remote`
    urls = (value for _scope, key, value in entries if key.startswith("remote."))
    return next((strip_credentials(url) for url in urls), None)


def _neutralised_filters(entries: list[tuple[str, str, str]]) -> Config:
    """Empty clean/smudge/process commands, not required, for every filter driver the project's
    own config defines. git looks a driver up by the name an attribute gives, and an empty
    command means "no filter"; drivers from the user's own config (git-lfs) still run."""
    names = {
        key[len("filter.") :].rpartition(".")[0]
        for scope, key, _value in entries
        if scope in _PROJECT_SCOPES and key.startswith("filter.")
    }
    names.discard("")
    blank = [(f"filter.{name}.{key}", "") for name in sorted(names) for key in _FILTER_KEYS]
    return (*blank, *((f"filter.{name}.required", "false") for name in sorted(names)))


def untracked_files(path: Path) -> list[str]:
    """Untracked, non-ignored files under `path`, relative to it, sorted (``git diff HEAD``
    does not show them; a step cache key must)."""
    args = ["-C", str(path), "ls-files", "--others", "--exclude-standard", "-z", "--", "."]
    result = run_git(args)
    if result.returncode != 0:
        why = reason(result.stderr)
        raise UnreadableWorkingCopy(f"git cannot list the untracked files at {path}: {why}")
    return sorted(os.fsdecode(name) for name in result.stdout.split(b"\0") if name)
