"""Entry points logging through a real server process: restarts, concurrent writers, both stores."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from runner.execution.ingest import tracking_pythonpath
from runner.store.open import open_store
from tests.helpers import run_cli
from tests.integration.test_store_postgres import database_url, postgres_url  # noqa: F401
from tests.live_server import free_port, free_ports, server_process

WRITER = """
import sys, time
import runner_tracking as tracking
name, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for step in range(count):
    tracking.log_metric(name, float(step), step=step)
    if pause:
        time.sleep(pause)
tracking.log_param(name, "done")
"""


def writer_env(url: str, run_id: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": tracking_pythonpath(),  # the stdlib-only copy entry points get
        "RUNNER_RUN_ID": run_id,
        "RUNNER_TRACKING_TRANSPORT": "http",
        "RUNNER_TRACKING_URI": url,
        "RUNNER_TRACKING_BUFFER_DIR": str(tmp_path / "buffer"),
    }


def spawn_writer(
    env: dict[str, str], name: str, count: int, pause: float = 0.0
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", WRITER, name, str(count), str(pause)]
    return subprocess.Popen(argv, env=env, text=True, stderr=subprocess.PIPE)


def create_run(url: str) -> str:
    answer = requests.post(f"{url}/api/runs", json={"experiment": "writers"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["run_id"])


@contextlib.contextmanager
def server_on(store_uri: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {"RUNNER_TRACKING_URI": store_uri, "RUNNER_HOME": str(tmp_path / "server-home")}
    with server_process(port, env, log=tmp_path / "server.log"):
        yield f"http://127.0.0.1:{port}"


def steps_of(store_uri: str, run_id: str, key: str) -> list[int]:
    with open_store(store_uri) as store:  # type: ignore[attr-defined]
        return [point.step for point in store.metric_history(run_id, key)]


def test_tracking_survives_a_server_restart_mid_run_with_nothing_lost(tmp_path: Path) -> None:
    store_uri = f"sqlite:///{tmp_path / 'server.db'}"
    port = free_port()
    env = {"RUNNER_TRACKING_URI": store_uri, "RUNNER_HOME": str(tmp_path / "server-home")}
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with server_process(port, env, log=log) as first:
        run_id = create_run(url)
        writer = spawn_writer(writer_env(url, run_id, tmp_path), "loss", 3000, 0.001)
        time.sleep(1.0)
        first.kill()  # no goodbye: the writer's requests fail mid-batch
        first.wait()
        time.sleep(1.5)  # the writer goes on logging while nobody listens
        assert writer.poll() is None, "the entry point must not die with its server"
    with server_process(port, env, log=log):
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert steps_of(store_uri, run_id, "loss") == list(range(3000))  # none lost, none twice
        with open_store(store_uri) as store:  # type: ignore[attr-defined]
            assert store.get_run(run_id).parameters == {"loss": "done"}
    assert "records are buffered and retried" in err
    assert list((tmp_path / "buffer").iterdir()) == []  # delivered, so nothing kept


def test_what_a_dead_writer_left_is_sent_by_the_next_one(tmp_path: Path) -> None:
    store_uri = f"sqlite:///{tmp_path / 'server.db'}"
    port = free_port()
    env = {"RUNNER_TRACKING_URI": store_uri, "RUNNER_HOME": str(tmp_path / "server-home")}
    url = f"http://127.0.0.1:{port}"
    with server_process(port, env):
        run_id = create_run(url)
    quick = {**writer_env(url, run_id, tmp_path), "RUNNER_TRACKING_FLUSH_SECONDS": "1"}
    lonely = spawn_writer(quick, "early", 100)
    _, err = lonely.communicate(timeout=60)
    assert lonely.returncode == 0 and "they are kept in" in err
    with server_process(port, env):
        later = spawn_writer(writer_env(url, run_id, tmp_path), "late", 10)
        assert later.wait(timeout=60) == 0
        assert steps_of(store_uri, run_id, "early") == list(range(100))
        assert steps_of(store_uri, run_id, "late") == list(range(10))


def store_uri_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return str(request.getfixturevalue("database_url"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sixteen_writer_processes_lose_nothing(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store_uri = store_uri_for(kind, request, tmp_path)
    with server_on(store_uri, tmp_path) as url:
        shared = create_run(url)
        env = writer_env(url, shared, tmp_path)
        writers = [spawn_writer(env, f"w{index}", 1000) for index in range(16)]
        results = [writer.communicate(timeout=300) for writer in writers]
        assert [w.returncode for w in writers] == [0] * 16, results
        with open_store(store_uri) as store:  # type: ignore[attr-defined]
            run = store.get_run(shared)
            for index in range(16):
                steps = [p.step for p in store.metric_history(shared, f"w{index}")]
                assert steps == list(range(1000)), f"w{index}"
            assert run.parameters == {f"w{index}": "done" for index in range(16)}
            assert run.metrics == {f"w{index}": 999.0 for index in range(16)}


def test_migrations_run_once_under_concurrent_starts(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    from sqlalchemy import create_engine, text

    ports = free_ports(4)
    env = {**os.environ, "RUNNER_TRACKING_URI": database_url, "RUNNER_HOME": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "runner", "server", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            from tests.live_server import wait_healthy

            wait_healthy(f"http://127.0.0.1:{port}", process)  # type: ignore[arg-type]
        run_ids = {create_run(f"http://127.0.0.1:{port}") for port in ports}
        assert len(run_ids) == 4
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'write_keys'"))
        assert [tuple(v) for v in versions] == [("0004",)] and tables.scalar() == 1
    engine.dispose()


def test_the_cli_records_runs_through_a_server(tmp_path: Path) -> None:
    store_uri = f"sqlite:///{tmp_path / 'server.db'}"
    project = Path(__file__).resolve().parents[2] / "sample_projects" / "hello"
    with server_on(store_uri, tmp_path) as url:
        env = {"RUNNER_TRACKING_URI": url}
        ran = run_cli("run", str(project), "-P", "name=server", env=env)
        assert ran.returncode == 0, ran.stderr
        listed = run_cli("runs", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        [record] = json.loads(listed.stdout)
        assert (record["status"], record["parameters"]["name"]) == ("FINISHED", "server")
        shown = run_cli("runs", "show", record["run_id"][:8], env=env)
        assert shown.returncode == 0 and f"run_id: {record['run_id']}" in shown.stdout
    with open_store(store_uri) as store:  # type: ignore[attr-defined]
        assert store.get_run(record["run_id"]).status == "FINISHED"  # in the server's store


def test_the_cli_says_when_the_server_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    listed = run_cli("runs", "list", env={"RUNNER_TRACKING_URI": url})
    assert listed.returncode == 1
    assert f"error: the tracking server {url} cannot be reached: ConnectionError" in listed.stderr
    assert "hint: start it with `runner server`" in listed.stderr


def test_a_server_is_no_store_for_a_server(tmp_path: Path) -> None:
    served = run_cli("server", "--port", str(free_port()), env={"RUNNER_TRACKING_URI": "http://x"})
    assert served.returncode == 1
    assert (
        "error: the tracking server needs a database store (sqlite:///... or postgresql://...)"
        in served.stderr
    )


def test_artifacts_logged_over_http_land_in_the_runs_files(tmp_path: Path) -> None:
    store_uri = f"sqlite:///{tmp_path / 'server.db'}"
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(os.urandom(3_000_000))
    (model / "sub" / "config.json").write_text("{}")
    script = f"import runner_tracking as t; t.log_artifact({str(model)!r}, 'out')"
    with server_on(store_uri, tmp_path) as url:
        run_id = create_run(url)
        env = writer_env(url, run_id, tmp_path)
        logged = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
        assert logged.returncode == 0 and logged.stderr == b""
        base = f"{url}/api/runs/{run_id}/artifacts"
        listing = requests.get(base, params={"path": "out/model"}, timeout=30).json()["files"]
        assert listing == [
            {"path": "out/model/sub", "is_dir": True, "size": None},
            {"path": "out/model/weights.bin", "is_dir": False, "size": 3_000_000},
        ]
        weights = requests.get(f"{base}/files/out/model/weights.bin", timeout=30).content
        assert weights == (model / "weights.bin").read_bytes()
    stored = tmp_path / "server-home" / "artifacts" / run_id / "files" / "out" / "model"
    assert (stored / "sub" / "config.json").read_text() == "{}"
