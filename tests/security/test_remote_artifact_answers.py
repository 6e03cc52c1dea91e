"""A tracking server's artifact listing can never make a runs:/ copy write outside itself.

No real runner server answers such listings, so a deliberately hostile one stands in: a real
HTTP server on a loopback port that lists whatever the test says, read by the real client.
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

from runner.errors import StoreError
from runner.execution.artifact_fetch import fetch_artifact
from runner.store.rest import RestStore

RUN = "0123456789abcdef0123456789abcdef"
PARTS = st.sampled_from(["..", ".", "", "data", "a", "/", "b\\c", "x\x00", "C:"])


class Hostile:
    """What the server answers: listings by folder, and the bytes of every file it is asked."""

    def __init__(self) -> None:
        self.listings: dict[str, Any] = {}
        self.body = b"x"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path.endswith("/artifacts"):
                    folder = parse_qs(url.query).get("path", [""])[0]
                    listing = hostile.listings.get(folder, [])
                    self._send(json.dumps({"root": folder, "files": listing}).encode())
                else:
                    self._send(hostile.body)

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        return Answer


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[Hostile, RestStore]]:
    answers = Hostile()
    server = ThreadingHTTPServer(("127.0.0.1", 0), answers.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    store = RestStore(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield answers, store
    finally:
        store.close()
        server.shutdown()
        server.server_close()
        thread.join(10)


def entry(path: str, is_dir: bool = False, size: int | None = 1) -> dict[str, Any]:
    return {"path": path, "is_dir": is_dir, "size": None if is_dir else size}


def everything_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize(
    "answered",
    ["../evil", "data/../../evil", "data/sub/../../../evil", "other/evil", "/etc/evil", "data/.."],
)
def test_a_listed_path_outside_the_folder_is_refused(
    hostile: tuple[Hostile, RestStore], tmp_path: Path, answered: str
) -> None:
    answers, store = hostile
    answers.listings = {"data": [entry("data/fine.txt"), entry(answered)]}
    (tmp_path / "copy").mkdir()
    with pytest.raises(StoreError) as refused:
        fetch_artifact(store, RUN, "data", tmp_path / "copy" / "data")
    assert refused.value.message == (
        f"the tracking server listed {answered!r} in folder 'data' of run {RUN}: "
        "that is not a name inside the folder, so the copy is refused"
    )
    assert refused.value.hint == "the server is not a runner server, or a broken one"
    # the listing is checked before anything of it is fetched
    assert everything_under(tmp_path / "copy") == [tmp_path / "copy" / "data"]


def test_a_listing_of_the_root_must_name_single_segments(
    hostile: tuple[Hostile, RestStore], tmp_path: Path
) -> None:
    answers, store = hostile
    answers.listings = {"": [entry("a"), entry("../b")]}
    with pytest.raises(StoreError) as refused:
        fetch_artifact(store, RUN, "", tmp_path / "files")
    assert f"listed '../b' in its artifacts of run {RUN}:" in refused.value.message
    assert not (tmp_path / "files" / "a").exists()


def test_a_listing_that_is_not_one_is_refused(
    hostile: tuple[Hostile, RestStore], tmp_path: Path
) -> None:
    answers, store = hostile
    answers.listings = {"data": [{"path": 3, "is_dir": False, "size": 1}]}
    with pytest.raises(StoreError) as refused:
        fetch_artifact(store, RUN, "data", tmp_path / "data")
    assert refused.value.message.startswith(
        f"the tracking server {store.base_url} answered an artifact listing of run {RUN} "
        "that is not one"
    )


def test_a_download_shorter_than_listed_is_refused(
    hostile: tuple[Hostile, RestStore], tmp_path: Path
) -> None:
    answers, store = hostile
    answers.listings = {"model.bin": [entry("model.bin", size=10)]}
    answers.body = b"abc"
    with pytest.raises(StoreError) as refused:
        fetch_artifact(store, RUN, "model.bin", tmp_path / "model.bin")
    assert refused.value.message == (
        f"artifact 'model.bin' of run {RUN} came incomplete from the tracking server: 3 of 10 bytes"
    )
    answers.body = b"x"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(PARTS, min_size=1, max_size=5), is_dir=st.booleans())
def test_no_listing_writes_outside_the_copy(
    hostile: tuple[Hostile, RestStore], parts: list[str], is_dir: bool
) -> None:
    answers, store = hostile
    answered = "/".join(parts)
    answers.listings = {"data": [entry(answered, is_dir)], answered: [entry(answered + "/x")]}
    with tempfile.TemporaryDirectory() as sandbox:
        target = Path(sandbox) / "holder" / "data"
        target.parent.mkdir()
        try:
            fetch_artifact(store, RUN, "data", target)
        except StoreError as exc:
            assert "that is not a name inside the folder" in exc.message
        written = everything_under(Path(sandbox))
        assert all(path == target.parent or path.is_relative_to(target) for path in written)
