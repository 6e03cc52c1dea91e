"""Helpers shared by the cases: clean environments, timed child processes, CLI probes."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from benchmarks import mlflow_env
from benchmarks.harness import Measurement, NotAvailable

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parent
PROJECTS = BENCH_DIR / "projects"
WORK = BENCH_DIR / ".work"
UV_CACHE = WORK / "uv-cache"  # shared by runner and MLflow's uv manager, warmed by the warm-up
PIP_CACHE = WORK / "pip-cache"  # MLflow's virtualenv manager (pip)
PYTHON_BIN = Path(sys.executable).parent  # the real interpreter, not a pyenv shim
TIMEOUT_S = 900.0


class BenchError(RuntimeError):
    """A benchmarked command failed; the message carries the exit code and output tail."""


def runner_cmd() -> list[str]:
    """The `runner` console script beside this interpreter, else `python -m runner`."""
    script = PYTHON_BIN / "runner"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "runner"]


def mlflow_bin() -> Path:
    return mlflow_env.venv_bin("mlflow")


def runner_run(project: Path, *args: str) -> list[str]:
    """argv of ``runner run <project> <args>``."""
    return [*runner_cmd(), "run", str(project), *args]


def mlflow_run(project: Path, *args: str) -> list[str]:
    """argv of ``mlflow run <project> <args>`` from the MLflow venv."""
    return [str(mlflow_bin()), "run", str(project), *args]


def has_module(name: str) -> bool:
    """True when ``name`` can be imported by this interpreter (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _clean_base() -> dict[str, str]:
    drop = ("RUNNER_", "MLFLOW_", "VIRTUAL_ENV", "CONDA_", "PYTHONPATH", "UV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{PYTHON_BIN}:{os.environ.get('PATH', '')}"
    env["UV_CACHE_DIR"] = str(UV_CACHE)
    env["PIP_CACHE_DIR"] = str(PIP_CACHE)
    return env


def runner_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a runner process: its own RUNNER_HOME, the real python first on PATH,
    and this checkout's code first on sys.path (whatever an editable install points at)."""
    return {**_clean_base(), "RUNNER_HOME": str(home), "PYTHONPATH": str(REPO), **extra}


def mlflow_tracking_uri(db: Path) -> str:
    return f"sqlite:///{db}"


def mlflow_run_env(db: Path, env_root: Path, **extra: str) -> dict[str, str]:
    """Environment for ``mlflow run``: its own SQLite store and env root, its venv first on PATH."""
    env = _clean_base()
    env["PATH"] = f"{mlflow_env.VENV_DIR / 'bin'}:{env['PATH']}"
    env["MLFLOW_TRACKING_URI"] = mlflow_tracking_uri(db)
    env["MLFLOW_ENV_ROOT"] = str(env_root)
    env["MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING"] = "1"
    return {**env, **extra}


def _tail(path: Path, lines: int = 6) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " / ".join(text[-lines:])


def _wait(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait with ``os.wait4`` to get the child's own peak RSS (MB); kill after TIMEOUT_S."""
    timer = threading.Timer(TIMEOUT_S, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024.0


def start(
    argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a process with stdout+stderr going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finish(proc: subprocess.Popen[bytes], log: Path) -> float:
    """Wait for a started process; raise BenchError with the output tail on failure."""
    code, rss = _wait(proc)
    if code != 0:
        program = Path(cast(list[str], proc.args)[0]).name
        raise BenchError(f"{program} exited {code}: {_tail(log)}")
    return rss


def timed(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Measurement:
    """Wall time of one whole process run in ``cwd``, with its peak RSS (``peak_rss_mb``).

    ``cwd`` is always a scratch dir: MLflow puts its default artifact root (./mlruns) there.
    """
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        log = Path(tmp) / "out.log"
        t0 = time.perf_counter()
        proc = start(argv, env, log, cwd)
        rss = finish(proc, log)
        seconds = time.perf_counter() - t0
    return Measurement(seconds, {"peak_rss_mb": rss})


def child_json(
    python: str, script: Path, args: Sequence[str], env: Mapping[str, str], cwd: Path
) -> dict[str, Any]:
    """Run ``python -P script args`` (``-P``: the script's dir must not shadow the stdlib),
    which prints one JSON object on its last stdout line; return that object."""
    proc = subprocess.run(
        [python, "-P", str(script), *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise BenchError(f"{script.name} exited {proc.returncode}: {tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@functools.cache
def cli_reason(*subcommand: str) -> str | None:
    """None when ``runner <subcommand> --help`` exits 0, else the not-available reason."""
    label = " ".join(("runner", *subcommand))
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        argv = [*runner_cmd(), *subcommand, "--help"]
        env = runner_env(Path(tmp) / "home")
        proc = subprocess.run(
            argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=60, check=False
        )
    if proc.returncode == 0:
        return None
    last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return f"not available: `{label} --help` exited {proc.returncode} ({last[0][:160]})"


def last_run(env: Mapping[str, str]) -> dict[str, Any]:
    """The newest run record in the store ``env`` names (`runner runs list --json --limit 1`)."""
    argv = [*runner_cmd(), "runs", "list", "--json", "--limit", "1"]
    proc = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BenchError(f"`runner runs list` exited {proc.returncode}: {proc.stderr[-300:]}")
    runs: list[dict[str, Any]] = json.loads(proc.stdout)
    if not runs:
        raise BenchError(f"no run recorded in {env.get('RUNNER_HOME')}")
    return runs[0]


def mlflow_reason() -> str | None:
    """None when the MLflow venv is installed, else why the MLflow side cannot run."""
    if mlflow_env.is_installed():
        return None
    return f"not available: MLflow venv missing at {mlflow_env.VENV_DIR}"


def fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty directory under ``parent``."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def which(name: str) -> str | None:
    return shutil.which(name, path=_clean_base()["PATH"])


def require(ok: bool, reason: str) -> None:
    """Raise NotAvailable(reason) unless ``ok``."""
    if not ok:
        raise NotAvailable(reason)
