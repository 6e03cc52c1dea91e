"""The REST endpoints of experiments and runs: create, read, search, write, finish, cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.server import bodies
from runner.server.http import (
    BadRequest,
    Conflict,
    field,
    integer,
    number,
    optional,
    query_int,
    read_json,
)
from runner.store import LiveRun, MetricPoint, RunPage
from runner.store.core import SqlRunStore
from runner.store.records import new_run_id

T = TypeVar("T")
HISTORY_LIMIT = 1_000_000  # points per answer (runner.store.rest.HISTORY_CAP)


async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # the store is synchronous: it runs on a worker thread, never on the event loop
    result: T = await run_in_threadpool(function, *args, **kwargs)
    return result


def page_json(page: RunPage) -> dict[str, Any]:
    return {
        "runs": [run.to_dict() for run in page.runs],
        "more": page.more,
        "capped": page.capped,
        "next_page_token": page.next_token,
    }


def live_json(live: LiveRun) -> dict[str, Any]:
    return {
        "run_id": live.run_id,
        "status": live.status.value,
        "backend": live.backend,
        "runner_pid": live.runner_pid,
        "runner_host": live.runner_host,
        "runner_start": live.runner_start,
        "heartbeat_ms": live.heartbeat_ms,
    }


def point_json(point: MetricPoint) -> dict[str, Any]:
    return {"step": point.step, "timestamp": point.timestamp, "value": point.value}


class RunsApi:
    """Handlers over one store."""

    def __init__(self, store: SqlRunStore) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        post, get = ["POST"], ["GET"]
        return [
            Route("/api/experiments", self.list_experiments, methods=get),
            Route("/api/experiments", self.create_experiment, methods=post),
            Route("/api/runs", self.list_runs, methods=get),
            Route("/api/runs", self.create_run, methods=post),
            Route("/api/runs/search", self.search_runs, methods=post),
            Route("/api/runs/{run_id}", self.get_run, methods=get),
            Route("/api/runs/{run_id}/start", self.start_run, methods=post),
            Route("/api/runs/{run_id}/update", self.update_run, methods=post),
            Route("/api/runs/{run_id}/finish", self.finish_run, methods=post),
            Route("/api/runs/{run_id}/heartbeat", self.heartbeat, methods=post),
            Route("/api/runs/{run_id}/release", self.release, methods=post),
            Route("/api/runs/{run_id}/cancel", self.cancel, methods=post),
            Route("/api/runs/{run_id}/batch", self.log_batch, methods=post),
            Route("/api/runs/{run_id}/params", self.log_batch, methods=post),
            Route("/api/runs/{run_id}/tags", self.log_batch, methods=post),
            Route("/api/runs/{run_id}/metrics", self.log_batch, methods=post),
            Route("/api/runs/{run_id}/metrics", self.latest_metrics, methods=get),
            Route("/api/runs/{run_id}/metric-history", self.metric_history, methods=get),
            Route("/api/live-runs", self.live_runs, methods=get),
            Route("/api/live-runs/{run_id}", self.live_run, methods=get),
            Route("/api/runner-processes", self.runner_processes, methods=get),
            Route("/api/intervals/{name}/claim", self.claim_interval, methods=post),
        ]

    # -- experiments ---------------------------------------------------------------------

    async def list_experiments(self, _request: Request) -> JSONResponse:
        found = await _call(self.store.experiments)
        rows = [{"id": str(i), "name": name, "created": created} for i, name, created in found]
        return JSONResponse({"experiments": rows})

    async def create_experiment(self, request: Request) -> JSONResponse:
        name = field(await read_json(request), "name", str)
        experiment_id = await _call(self.store.create_experiment, name)
        return JSONResponse({"id": str(experiment_id), "name": name})

    # -- runs ----------------------------------------------------------------------------

    async def create_run(self, request: Request) -> JSONResponse:
        """Create a SCHEDULED run; a retry with the same ``request_key`` returns the same run."""
        body = await read_json(request)
        new, key = bodies.new_run(body), bodies.write_key(body, "request_key")
        key = key or request.headers.get("idempotency-key")
        if key is None:
            run_id = await _call(self.store.create_run, new)
        else:
            run_id = await _call(self.store.create_run_once, new, key)
        return JSONResponse({"run_id": run_id}, status_code=201)

    async def get_run(self, request: Request) -> JSONResponse:
        record = await _call(self.store.get_run, request.path_params["run_id"])
        return JSONResponse(record.to_dict())

    async def list_runs(self, request: Request) -> JSONResponse:
        query = request.query_params
        limit = query_int(request, "limit", 20, low=0, high=bodies.MAX_PAGE)
        page = await _call(
            self.store.list_runs, query.get("experiment"), query.get("status"), limit,
            query.get("page_token"),
        )  # fmt: skip
        return JSONResponse(page_json(page))

    async def search_runs(self, request: Request) -> JSONResponse:
        query = bodies.run_query(await read_json(request))
        return JSONResponse(page_json(await _call(self.store.search_runs, query)))

    async def start_run(self, request: Request) -> JSONResponse:
        await _call(self.store.start_run, await self._full_id(request))
        return JSONResponse({})

    async def update_run(self, request: Request) -> JSONResponse:
        body, run_id = await read_json(request), await self._full_id(request)
        values = {
            "environment": optional(body, "environment", dict),
            "command": optional(body, "command", str),
            "runner_pid": optional(body, "runner_pid", int),
            "runner_host": optional(body, "runner_host", str),
            "runner_start": optional(body, "runner_start", float),
        }
        await _call(self.store.update_run, run_id, **values)
        return JSONResponse({})

    async def finish_run(self, request: Request) -> JSONResponse:
        body, run_id = await read_json(request), await self._full_id(request)
        status = field(body, "status", str)
        exit_code = body.get("exit_code")
        if exit_code is not None:
            exit_code = integer(exit_code, "exit_code", low=-(2**31), high=2**31 - 1)
        reason = optional(body, "reason", str)
        finished = await _call(self.store.finish_run, run_id, status, exit_code, reason)
        return JSONResponse({"finished": finished})

    async def heartbeat(self, request: Request) -> JSONResponse:
        await _call(self.store.heartbeat, await self._full_id(request))
        return JSONResponse({})

    async def release(self, request: Request) -> JSONResponse:
        await _call(self.store.release_runner, await self._full_id(request))
        return JSONResponse({})

    async def cancel(self, request: Request) -> JSONResponse:
        """Stop a run whose runner lives on this host, or that its backend keeps alive."""
        from runner.errors import RunnerError
        from runner.execution.control import cancel_run

        body, run_id = await read_json(request), await self._full_id(request)
        wait = float(integer(body.get("wait_seconds", 30), "wait_seconds", low=0, high=600))
        try:
            status = await _call(cancel_run, self.store, run_id, wait)
        except RunnerError as exc:
            if exc.code != "runner-error":
                raise
            raise Conflict(exc.message, hint=exc.hint) from exc
        return JSONResponse({"status": status.value})

    async def log_batch(self, request: Request) -> JSONResponse:
        """Metrics, params and tags in one write; a retried ``key`` is applied once."""
        body, run_id = await read_json(request), await self._full_id(request)
        batch, key = bodies.batch(body), bodies.write_key(body)
        key = key or request.headers.get("idempotency-key") or new_run_id()
        applied = await _call(self.store.log_keyed, run_id, {key: batch})
        return JSONResponse({"applied": bool(applied)})

    async def latest_metrics(self, request: Request) -> JSONResponse:
        found = await _call(self.store.latest_metrics, await self._full_id(request))
        return JSONResponse({"metrics": {key: point_json(p) for key, p in found.items()}})

    async def metric_history(self, request: Request) -> JSONResponse:
        run_id, query = await self._full_id(request), request.query_params
        key = query.get("key")
        if not key:
            raise BadRequest("key", "is required (the metric's key)")
        after_step = None
        if "after_step" in query:
            after_step = query_int(request, "after_step", 0, low=-(2**63), high=2**63 - 1)
        limit = query_int(request, "limit", HISTORY_LIMIT, low=0, high=HISTORY_LIMIT)
        points = await _call(self._history, run_id, key, after_step, limit)
        return JSONResponse({"key": key, "points": points})

    def _history(self, run_id: str, key: str, after: int | None, limit: int) -> list[Any]:
        found = self.store.metric_history(run_id, key, after_step=after, limit=limit)
        return [point_json(point) for point in found]

    # -- what the runner of another process asks (the REST store client) -----------------

    async def live_runs(self, request: Request) -> JSONResponse:
        query = request.query_params
        if "host" in query and "pid" in query:
            pid = query_int(request, "pid", 0, low=0, high=2**31)
            start = float(query["start"]) if query.get("start") else None
            found = await _call(self.store.live_runs_of_process, query["host"], pid, start)
        elif "older_than_ms" in query:
            older = query_int(request, "older_than_ms", 0, low=0, high=2**62)
            found = await _call(self.store.stale_runs, older, query.get("exclude_host", ""))
        elif "backend" in query:
            limit = query_int(request, "limit", 100, low=0, high=10_000)
            found = await _call(self.store.backend_owned_runs, query["backend"], limit)
        else:
            found = await _call(self.store.live_runs)
        return JSONResponse({"runs": [live_json(live) for live in found]})

    async def live_run(self, request: Request) -> JSONResponse:
        found = await _call(self.store.live_run, request.path_params["run_id"])
        return JSONResponse({"run": None if found is None else live_json(found)})

    async def runner_processes(self, request: Request) -> JSONResponse:
        host = request.query_params.get("host")
        if host is None:
            raise BadRequest("host", "is required")
        found = await _call(self.store.runner_processes, host)
        return JSONResponse({"processes": [{"pid": p.pid, "start": p.start} for p in found]})

    async def claim_interval(self, request: Request) -> JSONResponse:
        body = await read_json(request)
        seconds = number(body.get("seconds"), "seconds")
        claimed = await _call(self.store.claim_interval, request.path_params["name"], seconds)
        return JSONResponse({"claimed": claimed})

    async def _full_id(self, request: Request) -> str:
        """The full id of the run the path names (it may give a unique prefix)."""
        given = request.path_params["run_id"]
        if len(given) == 32:
            return str(given)
        return (await _call(self.store.get_run, given)).run_id
