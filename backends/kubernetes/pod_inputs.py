"""A pod's ``runs:/`` inputs: each artifact fetched from the tracking server before the command.

Standard library only: it is copied into every pod image as ``/runner/lib/runner_inputs.py``
and runs with the image's own Python. ``RUNNER_INPUTS`` (JSON) maps each absolute path the
rendered command names to the ``runs:/<run-id>/<artifact-path>`` it is a copy of; the server is
``RUNNER_TRACKING_URI`` (``RUNNER_TRACKING_TOKEN`` its token). Any failure exits non-zero with
the reason on stderr, so the entry point never runs on missing inputs.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

INPUTS_VAR = "RUNNER_INPUTS"
SCHEME = "runs:/"
MAX_PATH = 1024  # the server stores no longer artifact path (runner.server.artifacts)
CHUNK = 1024 * 1024
TIMEOUT = 60
_REFUSED_NAMES = ("", ".", "..")


class FetchError(Exception):
    """Why an input could not be fetched, as the user reads it."""


def split_uri(uri: str) -> tuple[str, str]:
    """``runs:/ID/a/b`` → (``ID``, ``a/b``), as runner wrote it (a full id, a clean path)."""
    run_id, _, path = uri.removeprefix(SCHEME).partition("/")
    if not uri.startswith(SCHEME) or not run_id or not path:
        raise FetchError(f"{uri!r} is not a runs:/<run-id>/<artifact-path> URI")
    return run_id, path


def child_name(run_id: str, folder: str, answered: str) -> str:
    """The one path segment ``answered`` adds to ``folder``; anything else is refused, so no
    answer of the server can name a file outside the copy (runner's own artifact_fetch rules)."""
    prefix = f"{folder}/" if folder else ""
    name = answered[len(prefix) :]
    if (
        not answered.startswith(prefix)
        or len(answered) > MAX_PATH
        or name in _REFUSED_NAMES
        or any(char in name for char in "/\\\x00")
    ):
        raise FetchError(
            f"the tracking server listed {answered!r} in folder {folder!r} of run {run_id}: "
            "that is not a name inside the folder, so the copy is refused"
        )
    return name


class Server:
    """The tracking server's artifact API, as the pod reaches it."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def open(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path, headers=self.headers)
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"the tracking server {self.base} refused: {_message(exc)}") from exc
        except OSError as exc:
            raise FetchError(f"the tracking server {self.base} did not answer: {exc}") from exc

    def listing(self, run_id: str, path: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"path": path})
        with self.open(f"/api/runs/{_quoted(run_id)}/artifacts?{query}") as answer:
            try:
                answered = json.loads(answer.read())
            except ValueError:
                answered = None
        files = answered.get("files") if isinstance(answered, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise FetchError(f"the tracking server {self.base} answered a listing that is not one")
        return files

    def download(self, run_id: str, entry: dict[str, Any], target: Path) -> None:
        written = 0
        url = f"/api/runs/{_quoted(run_id)}/artifacts/files/{_quoted(str(entry['path']))}"
        with self.open(url) as answer, open(target, "xb") as out:
            while chunk := answer.read(CHUNK):
                written += out.write(chunk)
        if entry.get("size") is not None and written != entry["size"]:
            raise FetchError(
                f"artifact {entry['path']!r} of run {run_id} came incomplete: "
                f"{written} of {entry['size']} bytes"
            )


def _quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="/")


def _message(error: urllib.error.HTTPError) -> str:
    """The server's own message (runner answers JSON with ``message``), else the status."""
    try:
        body = json.loads(error.read())
    except (OSError, ValueError):
        body = None
    if isinstance(body, dict) and "message" in body:
        return f"HTTP {error.code}: {body['message']}"
    return f"HTTP {error.code}"


def fetch(server: Server, uri: str, target: Path) -> None:
    """The artifact ``uri`` names, written to the new ``target`` (a file, or a whole folder)."""
    run_id, path = split_uri(uri)
    entries = server.listing(run_id, path)
    if not entries:
        raise FetchError(
            f"run {run_id} has no artifact {path!r} on the tracking server {server.base} "
            "(a run recorded into a database, not through this server, keeps its files on "
            "the machine it ran on)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if len(entries) == 1 and entries[0].get("path") == path and not entries[0].get("is_dir"):
        server.download(run_id, entries[0], target)
        return
    target.mkdir()
    _fetch_folder(server, run_id, path, entries, target)


def _fetch_folder(
    server: Server, run_id: str, folder: str, entries: list[dict[str, Any]], target: Path
) -> None:
    named = [(child_name(run_id, folder, str(entry.get("path"))), entry) for entry in entries]
    for name, entry in named:
        child = target / name
        if entry.get("is_dir"):
            child.mkdir()
            inside = server.listing(run_id, str(entry["path"]))
            _fetch_folder(server, run_id, str(entry["path"]), inside, child)
        else:
            server.download(run_id, entry, child)


def main() -> int:
    inputs: dict[str, str] = json.loads(os.environ.get(INPUTS_VAR) or "{}")
    server = Server(
        os.environ.get("RUNNER_TRACKING_URI", ""), os.environ.get("RUNNER_TRACKING_TOKEN")
    )
    for target, uri in inputs.items():
        try:
            fetch(server, uri, Path(target))
        except (FetchError, OSError) as exc:
            print(f"runner: cannot fetch the input {uri} to {target}: {exc}", file=sys.stderr)
            return 1
        print(f"runner: fetched {uri} to {target}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
