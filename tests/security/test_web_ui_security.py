"""The web UI's security rules against a real server: every logged value is text, no page
leaves a run's files, and off loopback nothing is shown without the token."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.server.app import Settings
from runner.store import NewRun
from runner.store.core import SqlRunStore
from runner.store.open import open_store
from runner.ui.session import COOKIE, session_value
from tests.live_server import serving

SECRET = "top-secret-marker-8d1f"
TOKEN = "ui-token-for-tests"
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "';alert(1);//",
    "</pre><script>alert(1)</script>",
    "<svg onload=alert(1)>",
    "{{ 7*7 }}",
    "javascript:alert(1)",
    "&lt;script&gt;",
]
# Every tag the templates themselves write inside <main>: a logged value adds none.
TEMPLATE_TAGS = {
    "a", "button", "caption", "circle", "code", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "form", "g", "h1", "h2", "h3", "input", "label",
    "legend", "li", "line", "nav", "option", "p", "polyline", "pre", "section", "select",
    "span", "strong", "summary", "svg", "table", "tbody", "td", "text", "th", "thead",
    "time", "title", "tr", "ul",
}  # fmt: skip


class Page(HTMLParser):
    """The tags, attributes and the text of each ``td.value`` cell of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag == "td" and ("class", "value") in attrs:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def injected(page: Page) -> list[str]:
    """Anything a value could have added: a script, a handler attribute, a foreign tag."""
    found = []
    for tag, attrs in page.tags:
        if tag == "script" and attrs != [("src", "/ui/static/ui.js"), ("defer", None)]:
            found.append(f"script {attrs}")
        found += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
        head = {"html", "head", "meta", "title", "link", "script", "body", "header", "main"}
        if tag not in TEMPLATE_TAGS | head:
            found.append(tag)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SqlRunStore, Path]]:
    root = tmp_path_factory.mktemp("ui_served")
    uri = f"sqlite:///{root / 'server.db'}"
    store = open_store(uri)
    assert isinstance(store, SqlRunStore)
    (root / "secret.txt").write_text(SECRET)
    with serving(Settings(store_uri=uri, artifact_root=str(root / "art"))) as url:
        yield url, store, root
    store.close()


def logged_run(store: SqlRunStore, value: str) -> str:
    run_id = store.create_run(
        NewRun(
            experiment="xss",
            entry_point="main",
            command=f"echo {value}",
            backend="local",
            parameters={"value": value},
            source={"uri": value, "commit": value},
            environment={"manager": value, "lock": value},
            run_name=value,
            tags={"value": value},
        )
    )
    store.log_metrics(run_id, [("m", 1.0, 0, 0)])
    store.finish_run(run_id, "FAILED", 1, value)  # type: ignore[arg-type]
    return run_id


values = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60),
    st.lists(st.sampled_from(["<", ">", "&", '"', "'", "/", "script", "=", " "])).map("".join),
).filter(lambda text: text.strip() != "")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_a_logged_value_is_only_ever_text(
    served: tuple[str, SqlRunStore, Path], value: str
) -> None:
    url, store, _ = served
    run_id = logged_run(store, value)
    other = logged_run(store, "plain")
    for path in (
        f"/ui/runs/{run_id}",
        "/ui/runs?experiment=xss",
        f"/ui/compare?run={run_id}&run={other}",
    ):
        answer = requests.get(url + path, timeout=30)
        assert answer.status_code == 200, path
        page = parsed(answer.text)
        assert injected(page) == [], (path, value)
        assert value in page.cells or path.startswith("/ui/runs?"), (path, value)
        assert "script-src 'self'" in answer.headers["content-security-policy"]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.one_of(
        st.sampled_from(
            ["../../secret.txt", "..", "../plan.json", "/etc/passwd", "a/../../x", "%2e%2e/x",
             "..%2fsecret.txt", "a\\..\\..\\secret.txt", "files/../../secret.txt"]
        ),
        st.lists(st.sampled_from(["..", ".", "a", "%2e", "secret.txt", "/", "\\"]), max_size=6).map(
            "/".join
        ),
    )
)  # fmt: skip
def test_no_artifact_page_serves_a_file_outside_the_runs_files(
    served: tuple[str, SqlRunStore, Path], path: str
) -> None:
    url, store, root = served
    run_id = logged_run(store, "files")
    beside = root / "art" / run_id
    beside.mkdir(parents=True, exist_ok=True)
    (beside / "plan.json").write_text(SECRET)  # the runner's own file, not an artifact
    for page in ("artifacts", "download"):
        found = _raw_get(url, f"/ui/runs/{run_id}/{page}?path={quote(path, safe='/')}")
        assert found[0] in (200, 400, 404), (page, path, found[0])
        assert SECRET not in found[1], (page, path)


