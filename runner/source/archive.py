"""Safe zip extraction and size-capped downloads for zipped projects."""

from __future__ import annotations

import os
import re
import stat
import urllib.error
import urllib.request
import zipfile
import zlib
from http.client import HTTPMessage
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from runner.errors import SourceError

MAX_MEMBERS = 10_000
MAX_BYTES = 1 << 30  # 1 GiB, uncompressed (and for the download itself)
_CHUNK = 1 << 16
_DRIVE = re.compile(r"^[A-Za-z]:")
_ALLOWED_KINDS = (0, stat.S_IFREG, stat.S_IFDIR)  # 0: made on a system that records no mode


class _Budget:
    """Counts bytes actually written, so a lying header cannot smuggle a zip bomb through."""

    def __init__(self, limit: int, what: str) -> None:
        self.left, self.limit, self.what = limit, limit, what

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise SourceError(f"{self.what} is larger than the limit of {self.limit} bytes")


def extract_zip(
    archive: Path, dest: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES
) -> None:
    """Extract `archive` into `dest`, refusing links, special files, escapes and zip bombs."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > max_members:
                raise SourceError(f"Zip file {archive.name} has more than {max_members} members")
            dest.mkdir(parents=True, exist_ok=True)
            budget = _Budget(max_bytes, f"Zip file {archive.name} (uncompressed)")
            for info in members:
                _extract_member(zf, info, dest, budget)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as exc:
        raise SourceError(f"{archive.name} is not a valid zip file: {exc}") from None


def _extract_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: _Budget
) -> None:
    target = member_path(info, dest)
    if target is None:
        return
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as src, open(target, "xb") as out:
            _copy(src, out, budget)
    except FileExistsError:
        raise SourceError(f"Zip file member {info.filename} appears twice") from None
    if (info.external_attr >> 16) & 0o111:
        mode = target.stat().st_mode
        target.chmod(mode | (mode & 0o444) >> 2)  # +x wherever readable, as `chmod +x` would


def member_path(info: zipfile.ZipInfo, dest: Path) -> Path | None:
    """Where `info` goes under `dest`, or a SourceError if it must not be extracted at all."""
    name = info.filename
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise SourceError(f"Zip file member {name} is a symbolic link, which is not allowed")
    if kind not in _ALLOWED_KINDS:
        raise SourceError(f"Zip file member {name} is a device or special file")
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or _DRIVE.match(name) or ".." in parts.parts:
        raise SourceError(f"Zip file member {name} attempts path traversal")
    if not parts.parts:
        return None
    target = dest.joinpath(*parts.parts)
    # belt and braces: nothing above creates links, but check the real path anyway
    if not os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep):
        raise SourceError(f"Zip file member {name} attempts path traversal")
    return target


def _copy(src: IO[bytes], out: IO[bytes], budget: _Budget) -> None:
    while chunk := src.read(_CHUNK):
        budget.spend(len(chunk))
        out.write(chunk)


def download(url: str, dest: Path, *, max_bytes: int = MAX_BYTES, timeout: float = 60.0) -> None:
    """Stream an http(s) URL into `dest`, stopping at `max_bytes`; credentials go in a header."""
    clean, auth = _split_credentials(url)
    request = urllib.request.Request(clean, headers={"User-Agent": "runner"})
    if auth:
        request.add_header("Authorization", auth)
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    try:
        with opener.open(request, timeout=timeout) as response, open(dest, "xb") as out:
            _copy(response, out, _Budget(max_bytes, f"Download of {clean}"))
    except urllib.error.HTTPError as exc:
        raise SourceError(f"Could not download {clean}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise SourceError(f"Could not download {clean}: {why}") from None


def _split_credentials(url: str) -> tuple[str, str | None]:
    import base64

    parts = urlsplit(url)
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.username is None:
        return clean, None
    pair = f"{parts.username}:{parts.password or ''}".encode()
    return clean, "Basic " + base64.b64encode(pair).decode()


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect to ftp://; a project download stays on http(s)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
        headers: HTTPMessage, newurl: str,
    ) -> urllib.request.Request | None:  # fmt: skip
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise SourceError(f"Refusing to follow a redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)
