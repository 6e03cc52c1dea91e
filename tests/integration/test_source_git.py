"""fetch_project with real git: local working copies, file:// remotes, the clone cache, safety."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from runner.errors import SourceError
from runner.source import git as rgit
from runner.source.fetch import FetchedProject, fetch_project, remove_fetched

MLPROJECT = "name: demo\nentry_points:\n  main:\n    command: python train.py\n"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@dataclass
class Repo:
    path: Path
    first: str  # sha of the first commit (tagged v1)
    feature: str  # tip of branch `feature`
    main: str  # tip of `main`


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_repo(path: Path) -> Repo:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    write(path / "MLproject", MLPROJECT)
    write(path / "train.py", "print('v1')\n")
    write(path / "sub" / "MLproject", MLPROJECT)
    write(path / "sub.dir" / "MLproject", MLPROJECT)
    write(path / ".gitignore", "*.log\nignored/\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    git(path, "tag", "-a", "v1", "-m", "release 1")
    first = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-qb", "feature")
    write(path / "train.py", "print('feature')\n")
    git(path, "commit", "-qam", "feature")
    feature = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "main")
    write(path / "train.py", "print('v2')\n")
    git(path, "commit", "-qam", "second")
    return Repo(path, first, feature, git(path, "rev-parse", "HEAD"))


@pytest.fixture
def repo(tmp_path: Path, tmp_root: Path) -> Repo:
    return make_repo(tmp_path / "work")


@pytest.fixture
def remote(repo: Repo, tmp_path: Path) -> str:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(bare))
    return bare.as_uri()


@pytest.fixture
def fetched() -> Iterator[list[FetchedProject]]:
    """Collects fetched projects and removes their temp dirs after the test."""
    seen: list[FetchedProject] = []
    yield seen
    for item in seen:
        remove_fetched(item)


def fetch(seen: list[FetchedProject], uri: str, version: str | None = None) -> FetchedProject:
    result = fetch_project(uri, version)
    seen.append(result)
    return result


def head_of(project: FetchedProject) -> str:
    return git(project.project_dir, "rev-parse", "HEAD")


# --- local working copies -------------------------------------------------------------------


def test_clean_local_repo_is_used_in_place(repo: Repo) -> None:
    result = fetch_project(str(repo.path))
    assert result.project_dir == repo.path.resolve()
    assert result.cleanup_paths == ()
    assert result.diff is None
    assert result.provenance.record() == {
        "uri": str(repo.path), "subdirectory": None, "version": None, "commit": repo.main,
        "branch": "main", "repo_url": repo.path.resolve().as_uri(), "dirty": False,
        "diff_digest": None,
    }  # fmt: skip


def test_modified_tracked_file_is_dirty_with_diff_and_digest(repo: Repo) -> None:
    (repo.path / "train.py").write_text("print('edited')\n")
    result = fetch_project(str(repo.path))
    assert result.provenance.dirty is True
    assert result.provenance.commit == repo.main
    assert result.diff is not None and b"+print('edited')" in result.diff
    assert result.provenance.diff_digest == hashlib.sha256(result.diff).hexdigest()


def test_binary_change_is_in_the_diff(repo: Repo) -> None:
    (repo.path / "weights.bin").write_bytes(bytes(range(256)))
    git(repo.path, "add", "weights.bin")
    git(repo.path, "commit", "-qm", "bin")
    (repo.path / "weights.bin").write_bytes(bytes(range(255, -1, -1)))
    result = fetch_project(str(repo.path))
    assert result.diff is not None and b"GIT binary patch" in result.diff


def test_untracked_file_is_dirty_but_ignored_file_is_not(repo: Repo) -> None:
    (repo.path / "run.log").write_text("ignored\n")
    assert fetch_project(str(repo.path)).provenance.dirty is False
    (repo.path / "notes.txt").write_text("new\n")
    result = fetch_project(str(repo.path))
    assert result.provenance.dirty is True
    assert result.diff is not None and b"+++ b/notes.txt\n@@ -0,0 +1 @@\n+new\n" in result.diff
    assert b"run.log" not in result.diff
    assert result.provenance.diff_digest == hashlib.sha256(result.diff).hexdigest()


def test_dirtiness_is_scoped_to_the_project_dir(repo: Repo) -> None:
    (repo.path / "train.py").write_text("changed outside sub\n")
    result = fetch_project(f"{repo.path}#sub")
    assert result.project_dir == (repo.path / "sub").resolve()
    assert result.provenance.subdirectory == "sub"
    assert result.provenance.dirty is False


def test_staged_change_is_dirty_and_index_is_not_rewritten(repo: Repo) -> None:
    (repo.path / "train.py").write_text("print('staged')\n")
    git(repo.path, "add", "train.py")
    index = repo.path / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    result = fetch_project(str(repo.path))
    assert result.provenance.dirty is True
    assert result.diff is not None and b"staged" in result.diff
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


def test_untracked_project_dir_inside_a_repo_records_head_and_dirty(repo: Repo) -> None:
    write(repo.path / "scratch" / "MLproject", MLPROJECT)
    prov = fetch_project(str(repo.path / "scratch")).provenance
    assert (prov.commit, prov.dirty) == (repo.main, True)


def test_ignored_project_dir_inside_a_repo_is_dirty(repo: Repo) -> None:
    write(repo.path / "ignored" / "proj" / "MLproject", MLPROJECT)
    prov = fetch_project(str(repo.path / "ignored" / "proj")).provenance
    assert (prov.commit, prov.dirty) == (repo.main, True)


def test_ignored_files_inside_project_do_not_make_it_dirty(repo: Repo) -> None:
    write(repo.path / "sub" / "ignored" / "cache.bin", "x")
    assert fetch_project(str(repo.path / "sub")).provenance.dirty is False


def test_detached_head_has_no_branch(repo: Repo) -> None:
    git(repo.path, "checkout", "-q", "--detach", repo.first)
    prov = fetch_project(str(repo.path)).provenance
    assert (prov.commit, prov.branch, prov.dirty) == (repo.first, None, False)


def test_unborn_branch_has_no_commit_and_no_diff(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    write(tmp_path / "MLproject", MLPROJECT)
    result = fetch_project(str(tmp_path))
    assert (result.provenance.commit, result.provenance.dirty, result.diff) == (None, True, None)


def test_non_git_dir_has_no_git_provenance(tmp_path: Path) -> None:
    write(tmp_path / "proj" / "MLproject", MLPROJECT)
    prov = fetch_project(str(tmp_path / "proj")).provenance
    assert (prov.commit, prov.branch, prov.repo_url, prov.dirty) == (None, None, None, None)


def test_remote_url_is_recorded_without_credentials(repo: Repo) -> None:
    git(repo.path, "remote", "add", "origin", "https://alice:s3cret@example.com/org/demo.git")
    prov = fetch_project(str(repo.path)).provenance
    assert prov.repo_url == "https://example.com/org/demo.git"
    assert "s3cret" not in repr(prov.record())


def test_missing_git_leaves_local_provenance_empty(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert fetch_project(str(repo.path)).provenance.commit is None
    with pytest.raises(SourceError, match=r"^git was not found on PATH$"):
        fetch_project(str(repo.path), "main")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repo another owner")
def test_repo_owned_by_someone_else_is_an_explicit_error(repo: Repo) -> None:
    shutil.chown(repo.path, user="nobody")
    with pytest.raises(SourceError, match=r"cannot determine the git commit of .*dubious") as exc:
        fetch_project(str(repo.path))
    assert exc.value.hint and "safe.directory" in exc.value.hint


# --- versioned local working copies ---------------------------------------------------------


def snapshot(path: Path) -> tuple[str, ...]:
    files = sorted(p for p in path.rglob("*") if ".git" not in p.parts and p.is_file())
    return (
        git(path, "rev-parse", "HEAD"), git(path, "symbolic-ref", "-q", "HEAD"),
        git(path, "status", "--porcelain"), git(path, "remote", "-v"),
        git(path, "for-each-ref"), (path / ".git" / "index").read_bytes().hex(),
        *(f"{p}:{p.read_text()}" for p in files),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("version", "expect", "branch"),
    [("feature", "feature", "feature"), ("v1", "first", None), ("short", "first", None),
     ("full", "feature", None)],
)  # fmt: skip
def test_local_version_checks_out_in_temp_and_leaves_user_tree_alone(
    repo: Repo, fetched: list[FetchedProject], version: str, expect: str, branch: str | None
) -> None:
    (repo.path / "train.py").write_text("uncommitted work\n")  # must survive untouched
    before = snapshot(repo.path)
    sha = getattr(repo, expect)
    version = {"short": sha[:8], "full": sha}.get(version, version)
    result = fetch(fetched, str(repo.path), version)
    assert snapshot(repo.path) == before
    assert result.project_dir.is_relative_to(result.cleanup_paths[0])
    assert head_of(result) == sha
    assert (result.project_dir / "train.py").read_text() != "uncommitted work\n"
    prov = result.provenance
    assert (prov.version, prov.commit, prov.branch, prov.dirty) == (version, sha, branch, False)
    assert prov.repo_url == repo.path.resolve().as_uri()


def test_local_version_of_a_subdir_project(repo: Repo, fetched: list[FetchedProject]) -> None:
    result = fetch(fetched, f"{repo.path / 'sub'}", repo.first)
    assert result.project_dir == result.cleanup_paths[0] / "sub"
    assert (result.project_dir / "MLproject").is_file()


def test_bad_local_version_names_the_version(repo: Repo, tmp_root: Path) -> None:
    msg = f"Unable to checkout version 'badc0de' of git repo {repo.path}: "
    with pytest.raises(SourceError) as exc:
        fetch_project(str(repo.path), "badc0de")
    assert exc.value.message == msg + "no branch, tag or commit named 'badc0de'"
    assert list(tmp_root.iterdir()) == []


def test_version_on_a_non_git_dir_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "p" / "MLproject", MLPROJECT)
    with pytest.raises(SourceError, match=r"^Setting a version is only supported for Git project"):
        fetch_project(str(tmp_path / "p"), "main")


# --- remote repositories (file:// stands in for a server) -----------------------------------


def test_remote_default_branch(
    repo: Repo, remote: str, fetched: list[FetchedProject], tmp_root: Path
) -> None:
    result = fetch(fetched, remote)
    assert result.cleanup_paths[0].parent == tmp_root
    assert result.cleanup_paths[0].name.startswith("runner-src-")
    assert result.project_dir == result.cleanup_paths[0]
    assert head_of(result) == repo.main
    assert (result.project_dir / "train.py").read_text() == "print('v2')\n"
    assert git(result.project_dir, "status", "--porcelain") == ""
    assert git(result.project_dir, "remote", "get-url", "origin") == remote
    assert result.provenance.record() == {
        "uri": remote, "subdirectory": None, "version": None, "commit": repo.main,
        "branch": "main", "repo_url": remote, "dirty": False, "diff_digest": None,
    }  # fmt: skip


@pytest.mark.parametrize("sub", ["sub", "sub.dir"])
def test_remote_subdirectory(remote: str, fetched: list[FetchedProject], sub: str) -> None:
    result = fetch(fetched, f"'{remote}#{sub}'")
    assert result.project_dir == result.cleanup_paths[0] / sub
    assert result.provenance.uri == remote
    assert result.provenance.subdirectory == sub


def test_missing_remote_subdirectory(remote: str, tmp_root: Path) -> None:
    with pytest.raises(SourceError, match=f"^Could not find subdirectory fake of {remote}$"):
        fetch_project(f"{remote}#fake")
    assert list(tmp_root.iterdir()) == []


@pytest.mark.parametrize(
    ("version", "expect", "branch"),
    [("feature", "feature", "feature"), ("main", "main", "main"), ("v1", "first", None),
     ("short", "first", None), ("full", "feature", None)],
)  # fmt: skip
def test_remote_versions(
    repo: Repo, remote: str, fetched: list[FetchedProject], version: str, expect: str,
    branch: str | None,
) -> None:  # fmt: skip
    sha = getattr(repo, expect)
    version = {"short": sha[:7], "full": sha}.get(version, version)
    result = fetch(fetched, remote, version)
    assert head_of(result) == sha
    prov = result.provenance
    assert (prov.version, prov.commit, prov.branch) == (version, sha, branch)


def test_bad_remote_version(remote: str, tmp_root: Path) -> None:
    with pytest.raises(SourceError) as exc:
        fetch_project(remote, "badc0de")
    assert exc.value.message == (
        f"Unable to checkout version 'badc0de' of git repo {remote}: "
        "no branch, tag or commit named 'badc0de'"
    )
    assert list(tmp_root.iterdir()) == []


def test_unreachable_remote_is_a_clear_error() -> None:
    url = "git://127.0.0.1:1/nothing.git"  # nothing listens on port 1
    with pytest.raises(SourceError, match=f"^Unable to read git repo {url}: .+"):
        fetch_project(url)


def test_a_hanging_server_times_out_and_git_is_stopped() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts, never answers
        url = f"git://127.0.0.1:{server.getsockname()[1]}/x.git"
        with pytest.raises(SourceError) as exc:
            rgit.run_git(["ls-remote", "--", url], timeout=0.5)
    assert exc.value.message == "git ls-remote timed out after 0.5 s"


def test_missing_file_url_is_a_clear_error(tmp_path: Path) -> None:
    url = (tmp_path / "nothing.git").as_uri()
    with pytest.raises(SourceError, match=f"^Unable to read git repo {url}: .*not .*a git repo"):
        fetch_project(url)


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nothing"
    with pytest.raises(SourceError, match=f"^Could not find project {path}: no such directory$"):
        fetch_project(str(path))


def test_file_url_to_a_plain_directory_is_used_in_place(tmp_path: Path) -> None:
    write(tmp_path / "p" / "MLproject", MLPROJECT)
    result = fetch_project((tmp_path / "p").as_uri())
    assert (result.project_dir, result.cleanup_paths) == ((tmp_path / "p").resolve(), ())


def test_commit_not_on_any_branch_is_fetched_by_sha(
    repo: Repo, remote: str, fetched: list[FetchedProject]
) -> None:
    git(repo.path, "checkout", "-qb", "gone")
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "gone")
    sha = git(repo.path, "rev-parse", "HEAD")
    bare = Path(remote.removeprefix("file://"))
    git(repo.path, "push", "-q", str(bare), "gone")
    git(bare, "branch", "-D", "gone")  # the commit is still there, but no ref advertises it
    assert head_of(fetch(fetched, remote, sha)) == sha


def trace_count(trace: Path, command: str) -> int:
    return trace.read_text().count(f"built-in: git {command}") if trace.exists() else 0


def test_cache_is_reused_without_contacting_the_remote(
    repo: Repo, remote: str, fetched: list[FetchedProject], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    first = fetch(fetched, remote, repo.feature)
    caches = [p for p in (Path(os.environ["RUNNER_HOME"]) / "git").iterdir() if p.is_dir()]
    assert len(caches) == 1
    objects = sorted(str(p) for p in (caches[0] / "objects").rglob("*"))
    bare = Path(remote.removeprefix("file://"))
    bare.rename(tmp_path / "moved.git")  # the remote is gone: only the cache can serve this
    second = fetch(fetched, remote, repo.feature)
    assert head_of(second) == repo.feature
    assert second.cleanup_paths != first.cleanup_paths  # never share a checkout between runs
    assert sorted(str(p) for p in (caches[0] / "objects").rglob("*")) == objects


def test_default_branch_fetches_only_when_the_tip_moved(
    repo: Repo, remote: str, fetched: list[FetchedProject], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    trace = tmp_path / "trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    fetch(fetched, remote)
    assert trace_count(trace, "fetch") == 1
    fetch(fetched, remote)
    assert trace_count(trace, "fetch") == 1  # only ls-remote ran the second time
    assert trace_count(trace, "ls-remote") == 2
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "third")
    git(repo.path, "push", "-q", remote.removeprefix("file://"), "main")
    result = fetch(fetched, remote)
    assert trace_count(trace, "fetch") == 2
    assert head_of(result) == git(repo.path, "rev-parse", "HEAD")


def test_concurrent_fetches_share_one_cache_safely(repo: Repo, remote: str) -> None:
    script = (
        "import sys; from runner.source.fetch import fetch_project, remove_fetched; "
        "f = fetch_project(sys.argv[1]); print(f.provenance.commit); remove_fetched(f)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, remote], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    assert outputs == [repo.main] * 4
    assert len([p for p in (Path(os.environ["RUNNER_HOME"]) / "git").iterdir() if p.is_dir()]) == 1


def test_checkouts_are_private_to_each_run(remote: str, fetched: list[FetchedProject]) -> None:
    one, two = fetch(fetched, remote), fetch(fetched, remote)
    (one.project_dir / "train.py").write_text("scribbled by a run\n")
    assert (two.project_dir / "train.py").read_text() == "print('v2')\n"


def test_remove_fetched_removes_read_only_dirs(remote: str) -> None:
    result = fetch_project(remote)
    locked = result.project_dir / "outputs"
    locked.mkdir()
    (locked / "model.bin").write_bytes(b"x")
    locked.chmod(0o500)
    result.cleanup_paths[0].chmod(0o500)
    remove_fetched(result)
    assert not result.cleanup_paths[0].exists()


# --- hooks never run ------------------------------------------------------------------------


@pytest.fixture
def hook_canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A global git config whose hooks (hooksPath and templates) would create a canary file."""
    canary = tmp_path / "hook-ran"
    for name in ("hooks", "template/hooks"):
        hook = tmp_path / name / "post-checkout"
        write(hook, f"#!/bin/sh\ntouch {canary}\n")
        hook.chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {tmp_path / 'hooks'}\n"
                      f"[init]\n\ttemplateDir = {tmp_path / 'template'}\n")  # fmt: skip
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    return canary


