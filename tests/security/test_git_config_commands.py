"""No git call of runner runs a command named by a project's own git config or attributes.

A project folder may come from an archive or a colleague, `.git/config` included. Every
command such a config can name is armed to create a marker file; plain git is shown to run
them (the trap works), then each way runner looks at, clones or checks out the project.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runner.source.fetch import FetchedProject, fetch_project, remove_fetched
from tests.helpers import run_cli

MLPROJECT = "name: armed\nentry_points:\n  main:\n    parameters: {n: {type: int}}\n"
MLPROJECT += "    command: python -c pass\n"
# `{m}NAME` creates markers/TAG-NAME; filters must still pass the content through
DANGEROUS = {
    "filter.evil.clean": "{m}filter-clean; cat",
    "filter.evil.smudge": "{m}filter-smudge; cat",
    "filter.evil.required": "true",
    "filter.proc.process": "{m}filter-process",
    "diff.evil.textconv": "{m}textconv; cat",
    "diff.evil.command": "{m}diff-command",
    "diff.external": "{m}diff-external",
    "merge.evil.driver": "{m}merge-driver",
    "core.fsmonitor": "{m}fsmonitor",
    "core.pager": "{m}pager; cat",
    "pager.status": "{m}pager-status; cat",
    "pager.diff": "{m}pager-diff; cat",
    "core.editor": "{m}editor",
    "sequence.editor": "{m}sequence-editor",
    "core.sshCommand": "{m}ssh",
    "core.gitProxy": "{m}git-proxy",
    "core.askPass": "{m}askpass",
    "credential.helper": "!{m}credential-helper",
    "uploadpack.packObjectsHook": "{m}pack-objects-hook",
    "core.alternateRefsCommand": "{m}alternate-refs",
    "remote.origin.uploadpack": "{m}remote-uploadpack",
    "gpg.program": "{m}gpg",
    "core.hooksPath": "{hooks}",
}
HOOKS = (
    "post-checkout", "reference-transaction", "post-index-change", "pre-auto-gc", "post-merge",
    "fsmonitor-watchman", "pre-commit", "post-commit", "post-rewrite", "pre-push", "update",
    "pre-receive", "post-receive", "post-update", "push-to-checkout", "proc-receive",
)  # fmt: skip
ATTRIBUTES = "* filter=evil diff=evil merge=evil\n*.proc filter=proc\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def fired(markers: Path) -> set[str]:
    return {p.name for p in markers.iterdir()} if markers.exists() else set()


def marker_script(root: Path) -> tuple[Path, Path]:
    markers, script = root / "markers", root / "mark.sh"
    script.write_text(f'#!/bin/sh\nmkdir -p {markers}\ntouch "{markers}/$1"\n')
    script.chmod(0o755)
    return script, markers


def install_hooks(where: Path, script: Path, tag: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = where / name
        hook.write_text(f"#!/bin/sh\n{script} {tag}-{name}\n")
        hook.chmod(0o755)


def commit_tree(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "files")


def arm(repo: Path, script: Path, tag: str) -> None:
    """Every dangerous key in the repo's own config, hooks in both places, the index racy."""
    for key, value in DANGEROUS.items():
        git(repo, "config", key, value.format(m=f"{script} {tag}-", hooks=repo / "evil-hooks"))
    install_hooks(Path(git(repo, "rev-parse", "--absolute-git-dir")) / "hooks", script, tag)
    install_hooks(repo / "evil-hooks", script, f"{tag}-path")
    # same content, new mtime: git must re-read these (through their filters) to compare
    stale = [str(repo / "a.txt"), str(repo / "x.proc")]
    subprocess.run(["touch", "-d", "1 hour ago", *stale], check=True)
    (repo / "b.txt").write_text("changed\n")  # a real change, so the diff is taken too
    # untracked files, which the patch includes through a scratch index (`git add -N`)
    (repo / "new.txt").write_text("new\n")
    (repo / "new.proc").write_text("p\n")


@pytest.fixture
def armed(tmp_path: Path, tmp_root: Path) -> tuple[Path, Path]:
    """(project repo with an armed submodule, markers dir); both armed after their commits."""
    script, markers = marker_script(tmp_path)
    files = {"a.txt": "a\n", "b.txt": "b\n", "x.proc": "p\n", ".gitattributes": ATTRIBUTES}
    lib = tmp_path / "lib-origin"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit_tree(lib, files)
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_tree(repo, {**files, "MLproject": MLPROJECT, "sub/MLproject": MLPROJECT})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.as_uri(), "lib")
    git(repo, "commit", "-qm", "submodule")
    git(repo, "tag", "v1")
    arm(lib, script, "origin")
    arm(repo / "lib", script, "sub")
    arm(repo, script, "top")
    return repo, markers


