"""``runs:/<run-id>/<artifact-path>`` URIs: an artifact of a recorded run, as a local copy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from runner.errors import ParameterError, RunnerError
from runner.home import run_artifacts_dir

if TYPE_CHECKING:
    from runner.store import Store

SCHEME = "runs:/"
FILES = "files"  # where log_artifact puts a run's artifacts, under its artifacts directory


def split_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/ID/a/b`` → (``ID``, ``a/b``); the path must stay inside the run's artifacts."""
    rest = uri[len(SCHEME) :].lstrip("/")
    run_id, _, path = rest.partition("/")
    parts = PurePosixPath(path).parts
    if not run_id or not path or ".." in parts or path.startswith("/"):
        raise ParameterError(
            f"{uri!r} is not a runs:/<run-id>/<artifact-path> URI inside the run's artifacts"
        )
    return run_id, "/".join(parts)


def artifact_path(run_id: str, path: str) -> Path:
    """Where the artifact ``path`` of the full run id ``run_id`` lives in this store."""
    root = (run_artifacts_dir(run_id) / FILES).resolve()
    found = (root / path).resolve()
    if not found.is_relative_to(root):  # a symlink in the artifacts must not lead out
        raise ParameterError(f"artifact {path!r} of run {run_id} leads outside its artifacts")
    return found


class ArtifactCopies:
    """Resolves ``runs:/`` values of path parameters to private local copies (removed with the
    run that uses them), so a step can never change the artifact of the run it read."""

    def __init__(self, inputs_dir: Path | None = None) -> None:
        self.copies: list[Path] = []
        self.root = Path("/")  # the artifacts folder of the run being copied from
        self.inputs_dir = inputs_dir  # None: the system's temporary folder
        self.source = ""  # runs:/<full-run-id>/<path> of the last copy made

    def __call__(self, name: str, uri: str) -> str:
        """The local copy of the artifact ``uri`` names: from this machine's RUNNER_HOME when
        the run's files are here (a local run keeps them here even when the store is a
        server), else from the tracking server the store is."""
        from runner.store.open import open_store

        run_id, path = split_runs_uri(uri)
        store = open_store()
        try:
            full_id = _full_run_id(name, store, run_id)
            source = artifact_path(full_id, path)
            self.root = (run_artifacts_dir(full_id) / FILES).resolve()
            local = source.exists()
            copy = self._copy(source) if local else self._fetch(name, store, full_id, path)
        finally:
            store.close()
        if copy is None:
            raise ParameterError(
                f"parameter '{name}': run {full_id} has no artifact {path!r}",
                hint=f"`runner runs show {full_id[:8]}` shows the run; its artifacts are "
                + _where_artifacts_are(store, full_id),
            )
        self.source = f"{SCHEME}{full_id}/{path}"
        return str(copy)

    def _links_out(self, folder: str, names: list[str]) -> set[str]:
        return _links_out_of(self.root, folder, names)

    def _holder(self) -> Path:
        if self.inputs_dir is not None:
            self.inputs_dir.mkdir(parents=True, exist_ok=True)
        holder = Path(tempfile.mkdtemp(prefix="runner-input-", dir=self.inputs_dir))
        self.copies.append(holder)
        return holder

    def _fetch(self, name: str, store: Store, run_id: str, path: str) -> Path | None:
        """A copy fetched from the tracking server; None when the store is not one, or the
        server has nothing at ``path``."""
        from runner.execution.artifact_fetch import fetch_artifact
        from runner.store.rest import RestStore

        if not isinstance(store, RestStore):
            return None
        target = self._holder() / (PurePosixPath(path).name or FILES)
        try:
            found = fetch_artifact(store, run_id, path, target)
        except RunnerError as exc:
            raise ParameterError(f"parameter '{name}': {exc.message}", hint=exc.hint) from exc
        return target if found else None

    def _copy(self, source: Path) -> Path:
        target = self._holder() / source.name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, ignore=self._links_out)
        else:
            shutil.copy2(source, target)
        return target


def _links_out_of(root: Path, folder: str, names: list[str]) -> set[str]:
    """Links in a copied folder that lead outside the run's artifacts are left out."""
    base = Path(folder)
    return {n for n in names if (base / n).is_symlink() and not _inside(root, base / n)}


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def has_artifact(store: Store, run_id: str, path: str) -> bool:
    """Whether the full run id ``run_id`` has an artifact at ``path``, here or on the server."""
    from runner.store.rest import RestStore

    if artifact_path(run_id, path).exists():
        return True
    return isinstance(store, RestStore) and bool(store.list_artifacts(run_id, path))


def _where_artifacts_are(store: Store, run_id: str) -> str:
    from runner.store.rest import RestStore

    if isinstance(store, RestStore):
        return f"on the tracking server {store.base_url}"
    return f"in {run_artifacts_dir(run_id) / FILES}"


def _full_run_id(name: str, store: Store, run_id: str) -> str:
    """The full id of the run ``run_id`` (a prefix is enough) names, asked of the store."""
    try:
        return store.get_run(run_id).run_id
    except RunnerError as exc:
        raise ParameterError(f"parameter '{name}': {exc.message}", hint=exc.hint) from exc
