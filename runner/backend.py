"""The backend seam: what a backend must implement, what it inherits, and how it is found.

A backend decides where a run's entry point executes (this machine, a container, a cluster).
It never writes the tracking store and never prints: it returns facts and handles, and the
orchestrator (``runner/execution/``) records them.

A new backend subclasses ``BaseBackend`` and registers under the ``runner.backends``
entry-point group. It MUST implement:

- ``name`` and ``launch(prepared) -> RunHandle``.

It INHERITS defaults it may override:

- ``config_schema``: JSON Schema of ``-c/--backend-config`` (default: no keys allowed).
- ``builds_environment``: True when the backend installs the locked environment itself (into
  an image, say), so the host only locks it (default False: the host builds it).
- ``runs_images``: True when it can run an image-only environment (``docker_env``).
- ``queues``: True when a launched run may wait in a queue (a cluster's scheduler): the run
  stays SCHEDULED until its handle's ``status()`` first says otherwise, and ``reconcile``
  answers SCHEDULED for a job still queued (default False: RUNNING from the start).
- ``tracking``: how entry points reach their run, ``"journal"`` (a file the runner ingests;
  the host's artifacts directory must be visible to the entry point) or ``"http"`` (a
  tracking server, for runs on other machines).
- ``preflight(spec, config)``: cheap checks before a run is recorded (default: none).
- ``prepare(request) -> Prepared``: build or reuse what ``launch`` needs (default: nothing).
- ``host_addresses(config)``: where the entry points reach this host (default: loopback;
  a container backend adds its bridge's gateway).
- For runs that outlive the runner process (a container engine or a cluster keeps them):
  ``attach(ref) -> RunHandle`` re-opens a recorded run from any process (default: refused),
  and ``reconcile(refs)`` tells what became of runs whose runner process is gone (default:
  nothing is known, so the orchestrator marks them lost).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

from runner.errors import BackendError
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.envs import PreparedEnv
    from runner.execution.batch import Batch
    from runner.project.records import ProjectSpec

ENTRY_POINT_GROUP = "runner.backends"
Transport = Literal["journal", "http"]
NO_CONFIG: Mapping[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


class LogChunk(NamedTuple):
    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a backend needs to start one entry point; built by the orchestrator.

    ``command`` is the rendered shell line (values already quoted); backends run it with
    ``bash -c`` (or ``sh -c`` where bash is absent) so pipes and ``&&`` behave as in MLflow.
    ``env`` holds only the variables the run adds (RUNNER_RUN_ID, PATH of the environment, the
    tracking transport...); a local backend layers them over its own environment, a container
    backend passes only these.
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
    # of those, the local copies of runs:/ inputs → the runs:/<full-run-id>/<path> each copies,
    # so a backend whose machines cannot see this host fetches the artifact there instead
    input_sources: Mapping[str, str] = field(default_factory=dict)
    # the run's artifacts folder on this host: a backend may keep there what it needs to find
    # the run again later (a process group, a job id); RunRef.artifacts_dir is the same folder
    artifacts_dir: Path | None = None
    # set for a backend that ``batches``: the batch this run is submitted with (its backend's
    # prepare joins it, its launch takes the job id the batch's one submission gave the run)
    batch: Batch | None = None


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` made ready for ``launch``: the request and the facts to record on the
    run (``{"image_id": ...}``). Backends subclass it to carry their own state (an API client,
    an image reference), so nothing is kept inside the backend keyed by run id."""

    request: LaunchRequest
    facts: Mapping[str, str] = field(default_factory=dict)


class RunRef(NamedTuple):
    """A recorded run as a backend sees it when re-opening or reconciling it (no store access)."""

    run_id: str
    status: RunStatus
    config: Mapping[str, Any]  # the backend config the run was launched with
    artifacts_dir: Path


class ExitInfo(NamedTuple):
    """How a run's process ended: its status and, when known, exit code and reason."""

    status: RunStatus
    exit_code: int | None = None
    reason: str | None = None


# What ``reconcile`` says of one run: an ExitInfo with a terminal status (it ended: record
# it), with RUNNING (still running where the backend runs it: it stays live and re-attachable),
# with SCHEDULED (a queueing backend's job still waits: it stays SCHEDULED and re-attachable),
# or LOST (the backend knows nothing more: the orchestrator marks it FAILED, runner lost).
LOST = None
Verdict = ExitInfo | None


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
    """Where a run executes; ``BaseBackend`` gives the defaults (see the module docstring)."""

    name: str
    config_schema: Mapping[str, Any]
    builds_environment: bool
    runs_images: bool
    tracking: Transport

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None: ...

    def prepare(self, request: LaunchRequest) -> Prepared: ...

    def launch(self, prepared: Prepared) -> RunHandle: ...

    def attach(self, ref: RunRef) -> RunHandle: ...

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]: ...


class BaseBackend:
    """Defaults for every member but ``name`` and ``launch``."""

    name = "base"
    config_schema: Mapping[str, Any] = NO_CONFIG
    builds_environment = False
    runs_images = False
    queues = False
    # True: the runs one workflow pass starts on this backend (a sweep's children) come as one
    # batch (LaunchRequest.batch), which the backend submits in one go (a Slurm job array),
    # with the workflow's --max-parallel as the batch's own limit
    batches = False
    tracking: Transport = "journal"

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None:
        """Nothing to check before a run is recorded."""

    def prepare(self, request: LaunchRequest) -> Prepared:
        return Prepared(request)

    def inputs_dir(self, config: Mapping[str, Any]) -> Path | None:
        """Where the local copies of ``runs:/`` inputs go, so the entry point can read them
        (a path its machines share); None: a private temporary folder on this host."""
        return None

    def host_addresses(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Addresses of this host that the backend's entry points can connect to; a server the
        runner starts for a run (the embedded MLflow API) listens there. Default: loopback."""
        return ("127.0.0.1",)

    def launch(self, prepared: Prepared) -> RunHandle:
        raise NotImplementedError(f"backend {self.name!r} does not implement launch()")

    def attach(self, ref: RunRef) -> RunHandle:
        raise BackendError(
            f"run {ref.run_id} cannot be re-attached: backend {self.name!r} runs entry points "
            "only while their runner process lives"
        )

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        """Runs whose runner died are lost: nothing outside the runner kept them."""
        return dict.fromkeys((ref.run_id for ref in refs), LOST)


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
        raise BackendError(
            f"backend {name!r} does not implement the runner Backend protocol",
            hint="subclass runner.backend.BaseBackend and implement name and launch()",
        )
    return backend
