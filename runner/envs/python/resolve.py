"""Resolving a Python spec to a lock with ``uv pip compile`` (pinned, with hashes)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from runner.envs.python.interpreters import Interpreter
from runner.envs.python.lock import Lock, normalize_text
from runner.envs.python.pyspec import PythonSpec
from runner.envs.python.uvcmd import neutral_cwd, run_uv
from runner.envs.python.uvfailure import failure_summary
from runner.errors import EnvBuildError

Progress = Callable[[str], None]
_RESOLVED = re.compile(r"Resolved (\d+) packages?")
# No header or "via" comments: they name temp paths and would change the lock (and the key).
_COMPILE_FLAGS = ("--no-header", "--no-annotate", "--generate-hashes")


def resolve_lock(spec: PythonSpec, interp: Interpreter, *, progress: Progress) -> Lock:
    """Pin every requirement (and its dependencies) for ``interp``, with hashes."""
    if not spec.requirements():
        return Lock("", interp.version, spec.digest())
    progress(f"resolving {len(spec.requirements())} requirements for Python {interp.version}")
    work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=neutral_cwd()))
    try:
        text = _compile(spec, interp, work, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    options = "".join(f"{option}\n" for option in spec.options)
    return Lock(normalize_text(options + text), interp.version, spec.digest())


def _compile(spec: PythonSpec, interp: Interpreter, work: Path, progress: Progress) -> str:
    lines = [*spec.options, *spec.requirements()]
    (work / "requirements.in").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["pip", "compile", "requirements.in", "-o", "lock.txt", *_COMPILE_FLAGS]
    args += ["--python", str(interp.path), "--python-version", interp.version]
    if spec.constraints:
        (work / "constraints.txt").write_text("\n".join(spec.constraints) + "\n")
        args += ["--constraint", "constraints.txt"]
    result = run_uv(args, cwd=work, on_line=lambda line: _report_resolved(line, progress))
    if result.returncode != 0:
        raise EnvBuildError(
            f"cannot resolve the dependencies of {_origin(spec)} for Python "
            f"{interp.version}: {failure_summary(result.log)}",
            hint="fix the pins in the env file",
            log=result.log,
        )
    return (work / "lock.txt").read_text(encoding="utf-8")


def _report_resolved(line: str, progress: Progress) -> None:
    match = _RESOLVED.search(line)
    if match:
        progress(f"resolved {match.group(1)} packages")


def _origin(spec: PythonSpec) -> str:
    return {"python_env": "python_env.yaml", "conda": "the conda env file"}.get(
        spec.source, "the project"
    )
