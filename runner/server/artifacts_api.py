"""The endpoints runs on other machines log through: journal records, artifact files, the log."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runner.errors import RunnerError
from runner.home import RUN_FILES
from runner.server import bodies
from runner.server.artifacts import (
    COPY_CHUNK,
    ArtifactNotFound,
    ArtifactStore,
    LocalArtifactStore,
    check_run_id,
    contained_artifact_path,
)
from runner.server.http import BadRequest, field, read_json, typed
from runner.store.core import SqlRunStore
from runner.store.keyed import Batch

MAX_RECORDS = 10_000  # per journal request; runner_tracking sends far fewer
SPOOL_IN_MEMORY = 1024 * 1024  # an upload larger than this is spooled to a temp file
KNOWN_KINDS = ("metric", "param", "tag")


class ArtifactsApi:
    """Artifact upload, listing and download, a run's output log, and the journal endpoint,
    over one store."""

    def __init__(self, store: SqlRunStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def routes(self) -> list[Route]:
        files = "/api/runs/{run_id}/artifacts/files/{path:path}"
        # under artifacts/: an upload's size limit is an artifact's, not a JSON request's
        run_file = "/api/runs/{run_id}/artifacts/run-files/{name}"
        return [
            Route("/api/runs/{run_id}/journal", self.journal, methods=["POST"]),
            Route("/api/runs/{run_id}/artifacts", self.list_artifacts, methods=["GET"]),
            Route(files, self.upload, methods=["PUT"]),
            Route(files, self.download, methods=["GET"]),
            Route(run_file, self.upload_run_file, methods=["PUT"]),
            Route(run_file, self.append_run_file, methods=["POST"]),
            Route(run_file, self.download_run_file, methods=["GET"]),
        ]

    async def journal(self, request: Request) -> JSONResponse:
        """Journal records (each with a unique ``id``): a record already applied is skipped,
        a bad record is refused with its reason and never costs the others."""
        body, run_id = await read_json(request), await self._run_id(request)
        records = typed(field(body, "records", list), list, "records")
        if len(records) > MAX_RECORDS:
            raise BadRequest("records", f"holds more than {MAX_RECORDS} records")
        batches, rejected, ignored = _parse_records(records)
        refused: list[dict[str, Any]] = []
        applied = await run_in_threadpool(self._apply, run_id, batches, refused)
        if rejected or refused:
            await run_in_threadpool(self._report, run_id, [*rejected, *refused])
        result = {
            "applied": applied,
            "duplicates": len(batches) - applied - len(refused),
            "ignored": ignored,
            "rejected": [*rejected, *refused],
        }
        return JSONResponse(result)

    def _apply(self, run_id: str, batches: dict[str, Batch], refused: list[Any]) -> int:
        """How many records were applied now; a record the store refuses goes to ``refused``."""
        try:
            return len(self.store.log_keyed(run_id, batches))
        except RunnerError as exc:
            if exc.code == "run-not-found":
                raise
            if len(batches) == 1:
                refused.append({"id": next(iter(batches)), "reason": exc.message})
                return 0
        # one record the store refuses (a param given a new value): the rest one at a time
        return sum(self._apply(run_id, {key: batch}, refused) for key, batch in batches.items())

    def _report(self, run_id: str, rejected: list[dict[str, Any]]) -> None:
        from runner.execution.ingest import WARNING_TAG

        first = rejected[0]["reason"]
        text = first if len(rejected) == 1 else f"{len(rejected)} logged records were refused; "
        text += "" if len(rejected) == 1 else f"the first: {first}"
        self.store.set_tags(run_id, {WARNING_TAG: text})

    async def upload(self, request: Request) -> JSONResponse:
        """Store the request body as one artifact file, streamed (never whole in memory)."""
        run_id, path = await self._run_id(request), _path(request)
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            size = await run_in_threadpool(self.artifacts.write, run_id, path, _binary(spool))
        return JSONResponse({"path": path, "size": size}, status_code=201)

    async def download(self, request: Request) -> Response:
        run_id, path = await self._run_id(request), _path(request)
        found = await run_in_threadpool(self.artifacts.list, run_id, path)
        if not (len(found) == 1 and found[0].path == path and not found[0].is_dir):
            raise ArtifactNotFound(f"run {run_id} has no artifact file {path!r}")
        source = await run_in_threadpool(self.artifacts.open, run_id, path)
        headers = {"content-length": str(found[0].size)}
        return StreamingResponse(
            _chunks(source), media_type="application/octet-stream", headers=headers
        )

    async def list_artifacts(self, request: Request) -> JSONResponse:
        run_id = await self._run_id(request)
        path = contained_artifact_path(request.query_params.get("path", ""))
        found = await run_in_threadpool(self.artifacts.list, run_id, path)
        entries = [{"path": e.path, "is_dir": e.is_dir, "size": e.size} for e in found]
        return JSONResponse({"root": path, "files": entries})

    async def upload_run_file(self, request: Request) -> JSONResponse:
        """Store the request body as one of the run's own files (RUN_FILES: its output log,
        diff...), replacing one sent before, where the web UI reads it; streamed."""
        run_id, name = await self._run_id(request), _run_file(request)
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            target = self._run_file_path(run_id, name)
            size = await run_in_threadpool(_replace_file, target, _binary(spool))
        return JSONResponse({"name": name, "size": size}, status_code=201)

    async def append_run_file(self, request: Request) -> JSONResponse:
        """Add the request body to the end of one of the run's own files, if it is
        ``?offset=`` bytes long now (its runner sends its log as it grows); otherwise 409
        with the size it has, from which the runner sends again."""
        run_id, name = await self._run_id(request), _run_file(request)
        offset = _offset(request)
        data = await request.body()  # one tick's worth of a log: small
        target = self._run_file_path(run_id, name)
        size = await run_in_threadpool(_append_at, target, offset, data)
        if size is None:
            current = await run_in_threadpool(_size, target)
            message = f"{name} of run {run_id} is {current} bytes long, not {offset}"
            body = {"error": "offset-mismatch", "message": message, "size": current}
            return JSONResponse(body, status_code=409)
        return JSONResponse({"name": name, "size": size})

    async def download_run_file(self, request: Request) -> Response:
        """One of the run's own files, from ``?offset=`` (default 0): the whole file sent at
        the end of the run, or what its runner has sent of its log while it runs."""
        run_id, name = await self._run_id(request), _run_file(request)
        offset = _offset(request)
        target = self._run_file_path(run_id, name)
        try:
            source = await run_in_threadpool(open, target, "rb")
        except FileNotFoundError:
            raise ArtifactNotFound(f"run {run_id} has no {name} on this server") from None
        size = os.fstat(source.fileno()).st_size
        source.seek(min(offset, size))
        headers = {"content-length": str(max(0, size - offset))}
        return StreamingResponse(_chunks(source), media_type="text/plain", headers=headers)

    def _run_file_path(self, run_id: str, name: str) -> Path:
        """Beside the run's ``files/`` in a local artifact root, else in this server's
        RUNNER_HOME: where ``runner.ui.views.Views._run_folder`` looks for it."""
        if isinstance(self.artifacts, LocalArtifactStore):
            return self.artifacts.root / check_run_id(run_id) / name
        from runner.home import run_artifacts_dir

        return run_artifacts_dir(check_run_id(run_id)) / name

    async def _run_id(self, request: Request) -> str:
        record = await run_in_threadpool(self.store.get_run, request.path_params["run_id"])
        return str(record.run_id)


def _parse_records(records: list[Any]) -> tuple[dict[str, Batch], list[dict[str, Any]], int]:
    """(batches by record id, refused records with reasons, records of unknown kinds)."""
    batches: dict[str, Batch] = {}
    rejected: list[dict[str, Any]] = []
    ignored = 0
    for index, record in enumerate(records):
        if isinstance(record, dict) and record.get("t") not in (*KNOWN_KINDS, None):
            ignored += 1  # a kind a newer runner_tracking knows: not an error
            continue
        try:
            record_id, batch = bodies.journal_record(record, f"records[{index}]")
        except BadRequest as exc:
            given = record.get("id") if isinstance(record, dict) else None
            rejected.append({"id": given, "reason": exc.message})
            continue
        batches[record_id] = batch
    return batches, rejected, ignored


def _offset(request: Request) -> int:
    text = request.query_params.get("offset", "0")
    if not text.isdigit():
        raise BadRequest("offset", "must be a whole number of bytes")
    return int(text)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _append_at(target: Path, offset: int, data: bytes) -> int | None:
    """``data`` added to ``target`` if it is ``offset`` bytes long (missing: 0); its new
    size, or None when it is not that long (one writer per run: its runner)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "ab") as out:
        if out.tell() != offset:
            return None
        out.write(data)
        return out.tell()


def _run_file(request: Request) -> str:
    name = str(request.path_params["name"])
    if name not in RUN_FILES:
        raise BadRequest("name", f"is not one of a run's own files ({', '.join(RUN_FILES)})")
    return name


def _path(request: Request) -> str:
    path = contained_artifact_path(request.path_params["path"])
    if not path:
        raise BadRequest("path", "names no file")
    return path


def _replace_file(target: Path, data: BinaryIO) -> int:
    """``data`` as the file ``target``: a temp file renamed into place, so a reader never
    sees half of it and a failed upload leaves the previous one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out, COPY_CHUNK)
            written = out.tell()
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return written


def _binary(spool: IO[bytes]) -> BinaryIO:
    return spool  # type: ignore[return-value]


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    with source:
        while chunk := source.read(COPY_CHUNK):
            yield chunk
