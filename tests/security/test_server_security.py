"""The tracking server's security rules, against a real server: token, Host/Origin, containment."""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.server.app import Settings
from runner.server.artifacts import UnsafeArtifactPath, contained_artifact_path
from tests.helpers import run_cli
from tests.live_server import free_port, server_process, serving

TOKEN = "s3cret-token-for-tests"
FIXTURES = [HealthCheck.function_scoped_fixture]  # module-scoped servers, shared on purpose


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server for the property tests: (its URL, the root holding its artifact root)."""
    root = tmp_path_factory.mktemp("served")
    settings = Settings(
        store_uri=f"sqlite:///{root / 'server.db'}", artifact_root=str(root / "art")
    )
    with serving(settings) as url:
        yield url, root


@pytest.fixture(scope="module")
def run_id(served: tuple[str, Path]) -> str:
    url, _ = served
    answer = requests.post(f"{url}/api/runs", json={"experiment": "sec"}, timeout=30)
    return str(answer.json()["run_id"])


def raw_request(url: str, method: str, path: str, body: bytes = b"", **headers: str) -> int:
    """Send ``path`` exactly as given (no client-side normalisation); returns the status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", headers.pop("host", f"127.0.0.1:{parts.port}"))
        for name, value in headers.items():
            conn.putheader(name.replace("_", "-"), value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse().status
    finally:
        conn.close()


def files_outside(root: Path, run_id: str) -> list[Path]:
    """Files under ``root`` that are not the store, the artifact root's run files, or WAL."""
    allowed = root / "art" / run_id / "files"
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith("server.db") and allowed not in path.parents
    ]


# -- artifact path containment, in every encoding ------------------------------------------

SEGMENTS = st.sampled_from(
    [
        "..", ".", "", "a", "b.txt", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "..%2f",
        "%2f", "%5c", "..%5c", "%00", "%2500", "..;", "%c0%ae%c0%ae", "\u2025", "~", "etc",
        "%2e%2e%2f%2e%2e", "....", "..%00", "passwd",
    ]
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    segments=st.lists(SEGMENTS, min_size=1, max_size=6), leading=st.sampled_from(["", "/", "//"])
)
def test_no_upload_lands_outside_the_runs_files(
    served: tuple[str, Path], run_id: str, segments: list[str], leading: str
) -> None:
    url, root = served
    raw = f"/api/runs/{run_id}/artifacts/files/{leading}" + "/".join(segments)
    path = "".join(char if ord(char) < 128 else quote(char) for char in raw)
    status = raw_request(url, "PUT", path, b"payload")
    assert status in (201, 400, 404, 405), (path, status)
    assert files_outside(root, run_id) == [], path
    if status == 201:  # what was stored is inside the run's files and reads back
        listed = requests.get(f"{url}/api/runs/{run_id}/artifacts", timeout=30)
        assert listed.status_code == 200


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=40))
def test_contained_paths_never_climb_or_start_absolute(text: str) -> None:
    try:
        found = contained_artifact_path(text)
    except UnsafeArtifactPath as exc:
        assert exc.message.startswith("artifact path ")  # every refusal says why
        return
    parts = found.split("/")
    assert ".." not in parts and "" not in parts[:-1] and not found.startswith("/")
    assert "\\" not in found and "\x00" not in found
    assert contained_artifact_path(found) == found  # normalised once is normalised
    assert os.path.normpath("/base/" + found).startswith("/base")
    assert not re.search("%[0-9a-fA-F]{2}", found)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../x", "it has a '..' segment"),
        ("a/%2e%2e/x", "it contains a percent-encoded sequence"),
        ("/etc/passwd", "it is absolute"),
        ("C:/x", "it is absolute"),
        ("a\\..\\x", "it contains a backslash"),
        ("a\x00b", "it contains a NUL character"),
        ("a\nb", "it contains a control character"),
    ],
)
def test_refused_paths_say_why(path: str, reason: str) -> None:
    with pytest.raises(UnsafeArtifactPath) as caught:
        contained_artifact_path(path)
    assert caught.value.message == f"artifact path {path!r} is refused: {reason}"


def test_a_symlink_out_of_the_run_is_refused(served: tuple[str, Path], run_id: str) -> None:
    url, root = served
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("secret")
    files = root / "art" / run_id / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "link").symlink_to(outside, target_is_directory=True)
    base = f"{url}/api/runs/{run_id}/artifacts"
    read = requests.get(f"{base}/files/link/secret.txt", timeout=30)
    assert read.status_code == 400
    assert read.json()["message"].endswith("it leads out of the run's artifacts through a symlink")
    write = requests.put(f"{base}/files/link/new.txt", data=b"x", timeout=30)
    assert write.status_code == 400 and not (outside / "new.txt").exists()
    listing = requests.get(base, timeout=30).json()["files"]
    assert "link" not in [entry["path"] for entry in listing]


