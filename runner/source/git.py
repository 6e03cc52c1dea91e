"""Versions, remotes, the clone cache and private checkouts, through the hardened git wrapper."""

from __future__ import annotations

import re
from pathlib import Path

from runner.errors import SourceError
from runner.home import runner_home
from runner.locks import LockTimeout, exclusive_lock
from runner.redact import strip_credentials
from runner.source.gitauth import Remote, remote
from runner.source.gitproc import (
    ALL_PROTOCOLS,
    NETWORK_TIMEOUT,
    REMOTE_PROTOCOLS,
    checked,
    run_git,
)
from runner.source.giturl import FULL_SHA

_HEX = re.compile(r"[0-9a-f]{4,40}")


# --- versions, remotes and the clone cache --------------------------------------------------


def resolve_version(repo: Path, version: str) -> tuple[str, str | None] | None:
    """(full sha, branch or None) for a branch, tag or commit of `repo`, looked up in that order."""
    candidates: list[tuple[str, str | None]] = [(f"refs/heads/{version}", version)]
    candidates.append((f"refs/tags/{version}", None))
    if _HEX.fullmatch(version):
        candidates.append((version, None))
    for rev, branch in candidates:
        if sha := _commit_of(repo, rev):
            return sha, branch
    return None


def _commit_of(repo: Path, rev: str) -> str | None:
    args = ["-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options"]
    result = run_git([*args, f"{rev}^{{commit}}"])
    sha = result.stdout.decode().strip()
    return sha if result.returncode == 0 and FULL_SHA.fullmatch(sha) else None


def update_cache(url: str, version: str | None) -> tuple[Path, str, str | None]:
    """Make the cached bare clone of `url` hold what `version` names: (cache, sha, branch).

    The remote is contacted only when needed: a full sha already in the cache needs nothing,
    no version needs one `ls-remote` (plus a fetch only if the tip is new), names need a fetch.
    """
    import hashlib

    cache = runner_home() / "git" / hashlib.sha256(strip_credentials(url).encode()).hexdigest()[:16]
    try:
        with exclusive_lock(Path(f"{cache}.lock"), timeout=NETWORK_TIMEOUT):
            if not (cache / "HEAD").is_file():  # `init` is idempotent, so a crash here heals itself
                checked(["init", "--bare", "--quiet", "--template=", "--", str(cache)], "git init")
            return (cache, *_resolve_remote(cache, remote(url), version))
    except LockTimeout as exc:
        raise SourceError(f"timed out waiting for the git cache lock {exc.path}") from None


def _resolve_remote(cache: Path, origin: Remote, version: str | None) -> tuple[str, str | None]:
    if version is None:
        sha, branch = _remote_head(origin)
        if not _ensure_commit(cache, origin, sha):
            raise SourceError(
                f"Unable to fetch the default branch of git repo {origin.url}: {sha} missing"
            )
        return sha, branch
    if FULL_SHA.fullmatch(version) and _ensure_commit(cache, origin, version):
        return version, None
    if not FULL_SHA.fullmatch(version):
        _fetch(cache, origin)  # branches move, so a name is always looked up afresh
    if found := resolve_version(cache, version):
        return found
    raise SourceError(
        f"Unable to checkout version '{version}' of git repo {origin.url}: "
        f"no branch, tag or commit named '{version}'"
    )


def _ensure_commit(cache: Path, origin: Remote, sha: str) -> bool:
    if _commit_of(cache, sha):
        return True
    _fetch(cache, origin)
    if not _commit_of(cache, sha):
        # not on any branch or tag; servers may still serve it when asked by name
        args = ["-C", str(cache), "fetch", "--quiet", "--no-tags", "--", origin.url, sha]
        run_git(args, timeout=NETWORK_TIMEOUT, config=origin.config, extra_env=origin.env)
    return _commit_of(cache, sha) is not None


def _fetch(cache: Path, origin: Remote) -> None:
    refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    args = ["-C", str(cache), "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head"]
    args += ["--no-recurse-submodules", "--", origin.url, *refspecs]
    what = f"Unable to fetch git repo {origin.url}"
    checked(args, what, timeout=NETWORK_TIMEOUT, config=origin.config, extra_env=origin.env)


def _remote_head(origin: Remote) -> tuple[str, str | None]:
    what = f"Unable to read git repo {origin.url}"
    args = ["ls-remote", "--symref", "--", origin.url, "HEAD"]
    out = checked(args, what, timeout=NETWORK_TIMEOUT, config=origin.config, extra_env=origin.env)
    sha = branch = None
    for line in out.decode(errors="replace").splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            branch = target[len("ref: refs/heads/") :]
        elif name == "HEAD" and FULL_SHA.fullmatch(target):
            sha = target
    if sha is None:
        raise SourceError(f"{what}: it has no default branch (is it empty?)")
    return sha, branch


def private_checkout(source: Path, sha: str, dest: Path, origin_url: str | None = None) -> None:
    """A fresh working copy of `source` at `sha` in `dest`; objects are borrowed, not copied."""
    clone = ["clone", "--quiet", "--shared", "--no-checkout", "--template="]
    checked([*clone, "--", str(source), str(dest)], f"Unable to clone {source}")
    checked(["-C", str(dest), "checkout", "--quiet", "--detach", sha], f"Unable to checkout {sha}")
    if origin_url:  # entry points that log their git remote should see the real one
        checked(["-C", str(dest), "config", "--", "remote.origin.url", origin_url], "git config")


def update_submodules(checkout: Path, *, allow_file: bool) -> None:
    """Fetch a private checkout's submodules, only when the user asked for them.

    The ``-c`` settings reach the nested clones, so hooks stay off and ``ext::`` refused; local
    ``file://`` submodules are allowed only when the project itself came from a local path.
    """
    protocols = ALL_PROTOCOLS if allow_file else REMOTE_PROTOCOLS
    # git refuses file:// submodules by default (CVE-2022-39253); a local project opts back in
    policy = ["-c", "protocol.file.allow=always"] if allow_file else []
    args = ["-C", str(checkout), *policy, "submodule", "update", "--init", "--recursive"]
    what = "Unable to fetch the submodules of the project"
    checked(args, what, timeout=NETWORK_TIMEOUT, protocols=protocols)
