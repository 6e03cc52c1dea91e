"""Turn a project URI (local dir, git URL or zip) into a directory to run plus its provenance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from runner.errors import SourceError
from runner.redact import strip_credentials
from runner.source import git, giturl, worktree
from runner.source.gitproc import GitNotFound

_NOT_GIT = "Setting a version is only supported for Git project URIs"


@dataclass(frozen=True)
class Provenance:
    """Where a project came from, as recorded on the run."""

    uri: str  # as given, credentials stripped, #subdir removed
    subdirectory: str | None
    version: str | None  # the requested -v
    commit: str | None  # full 40-hex sha, None when not from git
    branch: str | None
    repo_url: str | None  # remote URL without credentials, or file:// of the local repo root
    dirty: bool | None  # None when not a git working copy
    diff_digest: str | None  # sha256 of `git diff HEAD` when dirty
    warnings: tuple[str, ...] = ()  # for the user to read; not part of the record

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        del data["warnings"]
        return data


@dataclass(frozen=True)
class FetchedProject:
    """A directory holding MLproject, its provenance, and what the caller must clean up."""

    project_dir: Path
    provenance: Provenance
    diff: bytes | None  # `git diff HEAD` of a dirty local working copy, for the run's artifacts
    cleanup_paths: tuple[Path, ...]


def fetch_project(
    uri: str, version: str | None = None, *, submodules: bool = False
) -> FetchedProject:
    """Resolve `uri` (`path`, `git-url` or `.zip`, each optionally `#subdir`) into a project.

    Local directories are used in place; git URLs and versioned local repos are checked out into
    a private temp dir, zips are extracted into one. Raises SourceError with a user-facing message.
    """
    location, sub = split_uri(uri)
    if version is not None:
        giturl.validate_version(version)
    giturl.check_uri_basics(location)
    shown = strip_credentials(location)
    kind, target = classify(location)
    if kind == "local":
        # a relative folder means nothing later: record where it was
        return _fetch_local(str(Path(target).resolve()), Path(target), sub, version, submodules)
    if kind == "git":
        return _fetch_git(shown, target, sub, version, submodules)
    if version is not None:
        raise SourceError(_NOT_GIT)
    return _fetch_zip(shown, target, sub, download=kind == "http-zip")


def remove_fetched(fetched: FetchedProject) -> None:
    """Best-effort removal of the temp dirs of a fetched project (read-only files included)."""
    for path in fetched.cleanup_paths:
        _remove(path)


def split_uri(uri: str) -> tuple[str, str | None]:
    """`'uri#sub'` → (`uri`, `sub`): quotes stripped, split at the first `#`, empty sub → None."""
    location, _, sub = uri.strip("'\"").partition("#")
    return location, sub or None


def classify(location: str) -> tuple[str, str]:
    """("local" | "git" | "zip" | "http-zip", path or URL), refusing unsafe URLs before any git."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else None
    if scheme == "file":
        path = _file_url_path(location)
        if path.suffix.lower() == ".zip" or (path.is_dir() and not _is_repo(path)):
            return _classify_path(path, location)  # a plain directory is used in place
    elif scheme in ("http", "https") and urlsplit(location).path.lower().endswith(".zip"):
        giturl.check_git_url(location)  # same hygiene: no whitespace, `$` or bad escapes
        return "http-zip", location
    elif scheme is None and (os.path.exists(location) or not giturl.is_scp_like(location)):
        return _classify_path(Path(location), location)
    giturl.check_git_url(location)
    return "git", location


def _classify_path(path: Path, location: str) -> tuple[str, str]:
    if path.is_file() and path.suffix.lower() == ".zip":
        return "zip", str(path)
    if not path.is_dir():
        raise SourceError(
            f"Could not find project {strip_credentials(location)}: no such directory",
            hint="Give a local directory, a .zip, or a git URL (https://, ssh://, git@host:path).",
        )
    if _is_repo(path) and not (path / ".git").exists():
        return "git", str(path.resolve())  # a bare repository has nothing to run in place
    return "local", str(path)


def _is_repo(path: Path) -> bool:
    # file:// to a repository means "clone it" (tests use one as a remote); bare ones likewise
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _file_url_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"file URL {url!r} names a remote host; only local files are supported")
    return Path(unquote(parts.path))


def project_subdir(root: Path, sub: str | None, uri: str) -> Path:
    """`root/sub`, which must exist and stay inside `root` after resolving symlinks."""
    root = root.resolve()
    if not sub:
        return root
    parts = PurePosixPath(sub.replace("\\", "/"))
    if parts.is_absolute() or ".." in parts.parts:
        raise SourceError(f"subdirectory {sub!r} escapes the project {uri}")
    candidate = root.joinpath(*parts.parts)
    if not candidate.is_dir():
        raise SourceError(f"Could not find subdirectory {sub} of {uri}")
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise SourceError(f"subdirectory {sub!r} escapes the project {uri} (through a symlink)")
    return resolved


# --- the three kinds of source --------------------------------------------------------------


