"""Solving a conda spec with py-rattler (in a worker process), its ``pip:`` section with uv."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from runner.envs.base import Progress
from runner.envs.conda.channels import channel_urls, redact, redact_text
from runner.envs.conda.envfile import CondaSpec
from runner.envs.conda.lockdata import CondaLock, CondaPackage, PipPackage
from runner.errors import EnvBuildError


def conda_home() -> Path:
    """Shared conda state: the package cache and the repodata cache (under RUNNER_HOME)."""
    from runner.home import runner_home

    return runner_home() / "conda"


def current_subdir() -> str:
    """This machine's conda subdir (linux-64, osx-arm64, ...), from sysconfig (no rattler)."""
    from runner.envs.digest import platform_tag

    system, _, machine = platform_tag().partition("-")
    if system.startswith("macosx"):
        system, machine = "osx", platform_tag().rsplit("-", 1)[-1]
    arch = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64"}
    return f"{system}-{arch.get(machine, machine)}"


def solve_conda(spec: CondaSpec, progress: Progress) -> CondaLock:
    """Every package of ``spec`` for this platform, then the ``pip:`` section pinned for its
    python: the lock that is hashed, recorded and installed."""
    urls = channel_urls(spec.channels, spec.root)
    progress(f"solving {len(spec.specs)} conda specs from {', '.join(map(redact, urls))}")
    request = {
        "channels": urls,
        "specs": list(spec.specs),
        "root": str(spec.root),
        "alias": _alias(),
        "repodata_cache": str(conda_home() / "repodata"),
    }
    answer = run_worker("solve", request)
    if not answer["ok"]:
        raise _solve_error(spec, answer["kind"], answer["message"])
    packages = tuple(_package(item) for item in answer["packages"])
    lock = CondaLock(current_subdir(), tuple(redact(u) for u in urls), packages)
    progress(f"solved {len(lock.conda)} conda packages")
    if not spec.pip:
        return lock
    return CondaLock(lock.platform, lock.channels, lock.conda, pin_pip(spec, lock, progress))


def _package(item: dict[str, Any]) -> CondaPackage:
    return CondaPackage(**{**item, "depends": tuple(item["depends"])})


def _solve_error(spec: CondaSpec, kind: str, message: str) -> EnvBuildError:
    if kind == "unsatisfiable":
        return unsatisfiable(spec, message)
    if kind == "channel":
        return EnvBuildError(
            f"cannot read the conda channels of {spec.origin}: {_first_lines(message)}",
            hint="check the channels (names, URLs or file:// paths) and the network",
        )
    if kind == "spec":
        return EnvBuildError(f"{spec.origin}: invalid conda dependency: {message}")
    return EnvBuildError(f"cannot lock the conda environment of {spec.origin}: {message}")


def run_worker(op: str, request: dict[str, Any]) -> dict[str, Any]:
    """One rattler call in the worker process (see worker.py: why); its JSON answer."""
    answer = _worker().call({**request, "op": op})
    if "message" in answer:
        answer["message"] = redact_text(str(answer["message"]))
    return answer


class _Worker:
    """The worker child, started on first use and kept for the command's other calls."""

    def __init__(self) -> None:
        argv = [sys.executable, "-m", "runner.envs.conda.worker"]
        # a file, never a pipe (a chatty child would block on it); open as long as the child
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        atexit.register(self.close)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            return dict(json.loads(self.proc.stdout.readline()))
        except (OSError, ValueError):
            raise self._died(str(request.get("op"))) from None

    def _died(self, op: str) -> EnvBuildError:
        _WORKERS.clear()
        self.proc.kill()
        self.proc.wait()
        self.stderr.seek(0)
        err = self.stderr.read().decode("utf-8", errors="replace")
        tail = redact_text("\n".join(err.strip().splitlines()[-10:]))
        return EnvBuildError(
            f"the conda {op} failed (worker exit {self.proc.returncode}):\n{tail}",
            hint="py-rattler (the `py-rattler` package) must be installed with runner",
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.proc.communicate(timeout=10)  # stdin closed: the worker leaves at once
        self.stderr.close()


_WORKERS: list[_Worker] = []


def _worker() -> _Worker:
    if not _WORKERS or _WORKERS[0].proc.poll() is not None:
        _WORKERS[:] = [_Worker()]
    return _WORKERS[0]


def _alias() -> dict[str, str]:
    """``RUNNER_CONDA_CHANNEL_ALIAS``: where channel names point (an air-gapped mirror)."""
    alias = os.environ.get("RUNNER_CONDA_CHANNEL_ALIAS")
    return {"channel_alias": alias.rstrip("/") + "/"} if alias else {}


def unsatisfiable(spec: CondaSpec, detail: str) -> EnvBuildError:
    """The solver's explanation, with the specs that were asked for."""
    asked = ", ".join(spec.specs)
    return EnvBuildError(
        f"cannot solve the conda environment of {spec.origin} ({asked}):\n{detail.strip()}",
        hint=f"change the unsatisfiable specs in {spec.origin}, or add a channel that has them",
    )


def _first_lines(text: str, count: int = 3) -> str:
    return "\n".join(text.strip().splitlines()[:count])


def pin_pip(spec: CondaSpec, lock: CondaLock, progress: Progress) -> tuple[PipPackage, ...]:
    """The ``pip:`` section resolved for the env's python: one file (URL, sha256) per package."""
    from runner.envs.conda.pippin import resolve_pip

    python = lock.python()
    if python is None:
        raise EnvBuildError(
            f"{spec.origin} has a pip section but its conda packages include no python",
            hint="add python (e.g. python=3.11) to the dependencies",
        )
    return resolve_pip(spec, python, progress)
