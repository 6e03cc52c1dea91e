"""Where the files a run logs live: a local folder (RUNNER_HOME/artifacts) or an S3 bucket."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from runner.errors import RunnerError

# A run's logged files sit under ``<root>/<run-id>/files/``, beside what the runner keeps for
# the run itself (plan.json, the log): the server serves only ``files/``, never the rest.
FILES = "files"
MAX_PATH = 1024
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")
COPY_CHUNK = 1024 * 1024


class ArtifactError(RunnerError):
    """An artifact cannot be stored or read."""

    code = "artifact-error"


class UnsafeArtifactPath(ArtifactError):
    """An artifact path that could leave the run's artifacts (or is not a plain path)."""

    code = "unsafe-artifact-path"


class ArtifactNotFound(ArtifactError):
    """No artifact at that path."""

    code = "artifact-not-found"


@dataclass(frozen=True)
class ArtifactEntry:
    """One file or folder of a run's artifacts; ``path`` is relative to the run's files."""

    path: str
    is_dir: bool
    size: int | None  # bytes of a file; None for a folder


class ArtifactStore(Protocol):
    """The files of runs, addressed by run id and a contained relative path."""

    def write(self, run_id: str, path: str, data: BinaryIO) -> int:
        """Store ``data`` (read to its end) as the file ``path``; returns the bytes written."""
        ...

    def open(self, run_id: str, path: str) -> BinaryIO:
        """The file ``path`` for reading; ArtifactNotFound if there is none."""
        ...

    def list(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """The entries directly inside folder ``path`` (empty if it does not exist), sorted."""
        ...


def contained_artifact_path(path: str) -> str:
    """``path`` normalised to ``a/b/c`` (``""`` for the root), or UnsafeArtifactPath saying why.

    Refused: NUL and control characters, backslashes, percent-encoded sequences (the path was
    decoded once already; a second decoding must never change it), absolute paths and drive
    letters, and ``..`` segments. Empty and ``.`` segments are dropped.
    """
    if not isinstance(path, str):
        raise UnsafeArtifactPath(f"artifact path {path!r} is not text")
    reason = _unsafe_reason(path)
    if reason:
        raise UnsafeArtifactPath(f"artifact path {path!r} is refused: {reason}")
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def _unsafe_reason(path: str) -> str | None:
    if len(path) > MAX_PATH:
        return f"it is longer than {MAX_PATH} characters"
    if "\x00" in path:
        return "it contains a NUL character"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "it contains a control character"
    if "\\" in path:
        return "it contains a backslash"
    if _PERCENT.search(path):
        return "it contains a percent-encoded sequence"
    if path.startswith("/") or _DRIVE.match(path):
        return "it is absolute"
    if ".." in path.split("/"):
        return "it has a '..' segment"
    return None


def check_run_id(run_id: str) -> str:
    """A full run id (32 hex digits): the first segment of every artifact location."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise UnsafeArtifactPath(f"run id {run_id!r} is not a full run id")
    return run_id


def default_artifact_root() -> str:
    """Where runs keep their files today: ``RUNNER_HOME/artifacts``."""
    from runner.home import artifacts_root

    return str(artifacts_root())


def open_artifact_store(root: str | None = None) -> ArtifactStore:
    """The artifact store at ``root``: a local folder (or ``file://`` URL) or ``s3://bucket/prefix``.

    boto3 is imported only for an S3 root; its endpoint and credentials come from boto3's own
    configuration (``AWS_ENDPOINT_URL`` for an S3-compatible server).
    """
    root = root or default_artifact_root()
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        if not bucket:
            raise ArtifactError(f"artifact root {root!r} names no bucket (s3://bucket/prefix)")
        return S3ArtifactStore(bucket, prefix.strip("/"))
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" in root:
        scheme = root.split("://", 1)[0]
        raise ArtifactError(
            f"artifact root {root!r}: the {scheme}:// scheme is not supported",
            hint="use a local folder or s3://bucket/prefix",
        )
    return LocalArtifactStore(Path(root))


class LocalArtifactStore:
    """Artifacts in a local folder: ``<root>/<run-id>/files/<path>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, run_id: str, path: str, data: BinaryIO) -> int:
        target = self._file(run_id, path)
        self._contained(run_id, target.parent)  # a folder on the way may be a symlink
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ArtifactError(
                f"artifact {path!r} cannot be written: a file is in the way of its folder"
            ) from exc
        self._contained(run_id, target.parent)
        if target.is_dir():
            raise ArtifactError(f"artifact {path!r} is a folder; cannot write a file there")
        # temp file + rename: a reader never sees half a file, a failed upload leaves nothing
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                written = _copy(data, out)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return written

    def open(self, run_id: str, path: str) -> BinaryIO:
        target = self._contained(run_id, self._file(run_id, path))
        if not target.is_file():
            raise ArtifactNotFound(f"run {run_id} has no artifact file {path!r}")
        return open(target, "rb")  # the caller streams and closes it

    def list(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        relative = contained_artifact_path(path)
        folder = self._contained(run_id, self._files(run_id) / relative)
        if folder.is_file():
            return [ArtifactEntry(relative, False, folder.stat().st_size)]
        if not folder.is_dir():
            return []
        return sorted(self._entries(run_id, folder, relative), key=lambda entry: entry.path)

    def _entries(self, run_id: str, folder: Path, relative: str) -> Iterator[ArtifactEntry]:
        for child in folder.iterdir():
            if child.name.startswith(".upload-"):
                continue  # an upload still being written
            try:
                self._contained(run_id, child)
            except UnsafeArtifactPath:
                continue  # a symlink out of the run's files is not one of its artifacts
            name = f"{relative}/{child.name}" if relative else child.name
            is_dir = child.is_dir()
            yield ArtifactEntry(name, is_dir, None if is_dir else child.stat().st_size)

    def _files(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id) / FILES

    def _file(self, run_id: str, path: str) -> Path:
        relative = contained_artifact_path(path)
        if not relative:
            raise UnsafeArtifactPath("artifact path '' names no file")
        return self._files(run_id) / relative

    def _contained(self, run_id: str, target: Path) -> Path:
        """``target`` with symlinks resolved, refused if that leaves the run's files."""
        base = self._files(run_id).resolve()
        resolved = target.resolve()
        if resolved != base and base not in resolved.parents:
            raise UnsafeArtifactPath(
                f"artifact path {target.relative_to(self._files(run_id))!s} is refused: "
                "it leads out of the run's artifacts through a symlink"
            )
        return resolved


def _copy(data: IO[bytes], out: IO[bytes]) -> int:
    written = 0
    while chunk := data.read(COPY_CHUNK):
        out.write(chunk)
        written += len(chunk)
    return written


class _Counting:
    """A reader that counts what is read through it (boto3 reads the upload itself)."""

    def __init__(self, data: BinaryIO) -> None:
        self._data = data
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.count += len(chunk)
        return chunk


class S3ArtifactStore:
    """Artifacts in an S3 (or S3-compatible) bucket: ``<prefix>/<run-id>/files/<path>``."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError as exc:
                raise ArtifactError(
                    "an s3:// artifact root needs boto3",
                    hint="pip install 'runner[s3]'",
                ) from exc
            self._client = boto3.client("s3")
        return self._client

    def write(self, run_id: str, path: str, data: BinaryIO) -> int:
        relative = contained_artifact_path(path)
        if not relative:
            raise UnsafeArtifactPath("artifact path '' names no file")
        counting = _Counting(data)
        self.client.upload_fileobj(counting, self.bucket, self._key(run_id, relative))
        return counting.count

    def open(self, run_id: str, path: str) -> BinaryIO:
        key = self._key(run_id, contained_artifact_path(path))
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey as exc:
            raise ArtifactNotFound(f"run {run_id} has no artifact file {path!r}") from exc
        return cast(BinaryIO, found["Body"])

    def list(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        relative = contained_artifact_path(path)
        base = self._key(run_id, "")
        prefix = self._key(run_id, relative) + "/" if relative else base
        entries: list[ArtifactEntry] = []
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for folder in page.get("CommonPrefixes", []):
                entries.append(ArtifactEntry(folder["Prefix"][len(base) :].rstrip("/"), True, None))
            for item in page.get("Contents", []):
                entries.append(ArtifactEntry(item["Key"][len(base) :], False, int(item["Size"])))
        if not entries and relative:
            # ``path`` may name a file, which lists as itself (as in a local folder)
            return _s3_file(self.client, self.bucket, self._key(run_id, relative), relative)
        return sorted(entries, key=lambda entry: entry.path)

    def _key(self, run_id: str, relative: str) -> str:
        parts = [self.prefix, check_run_id(run_id), FILES]
        base = "/".join(part for part in parts if part) + "/"
        return base + relative


def _s3_file(client: Any, bucket: str, key: str, relative: str) -> list[ArtifactEntry]:
    from botocore.exceptions import ClientError

    try:
        found = client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return []
    return [ArtifactEntry(relative, False, int(found["ContentLength"]))]
