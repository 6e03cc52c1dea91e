"""Safe zip extraction and size-capped downloads for zipped projects."""

from __future__ import annotations

import errno
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from runner.errors import SourceError
from runner.redact import strip_credentials

if TYPE_CHECKING:
    import requests

MAX_MEMBERS = 10_000
MAX_BYTES = 1 << 30  # 1 GiB, uncompressed (and for the download itself)
_CHUNK = 1 << 16
_MAX_REDIRECTS = 10
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
                if (target := member_path(info, dest)) is not None:
                    _extract_member(zf, info, target, budget)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as exc:
        raise SourceError(f"{archive.name} is not a valid zip file: {exc}") from None


def _extract_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: _Budget
) -> None:
    try:
        _write_member(zf, info, target, budget)
    except OSError as exc:
        raise _member_error(info.filename, target, exc) from None


def _member_error(name: str, target: Path, exc: OSError) -> SourceError:
    """One clear message for what the file system refused (a zip may hold anything)."""
    if exc.errno == errno.ENAMETOOLONG:
        shown = name if len(name) <= 60 else f"{name[:60]}..."
        return SourceError(f"Zip file member {shown} has a name too long for this file system")
    if isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError):
        return _clash(name, target)
    return SourceError(f"Could not extract zip file member {name}: {exc.strerror or exc}")


def _clash(name: str, target: Path) -> SourceError:
    if file := next((p for p in target.parents if p.is_file()), None):
        depth = len(target.relative_to(file).parts)  # `a/b` after a file `a`
        outer = "/".join(PurePosixPath(name.replace("\\", "/")).parts[:-depth])
        return SourceError(f"Zip file member {name} is inside {outer}, which the zip has as a file")
    if target.is_file() and not name.endswith("/"):
        return SourceError(f"Zip file member {name} appears twice")
    return SourceError(f"Zip file member {name} is both a file and a directory in the zip")


def _write_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: _Budget
) -> None:
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "xb") as out:
        _copy(src, out, budget)
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
    """Stream an http(s) URL into `dest`, stopping at `max_bytes`.

    The URL's credentials go to its own origin only: requests drops them on a redirect to
    another one (urllib forwarded them). Redirects stay on http(s).
    """
    import requests

    clean, auth = _split_credentials(url)
    try:
        with requests.Session() as session:
            session.max_redirects = _MAX_REDIRECTS
            session.hooks["response"].append(_http_only)
            _save(session, clean, auth, dest, _Budget(max_bytes, f"Download of {clean}"), timeout)
    except requests.TooManyRedirects:
        why = f"more than {_MAX_REDIRECTS} redirects"
        raise SourceError(f"Could not download {clean}: {why}") from None
    except (requests.RequestException, OSError) as exc:
        raise SourceError(f"Could not download {clean}: {_why(exc, timeout)}") from None


def _save(
    session: requests.Session, url: str, auth: tuple[str, str] | None, dest: Path,
    budget: _Budget, timeout: float,
) -> None:  # fmt: skip
    headers = {"User-Agent": "runner"}
    with session.get(url, auth=auth, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code >= 400:
            reason = f"HTTP {response.status_code} {response.reason}"
            raise SourceError(f"Could not download {url}: {reason}")
        with open(dest, "xb") as out:
            for chunk in response.iter_content(_CHUNK):
                budget.spend(len(chunk))
                out.write(chunk)


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    parts = urlsplit(url)
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if parts.username is None:
        return clean, None
    return clean, (unquote(parts.username), unquote(parts.password or ""))


def _http_only(response: requests.Response, *args: object, **kwargs: object) -> None:
    """requests would fail on a redirect to ftp:// with a cryptic message; say what happened."""
    if response.is_redirect:
        target = urljoin(response.url, response.headers["location"])
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise SourceError(f"Refusing to follow a redirect to {strip_credentials(target)}")


def _why(exc: BaseException, timeout: float) -> str:
    """The root cause (`Connection refused`), not requests' and urllib3's wrappers around it."""
    import requests

    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(exc)
