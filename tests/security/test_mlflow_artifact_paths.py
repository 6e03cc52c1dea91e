"""The MLflow artifact proxy never writes outside the run's files, whatever path a client sends.

Against a real server over a socket: each path is sent as the client would (percent-encoded
once, so the server sees exactly that text) and as raw bytes in the request line.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.server.app import Settings
from runner.store import NewRun
from runner.store.open import open_store
from tests.live_server import serving

PIECES = st.sampled_from(
    ["..", ".", "", "a", "b.txt", "%2e%2e", "%2E%2e", "%252e%252e", "..%2f", "\\..", "/", "//",
     "~", "\x00", "%00", "..;", "\u2025", "\uff0e\uff0e", "C:", "files", "plan.json"]
)  # fmt: skip
PATHS = st.lists(st.one_of(PIECES, st.text(max_size=6)), min_size=1, max_size=6).map("/".join)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    root = tmp_path_factory.mktemp("mlflow-artifacts")
    db = f"sqlite:///{root / 'runner.db'}"
    store = open_store(db)
    run_id = store.create_run(NewRun("e", "main", "true", "local", {}, {}, {"manager": "local"}))
    store.close()
    with serving(Settings(store_uri=db, artifact_root=str(root / "artifacts"))) as url:
        yield url, root, run_id


def _put(url: str, target: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("PUT", target, skip_accept_encoding=True)
        connection.putheader("Content-Length", "1")
        connection.endheaders(b"x")
        return connection.getresponse().status
    except (http.client.InvalidURL, UnicodeEncodeError, ValueError):
        return 400  # the client side cannot even send it
    finally:
        connection.close()


def _outside(root: Path, run_id: str) -> list[str]:
    allowed = root / "artifacts" / run_id / "files"
    return [
        os.path.join(top, name)
        for top, _, names in os.walk(root / "artifacts")
        for name in names
        if not Path(top, name).resolve().is_relative_to(allowed.resolve())
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=PATHS)
def test_uploads_land_inside_the_runs_files_or_are_refused(
    server: tuple[str, Path, str], path: str
) -> None:
    url, root, run_id = server
    base = f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/"
    statuses = [_put(url, base + quote(path, safe="/")), _put(url, base + path)]
    # 307: a path no route takes (a newline), redirected by the router; nothing is written
    assert all(status in (200, 307, 400, 404, 405) for status in statuses), (path, statuses)
    assert _outside(root, run_id) == []


def test_a_plain_path_is_written_and_an_escape_is_refused_with_the_reason(
    server: tuple[str, Path, str],
) -> None:
    url, root, run_id = server
    base = f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/"
    assert _put(url, base + "plain/kept.txt") == 200
    assert (root / "artifacts" / run_id / "files" / "plain" / "kept.txt").read_bytes() == b"x"
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("PUT", base + "..%2Fplan.json", body=b"x")
    answer = connection.getresponse()
    assert answer.status == 400
    body = answer.read().decode()
    assert '"error_code":"INVALID_PARAMETER_VALUE"' in body
    assert "artifact path '../plan.json' is refused" in body
    connection.close()
