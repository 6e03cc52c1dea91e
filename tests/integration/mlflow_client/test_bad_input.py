"""Whatever JSON or query a client sends to the MLflow endpoints, the answer is MLflow's error
format with a 4xx (or a success), never a 500: hypothesis against a real server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.server.app import Settings
from runner.store import NewRun
from runner.store.open import open_store
from tests.live_server import serving

ENDPOINTS = [
    ("GET", "/experiments/get"), ("GET", "/experiments/get-by-name"),
    ("POST", "/experiments/create"), ("POST", "/experiments/search"), ("GET", "/runs/get"),
    ("POST", "/runs/create"), ("POST", "/runs/update"), ("POST", "/runs/search"),
    ("POST", "/runs/log-metric"), ("POST", "/runs/log-parameter"), ("POST", "/runs/set-tag"),
    ("POST", "/runs/log-batch"), ("POST", "/runs/log-model"), ("POST", "/runs/outputs"),
    ("GET", "/metrics/get-history"), ("POST", "/logged-models"),
    ("POST", "/logged-models/search"), ("GET", "/logged-models/m-x"),
    ("PATCH", "/logged-models/m-x"), ("PATCH", "/logged-models/m-x/tags"),
    ("POST", "/logged-models/m-x/params"),
]  # fmt: skip
FIELDS = ["run_id", "run_uuid", "key", "value", "step", "timestamp", "metrics", "params", "tags",
          "status", "end_time", "run_name", "experiment_id", "experiment_ids", "experiment_name",
          "name", "filter", "order_by", "max_results", "page_token", "metric_key", "model_json",
          "models", "model_id", "source_run_id"]  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(["NaN", "RUN", "FINISHED", "m-1", "0", "-1", "1e400"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), VALUES, max_size=6)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("mlflow-bad-input")
    db = f"sqlite:///{root / 'runner.db'}"
    store = open_store(db)
    run_id = store.create_run(NewRun("e", "main", "true", "local", {}, {}, {"manager": "local"}))
    store.close()
    with serving(Settings(store_uri=db, artifact_root=str(root / "artifacts"))) as url:
        yield url, run_id


def _send(url: str, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    target = "/api/2.0/mlflow" + path
    try:
        if method == "GET":
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            connection.request("GET", target + "?" + urlencode(query))
        else:
            data = json.dumps(body).encode()
            connection.request(
                method, target, body=data, headers={"Content-Type": "application/json"}
            )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(endpoint=st.sampled_from(ENDPOINTS), body=BODIES, use_run=st.booleans())
def test_bad_input_is_a_4xx_in_mlflows_error_format(
    server: tuple[str, str], endpoint: tuple[str, str], body: dict[str, Any], use_run: bool
) -> None:
    url, run_id = server
    if use_run:
        body = {**body, "run_id": run_id}
    status, answer = _send(url, *endpoint, body)
    assert status < 500, (endpoint, body, answer)
    if status >= 400:
        assert set(answer) == {"error_code", "message"}, answer
        assert answer["message"]
