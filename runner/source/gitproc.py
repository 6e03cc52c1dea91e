"""Running git: safe settings, a scrubbed env, its own process group, stopped on any exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn

from runner.errors import SourceError
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
NETWORK_TIMEOUT = 3600.0
_GRACE = 1.0  # seconds git gets to remove its lock files before its whole group is killed
ALL_PROTOCOLS = _ENV_SET["GIT_ALLOW_PROTOCOL"]
REMOTE_PROTOCOLS = "git:http:https:ssh"
Completed = subprocess.CompletedProcess[bytes]
Config = Sequence[tuple[str, str]]


class GitNotFound(SourceError):
    """The git executable is missing."""

    code = "git-not-found"


def git_env(
    protocols: str = ALL_PROTOCOLS, config: Config = (), extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment git runs in; `config` entries may have any key (no `=` parsing)."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(_ENV_SET)
    env["GIT_ALLOW_PROTOCOL"] = protocols  # overrides any protocol.*.allow config
    env.update(extra or {})
    start = int(env.get("GIT_CONFIG_COUNT") or 0)  # after the user's own entries, so ours win
    for i, (key, value) in enumerate(config, start):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    env["GIT_CONFIG_COUNT"] = str(start + len(config))
    return env


def _spawn(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A new session has no controlling tty, so even ssh cannot prompt for a passphrase.
    flags = [part for item in _SAFE_CONFIG for part in ("-c", item)]
    pipe = subprocess.PIPE
    try:
        return subprocess.Popen(
            ["git", "--no-pager", *flags, *args], env=env, stdin=subprocess.DEVNULL, stdout=pipe,
            stderr=pipe, start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError:
        hint = "Install git (https://git-scm.com)."
        raise GitNotFound("git was not found on PATH", hint=hint) from None


def run_git(
    args: Sequence[str], *, timeout: float | None = None, protocols: str = ALL_PROTOCOLS,
    config: Config = (), extra_env: Mapping[str, str] | None = None,
) -> Completed:  # fmt: skip
    """Run git with the safe config and env; never a shell, a prompt or a tty.

    `extra_env` carries what must never be in an argv (credentials); `config` adds settings.
    """
    with _supervised() as procs:
        procs.append(_spawn(args, git_env(protocols, config, extra_env)))
        try:
            out, err = procs[0].communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # never name the URL: it may hold a token
            raise SourceError(f"git {_subcommand(args)} timed out after {timeout:g} s") from None
    return subprocess.CompletedProcess(procs[0].args, procs[0].returncode, out, err)


def run_parallel(argvs: Sequence[Sequence[str]], config: Config = ()) -> list[Completed]:
    """Run local git commands side by side: three ~3 ms calls cost one."""
    with _supervised() as procs:
        procs.extend(_spawn(args, git_env(config=config)) for args in argvs)
        done = [(proc, *proc.communicate()) for proc in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in done]


def _subcommand(args: Sequence[str]) -> str:
    rest = list(args)
    while len(rest) > 1 and rest[0] in ("-C", "-c"):
        rest = rest[2:]
    return rest[0] if rest else "git"


def reason(stderr: bytes) -> str:
    """The one line of git's stderr worth showing, without the `fatal: ` prefix."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    picked = next(
        (ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[-1] if lines else ""
    )
    picked = USERINFO.sub(r"\1", re.sub(r"^(fatal|error): ", "", picked))  # git may echo the URL
    return picked[:300] or "git failed"


def checked(
    args: Sequence[str], what: str, *, timeout: float | None = None, protocols: str = ALL_PROTOCOLS,
    config: Config = (), extra_env: Mapping[str, str] | None = None,
) -> bytes:  # fmt: skip
    result = run_git(args, timeout=timeout, protocols=protocols, config=config,
                     extra_env=extra_env)  # fmt: skip
    if result.returncode != 0:
        raise SourceError(f"{what}: {reason(result.stderr)}")
    return result.stdout


# --- no git outlives the call: timeout, Ctrl-C or SIGTERM ------------------------------------


@contextmanager
def _supervised() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Collects the gits started in the block; whichever way it ends, none is left running."""
    procs: list[subprocess.Popen[bytes]] = []
    previous = _exit_on_sigterm()
    try:
        yield procs
    finally:
        with _signals_held():
            for proc in procs:
                if proc.returncode is None:
                    _stop(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm() -> Any:
    # SIGTERM's default kills the runner at once, leaving git (in its own session) running with
    # the runner's temp dirs; as an exit it unwinds and cleans up. A handler set by whoever
    # called us (a run in progress) is left in place: it raises, which unwinds just the same.
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _exit_terminated)


def _exit_terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


@contextmanager
def _signals_held() -> Iterator[None]:
    # a second ^C during the clean-up would otherwise leave git's helpers running
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End git and all it started (remote helpers, ssh, credential helpers): git is the leader
    of its own process group. SIGTERM first, so git removes its lock files; then SIGKILL."""
    _signal_group(proc.pid, signal.SIGTERM)
    _wait_unreaped(proc.pid, _GRACE)
    _signal_group(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=_GRACE)  # a daemon git started could hold the pipes open
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_unreaped(pid: int, seconds: float) -> None:
    # WNOWAIT leaves git a zombie, so its group id cannot be reused before the SIGKILL
    deadline = time.monotonic() + seconds
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    with suppress(ChildProcessError):
        while os.waitid(os.P_PID, pid, flags) is None and time.monotonic() < deadline:
            time.sleep(0.01)
