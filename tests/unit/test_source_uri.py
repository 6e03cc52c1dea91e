"""Project URI parsing and validation: pure checks that must hold before any git process starts."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runner.errors import SourceError
from runner.redact import strip_credentials
from runner.source import gitproc, giturl, worktree
from runner.source.archive import member_path
from runner.source.fetch import Provenance, classify, fetch_project, project_subdir, split_uri


@pytest.fixture(autouse=True)
def no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start a process fails the test: everything here is decided before git."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


# --- splitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("proj", ("proj", None)),
        ("proj#sub", ("proj", "sub")),
        ("'uri#subdirectory'", ("uri", "subdirectory")),
        ('"uri#subdirectory"', ("uri", "subdirectory")),
        ("https://h/r.git#a/b#c", ("https://h/r.git", "a/b#c")),
        ("proj#", ("proj", None)),
        ("proj#sub.dir", ("proj", "sub.dir")),
    ],
)
def test_split_uri(uri: str, expected: tuple[str, str | None]) -> None:
    assert split_uri(uri) == expected


# --- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["main", "v1.2.3", "feature/x-y_z", "abc1234", "a" * 40])
def test_valid_versions(version: str) -> None:
    assert giturl.validate_version(version) is None  # accepted: no SourceError


@pytest.mark.parametrize(
    "version",
    ["--orphan=x", "-f", "HEAD; rm -rf ~", "../../x", "a..b", "", "v 1", "x\n", "a~1", "a^",
     "@{-1}", "a:b", "*", "é", "x" * 256],
)  # fmt: skip
def test_invalid_versions(version: str) -> None:
    with pytest.raises(SourceError) as exc:
        giturl.validate_version(version)
    assert exc.value.message == f"invalid version {version!r}"
    assert exc.value.hint and "branch, tag or commit" in exc.value.hint


def test_invalid_version_is_refused_before_anything_else() -> None:
    with pytest.raises(SourceError, match=r"^invalid version '-f'$"):
        fetch_project("ext::sh -c id", "-f")


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://github.com/org/repo.git", "http://host:8080/r", "ssh://git@host:22/org/r.git",
     "git@github.com:org/repo.git", "host:org/repo", "git://host/r.git", "file:///srv/r.git",
     "https://host/path%20with%2Fescapes", "ssh://git@[::1]/r.git"],
)  # fmt: skip
def test_accepted_git_urls(url: str) -> None:
    assert giturl.check_git_url(url) is None  # accepted: no SourceError
    assert classify(url)[0] == "git"


REFUSED = [
    ("ext::sh -c touch% /tmp/pwned", "the 'ext::' transport syntax is not allowed"),
    ("fd::17", "the 'fd::' transport syntax is not allowed"),
    ("EXT::x", "the 'EXT::' transport syntax is not allowed"),
    ("--upload-pack=touch /tmp/pwned", "it starts with '-' and would be an option"),
    ("-u/tmp/helper", "it starts with '-' and would be an option"),
    ("--config=core.sshCommand=x", "it starts with '-' and would be an option"),
    ("--template=/tmp/t", "it starts with '-' and would be an option"),
    ("ssh://-oProxyCommand=x/r", "host and user must not start with '-'"),
    ("ssh://-u@host/r", "host and user must not start with '-'"),
    ("git@-oProxyCommand=x:r", "host and user must not start with '-'"),
    ("https://h/$AWS_SECRET_ACCESS_KEY", "'$' is not allowed (no variable expansion)"),
    ("https://h/${HOME}", "'$' is not allowed (no variable expansion)"),
    ("https://h/%HOME%", "'%' must start an escape like %2F"),
    ("https://h/a b", "it contains whitespace"),
    ("https://h/a\tb", "it contains control characters"),
    ("https://h/a\x00b", "it contains control characters"),
    ("ftp://h/r.git", "scheme 'ftp' is not allowed"),
    ("ext://h/r", "scheme 'ext' is not allowed"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_refused_git_urls(url: str, message: str) -> None:
    with pytest.raises(SourceError) as exc:
        giturl.check_git_url(url)
    assert exc.value.message.startswith("refusing ")
    assert exc.value.message.endswith(message)


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_fetch_project_refuses_before_running_git(url: str, message: str) -> None:
    with pytest.raises(SourceError) as exc:
        fetch_project(url)
    assert exc.value.message.endswith(message)


def test_refusal_messages_do_not_echo_credentials() -> None:
    with pytest.raises(SourceError) as exc:
        fetch_project("https://alice:s3cret@host/a b")
    assert "s3cret" not in exc.value.message


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://user:tok@host/x", "https://host/x"),
        ("https://tok@host/x.git", "https://host/x.git"),
        ("http://u:p@host:8080/x?y=1", "http://host:8080/x?y=1"),
        ("ssh://git:pw@host/x", "ssh://git@host/x"),
        ("ssh://git@host/x", "ssh://git@host/x"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("https://host/x", "https://host/x"),
        ("/local/path", "/local/path"),
    ],
)
def test_strip_credentials(url: str, stripped: str) -> None:
    assert strip_credentials(url) == stripped


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("https://github.com/org/repo.git", "git"),
        ("git@github.com:org/repo.git", "git"),
        ("ssh://git@host/r", "git"),
        ("git://host/r", "git"),
        ("https://host/p.zip", "http-zip"),
        ("http://host/P.ZIP?x=1", "http-zip"),
    ],
)
def test_classify_remote(location: str, kind: str) -> None:
    assert classify(location) == (kind, location)


def test_classify_local(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p.zip").write_bytes(b"")
    assert classify(str(tmp_path / "p")) == ("local", str(tmp_path / "p"))
    assert classify((tmp_path / "p").as_uri()) == ("local", str(tmp_path / "p"))
    assert classify(str(tmp_path / "p.zip")) == ("zip", str(tmp_path / "p.zip"))
    assert classify((tmp_path / "p.zip").as_uri()) == ("zip", str(tmp_path / "p.zip"))


def test_classify_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^Could not find project .*: no such directory$"):
        classify(str(tmp_path / "nope"))


def test_file_url_with_a_remote_host_is_refused() -> None:
    with pytest.raises(SourceError, match=r"names a remote host"):
        classify("file://evil.example/share/repo")


# --- subdirectories -------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "sub.dir").mkdir(parents=True)
    (tmp_path / "proj" / "a" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "proj" / "escape").symlink_to(tmp_path / "outside")
    (tmp_path / "proj" / "inner").symlink_to(tmp_path / "proj" / "a")
    return tmp_path / "proj"


@pytest.mark.parametrize(("sub", "rel"), [("sub.dir", "sub.dir"), ("a/b", "a/b"), ("./a/", "a"),
                                          ("inner/b", "a/b"), (None, "")])  # fmt: skip
def test_subdirectories(root: Path, sub: str | None, rel: str) -> None:
    assert project_subdir(root, sub, "uri") == (root / rel).resolve()


@pytest.mark.parametrize("sub", ["..", "../outside", "a/../..", "/etc", "a/../b", "..\\x"])
def test_subdirectory_escapes(root: Path, sub: str) -> None:
    with pytest.raises(SourceError) as exc:
        project_subdir(root, sub, "uri")
    assert exc.value.message == f"subdirectory {sub!r} escapes the project uri"


def test_subdirectory_symlink_escape(root: Path) -> None:
    with pytest.raises(SourceError, match=r"^subdirectory 'escape' escapes the project uri"):
        project_subdir(root, "escape", "uri")


def test_missing_subdirectory(root: Path) -> None:
    with pytest.raises(SourceError, match=r"^Could not find subdirectory fake of uri$"):
        project_subdir(root, "fake", "uri")


# --- zip member names -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/abs", "\\abs", "..\\x", "C:x", "c:/x"])
def test_zip_traversal_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError) as exc:
        member_path(zipfile.ZipInfo(name), tmp_path)
    assert exc.value.message == f"Zip file member {name} attempts path traversal"


@pytest.mark.parametrize(("name", "rel"), [("a/b.txt", "a/b.txt"), ("./c", "c"), ("a\\d", "a/d")])
def test_zip_ordinary_names(tmp_path: Path, name: str, rel: str) -> None:
    assert member_path(zipfile.ZipInfo(name), tmp_path) == tmp_path / rel


# --- status parsing and the record ----------------------------------------------------------


SHA = "a" * 40


@pytest.mark.parametrize(
    ("entries", "prefix", "expected"),
    [
        ([f"# branch.oid {SHA}", "# branch.head main"], "", (SHA, "main", False)),
        (["# branch.oid (initial)", "# branch.head main", "? f"], "", (None, "main", True)),
        ([f"# branch.oid {SHA}", "# branch.head (detached)"], "", (SHA, None, False)),
        ([f"# branch.oid {SHA}", "1 .M N... 100644 100644 100644 x y f"], "", (SHA, None, True)),
        ([f"# branch.oid {SHA}", "! p/.venv/"], "p/", (SHA, None, False)),
        ([f"# branch.oid {SHA}", "! p/"], "p/sub/", (SHA, None, True)),
        ([f"# branch.oid {SHA}", "! p"], "px/", (SHA, None, False)),
    ],
)
def test_parse_status(entries: list[str], prefix: str, expected: tuple[Any, ...]) -> None:
    out = ("\0".join(entries) + "\0").encode()
    assert worktree._parse_status(out, prefix) == expected


def test_first_remote_is_stripped() -> None:
    out = b"local\0remote.origin.url\nhttps://u:p@h/x\0global\0remote.b.url\nhttps://h/y\0"
    assert worktree._first_remote(worktree._entries(out, scoped=True)) == "https://h/x"
    assert worktree._first_remote([]) is None


def test_git_error_reason_is_one_line_without_credentials() -> None:
    stderr = b"hint: noise\nfatal: unable to access 'https://u:tok@h/x/': Could not resolve host\n"
    assert gitproc.reason(stderr) == "unable to access 'https://h/x/': Could not resolve host"


def test_git_env_is_hardened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_ASKPASS", "/bin/evil")
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    env = gitproc.git_env()
    assert "GIT_ASKPASS" not in env and "GIT_DIR" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ALLOW_PROTOCOL"] == "file:git:http:https:ssh"
    assert env["GIT_PROTOCOL_FROM_USER"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"


def test_provenance_record_keys() -> None:
    prov = Provenance("u", None, None, None, None, None, None, None)
    assert list(prov.record()) == [
        "uri", "subdirectory", "version", "commit", "branch", "repo_url", "dirty", "diff_digest",
    ]  # fmt: skip
