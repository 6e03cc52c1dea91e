"""The run lifecycle: record, build the environment, launch, stream, finalise exactly once."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from runner.backend import ExitInfo, LaunchRequest, LogChunk, RunHandle, Transport
from runner.console import TerminalRelay
from runner.display import SecretMask
from runner.errors import BackendError, EnvBuildError, RunnerError, StoreError
from runner.execution.diskspace import DiskReserve, OutputLog, is_disk_full
from runner.execution.ingest import (
    WARNING_TAG,
    JournalReader,
    ingest,
    run_variables,
    tracking_pythonpath,
)
from runner.execution.interrupts import Cancelled, deferred, raise_pending
from runner.execution.plan import Plan
from runner.home import run_artifacts_dir
from runner.procinfo import process_start_time
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.backend import Backend
    from runner.envs import PreparedEnv
    from runner.execution.batch import Batch
    from runner.execution.upload import LogShipper
    from runner.project.records import ProjectSpec
    from runner.store import NewRun, Store
    from runner.store.rest import RestStore

LogSink = Callable[[LogChunk], None]
Progress = Callable[[str], None]
HEARTBEAT_SECONDS = 15.0
INGEST_SECONDS = 2.5
LOG_FILE = "output.log"
CANCEL_WAIT_SECONDS = 30.0
# e.g. a working copy git could not read, an unknown key in the MLproject
SOURCE_WARNING_TAG = "runner.source_warning"
FINISH_RETRY_SECONDS = (0.05, 0.25, 1.0)  # pauses between attempts at the final write


def submit(plan: Plan, store: Store, tags: Mapping[str, str] | None = None) -> str:
    """Create the run record (SCHEDULED) and keep the plan and diff as artifacts."""
    run_id = store.create_run(new_run_of(plan, tags or {}))
    artifacts = run_artifacts_dir(run_id)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "plan.json").write_text(plan.to_json())
    if plan.diff:
        (artifacts / "git-diff.patch").write_bytes(plan.diff)
    return run_id


def new_run_of(plan: Plan, tags: Mapping[str, str]) -> NewRun:
    """The record a run of ``plan`` starts with, owned by this process, ``tags`` added."""
    from runner.store import NewRun

    warnings = {SOURCE_WARNING_TAG: "; ".join(plan.warnings)} if plan.warnings else {}
    return NewRun(
        experiment=plan.experiment,
        entry_point=plan.entry_point,
        command=plan.recorded_command,
        backend=plan.backend,
        parameters=plan.parameters,
        source=plan.source,
        environment={"manager": plan.env_manager},
        run_name=plan.run_name,
        tags={**warnings, **tags},
        parent_run_id=plan.parent_run_id,
        runner_pid=os.getpid(),
        runner_host=socket.gethostname(),
        runner_start=process_start_time(os.getpid()),
    )


def execute(run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress) -> ExitInfo:
    """Run a submitted plan to a terminal status; every path finalises the record once.

    The output reaches ``sink`` through a bounded relay (a slow terminal never holds the run
    up), and a small disk reserve is freed if the disk fills, so the end is still recorded."""
    relay = TerminalRelay(sink, run_artifacts_dir(run_id) / LOG_FILE)
    reserve = DiskReserve(run_id)
    try:
        return _run_to_end(run_id, plan, store, relay, progress, reserve)
    finally:
        reserve.release()
        _remove_paths(plan.cleanup_paths)
        _show_rest(relay)


def _run_to_end(
    run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress, reserve: DiskReserve
) -> ExitInfo:
    try:
        raise_pending()  # a signal held back since submit: the run ends before anything starts
        info = _execute(run_id, plan, store, sink, progress, reserve)
    except (KeyboardInterrupt, Cancelled) as exc:
        _finalise(store, run_id, ExitInfo(RunStatus.KILLED, None, _cancel_reason(exc)), reserve)
        raise
    except BaseException as exc:
        error = _user_error(run_id, exc)
        reason = error.message if isinstance(error, RunnerError) else f"internal error: {exc!r}"
        _finalise(store, run_id, ExitInfo(RunStatus.FAILED, None, reason), reserve)
        if error is exc:
            raise
        raise error from exc
    _finalise(store, run_id, info, reserve)
    return info


def _user_error(run_id: str, exc: BaseException) -> BaseException:
    """What the user is told: a runner error as it is, a full disk as one; else ``exc``."""
    if isinstance(exc, EnvBuildError) and exc.log:
        saved = _save_build_log(run_id, exc)
        if saved is not None:  # say where it is
            where = f"the full log is the run's env-build.log: {saved}"
            hint = f"{exc.hint}; {where}" if exc.hint else where
            return EnvBuildError(exc.message, hint=hint, log=exc.log)
    elif isinstance(exc, OSError) and is_disk_full(exc):
        where = exc.filename or "a file of the run"
        return RunnerError(f"disk full while writing {where}", hint="free some space there")
    return exc


def _show_rest(relay: TerminalRelay) -> None:
    """The terminal may lag behind the run; a ^C while it catches up skips the rest (the run
    has been recorded and output.log has all of it)."""
    with suppress(KeyboardInterrupt, Cancelled):
        relay.close()


def _cancel_reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C) before the entry point finished"
    return "cancelled before the entry point finished"


def _finalise(store: Store, run_id: str, info: ExitInfo, reserve: DiskReserve) -> None:
    """Record how the run ended. A signal meanwhile is dropped: it would only cut the write
    short, and the run it asks to stop has already ended."""
    with deferred():
        _record_end(store, run_id, info, reserve)
    _drop_pending()


def _record_end(store: Store, run_id: str, info: ExitInfo, reserve: DiskReserve) -> None:
    # a locked or momentarily full database must not leave a run RUNNING that has ended
    for delay in (*FINISH_RETRY_SECONDS, None):
        try:
            store.finish_run(run_id, info.status, info.exit_code, info.reason)
            return
        except StoreError as exc:
            if delay is None:
                raise _unrecorded(run_id, info, exc) from exc
            reserve.release()  # if the disk is full, this makes room for the next try
            time.sleep(delay)


def _unrecorded(run_id: str, info: ExitInfo, exc: StoreError) -> StoreError:
    detail = f" ({info.reason})" if info.reason else ""
    return StoreError(
        f"run {run_id} ended {info.status.value}{detail} but its final status could not be "
        f"recorded: {exc.message}",
        hint="check that the tracking store is writable (disk space, locks); the run stays "
        "RUNNING until a later runner command notices that this runner is gone",
    )


def _drop_pending() -> None:
    with suppress(KeyboardInterrupt, Cancelled):
        raise_pending()


def _execute(
    run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress, reserve: DiskReserve
) -> ExitInfo:
    from runner.backend import load_backend

    backend = load_backend(plan.backend)
    start = StartWatch(store, run_id)
    if not queues(backend):
        start.now()  # RUNNING from here, as the environment is built for it
    journal = JournalReader(run_id)
    try:
        # the watchdog beats from here: an environment build can take longer than a beat
        with _watchdog(store, run_id, journal, start):
            return _prepare_and_launch(run_id, plan, store, backend, start, sink, progress)
    finally:
        _ingest_last(store, run_id, journal, progress, reserve)
        _upload_outputs(store, run_id, backend, progress)


def _ingest_last(
    store: Store, run_id: str, journal: JournalReader, progress: Progress, reserve: DiskReserve
) -> None:
    """After the watchdog stopped (one reader at a time). Nothing here changes how the run
    ended: the exit code decides, never a logging error."""
    try:
        _ingest_with_room(store, run_id, journal, reserve)
    except Exception as exc:
        what = exc.message if isinstance(exc, RunnerError) else repr(exc)
        progress(f"warning: what the entry point logged last could not be recorded: {what}")
    if journal.skipped:
        count = (
            f"{journal.skipped} logged records were"
            if journal.skipped > 1
            else "a logged record was"
        )
        progress(f"warning: {count} not recorded (tag {WARNING_TAG}): {journal.first_reason}")


def _upload_outputs(store: Store, run_id: str, backend: Backend, progress: Progress) -> None:
    """With a tracking server for a store, the run's files and output log go there too, so
    another machine sees them; best effort, as how the run ended is already decided. An
    entry point logging over HTTP has sent its files itself: only the log is left to send."""
    if not _is_server(store):
        return
    from runner.execution.upload import upload_run_outputs

    with_files = backend.tracking != "http"
    try:
        with _beating(store, run_id):
            folder = run_artifacts_dir(run_id)
            upload_run_outputs(store, run_id, folder, with_files, progress)
    except Exception as exc:  # what upload_run_outputs did not foresee: still not the run's end
        progress(f"warning: the run's files could not be sent to the tracking server: {exc!r}")
    except (KeyboardInterrupt, Cancelled):  # how the run ended is decided: a ^C skips the rest
        progress("warning: sending the run's files to the tracking server was interrupted")


def _beating(store: Store, run_id: str) -> AbstractContextManager[None]:
    """Heartbeats while a long upload goes on (the watchdog has stopped), so that another
    host never takes this runner for a dead one and ends the run as lost meanwhile."""

    def beat() -> None:
        with suppress(Exception):  # a missed beat is retried on the next one
            store.heartbeat(run_id)

    return _every(HEARTBEAT_SECONDS, beat, "runner-upload-heartbeat")


def _ingest_with_room(
    store: Store, run_id: str, journal: JournalReader, reserve: DiskReserve
) -> None:
    try:
        ingest(store, run_id, journal)
    except Exception:
        if not reserve.release():  # a full disk: the reserve makes room for one more try
            raise
        ingest(store, run_id, journal)


def queues(backend: Backend) -> bool:
    """The backend's launched runs may wait in a queue (see ``BaseBackend.queues``)."""
    return bool(getattr(backend, "queues", False))


