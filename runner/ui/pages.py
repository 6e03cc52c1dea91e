"""The UI's routes: runs table, run page, metric values, logs, artifacts, compare, login."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from runner.errors import RunnerError
from runner.ui import render, session, views

if TYPE_CHECKING:
    from runner.server.app import Settings
    from runner.server.artifacts import ArtifactStore
    from runner.store.core import SqlRunStore

Handler = Callable[[Request], Awaitable[Response]]


def ui_routes(store: SqlRunStore, artifacts: ArtifactStore, settings: Settings) -> list[BaseRoute]:
    """Every route of the web UI, under /ui."""
    from starlette.staticfiles import StaticFiles

    pages = Pages(views.Views(store, artifacts), settings)
    get = ["GET", "HEAD"]
    return [
        Route("/", pages.home, methods=get),
        Route("/ui", pages.home, methods=get),
        Route("/ui/", pages.home, methods=get),
        Route("/ui/login", pages.login_form, methods=get),
        Route("/ui/login", pages.login, methods=["POST"]),
        Route("/ui/runs", _html(pages.runs), methods=get),
        Route("/ui/runs/{run_id}", _html(pages.run), methods=get),
        Route("/ui/runs/{run_id}/values", _html(pages.values), methods=get),
        Route("/ui/runs/{run_id}/log", _html(pages.log), methods=get),
        Route("/ui/runs/{run_id}/artifacts", _html(pages.artifacts), methods=get),
        Route("/ui/runs/{run_id}/download", _html(pages.download), methods=get),
        Route("/ui/compare", _html(pages.compare), methods=get),
        Route("/ui/workflows/{run_id}", _html(pages.workflow), methods=get),
        Mount("/ui/static", StaticFiles(directory=render.HERE / "static"), name="ui-static"),
    ]


def _html(handler: Handler) -> Handler:
    """A handler whose user errors are shown as a page with the message, not as JSON."""
    from runner.server.http import error_status

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except RunnerError as exc:
            context = {"message": exc.message, "hint": exc.hint or ""}
            return render.page("error.html", error_status(exc), **context)

    return wrapped


class Pages:
    """Thin handlers: read the query, ask Views on a worker thread, render a template."""

    def __init__(self, views: views.Views, settings: Settings) -> None:
        self.views = views
        self.settings = settings

    async def home(self, _request: Request) -> Response:
        return RedirectResponse("/ui/runs", status_code=303)

    async def runs(self, request: Request) -> Response:
        context = await run_in_threadpool(self.views.runs, request.query_params)
        name = "rows.html" if request.query_params.get("fragment") == "rows" else "runs.html"
        return render.page(name, **context)

    async def run(self, request: Request) -> Response:
        run_id, query = request.path_params["run_id"], request.query_params
        context = await run_in_threadpool(self.views.run, run_id, query)
        return render.page("run.html", **context)

    async def values(self, request: Request) -> Response:
        run_id, query = request.path_params["run_id"], request.query_params
        context = await run_in_threadpool(self.views.values, run_id, query)
        return render.page("values.html", **context)

    async def log(self, request: Request) -> Response:
        run_id, query = request.path_params["run_id"], request.query_params
        found = await run_in_threadpool(self.views.log, run_id, query)
        return JSONResponse(found, headers=render.SECURITY_HEADERS)

    async def artifacts(self, request: Request) -> Response:
        run_id, query = request.path_params["run_id"], request.query_params
        context = await run_in_threadpool(self.views.artifacts, run_id, query.get("path", ""))
        return render.page("artifacts.html", **context)

    async def download(self, request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.query_params.get("path", "")
        return await run_in_threadpool(self.views.download, run_id, path)

    async def compare(self, request: Request) -> Response:
        ids = request.query_params.getlist("run")
        context = await run_in_threadpool(self.views.compare, ids, request.query_params)
        return render.page("compare.html", **context)

    async def workflow(self, request: Request) -> Response:
        context = await run_in_threadpool(self.views.workflow, request.path_params["run_id"])
        return render.page("workflow.html", **context)

    # -- the token, for a server that needs one ---------------------------------------

    async def login_form(self, _request: Request) -> Response:
        return render.page("login.html", needed=self.settings.token is not None, wrong=False)

    async def login(self, request: Request) -> Response:
        """Take the token from the form; on a match, set the session cookie (HttpOnly)."""
        token = self.settings.token
        if token is None:
            return RedirectResponse("/ui/runs", status_code=303)
        given = _form_field(await request.body(), "token")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return render.page("login.html", 401, needed=True, wrong=True)
        answer = RedirectResponse("/ui/runs", status_code=303)
        answer.set_cookie(
            session.COOKIE,
            session.session_value(token.encode()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/ui/",
        )
        return answer


def _form_field(body: bytes, name: str) -> str:
    from urllib.parse import parse_qs

    values: dict[str, Any] = parse_qs(body.decode("utf-8", errors="replace"))
    found = values.get(name) or [""]
    return str(found[0])
