"""The Backend protocol, the launch request, run handles and the entry-point registry."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from runner.errors import BackendError
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.envs import PreparedEnv
    from runner.project.records import ProjectSpec

ENTRY_POINT_GROUP = "runner.backends"


@dataclass(frozen=True, slots=True)
class LogChunk:
    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a backend needs to start one entry point; built by the orchestrator.

    ``command`` is the rendered shell line (values already quoted); backends run it with
    ``bash -c`` (or ``sh -c`` where bash is absent) so pipes and ``&&`` behave as in MLflow.
    ``env`` holds only the variables the run adds (RUNNER_RUN_ID, PATH of the environment...);
    a local backend layers them over its own environment, a container backend passes only these.
    """

    run_id: str
    command: str
    work_dir: Path
    env: Mapping[str, str]
    spec: ProjectSpec
    environment: PreparedEnv | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    run_name: str = ""
    # host paths the command names through `path` parameters: a container backend mounts them
    # read-only at the same path, so the rendered command works unchanged inside
    input_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExitInfo:
    """How a run's process ended: its status and, when known, exit code and reason."""

    status: RunStatus
    exit_code: int | None = None
    reason: str | None = None


@runtime_checkable
class RunHandle(Protocol):
    """A launched run: the orchestrator streams ``logs`` then calls ``wait`` once.

    - ``logs()`` yields output chunks until the process's streams close.
    - ``wait(timeout)`` blocks until the run ends (or ``timeout`` seconds pass, returning
      an ``ExitInfo`` with a non-terminal status).
    - ``status()`` never blocks.
    - ``cancel(grace)`` asks the run to stop, kills it after ``grace`` seconds; idempotent,
      harmless after the run has ended. A cancelled run ends KILLED.
    """

    def logs(self) -> Iterator[LogChunk]: ...

    def wait(self, timeout: float | None = None) -> ExitInfo: ...

    def status(self) -> RunStatus: ...

    def cancel(self, grace: float = 10.0) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """Where a run executes. Backends never write to the store and never print.

    ``prepare`` builds or reuses what the backend needs (an image, say) and returns facts to
    record on the run (``{"image_id": ...}``); ``launch`` starts the entry point. Both raise
    ``runner.errors`` types. ``config_schema`` is a JSON Schema for ``-c/--backend-config``.

    A backend that sets ``builds_environment = True`` gets the environment locked but not
    built on the host (``LaunchRequest.environment`` has the lock and key, no prefix).

    A backend may also define ``preflight(spec, config) -> None``: cheap checks (is the daemon
    reachable, are the host variables set) that raise ``BackendError`` before a run is recorded.
    """

    name: str
    config_schema: Mapping[str, Any]

    def prepare(self, request: LaunchRequest) -> Mapping[str, str]: ...

    def launch(self, request: LaunchRequest) -> RunHandle: ...


@functools.cache
def available_backends() -> dict[str, str]:
    """Map backend name → "module:attribute" for the ``runner.backends`` entry-point group."""
    from runner.plugins import entry_points_of

    return entry_points_of(ENTRY_POINT_GROUP)


def load_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``; unknown names list the others."""
    found = available_backends()
    if name not in found:
        names = ", ".join(sorted(found)) or "(none installed)"
        raise BackendError(
            f"unknown backend {name!r}; available backends: {names}",
            hint="backends register under the 'runner.backends' entry-point group",
        )
    from runner.plugins import load_object

    try:
        factory = load_object(found[name])
    except Exception as exc:  # a broken plugin must not crash the CLI with a traceback
        raise BackendError(f"backend {name!r} failed to load: {exc}") from exc
    backend = factory()
    if not isinstance(backend, Backend):
        raise BackendError(f"backend {name!r} does not implement the runner Backend protocol")
    return backend
