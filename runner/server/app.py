"""The tracking server's ASGI application: settings, the store and artifacts, every route."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from runner.server.http import exception_handlers
from runner.server.security import SecurityMiddleware

if TYPE_CHECKING:
    from runner.server.artifacts import ArtifactStore
    from runner.store import Store

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What a server is configured with; None store/artifact root means RUNNER_HOME's."""

    store_uri: str | None = None
    artifact_root: str | None = None
    token: str | None = None  # required on every request when set (Authorization: Bearer ...)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host/Origin names accepted; "*" any
    max_body_bytes: int = 16 * MiB  # a JSON request
    max_artifact_bytes: int = 4096 * MiB  # one uploaded artifact file


def create_app(settings: Settings) -> Starlette:
    """The server over the store at ``settings.store_uri`` and its artifact root."""
    from runner.server.artifacts import open_artifact_store
    from runner.store.open import open_store

    store = open_store(settings.store_uri)
    artifacts = open_artifact_store(settings.artifact_root)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(
        routes=_routes(store, artifacts, settings),
        middleware=[Middleware(SecurityMiddleware, settings=settings)],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.artifacts = artifacts
    app.state.settings = settings
    return app


def _routes(store: Store, artifacts: ArtifactStore, settings: Settings) -> list[BaseRoute]:
    from runner.server.routes import api_routes

    routes = api_routes(store, artifacts, settings)
    # The MLflow-compatible routes live in their own module (and branch) until it is merged.
    if importlib.util.find_spec("runner.server.mlflow") is not None:
        from runner.server import mlflow  # type: ignore[attr-defined, unused-ignore]

        routes += mlflow.mlflow_routes(store, artifacts)
    return routes