def _fetch_local(
    uri: str, root: Path, sub: str | None, version: str | None, submodules: bool
) -> FetchedProject:
    if version is not None:
        return _fetch_local_version(uri, root, sub, version, submodules)
    # used in place: the working tree's submodules are whatever the user checked out
    project_dir = project_subdir(root, sub, uri)
    try:
        copy, diff = _look_at(project_dir)
    except GitNotFound:
        copy = diff = None  # provenance is then simply unknown; the run itself needs no git
    except worktree.UnreadableWorkingCopy as exc:
        warning = f"{exc.message}; the run is recorded without a git commit"
        return FetchedProject(project_dir, _plain(uri, sub, None, (warning,)), None, ())
    if copy is None:
        return FetchedProject(project_dir, _plain(uri, sub, None), None, ())
    provenance = Provenance(
        uri, sub, None, copy.commit, copy.branch, _repo_url(copy), copy.dirty, _digest(diff)
    )
    return FetchedProject(project_dir, provenance, diff, ())


def _look_at(project_dir: Path) -> tuple[worktree.WorkingCopy | None, bytes | None]:
    copy = worktree.inspect_working_copy(project_dir)
    # an unborn branch has no HEAD to diff against: dirty, but no diff
    if copy is None or not (copy.dirty and copy.commit):
        return copy, None
    return copy, worktree.diff_head(copy, project_dir)


def _fetch_local_version(
    uri: str, root: Path, sub: str | None, version: str, submodules: bool
) -> FetchedProject:
    # Never check out inside the user's tree: resolve read-only there, check out in a temp clone.
    top, prefix = worktree.locate(root.resolve()) or _not_git()
    sha, branch = git.resolve_version(top, version) or _bad_version(version, uri)
    with _workdir() as work:
        git.private_checkout(top, sha, work)
        if submodules:
            git.update_submodules(work, allow_file=True)
        if prefix and not (work / prefix).is_dir():
            raise SourceError(f"{uri} does not exist at version '{version}'")
        project_dir = project_subdir(work / prefix, sub, uri)
    repo_url = worktree.first_remote(top) or top.as_uri()
    provenance = Provenance(uri, sub, version, sha, branch, repo_url, False, None)
    return FetchedProject(project_dir, provenance, None, (work,))


def _fetch_git(
    uri: str, url: str, sub: str | None, version: str | None, submodules: bool
) -> FetchedProject:
    cache, sha, branch = git.update_cache(url, version)
    repo_url = strip_credentials(url)
    with _workdir() as work:
        # origin is the remote (credentials stripped): relative submodule URLs resolve against it
        git.private_checkout(cache, sha, work, origin_url=repo_url)
        if submodules:
            git.update_submodules(work, allow_file=url.startswith("file:"))
        project_dir = project_subdir(work, sub, uri)
    provenance = Provenance(uri, sub, version, sha, branch, repo_url, False, None)
    return FetchedProject(project_dir, provenance, None, (work,))


def _fetch_zip(uri: str, source: str, sub: str | None, *, download: bool) -> FetchedProject:
    from runner.source import archive

    with _workdir() as work:
        zip_path = work / "download.zip" if download else Path(source)
        if download:
            archive.download(source, zip_path)
        archive.extract_zip(zip_path, work / "project")
        if download:
            zip_path.unlink()
        project_dir = project_subdir(work / "project", sub, uri)
    return FetchedProject(project_dir, _plain(uri, sub, None), None, (work,))


# --- helpers --------------------------------------------------------------------------------


def _plain(
    uri: str, sub: str | None, version: str | None, warnings: tuple[str, ...] = ()
) -> Provenance:
    return Provenance(uri, sub, version, None, None, None, None, None, warnings)


def _repo_url(copy: worktree.WorkingCopy) -> str:
    return copy.remote_url or copy.top.as_uri()


def _not_git() -> NoReturn:
    raise SourceError(_NOT_GIT)


def _digest(diff: bytes | None) -> str | None:
    import hashlib

    return None if diff is None else hashlib.sha256(diff).hexdigest()


def _bad_version(version: str, uri: str) -> NoReturn:
    raise SourceError(
        f"Unable to checkout version '{version}' of git repo {uri}: "
        f"no branch, tag or commit named '{version}'"
    )


@contextmanager
def _workdir() -> Iterator[Path]:
    """A fresh runner-src-* temp dir, removed again if filling it fails (Ctrl-C included)."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="runner-src-")).resolve()
    try:
        yield work
    except BaseException:
        _remove(work)
        raise


def _remove(root: Path) -> None:
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    if not root.exists():
        return
    # An entry point left read-only dirs: open them up (never through a symlink) and retry.
    with suppress(OSError):
        os.chmod(root, 0o700)
    for parent, dirs, _files in os.walk(root):
        for path in (os.path.join(parent, name) for name in dirs):
            if not os.path.islink(path):
                with suppress(OSError):
                    os.chmod(path, 0o700)
    shutil.rmtree(root, ignore_errors=True)