# -- Host and Origin (DNS rebinding) --------------------------------------------------------

HOSTS = st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z]{2,6}){0,2}(:[0-9]{1,5})?", fullmatch=True)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(host=HOSTS)
def test_a_foreign_host_header_is_refused(served: tuple[str, Path], host: str) -> None:
    url, _ = served
    name = host.rsplit(":", 1)[0]
    expected = 200 if name == "localhost" else 403
    assert raw_request(url, "GET", "/api/health", host=host) == expected


def test_origin_of_another_site_is_refused_and_own_is_accepted(served: tuple[str, Path]) -> None:
    url, _ = served
    evil = requests.get(f"{url}/api/health", headers={"Origin": "http://evil.example"}, timeout=30)
    assert evil.status_code == 403 and evil.json()["error"] == "origin-not-allowed"
    null = requests.get(f"{url}/api/health", headers={"Origin": "null"}, timeout=30)
    assert null.status_code == 403
    own = requests.get(f"{url}/api/health", headers={"Origin": url}, timeout=30)
    assert own.status_code == 200


# -- the token ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("guarded")
    settings = Settings(store_uri=f"sqlite:///{root / 'server.db'}", token=TOKEN)
    with serving(settings) as url:
        yield url


def test_every_endpoint_needs_the_token(guarded: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    document = requests.get(f"{guarded}/api/openapi.json", headers=bearer, timeout=30).json()
    checked = 0
    for path, operations in document["paths"].items():
        concrete = path.replace("{run_id}", "0" * 32).replace("{path}", "a").replace("{name}", "n")
        for method in operations:
            answer = requests.request(method, f"{guarded}{concrete}", timeout=30)
            assert answer.status_code == 401, (method, path)
            assert answer.json()["error"] == "unauthorized"
            assert answer.json()["error_code"] == "UNAUTHENTICATED"  # as MLflow's client reads it
            assert answer.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked > 20
    assert requests.get(f"{guarded}/api/health", headers=bearer, timeout=30).status_code == 200


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=40))
def test_only_the_exact_token_is_accepted(guarded: str, token: str) -> None:
    answer = requests.get(
        f"{guarded}/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == (200 if token == TOKEN else 401)


def test_binding_off_loopback_needs_a_token(tmp_path: Path) -> None:
    refused = run_cli("server", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "error: binding to 0.0.0.0 lets other machines reach the server: it needs a token" in (
        refused.stderr
    )
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    no_token = run_cli("server", "--host", "0.0.0.0", "--token-file", str(empty))
    assert no_token.returncode == 2 and f"the token file {empty} is empty" in no_token.stderr


def test_a_server_off_loopback_refuses_requests_without_its_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    args = ("--host", "0.0.0.0", "--token-file", str(token_file))
    env = {"RUNNER_TRACKING_URI": f"sqlite:///{tmp_path / 's.db'}"}
    with server_process(port, env, args, token=TOKEN):
        url = f"http://127.0.0.1:{port}"
        answer = requests.get(f"{url}/api/runs", timeout=30)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert requests.get(f"{url}/api/runs", headers=bearer, timeout=30).status_code == 200


@pytest.fixture
def canary() -> Iterator[tuple[str, list[bytes]]]:
    """A listening socket that records any connection: the server must never open one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            seen.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/x", seen
    stop.set()
    thread.join(5)
    listener.close()


def test_the_server_never_fetches_a_url_it_is_given(
    served: tuple[str, Path], canary: tuple[str, list[bytes]]
) -> None:
    url, _ = served
    target, seen = canary
    body = {"experiment": "e", "source": {"uri": target}, "tags": {"artifact_uri": target}}
    run = requests.post(f"{url}/api/runs", json=body, timeout=30).json()["run_id"]
    requests.post(f"{url}/api/runs/{run}/params", json={"params": {"data": target}}, timeout=30)
    requests.put(f"{url}/api/runs/{run}/artifacts/files/{target}", data=b"x", timeout=30)
    requests.get(f"{url}/api/runs/{run}/artifacts", params={"path": target}, timeout=30)
    requests.post(f"{url}/api/runs/search", json={"experiment": target}, timeout=30)
    assert seen == []


def test_a_malformed_content_length_is_a_400(served: tuple[str, Path], run_id: str) -> None:
    url, _ = served
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(
            f"PUT /api/runs/{run_id}/artifacts/files/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Length: -5\r\n\r\n".encode()
        )
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer
