"""The Store contract over HTTP: a client of `runner server`, for RUNNER_TRACKING_URI=http(s)://...

Every write carries a key of its own (a run's create request too), so a request retried after a
dropped connection is applied once. Inputs are checked here with the store's own rules first,
so a bad value gets the same message as with a local store, without a round trip.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from runner.errors import RunNotFound, StoreError
from runner.status import RunStatus
from runner.store import (
    LiveRun,
    Metric,
    MetricPoint,
    NewRun,
    RunnerProcess,
    RunPage,
    RunRecord,
    records,
)

if TYPE_CHECKING:
    from runner.server.artifacts import ArtifactEntry
    from runner.store.search import RunQuery

TOKEN_VARIABLE = "RUNNER_TRACKING_TOKEN"
TIMEOUT = 30.0
UPLOAD_ANSWER_TIMEOUT = 600.0  # seconds a server may take to store an uploaded file
RETRIES = 5  # attempts for a request that met a dropped connection or a 502/503/504
BACKOFF = 0.2  # seconds before the second attempt, doubling after each
_RETRY_STATUS = (502, 503, 504)
# The server answers at most this many points at once (runner.server.runs_api).
HISTORY_CAP = 1_000_000
DOWNLOAD_CHUNK = 1024 * 1024  # bytes of an artifact download held in memory at once
# a server's answers refusing one uploaded file (its path, its size), not the client itself
_REFUSED_FILE = (400, 413)


class UploadRefused(StoreError):
    """The server refused one uploaded file (a path it does not accept, a file too large);
    other files may still be sent."""

    code = "upload-refused"


class RestStore:
    """The tracking store behind a `runner server` at ``base_url``."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "runner-rest-store"
        token = token or os.environ.get(TOKEN_VARIABLE)
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> RestStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- writes --------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> str:
        records.check_new_run(new)  # the store's own checks, the same messages
        body = {
            "experiment": new.experiment,
            "entry_point": new.entry_point,
            "command": new.command,
            "backend": new.backend,
            "parameters": dict(new.parameters),
            "source": dict(new.source),
            "environment": dict(new.environment),
            "run_name": new.run_name,
            "tags": dict(new.tags),
            "parent_run_id": new.parent_run_id,
            "runner_pid": new.runner_pid,
            "runner_host": new.runner_host,
            "runner_start": new.runner_start,
            "request_key": uuid.uuid4().hex,
        }
        return str(self._post("/api/runs", body)["run_id"])

    def start_run(self, run_id: str) -> None:
        self._post(f"/api/runs/{_id(run_id)}/start", {})

    def update_run(
        self,
        run_id: str,
        *,
        environment: Mapping[str, Any] | None = None,
        command: str | None = None,
        runner_pid: int | None = None,
        runner_host: str | None = None,
        runner_start: float | None = None,
    ) -> None:
        values = records.update_values(
            environment=environment,
            command=command,
            runner_pid=runner_pid,
            runner_host=runner_host,
            runner_start=runner_start,
        )
        if environment is not None:
            values["environment"] = dict(environment)
        self._post(f"/api/runs/{_id(run_id)}/update", values)

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool:
        final = records.terminal_status(status)
        body = {"status": final, "exit_code": exit_code, "reason": reason}
        retried: list[int] = []
        answer = self._post(f"/api/runs/{_id(run_id)}/finish", body, retried)
        if answer["finished"] or not retried:
            return bool(answer["finished"])
        # a retry after a lost answer: the first attempt may be the one that finished it
        run = self.get_run(run_id)
        return bool(
            (run.status.value, run.exit_code, run.failure_reason) == (final, exit_code, reason)
        )

    def heartbeat(self, run_id: str) -> None:
        self._post(f"/api/runs/{_id(run_id)}/heartbeat", {})

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        records.key_values("param", run_id, params)
        self._write(run_id, {"params": dict(params)})

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        records.key_values("tag", run_id, tags)
        self._write(run_id, {"tags": dict(tags)})

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        rows = records.metric_rows(run_id, metrics)
        sent = [
            {"key": key, "value": _number(value), "step": step, "timestamp": ts}
            for _run, key, value, step, ts in rows
        ]
        self._write(run_id, {"metrics": sent})

    def release_runner(self, run_id: str) -> None:
        self._post(f"/api/runs/{_id(run_id)}/release", {})

    def claim_interval(self, name: str, seconds: float) -> bool:
        records.check_key("interval", name)
        return bool(
            self._post(f"/api/intervals/{_id(name)}/claim", {"seconds": seconds})["claimed"]
        )

    # -- runs ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        records.prefix_bounds(run_id)  # RunNotFound for what cannot be an id, as locally
        return run_record(self._get(f"/api/runs/{_id(run_id)}"))

    def list_runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> RunPage:
        records.check_limit(limit)
        if status is not None:
            records.parse_status(status)
        query = {"experiment": experiment, "status": status, "limit": limit}
        return run_page(self._get("/api/runs", {**query, "page_token": page_token}))

    def search_runs(self, query: RunQuery) -> RunPage:
        """``POST /api/runs/search``: the server runs the same search as a local store."""
        body = {
            "experiment": query.experiment,
            "status": query.status,
            "params": dict(query.params),
            "tags": dict(query.tags),
            "metrics": [{"key": k, "op": op, "value": v} for k, op, v in query.metrics],
            "order": query.order,
            "limit": query.limit,
            "page_token": query.page_token,
            "sort": query.sort,
            "ascending": query.ascending,
        }
        present = {name: value for name, value in body.items() if value is not None}
        return run_page(self._post("/api/runs/search", present))

    def iter_runs(
        self, experiment: str | None = None, status: str | None = None
    ) -> Iterator[RunRecord]:
        if status is not None:
            records.parse_status(status)
        return self._pages(experiment, status)

    def _pages(self, experiment: str | None, status: str | None) -> Iterator[RunRecord]:
        token: str | None = None
        while True:
            page = self.list_runs(experiment, status, 1000, token)
            yield from page.runs
            if page.next_token is None:
                return
            token = page.next_token

    def experiment_names(self) -> list[str]:
        """Names of all experiments, sorted."""
        return [item["name"] for item in self._get("/api/experiments")["experiments"]]

    # -- workflow steps ------------------------------------------------------------------

    def set_cache_key(self, run_id: str, cache_key: str) -> None:
        records.check_key("cache key", cache_key)
        self._post(f"/api/runs/{_id(run_id)}/cache-key", {"cache_key": cache_key})

    def cached_run(self, cache_key: str) -> str | None:
        records.check_key("cache key", cache_key)
        found = self._get(f"/api/cached-runs/{_id(cache_key)}")["run_id"]
        return None if found is None else str(found)

    def child_runs(self, parent_run_id: str) -> list[RunRecord]:
        found = self._get(f"/api/runs/{_id(parent_run_id)}/children")["runs"]
        return [run_record(item) for item in found]

    # -- metrics -------------------------------------------------------------------------

    def metric_history(
        self, run_id: str, key: str, *, after_step: int | None = None, limit: int | None = None
    ) -> Iterator[MetricPoint]:
        records.check_limit(limit, "metric point")
        query: dict[str, Any] = {"key": key, "limit": HISTORY_CAP if limit is None else limit}
        if after_step is not None:
            query["after_step"] = after_step
        answer = self._get(f"/api/runs/{_id(run_id)}/metric-history", query)
        return iter([metric_point(point) for point in answer["points"]])

    def latest_metrics(self, run_id: str) -> dict[str, MetricPoint]:
        found = self._get(f"/api/runs/{_id(run_id)}/metrics")["metrics"]
        return {key: metric_point(point) for key, point in found.items()}

    # -- live runs -----------------------------------------------------------------------

    def live_runs(self) -> list[LiveRun]:
        return self._live({})

    def live_run(self, run_id: str) -> LiveRun | None:
        found = self._get(f"/api/live-runs/{_id(run_id)}")["run"]
        return None if found is None else live_run(found)

    def runner_processes(self, host: str) -> list[RunnerProcess]:
        found = self._get("/api/runner-processes", {"host": host})["processes"]
        return [RunnerProcess(item["pid"], item["start"]) for item in found]

    def live_runs_of_process(self, host: str, pid: int, start: float | None) -> list[LiveRun]:
        return self._live({"host": host, "pid": pid, "start": start})

    def stale_runs(self, older_than_ms: int, exclude_host: str) -> list[LiveRun]:
        return self._live({"older_than_ms": older_than_ms, "exclude_host": exclude_host})

    def backend_owned_runs(self, backend: str, limit: int) -> list[LiveRun]:
        records.check_limit(limit)
        return self._live({"backend": backend, "limit": limit})

    def _live(self, query: dict[str, Any]) -> list[LiveRun]:
        return [live_run(item) for item in self._get("/api/live-runs", query)["runs"]]

    # -- artifacts -----------------------------------------------------------------------

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """The entries directly inside the artifact folder ``path`` of a run, as the server
        answers them: a file lists as itself, a missing path as nothing."""
        answer = self._get(f"/api/runs/{_id(run_id)}/artifacts", {"path": path})
        try:
            return [_remote_artifact(item) for item in answer["files"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"the tracking server {self.base_url} answered an artifact listing of run "
                f"{run_id} that is not one: {exc!r}"
            ) from exc

    def download_artifact(self, run_id: str, path: str, target: Path) -> int:
        """Stream the artifact file ``path`` of a run into the new file ``target`` (never
        whole in memory); returns the bytes written."""
        from urllib.parse import quote

        url = f"/api/runs/{_id(run_id)}/artifacts/files/{quote(path)}"
        with self._send("GET", url, stream=True) as response:
            if response.status_code >= 400:
                _answer(response)  # raises with the server's message
            written = 0
            with open(target, "xb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            return written

    def upload_artifact(self, run_id: str, path: str, source: Path) -> int:
        """Stream the local file ``source`` to the artifact file ``path`` of a run (never
        whole in memory; a file already there is replaced); returns the bytes stored."""
        from urllib.parse import quote

        url = f"/api/runs/{_id(run_id)}/artifacts/files/{quote(path)}"
        return self._put_file(url, source)

    def upload_run_file(self, run_id: str, name: str, source: Path) -> int:
        """Stream the local file ``source`` to the server as the run's own file ``name`` (its
        ``output.log``, ``git-diff.patch``...), replacing one sent before; returns the bytes
        stored."""
        return self._put_file(f"/api/runs/{_id(run_id)}/artifacts/run-files/{name}", source)

    def copy_run_file(
        self, run_id: str, name: str, write: Callable[[bytes], object], offset: int = 0
    ) -> int | None:
        """Stream the server's copy of the run's own file ``name``, from ``offset`` on, to
        ``write`` chunk by chunk; the bytes written, or None when the server has none."""
        url = f"/api/runs/{_id(run_id)}/artifacts/run-files/{name}?offset={offset}"
        with self._send("GET", url, stream=True) as response:
            if response.status_code == 404 and _error_code(response) != "run-not-found":
                return None  # none sent (or a server older than the run-files endpoint)
            if response.status_code >= 400:
                _answer(response)  # raises with the server's message
            written = 0
            for chunk in response.iter_content(DOWNLOAD_CHUNK):
                write(chunk)
                written += len(chunk)
            return written

    def append_run_file(self, run_id: str, name: str, data: bytes, offset: int) -> int:
        """Add ``data`` to the server's copy of the run's own file ``name`` if it is
        ``offset`` bytes long; returns its size after, which is where the next part goes
        (on a mismatch: the size it has, from which to send again)."""
        url = f"/api/runs/{_id(run_id)}/artifacts/run-files/{name}?offset={offset}"
        with self._send("POST", url, data=data) as response:
            if response.status_code == 409 and _error_code(response) == "offset-mismatch":
                return int(response.json()["size"])
            return int(_answer(response)["size"])

    def _put_file(self, url: str, source: Path) -> int:
        with open(source, "rb") as body, self._send("PUT", url, body=body) as response:
            if response.status_code in _REFUSED_FILE:
                try:
                    _answer(response)
                except StoreError as exc:
                    raise UploadRefused(exc.message, hint=exc.hint) from exc
            return int(_answer(response)["size"])

    # -- HTTP ----------------------------------------------------------------------------

    def _write(self, run_id: str, body: dict[str, Any]) -> None:
        self._post(f"/api/runs/{_id(run_id)}/batch", {**body, "key": uuid.uuid4().hex})

    def _get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        params = {name: value for name, value in (query or {}).items() if value is not None}
        return self._request("GET", path, params=params)

    def _post(self, path: str, body: dict[str, Any], retried: list[int] | None = None) -> Any:
        return self._request("POST", path, json=body, retried=retried)

    def _request(self, method: str, path: str, retried: list[int] | None = None, **kw: Any) -> Any:
        """The answer's JSON; retried on a dropped connection or a gateway error, with backoff."""
        return _answer(self._send(method, path, retried, **kw))

    def _send(
        self,
        method: str,
        path: str,
        retried: list[int] | None = None,
        body: BinaryIO | None = None,
        **kw: Any,
    ) -> Any:
        """The answer itself, after the retries ``_request`` promises; a ``body`` file is
        streamed from its start on every attempt (never what an earlier one left of it)."""
        import requests

        url = self.base_url + path
        # a server answers an upload once it has stored the whole file: that may take a while
        timeout = TIMEOUT if body is None else (TIMEOUT, UPLOAD_ANSWER_TIMEOUT)
        for attempt in range(1, RETRIES + 1):
            if body is not None:
                body.seek(0)
                kw["data"] = body
            try:
                response = self._session.request(method, url, timeout=timeout, **kw)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == RETRIES:
                    raise _unreachable(self.base_url, exc) from exc
            else:
                if response.status_code not in _RETRY_STATUS or attempt == RETRIES:
                    return response
                response.close()  # a streamed answer holds its connection until closed
            if retried is not None:
                retried.append(attempt)
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the loop returns or raises


def _id(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _number(value: float | None) -> float | str:
    if value is None:
        return "NaN"  # JSON has no NaN; the server reads these spellings
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _answer(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code < 400:
        return body
    if not isinstance(body, dict) or "message" not in body:
        raise StoreError(f"the tracking server answered HTTP {response.status_code}")
    error = RunNotFound if body.get("error") == "run-not-found" else StoreError
    raise error(str(body["message"]), hint=body.get("hint"))


def _error_code(response: Any) -> str | None:
    """The ``error`` code of an error answer, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) else None


def _unreachable(base_url: str, exc: Exception) -> StoreError:
    return StoreError(
        f"the tracking server {base_url} cannot be reached: {exc.__class__.__name__}",
        hint="start it with `runner server`, or check RUNNER_TRACKING_URI",
    )


def _remote_artifact(data: Any) -> ArtifactEntry:
    from runner.server.artifacts import ArtifactEntry  # the server's own record of one

    path, is_dir, size = data["path"], data["is_dir"], data["size"]
    if not isinstance(path, str) or not isinstance(is_dir, bool):
        raise ValueError(f"entry {data!r}")
    if not (size is None or (isinstance(size, int) and size >= 0)):
        raise ValueError(f"entry {data!r}")
    return ArtifactEntry(path, is_dir, size)


def run_record(data: dict[str, Any]) -> RunRecord:
    return RunRecord(**{**data, "status": RunStatus(data["status"])})


def run_page(data: dict[str, Any]) -> RunPage:
    runs = [run_record(item) for item in data["runs"]]
    return RunPage(runs, data["more"], data["capped"], data["next_page_token"])


def metric_point(data: dict[str, Any]) -> MetricPoint:
    return MetricPoint(data["step"], data["timestamp"], data["value"])


def live_run(data: dict[str, Any]) -> LiveRun:
    return LiveRun(**{**data, "status": RunStatus(data["status"])})
