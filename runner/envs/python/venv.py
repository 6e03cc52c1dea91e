"""Building one venv for a lock with uv: create, install, health-check (the cold path only)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.envs.python.interpreters import Interpreter
from runner.envs.python.lock import LOCK_NAME, Lock
from runner.envs.python.uvcmd import UvResult, run_uv
from runner.envs.python.uvfailure import failure_summary
from runner.errors import EnvBuildError

Progress = Callable[[str], None]
LOCK_IN_ENV = ".runner-lock.txt"
BYTECODE = "compiled"  # the marker fact of an env whose packages were compiled when built
_UV_COUNTS = {"Prepared": "downloaded", "Installed": "installed"}
_UV_COUNT = re.compile(r"^(Prepared|Installed) (\d+) packages?")
_UV_COMPILED = re.compile(r"^Bytecode compiled (\d+) files?")
# Runs inside the new env: every locked distribution is found and none of its files is missing
# (an interrupted install can leave metadata without the package). Nothing is imported.
_HEALTH_CHECK = """
import importlib.metadata as md, json, os, sys
problems = []
for name in json.loads(sys.argv[1]):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        problems.append(name + ": not installed")
        continue
    for f in dist.files or ():
        if "__pycache__" not in f.parts and not os.path.exists(dist.locate_file(f)):
            problems.append(name + ": missing " + str(f))
            break
print(json.dumps(problems))
"""


def build_venv(target: Path, interp: Interpreter, lock: Lock, report: Progress) -> dict[str, Any]:
    """Create a relocatable venv in ``target``, install the lock, check it thoroughly.

    Returns the facts kept in the marker and recorded on the run.
    """
    logs: list[str] = []
    report(f"creating environment with Python {interp.version}")
    # Relocatable: scripts find their interpreter relative to themselves, so the finished
    # env can be renamed from its temp dir into place.
    args = ["venv", "--relocatable", "--no-project", "--python", str(interp.path), str(target)]
    _step(args, "create the virtual environment", target.parent, logs)
    if lock.requirements():
        _install(target, lock, report, logs)
    report("checking environment")
    _health_check(target, lock, logs)
    return {"interpreter": str(interp.path), "bytecode": BYTECODE}


def _install(target: Path, lock: Lock, report: Progress, logs: list[str]) -> None:
    (target / LOCK_IN_ENV).write_text(lock.text, encoding="utf-8")
    count = len(lock.requirements())
    report(f"installing {count} packages")
    args = [
        "pip",
        "install",
        "--python",
        str(target / "bin" / "python"),
        "--no-deps",
        # once, here: else every run under PYTHONDONTWRITEBYTECODE=1 (containers, many CI
        # machines) compiles every module it imports, and a read-only env never gets faster
        "--compile-bytecode",
        "-r",
        str(target / LOCK_IN_ENV),
    ]
    if lock.has_hashes():
        args.append("--require-hashes")
    _step(args, "install the locked packages", target, logs, on_line=_counts(report))


def _counts(report: Progress) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        match = _UV_COUNT.match(line.strip())
        if match:
            report(f"{_UV_COUNTS[match.group(1)]} {match.group(2)} packages")
            if match.group(1) == "Installed":  # uv compiles next: a long step for big envs
                report("compiling bytecode")
        compiled = _UV_COMPILED.match(line.strip())
        if compiled:
            report(f"compiled {int(compiled.group(1)):,} files to bytecode")

    return on_line


def _step(
    args: list[str],
    what: str,
    cwd: Path,
    logs: list[str],
    on_line: Callable[[str], None] | None = None,
) -> UvResult:
    result = run_uv(args, cwd=cwd, on_line=on_line)
    logs.append(result.log)
    if result.returncode != 0:
        raise EnvBuildError(
            f"cannot {what}: {failure_summary(result.log)}",
            # (a run keeps the full log as its env-build.log artifact and the hint names it)
            log="\n".join(logs),
        )
    return result


def _health_check(target: Path, lock: Lock, logs: list[str]) -> None:
    names = [package.split("==")[0] for package in lock.packages()]
    python = str(target / "bin" / "python")
    problems = _check_files(python, names, logs)
    if problems:
        raise _unhealthy("; ".join(problems[:10]), logs)
    if names:
        what = f"verify the locked packages' dependencies (is {LOCK_NAME} complete?)"
        _step(["pip", "check", "--python", python], what, target, logs)


def _check_files(python: str, names: list[str], logs: list[str]) -> list[str]:
    """Problems found by the check script run with the env's own interpreter."""
    argv = [python, "-I", "-c", _HEALTH_CHECK, json.dumps(names)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _unhealthy(f"the interpreter does not run: {exc}", logs) from exc
    logs.append(f"$ health check\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        return [f"the interpreter exited with {proc.returncode}"]
    try:
        return list(json.loads(proc.stdout or "[]"))
    except ValueError:
        return [f"unexpected output: {proc.stdout[-200:]!r}"]


def _unhealthy(problem: str, logs: list[str]) -> EnvBuildError:
    return EnvBuildError(
        f"the new environment failed its health check: {problem}", log="\n".join(logs)
    )
