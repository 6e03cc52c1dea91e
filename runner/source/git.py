"""A small hardened wrapper around the git CLI: argv lists, a scrubbed env, validated refs."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import SourceError
from runner.home import runner_home
from runner.redact import strip_credentials
from runner.source.giturl import USERINFO

# `-c` beats every config file, so neither a repo nor a template can switch these back on.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "protocol.ext.allow=never",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "transfer.fsckObjects=true",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
)
# Prompt helpers, and variables that would point git at another repository than the one we name.
_ENV_DROP = frozenset((
    "GIT_ASKPASS", "SSH_ASKPASS", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
    "GIT_TEMPLATE_DIR",
))  # fmt: skip
_ENV_SET = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
    "GIT_PROTOCOL_FROM_USER": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    # status must not rewrite the user's index while we only look at it
    "GIT_OPTIONAL_LOCKS": "0",
    # we match a few English messages ("not a git repository")
    "LC_ALL": "C",
}
_HEX = re.compile(r"[0-9a-f]{4,40}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
NETWORK_TIMEOUT = 3600.0
Completed = subprocess.CompletedProcess[bytes]


class GitNotFound(SourceError):
    """The git executable is missing."""

    code = "git-not-found"


@dataclass(frozen=True)
class WorkingCopy:
    """What a read-only look at a git working copy found."""

    top: Path
    prefix: str  # the inspected dir relative to `top`, "" or ending in "/"
    commit: str | None  # None on an unborn branch
    branch: str | None  # None when HEAD is detached
    remote_url: str | None
    dirty: bool


ALL_PROTOCOLS = _ENV_SET["GIT_ALLOW_PROTOCOL"]
REMOTE_PROTOCOLS = "git:http:https:ssh"


def git_env(protocols: str = ALL_PROTOCOLS) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(_ENV_SET)
    env["GIT_ALLOW_PROTOCOL"] = protocols  # overrides any protocol.*.allow config
    return env


def _spawn(args: Sequence[str], protocols: str = ALL_PROTOCOLS) -> subprocess.Popen[bytes]:
    # A new session has no controlling tty, so even ssh cannot prompt for a passphrase.
    flags = [part for item in _SAFE_CONFIG for part in ("-c", item)]
    pipe = subprocess.PIPE
    try:
        return subprocess.Popen(
            ["git", *flags, *args], env=git_env(protocols), stdin=subprocess.DEVNULL, stdout=pipe,
            stderr=pipe, start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError:
        raise _git_missing() from None


def run_git(
    args: Sequence[str], *, timeout: float | None = None, protocols: str = ALL_PROTOCOLS
) -> Completed:
    """Run git with the safe config and env; never a shell, a prompt or a tty."""
    proc = _spawn(args, protocols)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        command = args[2] if args[0] == "-C" else args[0]  # never the URL: it may hold a token
        raise SourceError(f"git {command} timed out after {timeout:g} s") from None
    finally:
        if proc.returncode is None:  # timeout or Ctrl-C: git is in its own session, so stop it
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run_parallel(argvs: Sequence[Sequence[str]]) -> list[Completed]:
    # Local provenance runs on every `runner run`: three ~3 ms git calls side by side cost one.
    procs = [_spawn(args) for args in argvs]
    done = [(proc, *proc.communicate()) for proc in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in done]


def _git_missing() -> GitNotFound:
    return GitNotFound("git was not found on PATH", hint="Install git (https://git-scm.com).")


def reason(stderr: bytes) -> str:
    """The one line of git's stderr worth showing, without the `fatal: ` prefix."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    picked = next(
        (ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[-1] if lines else ""
    )
    picked = USERINFO.sub(r"\1", re.sub(r"^(fatal|error): ", "", picked))  # git may echo the URL
    return picked[:300] or "git failed"


def checked(
    args: Sequence[str], what: str, *, timeout: float | None = None, protocols: str = ALL_PROTOCOLS
) -> bytes:
    result = run_git(args, timeout=timeout, protocols=protocols)
    if result.returncode != 0:
        raise SourceError(f"{what}: {reason(result.stderr)}")
    return result.stdout


# --- local working copies -------------------------------------------------------------------


def inspect_working_copy(path: Path) -> WorkingCopy | None:
    """Commit, branch, remote and dirtiness of the working copy holding `path`; None if none.

    Dirty means tracked changes or untracked, non-ignored files under `path`, or `path` itself
    untracked/ignored: a project dir that is not in the commit cannot be rebuilt from it, so we
    still record the enclosing repo's HEAD (the best anchor there is) but flag it dirty.
    """
    where = ["-C", str(path)]
    top, status, config = _run_parallel([
        [*where, "rev-parse", "--show-toplevel", "--show-prefix"],
        [*where, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal",
         "--ignored=matching", "--", "."],
        [*where, "config", "-z", "--get-regexp", r"^remote\..*\.url$"],
    ])  # fmt: skip
    if top.returncode != 0 or status.returncode != 0:
        _refuse_untrusted(top if top.returncode else status, path)
        return None
    top_dir, prefix = os.fsdecode(top.stdout).split("\n")[:2]
    commit, branch, dirty = _parse_status(status.stdout, prefix)
    return WorkingCopy(Path(top_dir), prefix, commit, branch, _first_remote(config.stdout), dirty)


