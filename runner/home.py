"""Where runner keeps its state: RUNNER_HOME (default ~/.runner) and the tracking URI."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from runner.errors import RunnerError


def runner_home() -> Path:
    """The state directory: ``$RUNNER_HOME`` or ``~/.runner``; created on first use.

    A home runner cannot create or write (a file, a read-only file system) is a RunnerError.
    """
    return _checked_home(os.environ.get("RUNNER_HOME") or str(Path.home() / ".runner"))


@functools.lru_cache(maxsize=8)
def _checked_home(given: str) -> Path:
    # once per process and value: a run asks for its home a dozen times, each a mkdir, an
    # access() and a realpath; an error is not cached (lru_cache keeps only results)
    home = Path(given).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(home, _creation_problem(home, exc)) from exc
    if not os.access(home, os.W_OK | os.X_OK):  # one syscall; the store and caches write here
        raise _unusable(home, _write_problem(home))
    return home.resolve()


def _creation_problem(home: Path, exc: OSError) -> str:
    if isinstance(exc, FileExistsError):  # mkdir(exist_ok=True) tolerates only a directory
        return "is a file, not a directory" if home.is_file() else "is not a directory"
    return f"cannot be created: {exc.strerror or exc}"


def _write_problem(home: Path) -> str:
    try:
        read_only = bool(os.statvfs(home).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "is on a read-only file system" if read_only else "is not writable"


def _unusable(home: Path, problem: str) -> RunnerError:
    return RunnerError(
        f"RUNNER_HOME {home} {problem}",
        hint="runner keeps its store, environments and logs there: point RUNNER_HOME at a "
        "writable directory (the default is ~/.runner)",
    )


def tracking_uri() -> str:
    """``$RUNNER_TRACKING_URI`` (any SQLAlchemy URL) or the SQLite file in RUNNER_HOME."""
    uri = os.environ.get("RUNNER_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{runner_home() / 'runner.db'}"


def artifacts_root() -> Path:
    return runner_home() / "artifacts"


def run_artifacts_dir(run_id: str) -> Path:
    """Files of one run live under ``RUNNER_HOME/artifacts/<run-id>/``."""
    return artifacts_root() / run_id


# A run's own files in that folder (beside ``files/``, what it logged) that a tracking server
# keeps too, for the web UI and other machines: its log, the diff of a dirty working copy, its
# environment build's log, and a workflow run's file, DAG and step results. The log first.
RUN_FILES = (
    "output.log",
    "git-diff.patch",
    "env-build.log",
    "workflow.yaml",
    "dag.json",
    "steps.json",
)
