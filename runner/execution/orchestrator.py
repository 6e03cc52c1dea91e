"""The run lifecycle: record, build the environment, launch, stream, finalise exactly once."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.backend import ExitInfo, LaunchRequest, LogChunk, RunHandle, Transport
from runner.errors import BackendError, EnvBuildError, RunnerError, StoreError
from runner.execution.ingest import JournalReader, ingest, run_variables, tracking_pythonpath
from runner.execution.interrupts import Cancelled, deferred, raise_pending
from runner.execution.plan import Plan
from runner.home import run_artifacts_dir
from runner.procinfo import process_start_time
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.envs import PreparedEnv
    from runner.project.records import ProjectSpec
    from runner.store import Store

LogSink = Callable[[LogChunk], None]
Progress = Callable[[str], None]
HEARTBEAT_SECONDS = 15.0
INGEST_SECONDS = 2.5
LOG_FILE = "output.log"
CANCEL_WAIT_SECONDS = 30.0
FINISH_RETRY_SECONDS = (0.05, 0.25, 1.0)  # pauses between attempts at the final write


def submit(plan: Plan, store: Store) -> str:
    """Create the run record (SCHEDULED) and keep the plan and diff as artifacts."""
    from runner.store import NewRun

    run_id = store.create_run(
        NewRun(
            experiment=plan.experiment,
            entry_point=plan.entry_point,
            command=plan.command,
            backend=plan.backend,
            parameters=plan.parameters,
            source=plan.source,
            environment={"manager": plan.env_manager},
            run_name=plan.run_name,
            parent_run_id=plan.parent_run_id,
            runner_pid=os.getpid(),
            runner_host=socket.gethostname(),
            runner_start=process_start_time(os.getpid()),
        )
    )
    artifacts = run_artifacts_dir(run_id)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "plan.json").write_text(plan.to_json())
    if plan.diff:
        (artifacts / "git-diff.patch").write_bytes(plan.diff)
    return run_id


def execute(run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress) -> ExitInfo:
    """Run a submitted plan to a terminal status; every path finalises the record once."""
    try:
        raise_pending()  # a signal held back since submit: the run ends before anything starts
        info = _execute(run_id, plan, store, sink, progress)
    except (KeyboardInterrupt, Cancelled) as exc:
        _finalise(store, run_id, ExitInfo(RunStatus.KILLED, None, _cancel_reason(exc)))
        raise
    except RunnerError as exc:
        _save_build_log(run_id, exc)
        _finalise(store, run_id, ExitInfo(RunStatus.FAILED, None, exc.message))
        raise
    except BaseException as exc:
        _finalise(store, run_id, ExitInfo(RunStatus.FAILED, None, f"internal error: {exc!r}"))
        raise
    finally:
        _remove_paths(plan.cleanup_paths)
    _finalise(store, run_id, info)
    return info


def _cancel_reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C) before the entry point finished"
    return "cancelled before the entry point finished"


def _finalise(store: Store, run_id: str, info: ExitInfo) -> None:
    """Record how the run ended. A signal meanwhile is dropped: it would only cut the write
    short, and the run it asks to stop has already ended."""
    with deferred():
        _record_end(store, run_id, info)
    _drop_pending()


def _record_end(store: Store, run_id: str, info: ExitInfo) -> None:
    # a locked or momentarily full database must not leave a run RUNNING that has ended
    for delay in (*FINISH_RETRY_SECONDS, None):
        try:
            store.finish_run(run_id, info.status, info.exit_code, info.reason)
            return
        except StoreError as exc:
            if delay is None:
                raise _unrecorded(run_id, info, exc) from exc
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


def _execute(run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress) -> ExitInfo:
    store.start_run(run_id)
    journal = JournalReader(run_id)
    try:
        # the watchdog beats from here: an environment build can take longer than a beat
        with _watchdog(store, run_id, journal):
            return _prepare_and_launch(run_id, plan, store, sink, progress)
    finally:
        _ingest_last(store, run_id, journal, progress)


def _ingest_last(store: Store, run_id: str, journal: JournalReader, progress: Progress) -> None:
    """After the watchdog stopped (one reader at a time); a store error here must not change
    how the run ended."""
    try:
        ingest(store, run_id, journal)
    except RunnerError as exc:
        progress(f"warning: what the entry point logged last could not be recorded: {exc.message}")


def _prepare_and_launch(
    run_id: str, plan: Plan, store: Store, sink: LogSink, progress: Progress
) -> ExitInfo:
    from runner.backend import load_backend
    from runner.envs.prepare import lease_env, prepare_env
    from runner.project.spec import load_spec

    spec = plan.spec or load_spec(plan.project_dir)
    backend = load_backend(plan.backend)
    # a backend that installs the lock itself (a container image) needs no local env
    build_here = not backend.builds_environment
    environment = prepare_env(spec, plan.env_manager, progress=progress, build=build_here)
    for warning in environment.warnings:
        progress(f"warning: {warning}")
    with lease_env(environment, run_id=run_id):
        request = _launch_request(run_id, plan, spec, environment, backend.tracking)
        prepared = backend.prepare(request)
        store.update_run(run_id, environment=_environment_record(environment, prepared.facts))
        with deferred():
            handle = backend.launch(prepared)
        return _follow(handle, run_id, sink)


def _environment_record(environment: PreparedEnv, facts: Mapping[str, str]) -> dict[str, Any]:
    """What the run records about its environment; build warnings are kept with it."""
    record = {**environment.record(), **facts}
    if environment.warnings:
        record["warnings"] = list(environment.warnings)
    return record


def _launch_request(
    run_id: str, plan: Plan, spec: ProjectSpec, environment: PreparedEnv, transport: Transport
) -> LaunchRequest:
    env = {
        **run_variables(run_id, plan.experiment, transport),
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
        artifacts_dir=run_artifacts_dir(run_id),
    )


def _follow(handle: RunHandle, run_id: str, sink: LogSink) -> ExitInfo:
    """Stream output to the sink and the log artifact; on ^C, SIGTERM or any error, stop the
    handle: a run recorded KILLED or FAILED must not go on running."""
    try:
        raise_pending()
        _stream(handle, run_artifacts_dir(run_id) / LOG_FILE, sink)
        return _ended(handle.wait())
    except BaseException:
        _stop(handle)
        raise


def _stream(handle: RunHandle, log_path: Path, sink: LogSink) -> None:
    with open(log_path, "ab") as log:
        for chunk in handle.logs():
            log.write(chunk.data)
            log.flush()
            sink(chunk)


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


def _save_build_log(run_id: str, exc: RunnerError) -> None:
    if isinstance(exc, EnvBuildError) and exc.log:
        path = run_artifacts_dir(run_id) / "env-build.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(exc.log)


@contextmanager
def _watchdog(store: Store, run_id: str, journal: JournalReader) -> Iterator[None]:
    """While the entry point runs: move its logged metrics into the store every few seconds,
    and beat every HEARTBEAT_SECONDS so another host can tell a live runner from a dead one."""
    stop = threading.Event()

    def watch() -> None:
        ticks = 0
        while not stop.wait(INGEST_SECONDS):
            ticks += 1
            try:
                ingest(store, run_id, journal)
                if ticks % round(HEARTBEAT_SECONDS / INGEST_SECONDS) == 0:
                    store.heartbeat(run_id)
            except RunnerError:  # a missed beat or batch is retried on the next tick
                pass

    thread = threading.Thread(target=watch, name="runner-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