def test_plain_git_runs_the_armed_commands(armed: tuple[Path, Path]) -> None:
    repo, markers = armed
    # else the first failing filter (here, or in the submodule) stops git
    lenient = ["-c", "filter.evil.required=false", "diff", "--ignore-submodules"]
    plain = (["status"], ["-C", "lib", "status"], [*lenient, "HEAD", "--", "b.txt"])
    for args in (*plain, ["checkout", "-q", "--", "a.txt"]):
        subprocess.run(["git", *args], cwd=repo, capture_output=True)
    expected = {"filter-clean", "filter-smudge", "filter-process", "fsmonitor", "diff-command"}
    expected = {f"top-{name}" for name in expected} | {"top-path-post-checkout"}
    assert expected | {"sub-filter-clean", "sub-fsmonitor"} <= fired(markers)


OPERATIONS: dict[str, Callable[[Path], FetchedProject]] = {
    "inspect in place": lambda repo: fetch_project(str(repo)),
    "inspect a subdirectory": lambda repo: fetch_project(f"{repo}#sub"),
    "check out a version": lambda repo: fetch_project(str(repo), "main"),
    "check out with submodules": lambda repo: fetch_project(str(repo), "v1", submodules=True),
    "clone it as a remote": lambda repo: fetch_project(repo.as_uri()),
    "fetch a tag from it": lambda repo: fetch_project(repo.as_uri(), "v1", submodules=True),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_runner_git_call_runs_them(armed: tuple[Path, Path], operation: str) -> None:
    repo, markers = armed
    fetched = OPERATIONS[operation](repo)
    try:
        assert fired(markers) == set()
        assert fetched.provenance.commit == git(repo, "rev-parse", "HEAD")
        assert fetched.provenance.warnings == ()
    finally:
        remove_fetched(fetched)


def test_dirty_state_is_still_right(armed: tuple[Path, Path]) -> None:
    repo, markers = armed
    result = fetch_project(str(repo))
    assert result.provenance.dirty is True
    assert result.diff is not None and b"+changed" in result.diff
    assert b"+++ b/new.txt\n@@ -0,0 +1 @@\n+new\n" in result.diff
    assert b"+++ b/new.proc\n@@ -0,0 +1 @@\n+p\n" in result.diff
    assert fired(markers) == set()


def test_a_run_refused_for_a_bad_parameter_ran_nothing(armed: tuple[Path, Path]) -> None:
    repo, markers = armed
    result = run_cli("run", str(repo), "-P", "n=not-a-number")
    assert result.returncode == 1
    assert result.stderr == "error: parameter 'n': expected int, got 'not-a-number'\n"
    assert fired(markers) == set()


# --- any driver name, wherever the project's config or attributes put it ---------------------

DRIVER_NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters='"\\'),
    min_size=1, max_size=12,
)  # fmt: skip
PLACES = ("config", "include", "includeIf", "worktree config")
ATTRIBUTE_FILES = (".gitattributes", "nested/.gitattributes", ".git/info/attributes")


def define_driver(repo: Path, name: str, command: str, key: str, place: str) -> None:
    setting = f"filter.{name}.{key}"
    if place == "config":
        git(repo, "config", setting, command)
    elif place == "worktree config":
        git(repo, "config", "extensions.worktreeConfig", "true")
        git(repo, "config", "--worktree", setting, command)
    else:
        included = repo / "settings.inc"  # a file of the project itself, as an archive brings
        git(repo, "config", "--file", str(included), setting, command)
        section = "include" if place == "include" else 'includeIf "gitdir:**"'
        with open(repo / ".git" / "config", "a") as f:
            f.write(f"[{section}]\n\tpath = {included}\n")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=DRIVER_NAMES,
    key=st.sampled_from(("clean", "process")),
    place=st.sampled_from(PLACES),
    attributes=st.sampled_from(ATTRIBUTE_FILES),
    operation=st.sampled_from(sorted(OPERATIONS)),
)
def test_filter_drivers_never_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, key: str, place: str, attributes: str,
    operation: str,
) -> None:  # fmt: skip
    root = tmp_path_factory.mktemp("driver")
    script, markers = marker_script(root)
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_tree(
        repo, {"MLproject": MLPROJECT, "sub/MLproject": MLPROJECT, "nested/data.txt": "data\n"}
    )
    (repo / attributes).parent.mkdir(parents=True, exist_ok=True)
    (repo / attributes).write_text(f"* filter={name}\n")
    define_driver(repo, name, f"{script} driver; cat", key, place)
    (repo / "nested" / "data.txt").write_text("changed\n")
    (repo / "nested" / "untracked.txt").write_text("new\n")  # in the patch via `git add -N`
    git(repo, "tag", "v1")
    remove_fetched(OPERATIONS[operation](repo))
    assert fired(markers) == set()
    subprocess.run(["git", "diff", "HEAD"], cwd=repo, capture_output=True)
    assume(fired(markers) == {"driver"})  # git itself uses this driver: the example was armed
