"""How code written for MLflow logs into its runner run: the MLFLOW_* variables, and for the
default (database) store the embedded MLflow API, served only while the run lasts.

Light on purpose: nothing here imports the server unless a run needs it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runner.home import tracking_uri

if TYPE_CHECKING:
    from runner.envs import PreparedEnv
    from runner.store import Store

MLFLOW_PACKAGES = frozenset({"mlflow", "mlflow-skinny"})
TOKEN_VARIABLE = "RUNNER_TRACKING_TOKEN"  # what the runner's own REST client sends
LOOKUP_TIMEOUT = 10.0
Progress = Callable[[str], None]
_SEPARATORS = re.compile(r"[-_.]+")


def has_mlflow(environment: PreparedEnv) -> bool:
    """True when the run's locked package list holds ``mlflow`` or ``mlflow-skinny``."""
    packages = environment.details.get("packages") or ()
    return any(_normalised(str(entry)) in MLFLOW_PACKAGES for entry in packages)


def _normalised(requirement: str) -> str:
    name = re.split(r"[=<>!~;\[ @]", requirement, maxsplit=1)[0]
    return _SEPARATORS.sub("-", name).lower()  # PEP 503: MLflow_Skinny is mlflow-skinny


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@contextmanager
def mlflow_variables(
    run_id: str,
    experiment: str,
    store: Store,
    *,
    wanted: bool,
    addresses: Callable[[], Sequence[str]],
    progress: Progress,
) -> Iterator[dict[str, str]]:
    """The variables for the entry point, for as long as the run lasts.

    Against a tracking server, always: MLflow's client talks to the server itself. Against a
    database, only when ``wanted`` (the env has MLflow, or ``--mlflow-api``): the runner then
    serves the API on ``addresses()`` (what the backend's entry points can reach) until the
    block ends."""
    uri = tracking_uri()
    if is_server(uri):
        yield server_variables(uri, run_id, experiment, progress)
        return
    if not wanted:
        yield {}
        return
    from runner.server.mlflow.embedded import EmbeddedApi

    api = EmbeddedApi(None, addresses()).start()
    try:
        yield {
            "MLFLOW_TRACKING_URI": api.url,
            "MLFLOW_TRACKING_TOKEN": api.token,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": _local_experiment_id(store, experiment),
            # the client would print links to this API's address, which has no web UI
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        }
    finally:
        api.close()
        if api.error is not None:
            progress(f"warning: the run's MLflow API failed: {api.error!r}")


def server_variables(uri: str, run_id: str, experiment: str, progress: Progress) -> dict[str, str]:
    variables = {"MLFLOW_TRACKING_URI": uri.rstrip("/"), "MLFLOW_RUN_ID": run_id}
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        variables["MLFLOW_TRACKING_TOKEN"] = token
    experiment_id = _server_experiment_id(uri, experiment, token, progress)
    if experiment_id is not None:
        variables["MLFLOW_EXPERIMENT_ID"] = experiment_id
    return variables


def _local_experiment_id(store: Store, experiment: str) -> str:
    create = getattr(store, "create_experiment", None)
    return str(create(experiment)) if create is not None else ""


def _server_experiment_id(
    uri: str, experiment: str, token: str | None, progress: Progress
) -> str | None:
    """The server's MLflow id of the run's experiment, asked through its MLflow API."""
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"experiment_name": experiment})
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=LOOKUP_TIMEOUT
        ) as response:
            found: Any = json.load(response)
        return str(found["experiment"]["experiment_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        progress(f"warning: MLFLOW_EXPERIMENT_ID is not set: the server did not say ({exc})")
        return None
