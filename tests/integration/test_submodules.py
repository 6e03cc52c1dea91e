"""Submodules are fetched only when asked, and local file:// ones only for local projects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.errors import SourceError
from runner.source import git
from tests.helpers import records, run_cli


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=path)
    for name, text in files.items():
        (path / name).write_text(text)
    _git("add", ".", cwd=path)
    _git("commit", "-q", "-m", "init", cwd=path)
    return path


@pytest.fixture
def project_with_submodule(tmp_path: Path) -> Path:
    sub = _repo(tmp_path / "sub", {"data.txt": "from the submodule\n"})
    main = _repo(
        tmp_path / "main", {"MLproject": 'entry_points:\n  main: {command: "cat lib/data.txt"}\n'}
    )
    _git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub.as_uri(), "lib", cwd=main
    )
    _git("commit", "-q", "-m", "add submodule", cwd=main)
    return main


def test_submodules_are_not_fetched_unless_asked(project_with_submodule: Path) -> None:
    result = run_cli("run", project_with_submodule.as_uri())
    assert result.returncode == 1
    assert "lib/data.txt: No such file or directory" in result.stderr
    assert records()[0]["status"] == "FAILED"


def test_recurse_submodules_fetches_them(project_with_submodule: Path) -> None:
    result = run_cli("run", project_with_submodule.as_uri(), "--recurse-submodules", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the submodule\n"


def test_versioned_local_repo_with_submodules(project_with_submodule: Path) -> None:
    args = ("run", str(project_with_submodule), "-v", "main", "--recurse-submodules", "-q")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the submodule\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project_with_submodule,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert status.stdout == ""  # the user's working tree is untouched


def test_file_submodules_of_a_remote_project_are_refused(
    project_with_submodule: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    git.private_checkout(project_with_submodule, "HEAD", checkout)
    with pytest.raises(SourceError, match="Unable to fetch the submodules of the project"):
        git.update_submodules(checkout, allow_file=False)
    assert not (checkout / "lib" / "data.txt").exists()
