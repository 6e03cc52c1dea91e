"""The Docker backend: the entry point in a container of a cached, layered run image."""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.docker.args import map_docker_args
from backends.docker.build import CONFIG_SCHEMA, LABEL_MANAGED, LABEL_RUN_ID, container_options
from backends.docker.client import api_errors, bridge_gateway, connect, root_cause
from backends.docker.image import ImageBuilder
from runner.backend import (
    LOST,
    BaseBackend,
    ExitInfo,
    LaunchRequest,
    LogChunk,
    Prepared,
    RunRef,
    Verdict,
)
from runner.errors import BackendError
from runner.project.records import ProjectSpec
from runner.status import RunStatus


def _exit_info(code: int | None, cancelled: bool, oom: bool, lost: str | None) -> ExitInfo:
    if cancelled:
        return ExitInfo(RunStatus.KILLED, code, "cancelled")
    if code is None:
        return ExitInfo(RunStatus.FAILED, None, lost or "the container's exit code is unknown")
    if code == 0:
        return ExitInfo(RunStatus.FINISHED, 0)
    if oom:
        return ExitInfo(RunStatus.FAILED, code, "entry point killed: out of memory (oom_killed)")
    if code > 128 and code - 128 in signal.valid_signals():
        name = signal.Signals(code - 128).name
        return ExitInfo(RunStatus.FAILED, code, f"entry point killed by {name} (exit {code})")
    return ExitInfo(RunStatus.FAILED, code, f"entry point exited with code {code}")


class DockerRunHandle:
    """A started container: one thread pumps its attached output, one waits for its exit.

    The container is removed by the waiter only after the output stream closed, so even a
    10 ms container loses nothing (docker-py#3247); ``wait`` returns after the removal.
    """

    def __init__(self, client: Any, streamer: Any, container_id: str, output: Any) -> None:
        self._client, self._streamer, self.container_id = client, streamer, container_id
        self._queue: queue.Queue[LogChunk | None] = queue.Queue()
        self._done = threading.Event()
        self._exit = ExitInfo(RunStatus.RUNNING)
        self._cancelled = False
        self._pump_thread = _thread(self._pump, output)

    def watch(self) -> None:
        """Start waiting for the exit: called once the container has started."""
        _thread(self._watch)

    def _pump(self, output: Any) -> None:
        try:
            with contextlib.suppress(Exception):  # the daemon went away: the waiter reports it
                for out, err in output:  # demuxed frames, in the order they were written
                    if out:
                        self._queue.put(LogChunk("stdout", out))
                    if err:
                        self._queue.put(LogChunk("stderr", err))
        finally:
            self._queue.put(None)

    def _watch(self) -> None:
        code, lost = None, None
        try:
            code = self._streamer.api.wait(self.container_id)["StatusCode"]
        except Exception as exc:  # the daemon died or restarted mid-run
            lost = f"lost the Docker daemon while waiting: {root_cause(exc)}"
        self._pump_thread.join(timeout=30)
        oom = self._oom_killed()
        with contextlib.suppress(Exception):  # left behind only if the daemon is gone
            self._client.api.remove_container(self.container_id, force=True)
        self._exit = _exit_info(code, self._cancelled, oom, lost)
        for client in (self._streamer, self._client):  # nothing more to ask the daemon
            with contextlib.suppress(Exception):
                client.close()
        self._done.set()

    def _oom_killed(self) -> bool:
        try:
            state = self._client.api.inspect_container(self.container_id)["State"]
        except Exception:
            return False
        return bool(state.get("OOMKilled"))

    def logs(self) -> Iterator[LogChunk]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def wait(self, timeout: float | None = None) -> ExitInfo:
        self._done.wait(timeout)
        return self._exit

    def status(self) -> RunStatus:
        return self._exit.status

    def cancel(self, grace: float = 10.0) -> None:
        if self._done.is_set() or self._cancelled:
            return
        self._cancelled = True
        # off-thread so a signal handler calling cancel() never blocks on the daemon
        _thread(self._stop, grace)

    def _stop(self, grace: float) -> None:
        with contextlib.suppress(Exception):  # already gone: nothing to stop
            # the daemon sends SIGTERM, then SIGKILL after the grace period
            self._client.api.stop(self.container_id, timeout=math.ceil(grace))
        with contextlib.suppress(Exception):
            self._client.api.kill(self.container_id)


