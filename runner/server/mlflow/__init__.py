"""The subset of MLflow's REST API its client needs to log into runner runs (``mlflow_routes``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from runner.server.artifacts import ArtifactStore
    from runner.store import Store

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def mlflow_routes(store: Store, artifacts: ArtifactStore) -> list[BaseRoute]:
    """Routes for MLflow's tracking client over ``store`` and ``artifacts``."""
    from starlette.routing import Route

    from runner.server.mlflow import protocol as p
    from runner.server.mlflow.artifacts import ArtifactProxy
    from runner.server.mlflow.experiments import Experiments, ExperimentStore
    from runner.server.mlflow.models import LoggedModels
    from runner.server.mlflow.runs import Runs

    sql_store = cast(ExperimentStore, store)  # the server's store is a SQL one: it has them
    experiments = Experiments(sql_store)
    models = LoggedModels(sql_store, experiments)
    runs = Runs(sql_store, experiments, models)
    proxy = ArtifactProxy(artifacts, runs)
    table: list[tuple[str, str, Any]] = [
        ("GET", "/experiments/get", experiments.get),
        ("GET", "/experiments/get-by-name", experiments.get_by_name),
        ("POST", "/experiments/create", experiments.create),
        ("POST", "/experiments/search", experiments.search),
        ("GET", "/experiments/search", experiments.search),
        ("GET", "/runs/get", runs.get),
        ("POST", "/runs/create", runs.create),
        ("POST", "/runs/update", runs.update),
        ("POST", "/runs/search", runs.search),
        ("POST", "/runs/log-metric", runs.log_metric),
        ("POST", "/runs/log-parameter", runs.log_param),
        ("POST", "/runs/set-tag", runs.set_tag),
        ("POST", "/runs/log-batch", runs.log_batch),
        ("POST", "/runs/log-model", runs.log_model),
        ("POST", "/runs/outputs", runs.log_outputs),
        ("POST", "/runs/log-inputs", runs.log_inputs),
        ("GET", "/metrics/get-history", runs.metric_history),
        ("POST", "/logged-models", models.create),
        ("POST", "/logged-models/search", models.search),
        ("GET", "/logged-models/{model_id}", models.get),
        ("PATCH", "/logged-models/{model_id}", models.finalize),
        ("PATCH", "/logged-models/{model_id}/tags", models.set_tags),
        ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", models.delete_tag),
        ("POST", "/logged-models/{model_id}/params", models.log_params),
    ]
    routes: list[BaseRoute] = [
        Route(prefix + path, p.endpoint(handler), methods=[method])
        for prefix in PREFIXES
        for method, path, handler in table
    ]
    routes += [
        Route(ARTIFACTS, p.endpoint(proxy.list), methods=["GET"]),
        Route(ARTIFACTS + "/{path:path}", proxy.upload, methods=["PUT"]),
        Route(ARTIFACTS + "/{path:path}", proxy.download, methods=["GET"]),
    ]
    routes += [Route(prefix + "/{rest:path}", _not_found, methods=_ALL) for prefix in PREFIXES]
    return routes


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def _not_found(request: Any) -> Any:
    from runner.server.mlflow import protocol as p

    path = request.url.path
    message = f"this runner server does not serve {request.method} {path}"
    return p.error_response(p.MlflowError("ENDPOINT_NOT_FOUND", message, 404))
