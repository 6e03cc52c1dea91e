"""Untracked files in the recorded patch: contents within the caps, names beyond, repo untouched."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

import runner.source.untracked as untracked
from runner.source.fetch import fetch_project
from tests.helpers import record, run_cli, write_project


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = write_project(
        tmp_path / "work",
        {
            "MLproject": "entry_points:\n  main:\n    command: python train.py\n",
            "train.py": "print('hi')\n",
            ".gitignore": "mlruns/\n*.log\n",
        },
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    return path


def _state(repo: Path) -> tuple[bytes, list[str]]:
    """The user's index bytes and the object files: what reading the tree must not change."""
    objects = sorted(str(p) for p in (repo / ".git" / "objects").rglob("*") if p.is_file())
    return (repo / ".git" / "index").read_bytes(), objects


def test_only_ignored_files_leave_the_tree_clean(repo: Path) -> None:
    write_project(repo, {"mlruns/0/meta.yaml": "x\n", "train.log": "x\n"})
    result = fetch_project(str(repo))
    assert (result.provenance.dirty, result.diff, result.provenance.diff_digest) == (
        False, None, None,
    )  # fmt: skip


def test_untracked_files_are_in_the_patch_and_it_applies(repo: Path, tmp_path: Path) -> None:
    write_project(repo, {"conf/params.yaml": "lr: 0.1\n", "train.py": "print('edited')\n"})
    (repo / "weights.bin").write_bytes(bytes(range(256)))
    (repo / "latest").symlink_to("train.py")
    before = _state(repo)
    result = fetch_project(str(repo))
    assert result.provenance.dirty is True
    assert result.diff is not None
    assert b"new file mode 120000" in result.diff and b"GIT binary patch" in result.diff
    assert _state(repo) == before  # neither the index nor the object database was written
    assert "??" in git(repo, "status", "--porcelain")  # still untracked for the user
    # the commit plus the patch rebuild the working tree, untracked files included
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    patch = tmp_path / "run.patch"
    patch.write_bytes(result.diff)
    git(clone, "apply", "--binary", str(patch))
    for name in ("conf/params.yaml", "train.py", "weights.bin"):
        assert (clone / name).read_bytes() == (repo / name).read_bytes()
    assert (clone / "latest").readlink() == Path("train.py")


def test_files_past_the_caps_are_named_not_copied(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(untracked, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(untracked, "MAX_TOTAL_BYTES", 2 << 20)
    (repo / "big.csv").write_bytes(b"x" * ((1 << 20) + 1))
    for name in ("a.bin", "b.bin", "c.bin"):  # 0.9 MiB each: the third passes the total cap
        (repo / name).write_bytes(b"y" * 900_000)
    (repo / "small.txt").write_text("kept\n")
    result = fetch_project(str(repo))
    assert result.diff is not None
    head = result.diff.split(b"diff --git", 1)[0].decode()
    assert head.splitlines() == [
        "# runner: 2 untracked file(s) not in this patch (caps: 1 MiB per file, 2 MiB in all, "
        "2,000 files):",
        "#   big.csv (1,048,577 bytes, over the 1 MiB per-file cap)",
        "#   c.bin (900,000 bytes, past the 2 MiB total cap)",
    ]
    for kept in (b"a.bin", b"b.bin", b"small.txt"):
        assert b"diff --git a/" + kept in result.diff
    assert b"diff --git a/big.csv" not in result.diff and b"diff --git a/c.bin" not in result.diff
    patch = tmp_path / "run.patch"
    patch.write_bytes(result.diff)  # the note is text git apply skips
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "apply", "--binary", str(patch))
    assert (clone / "small.txt").read_text() == "kept\n" and not (clone / "big.csv").exists()


def test_a_name_with_a_newline_cannot_forge_a_patch_line(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(untracked, "MAX_FILE_BYTES", 4)
    (repo / "x\ndiff --git a_MLproject").write_text("too big\n")
    result = fetch_project(str(repo))
    assert result.diff is not None
    assert result.diff.decode().splitlines() == [
        "# runner: 1 untracked file(s) not in this patch (caps: 4 bytes per file, 8 MiB in all, "
        "2,000 files):",
        '#   "x\\ndiff --git a_MLproject" (8 bytes, over the 4 bytes per-file cap)',
    ]


def test_untracked_files_outside_the_project_dir_are_left_out(repo: Path) -> None:
    write_project(repo, {"sub/MLproject": "entry_points: {}\n"})
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "sub")
    write_project(repo, {"outside.txt": "no\n", "sub/inside.txt": "yes\n"})
    result = fetch_project(f"{repo}#sub")
    assert result.diff is not None
    assert b"+++ b/sub/inside.txt" in result.diff and b"outside" not in result.diff


def test_a_run_keeps_the_untracked_files_in_its_patch_artifact(
    repo: Path, runner_home: Path
) -> None:
    write_project(repo, {"notes.md": "what I tried\n"})
    result = run_cli("run", str(repo))
    assert result.returncode == 0, result.stderr
    run_id = result.stderr.split("run ", 1)[1].split()[0]
    patch = (runner_home / "artifacts" / run_id / "git-diff.patch").read_bytes()
    assert b"+++ b/notes.md\n@@ -0,0 +1 @@\n+what I tried\n" in patch
    rec = record(run_id)
    assert rec["source"]["dirty"] is True
    assert rec["source"]["diff_digest"] == hashlib.sha256(patch).hexdigest()