def _thread(target: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def start_container(
    client: Any, streamer: Any, image: str, options: Mapping[str, Any]
) -> DockerRunHandle:
    """create → attach → start: attaching first is what keeps a fast container's output."""
    container = client.containers.create(image, **options)
    try:
        output = streamer.api.attach(container.id, stream=True, demux=True)
        handle = DockerRunHandle(client, streamer, container.id, output)
        container.start()
    except BaseException:
        with contextlib.suppress(Exception):
            container.remove(force=True)
        raise
    handle.watch()
    return handle


@dataclass(frozen=True)
class DockerPrepared(Prepared):
    """The run image is built and the container options checked; ``launch`` only starts it."""

    client: Any = None
    image: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


class DockerBackend(BaseBackend):
    """Runs the entry point in a container; images are layered and reused by content."""

    name = "docker"
    config_schema: Mapping[str, Any] = CONFIG_SCHEMA
    builds_environment = True  # the lock is installed into an image layer, not a host venv
    runs_images = True

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None:
        """Refuse before a run exists: bad mounts or variables, or no daemon answering."""
        probe = LaunchRequest("preflight", "true", spec.root, {}, spec, config=config)
        container_options(probe, os.environ)
        connect(config).close()

    def host_addresses(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Loopback, and the default bridge's gateway: the address ``host-gateway`` (the
        ``host.docker.internal`` alias the run gets) names inside a container."""
        if map_docker_args(config.get("docker_args", {})).get("network_mode") == "host":
            return ("127.0.0.1",)
        return ("127.0.0.1", bridge_gateway(config))

    def prepare(self, request: LaunchRequest) -> DockerPrepared:
        # the pure checks come first: a refused mount or env var builds nothing
        options = container_options(request, os.environ)
        client = connect(request.config)
        with api_errors("preparing the image"):
            builder = ImageBuilder(client, request.config.get("build_timeout", 3600))
            facts = builder.run_image(request)
        return DockerPrepared(request, facts, client, facts["image"], options)

    def launch(self, prepared: Prepared) -> DockerRunHandle:
        if not isinstance(prepared, DockerPrepared):
            prepared = self.prepare(prepared.request)
        streamer = connect(prepared.request.config, streaming=True)
        with api_errors("starting the container"):
            return start_container(prepared.client, streamer, prepared.image, prepared.options)

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        """A container whose runner died is stopped and removed: nobody streams its output or
        ingests its journal any more. One that had already exited keeps its real exit code."""
        return reconcile_runs([ref.run_id for ref in refs])


def _managed(client: Any, run_id: str | None = None) -> list[dict[str, Any]]:
    """Labelled containers as one API call: the SDK's containers.list() inspects each one
    afterwards and raises NotFound for a container removed in between."""
    label = f"{LABEL_RUN_ID}={run_id}" if run_id else f"{LABEL_MANAGED}=true"
    return list(client.api.containers(all=True, filters={"label": label}))


def _run_id_of(container: Mapping[str, Any]) -> str | None:
    labels = container.get("Labels") or {}
    return labels.get(LABEL_RUN_ID)


def _stop_and_remove(client: Any, container_id: str, grace: float) -> None:
    with contextlib.suppress(Exception):  # it may have exited, or be removed meanwhile
        client.api.stop(container_id, timeout=math.ceil(grace))
    with contextlib.suppress(Exception):
        client.api.remove_container(container_id, force=True)


def find_container(run_id: str, client: Any = None) -> str | None:
    """The id of the container of ``run_id``, if one exists."""
    found = _managed(client or connect(), run_id)
    return str(found[0]["Id"]) if found else None


def reconcile_runs(run_ids: Sequence[str], grace: float = 5.0) -> dict[str, Verdict]:
    """What became of the containers of runs whose runner died; quiet if no daemon answers."""
    verdicts: dict[str, Verdict] = dict.fromkeys(run_ids, LOST)
    try:
        client = connect()
    except BackendError:
        return verdicts  # nothing can be running on a daemon that is down
    for run_id in sorted(run_ids):
        for container in _managed(client, run_id):
            verdicts[run_id] = _ended(container)
            _stop_and_remove(client, container["Id"], grace)
    return verdicts


def _ended(container: Mapping[str, Any]) -> Verdict:
    """The real outcome of a container that exited on its own; LOST for one still running."""
    if container.get("State") != "exited":
        return LOST
    status = str(container.get("Status", ""))  # "Exited (3) 2 seconds ago"
    code = status.partition("(")[2].partition(")")[0]
    if not code.lstrip("-").isdigit():
        return LOST
    return _exit_info(int(code), cancelled=False, oom=False, lost=None)
