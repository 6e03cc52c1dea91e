"""A pod's runs:/ input fetch (runner_inputs.py) never writes outside the path it fetches to.

The script runs in pods, but it is plain Python: here it fetches over real HTTP from a
deliberately hostile server on a loopback port that lists whatever the test says. Its naming
rules must be runner's own (runner.execution.artifact_fetch), answer for answer.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.kubernetes.pod_inputs import FetchError, Server, child_name, fetch
from runner.errors import StoreError
from runner.execution.artifact_fetch import _child_name

RUN = "0123456789abcdef0123456789abcdef"
PARTS = st.sampled_from(["..", ".", "", "data", "a", "/", "b\\c", "x\x00", "C:"])


class Hostile:
    """Listings by folder, the bytes of every file asked, and the status of every answer."""

    def __init__(self) -> None:
        self.listings: dict[str, Any] = {}
        self.body = b"x"
        self.status = 200

    def handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if hostile.status != 200:
                    body = {"error": "unauthorized", "message": "a valid token is required"}
                    self._send(json.dumps(body).encode(), hostile.status)
                elif url.path.endswith("/artifacts"):
                    folder = parse_qs(url.query).get("path", [""])[0]
                    listing = hostile.listings.get(folder, [])
                    self._send(json.dumps({"root": folder, "files": listing}).encode())
                else:
                    self._send(hostile.body)

            def _send(self, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        return Answer


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[Hostile, Server]]:
    answers = Hostile()
    http = ThreadingHTTPServer(("127.0.0.1", 0), answers.handler())
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield answers, Server(f"http://127.0.0.1:{http.server_address[1]}", "a-token")
    finally:
        http.shutdown()
        http.server_close()
        thread.join(10)


def entry(path: str, is_dir: bool = False, size: int | None = 1) -> dict[str, Any]:
    return {"path": path, "is_dir": is_dir, "size": None if is_dir else size}


@pytest.mark.parametrize(
    "answered",
    ["../evil", "data/../../evil", "data/sub/../../../evil", "other/evil", "/etc/evil", "data/.."],
)
def test_a_listed_path_outside_the_folder_is_refused_before_anything_is_written(
    hostile: tuple[Hostile, Server], tmp_path: Path, answered: str
) -> None:
    answers, server = hostile
    answers.listings = {"data": [entry("data/fine.txt"), entry(answered)]}
    target = tmp_path / "inputs" / "data"
    with pytest.raises(FetchError) as refused:
        fetch(server, f"runs:/{RUN}/data", target)
    assert str(refused.value) == (
        f"the tracking server listed {answered!r} in folder 'data' of run {RUN}: "
        "that is not a name inside the folder, so the copy is refused"
    )
    assert sorted(tmp_path.rglob("*")) == [tmp_path / "inputs", target]


def test_a_missing_artifact_says_where_it_was_looked_for(
    hostile: tuple[Hostile, Server], tmp_path: Path
) -> None:
    answers, server = hostile
    answers.listings = {}
    with pytest.raises(FetchError) as missing:
        fetch(server, f"runs:/{RUN}/model.txt", tmp_path / "model.txt")
    assert str(missing.value).startswith(
        f"run {RUN} has no artifact 'model.txt' on the tracking server {server.base} "
        "(a run recorded into a database, not through this server"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_refusing_server_is_quoted(hostile: tuple[Hostile, Server], tmp_path: Path) -> None:
    answers, server = hostile
    answers.status = 401
    try:
        with pytest.raises(FetchError) as refused:
            fetch(server, f"runs:/{RUN}/model.txt", tmp_path / "model.txt")
    finally:
        answers.status = 200
    assert str(refused.value) == (
        f"the tracking server {server.base} refused: HTTP 401: a valid token is required"
    )


def test_a_download_shorter_than_listed_is_refused(
    hostile: tuple[Hostile, Server], tmp_path: Path
) -> None:
    answers, server = hostile
    answers.listings = {"model.bin": [entry("model.bin", size=10)]}
    answers.body = b"abc"
    try:
        with pytest.raises(FetchError) as refused:
            fetch(server, f"runs:/{RUN}/model.bin", tmp_path / "model.bin")
    finally:
        answers.body = b"x"
    assert str(refused.value) == f"artifact 'model.bin' of run {RUN} came incomplete: 3 of 10 bytes"


def test_a_folder_arrives_with_its_layout(hostile: tuple[Hostile, Server], tmp_path: Path) -> None:
    answers, server = hostile
    answers.listings = {
        "data": [entry("data/a.csv"), entry("data/sub", is_dir=True)],
        "data/sub": [entry("data/sub/b.csv")],
    }
    fetch(server, f"runs:/{RUN}/data", tmp_path / "deep" / "data")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert written == [
        "deep",
        "deep/data",
        "deep/data/a.csv",
        "deep/data/sub",
        "deep/data/sub/b.csv",
    ]
    assert (tmp_path / "deep" / "data" / "sub" / "b.csv").read_bytes() == b"x"


@settings(max_examples=300, deadline=None)
@given(folder=st.sampled_from(["", "data", "a/b"]), parts=st.lists(PARTS, min_size=1, max_size=4))
def test_the_pod_names_children_by_runners_own_rules(folder: str, parts: list[str]) -> None:
    answered = "/".join(parts) if not folder else f"{folder}/" + "/".join(parts)
    try:
        expected: str | None = _child_name(RUN, folder, answered)
    except StoreError:
        expected = None
    try:
        got: str | None = child_name(RUN, folder, answered)
    except FetchError:
        got = None
    assert got == expected


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(PARTS, min_size=1, max_size=5), is_dir=st.booleans())
def test_no_listing_writes_outside_the_target(
    hostile: tuple[Hostile, Server], parts: list[str], is_dir: bool
) -> None:
    answers, server = hostile
    answered = "/".join(parts)
    answers.listings = {"data": [entry(answered, is_dir)], answered: [entry(answered + "/x")]}
    with tempfile.TemporaryDirectory() as sandbox:
        target = Path(sandbox) / "holder" / "data"
        try:
            fetch(server, f"runs:/{RUN}/data", target)
        except FetchError as exc:
            assert "that is not a name inside the folder" in str(exc)
        written = sorted(Path(sandbox).rglob("*"))
        assert all(path == target.parent or path.is_relative_to(target) for path in written)