def test_hooks_never_run_on_clone_or_checkout(
    repo: Repo, remote: str, fetched: list[FetchedProject], hook_canary: Path, tmp_path: Path
) -> None:
    git(tmp_path, "clone", "-q", remote, str(tmp_path / "plain"))
    assert hook_canary.exists(), "the hook setup is broken: plain git did not run it"
    hook_canary.unlink()
    fetch(fetched, remote)
    fetch(fetched, remote, "feature")
    fetch(fetched, str(repo.path), "v1")
    assert not hook_canary.exists()


# --- refusals: nothing reaches git ----------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ext::sh -c touch% {canary}", "the 'ext::' transport syntax is not allowed"),
        ("fd::3", "the 'fd::' transport syntax is not allowed"),
        ("--upload-pack=touch {canary}", "it starts with '-' and would be an option"),
        ("-u{canary}", "it starts with '-' and would be an option"),
        ("ssh://-oProxyCommand=touch%20{canary}/x", "host and user must not start with '-'"),
        ("ssh://-oProxyCommand=touch {canary}/x", "it contains whitespace"),
        ("git@-oProxyCommand=sh:x", "host and user must not start with '-'"),
        ("https://example.invalid/$HOME/x.git", "'$' is not allowed (no variable expansion)"),
        ("https://example.invalid/${HOME}.git", "'$' is not allowed (no variable expansion)"),
        ("https://example.invalid/%HOME%.git", "'%' must start an escape like %2F"),
        ("ext://host/x", "scheme 'ext' is not allowed"),
        ("https://example.invalid/a\nb", "it contains control characters"),
    ],
)
def test_refused_uris_never_run_anything(tmp_path: Path, uri: str, message: str) -> None:
    canary = tmp_path / "canary"
    with pytest.raises(SourceError) as exc:
        fetch_project(uri.replace("{canary}", str(canary)))
    assert exc.value.message.endswith(message)
    assert exc.value.message.startswith("refusing ")
    assert not canary.exists()


