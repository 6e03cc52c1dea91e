"""``runs:/<run-id>/<artifact-path>`` URIs: an artifact of a recorded run, as a local copy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath

from runner.errors import ParameterError, RunnerError
from runner.home import run_artifacts_dir

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

    def __init__(self) -> None:
        self.copies: list[Path] = []
        self.root = Path("/")  # the artifacts folder of the run being copied from

    def __call__(self, name: str, uri: str) -> str:
        run_id, path = split_runs_uri(uri)
        full_id = _full_run_id(name, run_id)
        source = artifact_path(full_id, path)
        self.root = (run_artifacts_dir(full_id) / FILES).resolve()
        if not source.exists():
            raise ParameterError(
                f"parameter '{name}': run {full_id} has no artifact {path!r}",
                hint=f"`runner runs show {full_id[:8]}` shows the run; its artifacts are in "
                f"{run_artifacts_dir(full_id) / FILES}",
            )
        return str(self._copy(source))

    def _links_out(self, folder: str, names: list[str]) -> set[str]:
        return _links_out_of(self.root, folder, names)

    def _copy(self, source: Path) -> Path:
        holder = Path(tempfile.mkdtemp(prefix="runner-input-"))
        self.copies.append(holder)
        target = holder / source.name
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


def _full_run_id(name: str, run_id: str) -> str:
    from runner.store.open import open_store

    store = open_store()
    try:
        return store.get_run(run_id).run_id
    except RunnerError as exc:
        raise ParameterError(f"parameter '{name}': {exc.message}", hint=exc.hint) from exc
    finally:
        store.close()