def _refuse_untrusted(result: Completed, path: Path) -> None:
    why = reason(result.stderr)
    if "dubious ownership" in why:
        # Recording "no commit" here would hide the repo's history; make the user decide.
        raise SourceError(
            f"cannot determine the git commit of {path}: {why}",
            hint="If you trust this repository: git config --global --add safe.directory <dir>",
        )


def _parse_status(out: bytes, prefix: str) -> tuple[str | None, str | None, bool]:
    commit = branch = None
    dirty = False
    for entry in os.fsdecode(out).split("\0"):
        if entry.startswith("# branch.oid "):
            commit = entry[13:] if _FULL_SHA.fullmatch(entry[13:]) else None
        elif entry.startswith("# branch.head "):
            branch = None if entry[14:] == "(detached)" else entry[14:]
        elif entry.startswith("! ") and entry.endswith("/"):
            dirty |= prefix.startswith(entry[2:])  # the project dir itself (or a parent) is ignored
        elif entry[:2] in ("1 ", "2 ", "u ", "? "):
            dirty = True
    return commit, branch, dirty


def _first_remote(out: bytes) -> str | None:
    # -z output: "remote.<name>.url\n<value>\0" in config-file order
    for entry in os.fsdecode(out).split("\0"):
        if "\n" in entry:
            return strip_credentials(entry.split("\n", 1)[1])
    return None


def diff_head(path: Path) -> bytes:
    """`git diff HEAD` of the files under `path`, binary-safe, ignoring external diff tools."""
    args = ["-C", str(path), "diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv"]
    return checked([*args, "--no-color", "--", "."], f"git diff failed in {path}")


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
    return sha if result.returncode == 0 and _FULL_SHA.fullmatch(sha) else None


def update_cache(url: str, version: str | None) -> tuple[Path, str, str | None]:
    """Make the cached bare clone of `url` hold what `version` names: (cache, sha, branch).

    The remote is contacted only when needed: a full sha already in the cache needs nothing,
    no version needs one `ls-remote` (plus a fetch only if the tip is new), names need a fetch.
    """
    import hashlib

    from filelock import FileLock, Timeout

    cache = runner_home() / "git" / hashlib.sha256(strip_credentials(url).encode()).hexdigest()[:16]
    cache.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{cache}.lock")
    try:
        with lock.acquire(timeout=NETWORK_TIMEOUT):
            if not (cache / "HEAD").is_file():  # `init` is idempotent, so a crash here heals itself
                checked(["init", "--bare", "--quiet", "--template=", "--", str(cache)], "git init")
            return (cache, *_resolve_remote(cache, url, version))
    except Timeout:
        raise SourceError(f"timed out waiting for the git cache lock {lock.lock_file}") from None


def _resolve_remote(cache: Path, url: str, version: str | None) -> tuple[str, str | None]:
    shown = strip_credentials(url)
    if version is None:
        sha, branch = _remote_head(url)
        if not _ensure_commit(cache, url, sha):
            raise SourceError(
                f"Unable to fetch the default branch of git repo {shown}: {sha} missing"
            )
        return sha, branch
    if _FULL_SHA.fullmatch(version) and _ensure_commit(cache, url, version):
        return version, None
    if not _FULL_SHA.fullmatch(version):
        _fetch(cache, url)  # branches move, so a name is always looked up afresh
    if found := resolve_version(cache, version):
        return found
    raise SourceError(
        f"Unable to checkout version '{version}' of git repo {shown}: "
        f"no branch, tag or commit named '{version}'"
    )


def _ensure_commit(cache: Path, url: str, sha: str) -> bool:
    if _commit_of(cache, sha):
        return True
    _fetch(cache, url)
    if not _commit_of(cache, sha):
        # not on any branch or tag; servers may still serve it when asked by name
        run_git(
            ["-C", str(cache), "fetch", "--quiet", "--no-tags", "--", url, sha],
            timeout=NETWORK_TIMEOUT,
        )
    return _commit_of(cache, sha) is not None


def _fetch(cache: Path, url: str) -> None:
    refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    args = ["-C", str(cache), "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head"]
    args += ["--no-recurse-submodules", "--", url, *refspecs]
    checked(args, f"Unable to fetch git repo {strip_credentials(url)}", timeout=NETWORK_TIMEOUT)


def _remote_head(url: str) -> tuple[str, str | None]:
    what = f"Unable to read git repo {strip_credentials(url)}"
    out = checked(["ls-remote", "--symref", "--", url, "HEAD"], what, timeout=NETWORK_TIMEOUT)
    sha = branch = None
    for line in out.decode(errors="replace").splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            branch = target[len("ref: refs/heads/") :]
        elif name == "HEAD" and _FULL_SHA.fullmatch(target):
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