def _raw_get(url: str, target: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """GET ``target`` exactly as written; (status, body, headers)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", target, headers=headers)
        answer = conn.getresponse()
        body = answer.read().decode("utf-8", errors="replace")
        return answer.status, body, {k.lower(): v for k, v in answer.getheaders()}
    finally:
        conn.close()


def test_an_html_artifact_is_downloaded_never_rendered(
    served: tuple[str, SqlRunStore, Path],
) -> None:
    url, store, root = served
    run_id = logged_run(store, "html")
    files = root / "art" / run_id / "files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "report.html").write_text("<script>alert(1)</script>")
    status, body, headers = _raw_get(url, f"/ui/runs/{run_id}/download?path=report.html")
    assert status == 200 and body == "<script>alert(1)</script>"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == 'attachment; filename="report.html"'
    assert headers["x-content-type-options"] == "nosniff"
    status, body, _ = _raw_get(url, f"/ui/runs/{run_id}/artifacts?path=report.html")
    assert status == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("ui_guarded")
    uri = f"sqlite:///{root / 'server.db'}"
    store = open_store(uri)
    run_id = logged_run(store, "guarded")  # type: ignore[arg-type]
    store.close()
    with serving(Settings(store_uri=uri, token=TOKEN)) as url:
        yield url, run_id


def ui_pages(run_id: str) -> list[str]:
    return [
        "/ui/runs",
        f"/ui/runs/{run_id}",
        f"/ui/runs/{run_id}/log",
        f"/ui/runs/{run_id}/values?key=m",
        f"/ui/runs/{run_id}/artifacts",
        f"/ui/runs/{run_id}/download?path=a",
        f"/ui/compare?run={run_id}&run={run_id}",
        f"/ui/workflows/{run_id}",
        "/ui/static/../runs",
        "/ui/static/ui.css/../../runs",
    ]


def test_without_the_token_every_ui_page_sends_the_browser_to_sign_in(
    guarded: tuple[str, str],
) -> None:
    url, run_id = guarded
    forged = f"{COOKIE}={session_value(b'another-token')}"
    for page in ui_pages(run_id):
        for headers in ({}, {"Cookie": forged}, {"Authorization": "Bearer wrong"}):
            status, body, answer = _raw_get(url, page, **headers)
            assert (status, answer.get("location")) == (303, "/ui/login"), (page, headers)
            assert "guarded" not in body
    status, body, _ = _raw_get(url, "/ui/login")
    assert status == 200 and "This server needs its token" in body


def test_the_session_cookie_reads_ui_pages_and_nothing_else(guarded: tuple[str, str]) -> None:
    url, run_id = guarded
    cookie = {"Cookie": f"{COOKIE}={session_value(TOKEN.encode())}"}
    status, body, _ = _raw_get(url, f"/ui/runs/{run_id}", **cookie)
    assert status == 200 and "guarded" in body
    for method, path in (("GET", "/api/runs"), ("POST", f"/api/runs/{run_id}/tags")):
        answer = requests.request(method, url + path, headers=cookie, json={}, timeout=30)
        assert answer.status_code == 401, (method, path)
        assert answer.json()["message"] == "a valid token is required (Authorization: Bearer ...)"
    posted = requests.post(f"{url}/ui/runs", headers=cookie, timeout=30, allow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == "/ui/login"


def test_the_login_form_takes_only_the_exact_token(guarded: tuple[str, str]) -> None:
    url, _ = guarded
    origin = {"Origin": url}
    for wrong in ("", "ui-token-for-test", TOKEN + "x", TOKEN.upper()):
        answer = requests.post(
            f"{url}/ui/login", data={"token": wrong}, headers=origin, timeout=30,
            allow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 401 and "That token is not this server" in answer.text
        assert COOKIE not in answer.cookies
    answer = requests.post(
        f"{url}/ui/login", data={"token": TOKEN}, headers=origin, timeout=30,
        allow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/runs"
    assert answer.cookies[COOKIE] == session_value(TOKEN.encode())
    foreign = requests.post(
        f"{url}/ui/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"},
        timeout=30, allow_redirects=False,
    )  # fmt: skip
    assert foreign.status_code == 403 and foreign.json()["error"] == "origin-not-allowed"
