"""Zipped projects: local, file:// and http(s) archives, and every way an archive can be hostile."""

from __future__ import annotations

import http.server
import stat
import threading
import warnings
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from runner.errors import SourceError
from runner.source import archive
from runner.source.fetch import fetch_project, remove_fetched

MLPROJECT = "name: zipped\nentry_points:\n  main:\n    command: python train.py\n"
PROJECT = {"MLproject": MLPROJECT, "train.py": "print('hi')\n", "sub/MLproject": MLPROJECT}


def make_zip(path: Path, files: dict[str, str] = PROJECT) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def add_raw(path: Path, name: str, data: bytes = b"x", mode: int = 0) -> Path:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as zf:
        warnings.simplefilter("ignore")  # duplicate names are part of some tests
        zf.writestr(info, data)
    return path


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An http.server on 127.0.0.1 serving tmp_path/www; yields (base URL, directory)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/to-ftp.zip":
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1/p.zip")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=www))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


# --- happy paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_local_zip_is_extracted_into_a_temp_dir(tmp_path: Path, tmp_root: Path, form: str) -> None:
    zipped = make_zip(tmp_path / "p.zip")
    uri = str(zipped) if form == "path" else zipped.as_uri()
    result = fetch_project(uri)
    assert result.cleanup_paths[0].parent == tmp_root
    assert tree(result.project_dir) == PROJECT
    assert result.provenance.record() == {
        "uri": uri, "subdirectory": None, "version": None, "commit": None, "branch": None,
        "repo_url": None, "dirty": None, "diff_digest": None,
    }  # fmt: skip
    remove_fetched(result)
    assert list(tmp_root.iterdir()) == []


def test_zip_subdirectory(tmp_path: Path) -> None:
    result = fetch_project(f"{make_zip(tmp_path / 'p.zip')}#sub")
    assert tree(result.project_dir) == {"MLproject": MLPROJECT}
    assert result.provenance.subdirectory == "sub"
    remove_fetched(result)


def test_http_zip_is_downloaded_and_extracted(server: tuple[str, Path], tmp_root: Path) -> None:
    base, www = server
    make_zip(www / "p.zip")
    result = fetch_project(f"{base}/p.zip")
    assert tree(result.project_dir) == PROJECT
    assert not (result.cleanup_paths[0] / "download.zip").exists()
    assert result.provenance.uri == f"{base}/p.zip"
    remove_fetched(result)


def test_http_credentials_are_not_recorded(server: tuple[str, Path]) -> None:
    base, www = server
    make_zip(www / "p.zip")
    url = base.replace("http://", "http://bob:t0ken@") + "/p.zip"
    result = fetch_project(url)
    assert result.provenance.uri == f"{base}/p.zip"
    remove_fetched(result)


def test_executable_bit_is_kept(tmp_path: Path) -> None:
    zipped = add_raw(make_zip(tmp_path / "p.zip"), "run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o755)
    result = fetch_project(str(zipped))
    assert (result.project_dir / "run.sh").stat().st_mode & 0o100
    assert not (result.project_dir / "train.py").stat().st_mode & 0o100
    remove_fetched(result)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("../evil.txt", 0, "Zip file member ../evil.txt attempts path traversal"),
        ("a/../../evil.txt", 0, "Zip file member a/../../evil.txt attempts path traversal"),
        ("/tmp/evil.txt", 0, "Zip file member /tmp/evil.txt attempts path traversal"),
        ("..\\evil.txt", 0, "Zip file member ..\\evil.txt attempts path traversal"),
        ("C:/evil.txt", 0, "Zip file member C:/evil.txt attempts path traversal"),
        ("link", stat.S_IFLNK | 0o777,
         "Zip file member link is a symbolic link, which is not allowed"),
        ("dev", stat.S_IFCHR | 0o644, "Zip file member dev is a device or special file"),
        ("fifo", stat.S_IFIFO | 0o644, "Zip file member fifo is a device or special file"),
        ("MLproject", 0, "Zip file member MLproject appears twice"),
    ],
)  # fmt: skip
def test_hostile_members_are_refused(
    tmp_path: Path, tmp_root: Path, name: str, mode: int, message: str
) -> None:
    zipped = add_raw(make_zip(tmp_path / "p.zip"), name, b"/etc/passwd", mode)
    with pytest.raises(SourceError) as exc:
        fetch_project(str(zipped))
    assert exc.value.message == message
    assert list(tmp_root.iterdir()) == []  # the half-extracted dir is gone
    assert not (tmp_path / "evil.txt").exists()


def test_uncompressed_size_is_capped_while_streaming(tmp_path: Path) -> None:
    zipped = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 5_000_000)  # compresses to ~5 kB
    assert zipped.stat().st_size < 50_000
    with pytest.raises(SourceError) as exc:
        archive.extract_zip(zipped, tmp_path / "out", max_bytes=1_000_000)
    assert exc.value.message == (
        "Zip file bomb.zip (uncompressed) is larger than the limit of 1000000 bytes"
    )


def test_member_count_is_capped(tmp_path: Path) -> None:
    zipped = make_zip(tmp_path / "many.zip", {f"f{i}": "" for i in range(11)})
    with pytest.raises(SourceError) as exc:
        archive.extract_zip(zipped, tmp_path / "out", max_members=10)
    assert exc.value.message == "Zip file many.zip has more than 10 members"
    assert not (tmp_path / "out").exists()


def test_default_caps() -> None:
    assert (archive.MAX_MEMBERS, archive.MAX_BYTES) == (10_000, 1 << 30)


def test_not_a_zip_file(tmp_path: Path) -> None:
    (tmp_path / "p.zip").write_text("not a zip")
    with pytest.raises(SourceError, match=r"^p\.zip is not a valid zip file: "):
        fetch_project(str(tmp_path / "p.zip"))


def test_version_on_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^Setting a version is only supported for Git project"):
        fetch_project(str(make_zip(tmp_path / "p.zip")), "v1")


def test_zip_subdirectory_cannot_escape(tmp_path: Path, tmp_root: Path) -> None:
    with pytest.raises(SourceError, match=r"^subdirectory '\.\./\.\.' escapes the project"):
        fetch_project(f"{make_zip(tmp_path / 'p.zip')}#../..")
    assert list(tmp_root.iterdir()) == []


def test_http_errors_are_reported(server: tuple[str, Path], tmp_root: Path) -> None:
    base, _ = server
    with pytest.raises(SourceError) as exc:
        fetch_project(f"{base}/missing.zip")
    assert exc.value.message == f"Could not download {base}/missing.zip: HTTP 404 File not found"
    assert list(tmp_root.iterdir()) == []


def test_download_size_is_capped(server: tuple[str, Path], tmp_path: Path) -> None:
    base, www = server
    (www / "big.zip").write_bytes(b"\0" * 200_000)
    with pytest.raises(SourceError) as exc:
        archive.download(f"{base}/big.zip", tmp_path / "out.zip", max_bytes=100_000)
    assert (
        exc.value.message == f"Download of {base}/big.zip is larger than the limit of 100000 bytes"
    )


def test_redirect_away_from_http_is_refused(server: tuple[str, Path]) -> None:
    base, _ = server
    with pytest.raises(SourceError, match=r"^Refusing to follow a redirect to ftp://"):
        fetch_project(f"{base}/to-ftp.zip")


def test_http_zip_url_hygiene(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'\$' is not allowed"):
        fetch_project("https://example.invalid/$AWS_SECRET_ACCESS_KEY.zip")