class StartWatch:
    """Records RUNNING once: at once for most backends; for a queueing one, when the launched
    handle first reports anything but SCHEDULED (the watchdog asks on every tick)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._handle: RunHandle | None = None
        self._started = False
        self._lock = threading.Lock()

    def now(self) -> None:
        with self._lock:
            if not self._started:
                self._store.start_run(self._run_id)
                self._started = True

    def follow(self, handle: RunHandle) -> None:
        """Watch ``handle`` from now on; it may already have started."""
        self._handle = handle
        self.check()

    def check(self) -> None:
        handle = self._handle
        if handle is not None and not self._started and handle.status() is not RunStatus.SCHEDULED:
            self.now()


def _prepare_and_launch(
    run_id: str,
    plan: Plan,
    store: Store,
    backend: Backend,
    start: StartWatch,
    sink: LogSink,
    progress: Progress,
) -> ExitInfo:
    from runner.envs.prepare import lease_env, prepare_env
    from runner.project.spec import load_spec

    spec = plan.spec or load_spec(plan.project_dir)
    # a backend that installs the lock itself (a container image) needs no local env
    build_here = not backend.builds_environment
    environment = prepare_env(
        spec, plan.env_manager, progress=progress, build=build_here, python_match=plan.python_match
    )
    for warning in environment.warnings:
        progress(f"warning: {warning}")
    with (
        lease_env(environment, run_id=run_id),
        _mlflow_api(run_id, plan, store, environment, backend, progress) as mlflow_env,
    ):
        request = _launch_request(run_id, plan, spec, environment, backend.tracking, mlflow_env)
        prepared = backend.prepare(request)
        store.update_run(run_id, environment=_environment_record(environment, prepared.facts))
        with deferred():
            handle = backend.launch(prepared)
        start.follow(handle)
        started = f"run {run_id} ({plan.entry_point}) started: {plan.recorded_command}"
        _announce_start(progress, started)
        from runner.execution.detach import mark_launched

        mark_launched(run_id)  # after that line, which a detaching CLI shows before it returns
        info = _follow(handle, run_id, sink, SecretMask(plan.secrets))
        with suppress(StoreError):  # how the run ended decides, never this late write
            start.check()  # a job that ran between two ticks still records that it started
        return info


def _mlflow_api(
    run_id: str,
    plan: Plan,
    store: Store,
    environment: PreparedEnv,
    backend: Backend,
    progress: Progress,
) -> AbstractContextManager[dict[str, str]]:
    """MLflow's variables for the entry point (and, for a database store, the embedded MLflow
    API while the run lasts); nothing is imported for runs that need neither."""
    from runner.execution.mlflow_api import has_mlflow, is_server, mlflow_variables
    from runner.home import tracking_uri

    wanted = plan.mlflow_api or has_mlflow(environment)
    if not wanted and not is_server(tracking_uri()):
        return nullcontext({})
    addresses = getattr(backend, "host_addresses", None) or (lambda config: ("127.0.0.1",))
    return mlflow_variables(
        run_id,
        plan.experiment,
        store,
        wanted=wanted,
        addresses=lambda: addresses(plan.backend_config),
        progress=progress,
    )


def _announce_start(progress: Progress, message: str) -> None:
    """Said only now, once the entry point runs (never before its environment is ready). A
    view that animates progress (``ProgressView.started``) hands the terminal over here."""
    started = getattr(progress, "started", None)
    (started if callable(started) else progress)(message)


def _environment_record(environment: PreparedEnv, facts: Mapping[str, str]) -> dict[str, Any]:
    """What the run records about its environment; build warnings are kept with it."""
    record = {**environment.record(), **facts}
    if environment.warnings:
        record["warnings"] = list(environment.warnings)
    return record


def _launch_request(
    run_id: str,
    plan: Plan,
    spec: ProjectSpec,
    environment: PreparedEnv,
    transport: Transport,
    mlflow_env: Mapping[str, str],
) -> LaunchRequest:
    env = {
        **run_variables(run_id, plan.experiment, transport),
        **mlflow_env,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [tracking_pythonpath(), os.environ.get("PYTHONPATH")])
        ),
        **environment.env_vars(os.environ.get("PATH", "")),
    }
    return LaunchRequest(
        run_id=run_id,
        command=plan.command,
        work_dir=plan.project_dir,
        env=env,
        spec=spec,
        environment=environment,
        config=plan.backend_config,
        run_name=plan.run_name or "",
        input_paths=plan.input_paths,
        input_sources=plan.input_sources,
        artifacts_dir=run_artifacts_dir(run_id),
        batch=_batch(plan),
    )


def _batch(plan: Plan) -> Batch | None:
    from runner.execution.batch import Batch

    return Batch.parse(plan.batch) if plan.batch else None


def _follow(handle: RunHandle, run_id: str, sink: LogSink, mask: SecretMask) -> ExitInfo:
    """Stream output to the sink and the log artifact; on ^C, SIGTERM or any error, stop the
    handle: a run recorded KILLED or FAILED must not go on running."""
    try:
        raise_pending()
        log = _stream(handle, run_artifacts_dir(run_id) / LOG_FILE, sink, mask)
        return _log_kept(_ended(handle.wait()), log)
    except BaseException:
        _stop(handle)
        raise


def _stream(handle: RunHandle, log_path: Path, sink: LogSink, mask: SecretMask) -> OutputLog:
    log = OutputLog(log_path)
    try:
        for chunk in handle.logs():
            _show(_masked(chunk, mask), log, sink)
    finally:
        for stream in ("stdout", "stderr"):  # what a mask held back was no secret
            _show(LogChunk(stream, mask.flush(stream)), log, sink)
        log.close()
    return log


def _masked(chunk: LogChunk, mask: SecretMask) -> LogChunk:
    return LogChunk(chunk.stream, mask.feed(chunk.stream, chunk.data)) if mask else chunk


def _show(chunk: LogChunk, log: OutputLog, sink: LogSink) -> None:
    if chunk.data:
        log.write(chunk.data)
        sink(chunk)


def _log_kept(info: ExitInfo, log: OutputLog) -> ExitInfo:
    """A run whose output.log could not be written to the end failed, whatever its exit code."""
    if not log.full:
        return info
    ended = info.reason or f"entry point exited with code {info.exit_code}"
    return ExitInfo(
        RunStatus.FAILED, info.exit_code, f"disk full while writing {LOG_FILE} ({ended})"
    )


def _ended(info: ExitInfo) -> ExitInfo:
    """wait() without a timeout returns how the run ended; anything else is a backend bug."""
    if not info.status.is_terminal:
        raise BackendError(
            f"the backend's wait() returned {info.status.value} instead of how the run ended"
        )
    return info


def _stop(handle: RunHandle) -> None:
    """Cancel and wait; a second ^C must not cut this short and orphan the container."""
    with deferred():
        handle.cancel()
        handle.wait(timeout=CANCEL_WAIT_SECONDS)
    _drop_pending()


def _remove_paths(paths: tuple[Path, ...]) -> None:
    """Temp checkouts of this run go once it ends; failure to delete must not fail the run."""
    import shutil

    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _save_build_log(run_id: str, exc: EnvBuildError) -> Path | None:
    """Keep a failed build's full log as the run's env-build.log; its path, if it was written."""
    path = run_artifacts_dir(run_id) / "env-build.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(exc.log)
    except OSError:  # a full disk: the failure reason is recorded all the same
        return None
    return path


def _watchdog(
    store: Store, run_id: str, journal: JournalReader, start: StartWatch
) -> AbstractContextManager[None]:
    """While the entry point runs: move its logged metrics into the store every few seconds,
    record RUNNING once a queued job starts, and beat every HEARTBEAT_SECONDS so another host
    can tell a live runner from a dead one (a queued run's runner beats too)."""
    ticks = 0
    shipper = _log_shipper(store, run_id)

    def watch() -> None:
        nonlocal ticks
        ticks += 1
        try:
            start.check()
            ingest(store, run_id, journal)
            if ticks % round(HEARTBEAT_SECONDS / INGEST_SECONDS) == 0:
                store.heartbeat(run_id)
            if shipper is not None:
                shipper.ship()
        except Exception:  # a missed beat or batch is retried on the next tick
            pass

    return _every(INGEST_SECONDS, watch, "runner-watchdog")


def _is_server(store: Store) -> TypeGuard[RestStore]:
    """Whether the store is a tracking server's REST client, without importing that module
    (and its HTTP stack) for every run on a database store: unimported, it cannot be one."""
    rest = sys.modules.get("runner.store.rest")
    return rest is not None and isinstance(store, rest.RestStore)


def _log_shipper(store: Store, run_id: str) -> LogShipper | None:
    """With a tracking server for a store, the log goes there as it grows (see LogShipper)."""
    if not _is_server(store):
        return None
    from runner.execution.upload import LogShipper

    return LogShipper(store, run_id, run_artifacts_dir(run_id) / LOG_FILE)


@contextmanager
def _every(seconds: float, tick: Callable[[], None], name: str) -> Iterator[None]:
    """``tick`` every ``seconds`` on a thread of its own while the block runs; the block's
    end waits for a tick under way (one reader of the journal at a time)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            tick()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
