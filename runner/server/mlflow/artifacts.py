"""The ``mlflow-artifacts`` proxy: the client uploads, lists and downloads a run's files here.

Artifact URIs are ``mlflow-artifacts:/<run id>/<path>``; the client resolves them against its
own tracking URI, so the first path segment names the run and the rest is a path inside the
run's artifacts, normalised and contained by the artifact store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from runner.errors import RunnerError
from runner.server.mlflow import protocol as p

if TYPE_CHECKING:
    from runner.server.artifacts import ArtifactStore
    from runner.server.mlflow.runs import Runs

SPOOL_BYTES = 8 * 1024 * 1024  # an upload bigger than this waits on disk, not in memory
CHUNK = 1024 * 1024


class ArtifactProxy:
    """The handlers of ``/api/2.0/mlflow-artifacts/artifacts[/<run id>/<path>]``."""

    def __init__(self, artifacts: ArtifactStore, runs: Runs) -> None:
        self.artifacts = artifacts
        self.runs = runs

    async def upload(self, request: Request) -> Response:
        try:
            run_id, path = self._split(request.path_params.get("path", ""))
            with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
                async for chunk in request.stream():
                    spool.write(chunk)
                spool.seek(0)
                await run_in_threadpool(self._write, run_id, path, cast(BinaryIO, spool))
        except p.MlflowError as exc:
            return p.error_response(exc)
        except RunnerError as exc:
            return p.error_response(p.from_runner_error(exc))
        return p.json_response({})

    def _write(self, run_id: str, path: str, data: BinaryIO) -> None:
        self.runs.record(run_id)  # only a run that exists gets files
        try:
            self.artifacts.write(run_id, path, data)
        except (FileExistsError, NotADirectoryError) as exc:  # a folder on the way is a file
            raise p.invalid(
                "path", f"{path!r} goes through a file of the run: {exc.strerror}"
            ) from exc
        except OSError as exc:  # the server's own disk: say so, as JSON the client reads
            reason = exc.strerror or str(exc)
            raise p.MlflowError("INTERNAL_ERROR", f"cannot store {path!r}: {reason}", 500) from exc

    async def download(self, request: Request) -> Response:
        try:
            run_id, path = self._split(request.path_params.get("path", ""))
            stream = await run_in_threadpool(self._open, run_id, path)
        except p.MlflowError as exc:
            return p.error_response(exc)
        except RunnerError as exc:
            return p.error_response(p.from_runner_error(exc))
        return StreamingResponse(_chunks(stream), media_type="application/octet-stream")

    def _open(self, run_id: str, path: str) -> BinaryIO:
        self.runs.record(run_id)
        return self.artifacts.open(run_id, path)

    def list(self, fields: p.Fields) -> dict[str, Any]:
        """The entries directly inside ``path`` (``<run id>[/<folder>]``), named relative to it."""
        where = p.text(fields, "path", required=False).strip("/")
        if not where:
            return {"files": []}  # the root of every run's artifacts is not listed
        run_id, folder = self._split(where, folder=True)
        self.runs.record(run_id)
        files = []
        for entry in self.artifacts.list(run_id, folder):
            name = entry.path.rstrip("/").rsplit("/", 1)[-1]
            item: dict[str, Any] = {"path": name, "is_dir": entry.is_dir}
            if entry.size is not None:
                item["file_size"] = entry.size
            files.append(item)
        return {"files": files}

    @staticmethod
    def _split(full: str, *, folder: bool = False) -> tuple[str, str]:
        from runner.server.artifacts import contained_artifact_path

        run_id, _, path = full.strip("/").partition("/")
        if not run_id:
            raise p.MlflowError(p.INVALID, "an artifact path must start with a run id")
        contained = contained_artifact_path(path)
        if not contained and not folder:
            raise p.MlflowError(p.INVALID, f"artifact path {full!r} names no file of the run")
        return run_id, contained


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        stream.close()