def test_git_itself_refuses_ext_even_if_validation_were_bypassed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    result = rgit.run_git(["ls-remote", "--", f"ext::sh -c touch% {canary}"])
    assert result.returncode != 0
    assert not canary.exists()


@pytest.mark.parametrize("version", ["--orphan=x", "-f", "HEAD; rm -rf ~", "../../x", "a..b"])
def test_invalid_versions_are_refused(
    remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    trace = tmp_path / "trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    with pytest.raises(SourceError) as exc:
        fetch_project(remote, version)
    assert exc.value.message == f"invalid version {version!r}"
    assert not trace.exists()  # git never ran


# --- working copies git cannot read -------------------------------------------------------


def test_a_corrupt_index_is_unknown_provenance_with_a_warning(repo: Repo) -> None:
    (repo.path / ".git" / "index").write_bytes(b"not an index")
    prov = fetch_project(str(repo.path)).provenance
    assert (prov.commit, prov.branch, prov.repo_url, prov.dirty) == (None, None, None, None)
    assert prov.warnings == (
        f"git cannot read the working copy at {repo.path.resolve()}: .git/index: index file "
        "smaller than expected; the run is recorded without a git commit",
    )
    assert "warnings" not in prov.record()  # what the run records keeps its schema


def test_a_git_dir_git_cannot_read_is_a_warning_too(repo: Repo) -> None:
    (repo.path / ".git" / "HEAD").write_text("garbage\n")
    prov = fetch_project(str(repo.path)).provenance
    assert prov.commit is None
    assert prov.warnings[0].startswith(f"git cannot read the repository at {repo.path / '.git'}: ")


def test_a_diff_git_cannot_take_is_a_warning_too(repo: Repo) -> None:
    blob = git(repo.path, "rev-parse", "HEAD:train.py")
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # status needs no blob
    (repo.path / "train.py").write_text("edited\n")
    prov = fetch_project(str(repo.path)).provenance
    assert (prov.commit, prov.dirty, prov.diff_digest) == (None, None, None)
    assert prov.warnings[0].startswith(f"git cannot diff the working copy at {repo.path}: ")


def test_a_readable_repo_has_no_warnings(repo: Repo) -> None:
    assert fetch_project(str(repo.path)).provenance.warnings == ()


# --- submodules of a working copy: looked at with their own safe git call -----------------


@pytest.fixture
def with_submodule(repo: Repo, tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    write(lib / "data.txt", "data\n")
    git(lib, "add", ".")
    git(lib, "commit", "-qm", "lib")
    git(repo.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(repo.path, "commit", "-qm", "submodule")
    return repo.path / "lib"


def test_a_clean_submodule_is_clean(repo: Repo, with_submodule: Path) -> None:
    assert fetch_project(str(repo.path)).provenance.dirty is False


@pytest.mark.parametrize("change", ["modified", "untracked", "new commit"])
def test_a_change_inside_a_submodule_makes_the_project_dirty(
    repo: Repo, with_submodule: Path, change: str
) -> None:
    if change == "modified":
        write(with_submodule / "data.txt", "edited\n")
    elif change == "untracked":
        write(with_submodule / "new.txt", "new\n")
    else:
        git(with_submodule, "commit", "-q", "--allow-empty", "-m", "moved")
    assert fetch_project(str(repo.path)).provenance.dirty is True


# --- credentials in an http URL: to git through its environment, never its argv -----------


@pytest.fixture
def http_remote(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[str | None]]]:
    """A dumb-HTTP git server on 127.0.0.1 that wants alice's password: (base URL, auths seen)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    git(tmp_path, "clone", "-q", "--bare", str(repo.path), str(www / "remote.git"))
    git(www / "remote.git", "update-server-info")
    seen: list[str | None] = []
    wanted = "Basic " + base64.b64encode(b"alice:p@ss word").decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if seen[-1] != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=www))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/remote.git", seen
    server.shutdown()
    server.server_close()


def test_http_credentials_reach_git_but_no_argv(
    repo: Repo, http_remote: tuple[str, list[str | None]], fetched: list[FetchedProject],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    base, seen = http_remote
    trace = tmp_path / "trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # logs the argv of every git and helper run
    # a helper of the user's own with other credentials for this host: the URL's win
    config = tmp_path / "gitconfig"
    config.write_text(
        '[credential]\n\thelper = "!f() { echo username=mallory; echo password=x; }; f"\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    result = fetch(fetched, base.replace("http://", "http://alice:p%40ss%20word@"))
    assert head_of(result) == repo.main
    assert result.provenance.repo_url == base
    assert "Basic " + base64.b64encode(b"alice:p@ss word").decode() in seen
    assert "remote-http" in trace.read_text()
    assert "p%40ss" not in trace.read_text() and "p@ss" not in trace.read_text()


def test_wrong_http_credentials_are_a_clear_error(
    http_remote: tuple[str, list[str | None]],
) -> None:
    base, _ = http_remote
    with pytest.raises(SourceError) as exc:
        fetch_project(base.replace("http://", "http://alice:wrong@"))
    assert (
        exc.value.message == f"Unable to read git repo {base}: Authentication failed for '{base}/'"
    )
