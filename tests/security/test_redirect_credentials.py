"""A zip URL's credentials go to its own origin only, however the server redirects."""

from __future__ import annotations

import base64
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from runner.errors import SourceError
from runner.source.fetch import fetch_project, remove_fetched

MLPROJECT = "name: zipped\nentry_points:\n  main:\n    command: python -c pass\n"
CREDENTIALS = "Basic " + base64.b64encode(b"alice:s3cr%t").decode()


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("MLproject", MLPROJECT)
    return buffer.getvalue()


@dataclass
class Origin:
    """An HTTP server on 127.0.0.1 (its own port: its own origin) that logs what it was sent."""

    routes: dict[str, str] = field(default_factory=dict)  # path -> redirect target
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    url: str = ""


@pytest.fixture
def origins(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Origin, Origin]]:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    pair = (Origin(), Origin())
    servers = [_serve(origin) for origin in pair]
    yield pair
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(origin: Origin) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            origin.seen.append((self.path, self.headers.get("Authorization")))
            if self.path in origin.routes:
                self.send_response(302)
                self.send_header("Location", origin.routes[self.path])
                self.end_headers()
                return
            body = zipped()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    origin.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def with_credentials(url: str) -> str:
    return url.replace("http://", "http://alice:s3cr%25t@")


def test_a_redirect_to_another_origin_gets_no_credentials(origins: tuple[Origin, Origin]) -> None:
    first, second = origins
    first.routes["/p.zip"] = f"{second.url}/p.zip"
    fetched = fetch_project(with_credentials(f"{first.url}/p.zip"))
    remove_fetched(fetched)
    assert first.seen == [("/p.zip", CREDENTIALS)]
    assert second.seen == [("/p.zip", None)]


def test_a_redirect_within_the_origin_keeps_them(origins: tuple[Origin, Origin]) -> None:
    first, _ = origins
    first.routes["/old.zip"] = "/p.zip"
    remove_fetched(fetch_project(with_credentials(f"{first.url}/old.zip")))
    assert first.seen == [("/old.zip", CREDENTIALS), ("/p.zip", CREDENTIALS)]


def test_a_chain_back_and_forth_never_leaks(origins: tuple[Origin, Origin]) -> None:
    first, second = origins
    first.routes["/a.zip"] = f"{second.url}/b.zip"
    second.routes["/b.zip"] = f"{first.url}/c.zip"
    remove_fetched(fetch_project(with_credentials(f"{first.url}/a.zip")))
    assert second.seen == [("/b.zip", None)]
    assert first.seen[0] == ("/a.zip", CREDENTIALS)


def test_endless_redirects_are_a_clear_error(origins: tuple[Origin, Origin]) -> None:
    first, _ = origins
    first.routes["/loop.zip"] = "/loop.zip"
    with pytest.raises(SourceError) as exc:
        fetch_project(with_credentials(f"{first.url}/loop.zip"))
    assert exc.value.message == f"Could not download {first.url}/loop.zip: more than 10 redirects"


def test_a_redirect_away_from_http_names_the_target_without_credentials(
    origins: tuple[Origin, Origin],
) -> None:
    first, _ = origins
    first.routes["/p.zip"] = "ftp://bob:pw@127.0.0.1/p.zip"
    with pytest.raises(SourceError) as exc:
        fetch_project(with_credentials(f"{first.url}/p.zip"))
    assert exc.value.message == "Refusing to follow a redirect to ftp://127.0.0.1/p.zip"


def test_a_refused_connection_says_so() -> None:
    with pytest.raises(SourceError) as exc:
        fetch_project("http://127.0.0.1:1/p.zip")  # nothing listens on port 1
    assert exc.value.message == "Could not download http://127.0.0.1:1/p.zip: Connection refused"
