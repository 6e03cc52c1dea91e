"""A local run recorded on a real tracking server sends it its files and output log at the end."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from runner.execution.upload import UPLOAD_WARNING_TAG, artifact_files, upload_run_outputs
from runner.server.app import Settings
from runner.store.rest import RestStore
from tests.helpers import run_cli, write_project
from tests.live_server import free_port, serving

TOKEN = "upload-token"
BIG = b"0123456789abcdef" * 200_000  # 3.2 MB: more than one chunk of every copy on the way
MLPROJECT = """
    entry_points:
      main:
        parameters: {code: {type: int, default: 0}, extra: {type: string, default: none}}
        command: "python log.py {code} {extra}"
"""
LOG_ARTIFACTS = """
import os, sys, time
from pathlib import Path
import runner_tracking as t

code, extra = int(sys.argv[1]), sys.argv[2]
Path("model.txt").write_text("weights v1\\n")
Path("out/sub").mkdir(parents=True, exist_ok=True)
Path("out/a.csv").write_text("1,2\\n")
Path("out/sub/b.txt").write_text("b")
Path("big.bin").write_bytes(b"0123456789abcdef" * 200_000)
Path("secret.txt").write_text("not an artifact of the run")
t.log_artifact("model.txt")
copy = t.log_artifact("out")  # the run's files/out: links are made in there
t.log_artifact("big.bin", "weights")
os.symlink(os.path.abspath("secret.txt"), copy / "leak.txt")  # out of the run's artifacts
os.symlink("a.csv", copy / "alias.csv")  # inside them: sent as the file it leads to
if extra == "refused-name":
    Path("50%41.txt").write_text("a name the server refuses")
    t.log_artifact("50%41.txt")
print("hello from the run", flush=True)
print("a line on stderr", file=sys.stderr, flush=True)
if extra == "hold":
    Path("held").write_text("")  # the test cancels the run from here
    time.sleep(120)
