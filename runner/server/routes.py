"""The server's own REST API under /api: health, the OpenAPI document, runs, artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from runner import __version__
from runner.errors import StoreError
from runner.server.artifacts_api import ArtifactsApi
from runner.server.openapi import openapi_document
from runner.server.runs_api import RunsApi
from runner.store.core import SqlRunStore

if TYPE_CHECKING:
    from runner.server.app import Settings
    from runner.server.artifacts import ArtifactStore
    from runner.store import Store


def sql_store(store: Store) -> SqlRunStore:
    """The server writes to a database itself: another server is no store for a server."""
    if not isinstance(store, SqlRunStore):
        raise StoreError(
            "the tracking server needs a database store (sqlite:///... or postgresql://...)",
            hint="unset RUNNER_TRACKING_URI or point it at a database, not at a server",
        )
    return store


def api_routes(store: Store, artifacts: ArtifactStore, settings: Settings) -> list[BaseRoute]:
    """Every route of the REST API, the OpenAPI document describing them included."""
    database = sql_store(store)
    routes: list[BaseRoute] = [
        *RunsApi(database).routes(),
        *ArtifactsApi(database, artifacts).routes(),
    ]
    document = openapi_document(routes, __version__)

    async def health(_request: Request) -> JSONResponse:
        """Whether the server is up, and its version."""
        return JSONResponse({"status": "ok", "version": __version__})

    async def openapi(_request: Request) -> JSONResponse:
        """This document."""
        return JSONResponse(document)

    return [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        *routes,
    ]
