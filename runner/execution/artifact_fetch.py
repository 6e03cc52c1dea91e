"""Local copies of a run's artifacts kept on a `runner server`: a file, or a folder, every file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import StoreError

if TYPE_CHECKING:
    from runner.server.artifacts import ArtifactEntry
    from runner.store.rest import RestStore

MAX_PATH = 1024  # the server stores no longer artifact path (runner.server.artifacts)
_REFUSED_NAMES = ("", ".", "..")


def fetch_artifact(store: RestStore, run_id: str, path: str, target: Path) -> bool:
    """Copy the artifact ``path`` (``""``: all of them) of ``run_id`` to the new ``target``,
    with the same layout; False when the server has nothing at ``path``."""
    entries = store.list_artifacts(run_id, path)
    if not entries:
        return False
    if len(entries) == 1 and entries[0].path == path and not entries[0].is_dir:
        _download(store, run_id, entries[0], target)
        return True
    target.mkdir()
    _fetch_folder(store, run_id, path, entries, target)
    return True


def _fetch_folder(
    store: RestStore, run_id: str, folder: str, entries: list[ArtifactEntry], target: Path
) -> None:
    named = [(_child_name(run_id, folder, entry.path), entry) for entry in entries]
    for name, entry in named:
        child = target / name
        if entry.is_dir:
            child.mkdir()
            inside = store.list_artifacts(run_id, entry.path)
            _fetch_folder(store, run_id, entry.path, inside, child)
        else:
            _download(store, run_id, entry, child)


def _child_name(run_id: str, folder: str, answered: str) -> str:
    """The one path segment ``answered`` adds to ``folder``; anything else is refused, so no
    answer of the server can name a file outside the copy."""
    prefix = f"{folder}/" if folder else ""
    name = answered[len(prefix) :]
    if (
        not answered.startswith(prefix)
        or len(answered) > MAX_PATH
        or name in _REFUSED_NAMES
        or any(char in name for char in "/\\\x00")
    ):
        where = f"folder {folder!r}" if folder else "its artifacts"
        raise StoreError(
            f"the tracking server listed {answered!r} in {where} of run {run_id}: "
            "that is not a name inside the folder, so the copy is refused",
            hint="the server is not a runner server, or a broken one",
        )
    return name


def _download(store: RestStore, run_id: str, entry: ArtifactEntry, target: Path) -> None:
    written = store.download_artifact(run_id, entry.path, target)
    if entry.size is not None and written != entry.size:
        raise StoreError(
            f"artifact {entry.path!r} of run {run_id} came incomplete from the tracking "
            f"server: {written} of {entry.size} bytes",
            hint="run it again; the artifact may be changing on the server",
        )