sys.exit(code)
"""
LOGGED = {
    "model.txt": b"weights v1\n",
    "out/a.csv": b"1,2\n",
    "out/alias.csv": b"1,2\n",
    "out/sub/b.txt": b"b",
    "weights/big.bin": BIG,
}


@dataclass(frozen=True)
class Server:
    url: str
    artifacts: Path  # the server's artifact root, never this test's RUNNER_HOME
    env: dict[str, str]  # what a client of it needs

    def store(self) -> RestStore:
        return RestStore(self.url, TOKEN)


def serve(tmp_path: Path, **limits: int) -> Iterator[Server]:
    root = tmp_path / "server-artifacts"
    settings = Settings(
        store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifact_root=str(root),
        token=TOKEN,
        **limits,  # type: ignore[arg-type]
    )
    with serving(settings) as url:
        yield Server(url, root, {"RUNNER_TRACKING_URI": url, "RUNNER_TRACKING_TOKEN": TOKEN})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serve(tmp_path)


def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", {"MLproject": MLPROJECT, "log.py": LOG_ARTIFACTS})


def run_through(server: Server, tmp_path: Path, *params: str) -> tuple[str, str]:
    """(run id, stderr) of `runner run` of the project, recorded on ``server``."""
    args = [arg for param in params for arg in ("-P", param)]
    ran = run_cli("run", str(project(tmp_path)), *args, env=server.env)
    listed = run_cli("runs", "list", "--json", env=server.env)
    [record] = json.loads(listed.stdout)
    return str(record["run_id"]), ran.stdout + ran.stderr


def on_server(server: Server, run_id: str, tmp_path: Path) -> dict[str, bytes]:
    """Every artifact file of the run, as the server lists and serves them."""
    found: dict[str, bytes] = {}
    with server.store() as store:
        folders = [""]
        while folders:
            for entry in store.list_artifacts(run_id, folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                    continue
                target = tmp_path / "downloads" / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                store.download_artifact(run_id, entry.path, target)
                found[entry.path] = target.read_bytes()
    return found


def printed(log: str) -> bool:
    """Whether ``log`` holds what the entry point printed (its two streams interleave)."""
    return "hello from the run" in log and "a line on stderr" in log


def shown(server: Server, run_id: str, home: Path) -> dict[str, object]:
    """`runner runs show --json` from another machine: a RUNNER_HOME of its own."""
    ran = run_cli("runs", "show", run_id, "--json", env={**server.env, "RUNNER_HOME": str(home)})
    assert ran.returncode == 0, ran.stderr
    record: dict[str, object] = json.loads(ran.stdout)
    return record


def test_a_local_runs_files_and_log_reach_the_server(
    server: Server, tmp_path: Path, runner_home: Path
) -> None:
    run_id, output = run_through(server, tmp_path)
    assert "uploading 5 artifact files to the tracking server" in output
    assert "warning" not in output
    assert (runner_home / "artifacts" / run_id / "files" / "out" / "leak.txt").is_symlink()
    assert on_server(server, run_id, tmp_path / "first") == LOGGED  # leak.txt stayed here
    elsewhere = tmp_path / "elsewhere"
    record = shown(server, run_id, elsewhere)
    assert record["status"] == "FINISHED" and UPLOAD_WARNING_TAG not in record["tags"]  # type: ignore[operator]
    logs = run_cli("runs", "logs", run_id, env={**server.env, "RUNNER_HOME": str(elsewhere)})
    assert logs.returncode == 0, logs.stderr
    assert printed(logs.stdout)
    assert logs.stdout == (server.artifacts / run_id / "output.log").read_text()
    assert not (elsewhere / "artifacts" / run_id).exists()  # it came from the server
    page = requests.get(  # the web UI's log view shows the same
        f"{server.url}/ui/runs/{run_id}/log",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert page.json()["text"] == logs.stdout and page.json()["done"] is True


def test_a_failing_runs_files_and_log_are_uploaded_too(server: Server, tmp_path: Path) -> None:
    run_id, output = run_through(server, tmp_path, "code=3")
    assert "warning" not in output
    record = shown(server, run_id, tmp_path / "elsewhere")
    assert (record["status"], record["exit_code"]) == ("FAILED", 3)
    assert on_server(server, run_id, tmp_path) == LOGGED
    assert printed((server.artifacts / run_id / "output.log").read_text())


def test_a_cancelled_runs_files_and_log_are_uploaded_too(server: Server, tmp_path: Path) -> None:
    folder = project(tmp_path)
    started = run_cli("run", str(folder), "-P", "extra=hold", "--detach", env=server.env)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    deadline = time.monotonic() + 60
    while not (folder / "held").exists():
        assert time.monotonic() < deadline, "the entry point never got to its artifacts"
        time.sleep(0.1)
    cancelled = run_cli("runs", "cancel", run_id, env=server.env)
    assert cancelled.returncode == 0 and "KILLED" in cancelled.stdout, cancelled.stderr
    assert shown(server, run_id, tmp_path / "elsewhere")["status"] == "KILLED"
    assert on_server(server, run_id, tmp_path) == LOGGED
    assert printed((server.artifacts / run_id / "output.log").read_text())


def test_files_the_server_refuses_are_a_warning_and_the_run_ends_as_it_did(
    tmp_path: Path, runner_home: Path
) -> None:
    # a server taking no file over 1 MB, and no name with a percent-encoded sequence
    for server in serve(tmp_path, max_artifact_bytes=1_000_000):
        run_id, output = run_through(server, tmp_path, "extra=refused-name")
        assert "2 of the run's files did not reach the tracking server" in output
        assert "it contains a percent-encoded sequence" in output  # the first refusal
        assert f"(tag {UPLOAD_WARNING_TAG}); this machine keeps them in" in output
        record = shown(server, run_id, tmp_path / "elsewhere")
        assert record["status"] == "FINISHED"  # the entry point's exit code decides
        tags: dict[str, str] = record["tags"]  # type: ignore[assignment]
        assert tags[UPLOAD_WARNING_TAG].startswith("2 of the run's files did not reach")
        sent = {name: data for name, data in LOGGED.items() if name != "weights/big.bin"}
        assert on_server(server, run_id, tmp_path) == sent  # the others went all the same
        local = runner_home / "artifacts" / run_id / "files"
        assert (local / "weights" / "big.bin").read_bytes() == BIG  # still here


def a_run_folder(tmp_path: Path, files: dict[str, bytes], log: bytes | None) -> Path:
    folder = tmp_path / "run"
    for name, data in files.items():
        path = folder / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    folder.mkdir(exist_ok=True)
    if log is not None:
        (folder / "output.log").write_bytes(log)
    return folder


def new_run(store: RestStore) -> str:
    from runner.store import NewRun

    made = NewRun("uploads", "main", "true", "local", {}, {}, {"manager": "local"})
    return store.create_run(made)


def test_an_upload_again_replaces_what_was_sent(server: Server, tmp_path: Path) -> None:
    folder = a_run_folder(tmp_path, {"model.txt": b"v1", "a/b.txt": b"b"}, b"first log\n")
    lines: list[str] = []
    with server.store() as store:
        run_id = new_run(store)
        upload_run_outputs(store, run_id, folder, True, lines.append)
        (folder / "files" / "model.txt").write_bytes(b"v2, longer")
        (folder / "output.log").write_bytes(b"second\n")
        upload_run_outputs(store, run_id, folder, True, lines.append)
        assert [entry.path for entry in store.list_artifacts(run_id)] == ["a", "model.txt"]
        got: list[bytes] = []
        assert store.copy_run_file(run_id, "output.log", got.append) == len(b"second\n")
    assert on_server(server, run_id, tmp_path) == {"model.txt": b"v2, longer", "a/b.txt": b"b"}
    assert b"".join(got) == b"second\n"
    assert lines == [f"uploading 2 artifact files to the tracking server {server.url}"] * 2


def test_without_files_only_the_log_is_sent(server: Server, tmp_path: Path) -> None:
    folder = a_run_folder(tmp_path, {"model.txt": b"v1"}, b"the log\n")
    with server.store() as store:
        run_id = new_run(store)
        lines: list[str] = []
        upload_run_outputs(store, run_id, folder, False, lines.append)
        assert store.list_artifacts(run_id) == [] and lines == []  # the entry point sent them
        assert (server.artifacts / run_id / "output.log").read_bytes() == b"the log\n"
        nothing = new_run(store)
        assert store.copy_run_file(nothing, "output.log", lines.append) is None and lines == []


def test_nothing_to_send_makes_no_request(tmp_path: Path) -> None:
    folder = a_run_folder(tmp_path, {}, None)
    lines: list[str] = []
    started = time.monotonic()
    with RestStore(f"http://127.0.0.1:{free_port()}") as nobody:  # any request would fail
        upload_run_outputs(nobody, "0" * 32, folder, True, lines.append)
    assert lines == [] and time.monotonic() - started < 1


def test_a_server_that_refuses_the_token_stops_the_upload_at_once(
    server: Server, tmp_path: Path
) -> None:
    folder = a_run_folder(tmp_path, {"a.txt": b"a", "b.txt": b"b"}, b"log\n")
    with server.store() as store:
        run_id = new_run(store)
    lines: list[str] = []
    with RestStore(server.url, "a-wrong-token") as wrong:
        upload_run_outputs(wrong, run_id, folder, True, lines.append)
    assert lines[1] == (
        f"warning: 3 of the run's files did not reach the tracking server {server.url}: "
        "a valid token is required (Authorization: Bearer ...) "
        f"(tag {UPLOAD_WARNING_TAG}); this machine keeps them in {folder}"
    )
    assert lines[2] == (
        f"warning: the run's {UPLOAD_WARNING_TAG} tag could not be recorded: "
        "a valid token is required (Authorization: Bearer ...)"
    )
    with server.store() as store:
        assert store.list_artifacts(run_id) == []


def test_a_server_that_is_gone_is_a_warning(tmp_path: Path) -> None:
    folder = a_run_folder(tmp_path, {"a.txt": b"a"}, b"log\n")
    url = f"http://127.0.0.1:{free_port()}"
    lines: list[str] = []
    with RestStore(url) as gone:
        upload_run_outputs(gone, "0" * 32, folder, True, lines.append)
    assert lines[1].startswith(
        f"warning: 2 of the run's files did not reach the tracking server {url}"
    )
    assert f"the tracking server {url} cannot be reached: ConnectionError" in lines[1]
    assert lines[2].startswith(f"warning: the run's {UPLOAD_WARNING_TAG} tag could not be recorded")


def test_the_walk_leaves_out_links_out_of_the_files_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "files"
    write_project(root, {"a.txt": "a", "sub/b.txt": "b"})
    write_project(tmp_path / "outside", {"secret.txt": "s"})
    os.symlink(tmp_path / "outside", root / "out-folder")
    os.symlink(tmp_path / "outside" / "secret.txt", root / "sub" / "out-file")
    os.symlink("../a.txt", root / "sub" / "in-file")
    os.symlink(root / "sub", root / "in-folder")
    os.symlink(root, root / "sub" / "loop")  # back up to the top: walked once
    os.symlink(tmp_path / "nowhere", root / "dangling")
    os.mkfifo(root / "fifo")  # opening one to read could wait forever
    files, unreadable = artifact_files(root)
    assert [name for name, _path in files] == [
        "a.txt",
        "in-folder/b.txt",
        "in-folder/in-file",
        "sub/b.txt",
        "sub/in-file",
    ]
    assert unreadable == [] and artifact_files(tmp_path / "missing") == ([], [])


def test_the_run_files_endpoint_over_http(server: Server, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with server.store() as store:
        run_id = new_run(store)
    log = f"{server.url}/api/runs/{run_id}/artifacts/run-files/output.log"
    missing = requests.get(log, headers=headers, timeout=30)
    assert missing.status_code == 404
    assert missing.json()["message"] == f"run {run_id} has no output.log on this server"
    put = requests.put(log, data=b"line 1\nline 2\n", headers=headers, timeout=30)
    assert (put.status_code, put.json()) == (201, {"name": "output.log", "size": 14})
    got = requests.get(log, headers=headers, timeout=30)
    assert got.content == b"line 1\nline 2\n" and got.headers["content-length"] == "14"
    assert [p.name for p in (server.artifacts / run_id).iterdir()] == ["output.log"]  # no temp
    unknown = requests.put(log.replace(run_id, "f" * 32), data=b"x", headers=headers, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"] == "run-not-found"
    other = log.replace("output.log", "plan.json")  # not one of a run's files the server keeps
    refused = requests.put(other, data=b"{}", headers=headers, timeout=30)
    assert refused.status_code == 400 and refused.json()["field"] == "name"
    assert (
        "is not one of a run's own files (output.log, git-diff.patch" in refused.json()["message"]
    )
    for sneaky in ("..%2F..%2Fx", "%2Etmp", "output.log%00"):
        answer = requests.put(
            log.replace("output.log", sneaky), data=b"x", headers=headers, timeout=30
        )
        assert answer.status_code in (400, 404), sneaky
    appended = requests.post(f"{log}?offset=14", data=b"line 3\n", headers=headers, timeout=30)
    assert appended.json() == {"name": "output.log", "size": 21}
    stale = requests.post(f"{log}?offset=14", data=b"again\n", headers=headers, timeout=30)
    assert stale.status_code == 409 and stale.json()["size"] == 21  # sent again from there
    assert requests.get(f"{log}?offset=14", headers=headers, timeout=30).content == b"line 3\n"
    document = requests.get(f"{server.url}/api/openapi.json", headers=headers, timeout=30).json()
    paths = document["paths"]["/api/runs/{run_id}/artifacts/run-files/{name}"]
    assert set(paths) == {"get", "put", "post"}


def test_a_runs_diff_and_a_workflows_files_reach_the_server(server: Server, tmp_path: Path) -> None:
    folder = a_run_folder(tmp_path, {}, b"log\n")
    (folder / "git-diff.patch").write_bytes(b"--- a/x\n+++ b/x\n")
    (folder / "dag.json").write_text('{"order": []}')
    (folder / "plan.json").write_text("{}")  # the runner's own: stays on this machine
    with server.store() as store:
        run_id = new_run(store)
        upload_run_outputs(store, run_id, folder, True, [].append)
    kept = sorted(p.name for p in (server.artifacts / run_id).iterdir())
    assert kept == ["dag.json", "git-diff.patch", "output.log"]
    assert (server.artifacts / run_id / "git-diff.patch").read_bytes() == b"--- a/x\n+++ b/x\n"


def test_a_backend_whose_entry_points_log_over_http_sends_only_the_log(
    server: Server, tmp_path: Path, runner_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.local import LocalBackend
    from backends.slurm.backend import SlurmBackend
    from runner.execution.orchestrator import _upload_outputs

    monkeypatch.setenv("RUNNER_TRACKING_URI", server.url)
    slurm = SlurmBackend()  # with a server for a store, its jobs log to it over HTTP
    assert slurm.tracking == "http"
    with server.store() as store:
        over_http, journal = new_run(store), new_run(store)
        for run_id in (over_http, journal):
            folder = runner_home / "artifacts" / run_id
            write_project(folder, {"files/model.txt": "v1", "output.log": "printed\n"})
        lines: list[str] = []
        _upload_outputs(store, over_http, slurm, lines.append)
        _upload_outputs(store, journal, LocalBackend(), lines.append)
        assert [entry.path for entry in store.list_artifacts(over_http)] == []
        assert [entry.path for entry in store.list_artifacts(journal)] == ["model.txt"]
    for run_id in (over_http, journal):
        assert (server.artifacts / run_id / "output.log").read_text() == "printed\n"
    assert lines == [f"uploading 1 artifact file to the tracking server {server.url}"]


def test_another_machine_follows_the_log_while_the_run_goes_on(
    server: Server, tmp_path: Path
) -> None:
    import subprocess
    import sys

    go = tmp_path / "go"
    waiter = "import os, sys, time\nprint('first', flush=True)\n"
    waiter += f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\nprint('second')\n"
    proj = write_project(
        tmp_path / "waits",
        {"MLproject": "entry_points: {main: {command: 'python wait.py'}}", "wait.py": waiter},
    )
    env = {**os.environ, **server.env}
    run = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(proj)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (runs := json.loads(run_cli("runs", "list", "--json", env=server.env).stdout)):
        assert time.monotonic() < deadline, "the run was never recorded"
        time.sleep(0.1)
    run_id = str(runs[0]["run_id"])
    elsewhere = {**env, "RUNNER_HOME": str(tmp_path / "other-machine")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "runner", "runs", "logs", run_id, "--follow"],
        env=elsewhere, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert follower.stdout is not None
    assert follower.stdout.readline() == b"first\n"  # sent while the run goes on
    with server.store() as store:
        assert store.get_run(run_id).status.value == "RUNNING"
    go.touch()
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert out == b"second\n"
    run.communicate(timeout=60)
    assert run.returncode == 0
