"""A submitted Job followed by watch: its status, every attempt's logs, cancel with propagation.

Two watch threads (the Job by name, its pods by the run-id label) list first, then watch from
the list's resourceVersion; a watch that expires or drops resumes from the last version seen,
and a 410 (history compacted) lists again. Nothing polls: a pod that cannot start is looked
at again by one timer at its ``pending_timeout``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.kubernetes.manifest import CONTAINER, LABEL_RUN_ID
from backends.kubernetes.status import (
    attempt_order,
    epoch,
    job_outcome,
    pending_problem,
    started,
)
from backends.kubernetes.watch import follow
from runner.backend import ExitInfo, LogChunk
from runner.status import RunStatus

END_WAIT_SECONDS = 30.0  # for the last log lines and for pods to go after a cancel


@dataclass(frozen=True)
class JobRef:
    api: Any  # kubernetes.client.ApiClient
    namespace: str
    name: str
    run_id: str
    artifacts_dir: Path | None
    pending_timeout: float


def attempt_log(artifacts_dir: Path, attempt: int) -> Path:
    return artifacts_dir / f"output.attempt-{attempt}.log"


class JobHandle:
    """Follows one Job; ``logs`` ends when the Job ended and every attempt's log is read."""

    def __init__(self, ref: JobRef) -> None:
        from kubernetes import client

        self.ref = ref
        self.batch, self.core = client.BatchV1Api(ref.api), client.CoreV1Api(ref.api)
        self._queue: queue.Queue[LogChunk | None] = queue.Queue()
        self._done = threading.Event()  # the outcome is known: the watches stop
        self._finished = threading.Event()  # ...and the last log line was read
        self._lock = threading.Lock()
        self._exit = ExitInfo(RunStatus.SCHEDULED)
        self._pods: dict[str, Any] = {}
        self._attempts: dict[str, int] = {}
        self._followers: list[threading.Thread] = []
        self._timers: dict[str, threading.Timer] = {}
        self._deleters: list[threading.Thread] = []  # joined before the end: see _stop_watching
        self._watches: list[Any] = []  # the kubernetes Watch objects open now or before
        self._cancelled = False
        self._job: Any = None
        self._threads = [
            threading.Thread(target=self._watch_job, daemon=True),
            threading.Thread(target=self._watch_pods, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- the RunHandle protocol -----------------------------------------------------------

    def close(self, reason: str) -> None:
        """Stop following (the Job could not be submitted)."""
        self._end(ExitInfo(RunStatus.FAILED, None, reason))

    def logs(self) -> Iterator[LogChunk]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def wait(self, timeout: float | None = None) -> ExitInfo:
        self._finished.wait(timeout)
        return self._exit

    def status(self) -> RunStatus:
        return self._exit.status

    def cancel(self, grace: float = 10.0) -> None:
        if self._done.is_set() or self._cancelled:
            return
        self._cancelled = True
        deleter = threading.Thread(target=self._delete, args=(grace,), daemon=True)
        self._deleters.append(deleter)
        deleter.start()

    def _delete(self, grace: float) -> None:
        import urllib3.exceptions
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        # Background: the batch/v1 default (Orphan) would leave the pods running
        options = client.V1DeleteOptions(
            propagation_policy="Background", grace_period_seconds=round(grace)
        )
        with contextlib.suppress(ApiException, OSError, urllib3.exceptions.HTTPError):
            # already gone (nothing to stop), or the cluster is unreachable: the watch says
            self.batch.delete_namespaced_job(self.ref.name, self.ref.namespace, body=options)

    # -- the Job -------------------------------------------------------------------------

    def _watch_job(self) -> None:
        selector = f"metadata.name={self.ref.name}"
        try:
            follow(
                self.batch.list_namespaced_job,
                self.ref.namespace,
                self._on_job,
                self._done,
                self._watches,
                field_selector=selector,
            )
        except Exception as exc:  # the cluster refused us for good (403, 404 namespace...)
            self._end(ExitInfo(RunStatus.FAILED, None, f"lost the Job's watch: {exc}"))

    def _on_job(self, kind: str, job: Any) -> None:
        if kind == "DELETED":  # the event carries the Job's last state: a TTL deletes ended Jobs
            outcome = None if self._cancelled else job_outcome(job, list(self._pods.values()))
            if outcome is not None:
                self._end(outcome)
            else:
                self._job_gone()
            return
        self._job = job
        outcome = job_outcome(job, list(self._pods.values()))
        if outcome is not None:
            self._end(outcome)

    def _job_gone(self) -> None:
        if self._cancelled:
            self._await_no_pods()
            self._end(ExitInfo(RunStatus.KILLED, None, "cancelled: the Job was deleted"))
            return
        self._end(ExitInfo(RunStatus.FAILED, None, "the Job was deleted by someone else"))

    def _await_no_pods(self) -> None:
        deadline = time.monotonic() + END_WAIT_SECONDS
        while time.monotonic() < deadline and self._list_pods():
            time.sleep(0.2)  # the garbage collector removes them after the Job

    # -- the pods ------------------------------------------------------------------------

    def _watch_pods(self) -> None:
        selector = f"{LABEL_RUN_ID}={self.ref.run_id}"
        for pod in self._list_pods():  # earlier attempts (re-attached): numbered by age
            self._register(pod)
        with contextlib.suppress(Exception):  # the Job's watch reports what matters
            follow(
                self.core.list_namespaced_pod,
                self.ref.namespace,
                self._on_pod,
                self._done,
                self._watches,
                label_selector=selector,
            )

    def _on_pod(self, kind: str, pod: Any) -> None:
        if kind == "DELETED":
            return
        self._register(pod)
        if (
            pod.status.phase in ("Running", "Succeeded", "Failed")
            and self._exit.status is RunStatus.SCHEDULED
        ):
            self._exit = ExitInfo(RunStatus.RUNNING)
        if started(pod):
            self._follow_logs(pod)
        self._check_pending(pod)
        if self._job is not None:
            self._on_job("MODIFIED", self._job)

    def _register(self, pod: Any) -> None:
        with self._lock:
            self._pods[pod.metadata.name] = pod
            self._attempts.setdefault(pod.metadata.name, len(self._attempts) + 1)

    def _list_pods(self) -> list[Any]:
        selector = f"{LABEL_RUN_ID}={self.ref.run_id}"
        try:
            pods = self.core.list_namespaced_pod(self.ref.namespace, label_selector=selector).items
        except Exception:  # the cluster went away: what was seen is all there is
            return []
        return sorted(pods, key=attempt_order)

    def _check_pending(self, pod: Any) -> None:
        problem = pending_problem(pod)
        if problem is None:
            return
        stuck_for = time.time() - epoch(pod.metadata.creation_timestamp)
        if stuck_for < self.ref.pending_timeout:
            self._recheck_later(pod.metadata.name, self.ref.pending_timeout - stuck_for)
            return
        reason = f"{problem} (pending for longer than {self.ref.pending_timeout:g}s)"
        # ended first (the delete is ours, not a cancel); a pod that cannot start must not wait
        # in the queue forever: deleted by the end's own thread, before the run is over
        self._end(ExitInfo(RunStatus.FAILED, None, reason), delete=True)

    def _recheck_later(self, name: str, delay: float) -> None:
        """One timer per stuck pod, at its deadline: no event may come before it passes."""
        with self._lock:
            if name in self._timers or self._done.is_set():
                return
            timer = self._timers[name] = threading.Timer(delay + 0.1, self._recheck, (name,))
        timer.daemon = True
        timer.start()

    def _recheck(self, name: str) -> None:
        with self._lock:
            self._timers.pop(name, None)
            pod = self._pods.get(name)
        if pod is not None and not self._done.is_set():
            self._check_pending(pod)

    def _follow_logs(self, pod: Any) -> None:
        name = pod.metadata.name
        with self._lock:
            if any(t.name == name for t in self._followers):
                return
            thread = threading.Thread(
                target=self._stream_log, args=(name, self._attempts[name]), name=name, daemon=True
            )
            self._followers.append(thread)
        thread.start()

    def _stream_log(self, pod: str, attempt: int) -> None:
        if attempt > 1:
            note = f"runner: attempt {attempt} (pod {pod})\n".encode()
            self._queue.put(LogChunk("stderr", note))
        sink = _AttemptLog(self.ref.artifacts_dir, attempt)
        try:
            resp = self.core.read_namespaced_pod_log(
                pod, self.ref.namespace, container=CONTAINER, follow=True, _preload_content=False
            )
            for data in resp.stream(64 * 1024):
                sink.write(data)
                self._queue.put(LogChunk("stdout", data))
        except Exception:  # the pod or the connection went away: keep what was read
            pass
        if sink.written or not (sink.path and sink.path.exists()):
            sink.close()  # an attempt that printed nothing still gets its (empty) file
            return
        sink.discard()  # nothing from the cluster (the pod is gone): the copy kept earlier
        for data in sink.kept():
            self._queue.put(LogChunk("stdout", data))

    # -- the end -------------------------------------------------------------------------

    def _end(self, info: ExitInfo, *, delete: bool = False) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        threading.Thread(target=self._finish, args=(info, delete), daemon=True).start()

    def _finish(self, info: ExitInfo, delete: bool = False) -> None:
        """After the last attempt's log is read (its stream ends with the container)."""
        if delete:
            self._delete(0)
        for pod in self._list_pods():  # one GET: the pod watch may lag behind the Job's
            self._register(pod)
            if started(pod):
                self._follow_logs(pod)
        if info.status is RunStatus.FAILED and info.exit_code is None and self._job is not None:
            info = job_outcome(self._job, list(self._pods.values())) or info
        deadline = time.monotonic() + END_WAIT_SECONDS
        for follower in list(self._followers):
            follower.join(max(0.0, deadline - time.monotonic()))
        if self._cancelled and info.status is not RunStatus.KILLED:
            info = ExitInfo(RunStatus.KILLED, info.exit_code, "cancelled")
        self._exit = info
        self._stop_watching()
        self._queue.put(None)
        self._finished.set()

    def _stop_watching(self) -> None:
        """Close the watch connections and let their threads end before the run is over: a
        daemon thread still reading at interpreter exit can abort the process."""
        for watcher in list(self._watches):
            watcher.stop()
        for timer in list(self._timers.values()):
            timer.cancel()
        for thread in [*self._threads, *self._deleters]:
            if thread is not threading.current_thread():
                thread.join(timeout=5)


class _AttemptLog:
    """``output.attempt-N.log``, written beside and renamed into place when the stream ends,
    so a reader never sees a half-written copy replace a whole one."""

    def __init__(self, artifacts_dir: Path | None, attempt: int) -> None:
        self.path = attempt_log(artifacts_dir, attempt) if artifacts_dir else None
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}") if self.path else None
        self.file = self.tmp.open("wb") if self.tmp else None

    written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.file:
            self.file.write(data)

    def discard(self) -> None:
        if self.file and self.tmp:
            self.file.close()
            self.tmp.unlink(missing_ok=True)

    def kept(self) -> Iterator[bytes]:
        """What an earlier reader of this attempt stored, if anything."""
        try:
            with open(self.path or "", "rb") as stored:
                yield from iter(lambda: stored.read(64 * 1024), b"")
        except OSError:
            return

    def close(self) -> None:
        if self.file and self.tmp and self.path:
            self.file.close()
            os.replace(self.tmp, self.path)
