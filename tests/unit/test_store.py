"""Contract tests for the tracking store, run against both implementations on SQLite files."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.errors import RunNotFound, StoreError
from runner.redact import redact_uri
from runner.status import RunStatus
from runner.store import NewRun, Store, records
from runner.store.migrate import HEAD_REVISION, KNOWN_REVISIONS, SCRIPT_LOCATION
from runner.store.open import open_store

ROOT = Path(__file__).resolve().parents[2]
RUN_SCHEMA = json.loads((ROOT / "schemas" / "run.schema.json").read_text())
IMPLS = {"sqlite3": "SqliteStore", "sqlalchemy": "SqlStore"}
MISSING = "0123456789abcdef0123456789abcdef"


def make_new(**changes: Any) -> NewRun:
    fields: dict[str, Any] = {
        "experiment": "exp",
        "entry_point": "main",
        "command": "python train.py --alpha 0.5",
        "backend": "local",
        "parameters": {"alpha": "0.5"},
        "source": {"uri": "https://example.invalid/p.git", "commit": "a" * 40, "dirty": False},
        "environment": {"manager": "uv", "lock_digest": "sha256:00"},
        "tags": {"team": "ml"},
    }
    return NewRun(**{**fields, **changes})


def open_with(impl: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    if impl == "sqlalchemy":
        monkeypatch.setenv("RUNNER_STORE_IMPL", "sqlalchemy")
    else:
        monkeypatch.delenv("RUNNER_STORE_IMPL", raising=False)
    store = open_store(f"sqlite:///{path}")
    assert type(store).__name__ == IMPLS[impl]
    return store


@pytest.fixture(params=sorted(IMPLS))
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    opened = open_with(request.param, tmp_path / "runs.db", monkeypatch)
    yield opened
    opened.close()


def assert_valid(record: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(record)


# -- creating and reading runs ---------------------------------------------------------------


def test_create_run_records_everything(store: Store) -> None:
    run_id = store.create_run(make_new(parent_run_id="f" * 32))
    run = store.get_run(run_id)
    assert_valid(run)
    assert run["run_id"] == run_id and re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert (run["experiment"], run["status"], run["end_time"]) == ("exp", "SCHEDULED", None)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", run["run_name"])
    assert run["parameters"] == {"alpha": "0.5"} and run["tags"] == {"team": "ml"}
    assert run["source"]["commit"] == "a" * 40 and run["source"]["branch"] is None
    assert run["environment"] == {"manager": "uv", "lock_digest": "sha256:00"}
    assert run["parent_run_id"] == "f" * 32 and run["metrics"] == {}


def test_given_run_name_is_kept(store: Store) -> None:
    assert store.get_run(store.create_run(make_new(run_name="baseline")))["run_name"] == "baseline"


def test_experiment_is_created_once(store: Store) -> None:
    for experiment in ("b", "a", "b"):
        store.create_run(make_new(experiment=experiment))
    assert store.experiment_names() == ["a", "b"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"experiment": ""}, "experiment name '' must be a string of 1 to 256 characters"),
        ({"source": {"url": "x"}}, "unknown source fields: url; expected uri, subdirectory"),
        ({"source": {"dirty": "yes"}}, "source 'dirty' must be a bool or None, not 'yes'"),
        ({"environment": {}}, "the run environment must name its manager"),
        ({"environment": {"manager": "uv", "x": {1}}}, "cannot record"),
        ({"parameters": {"alpha": 0.5}}, "param 'alpha' must be a string, got float"),
        ({"tags": {"": "v"}}, "tag key '' must be a string of 1 to 256 characters"),
        ({"parent_run_id": "abc"}, "parent run id 'abc' is not a full run id"),
    ],
)
def test_create_run_refuses_bad_input(store: Store, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        store.create_run(make_new(**changes))
    assert store.list_runs() == []


def test_get_run_by_unique_prefix(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.get_run(run_id[:6])["run_id"] == run_id
    assert store.get_run(run_id[:9].upper())["run_id"] == run_id


@pytest.mark.parametrize("wanted", ["abc", "abcdef", "zzzzzzzz", MISSING])
def test_get_run_not_found(store: Store, wanted: str) -> None:
    store.create_run(make_new())
    with pytest.raises(RunNotFound, match=f"^run '{wanted}' not found$") as caught:
        store.get_run(wanted)
    assert caught.value.hint == "`runner runs list` shows run ids"


def test_get_run_ambiguous_prefix(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["abcdef" + "0" * 26, "abcdef" + "1" * 26, "abcdee" + "2" * 26])
    monkeypatch.setattr(records, "new_run_id", lambda: next(ids))
    for _ in range(3):
        store.create_run(make_new())
    with pytest.raises(StoreError, match="run id prefix 'abcdef' is ambiguous: it matches 2 runs"):
        store.get_run("abcdef")
    assert store.get_run("abcdef1")["run_id"] == "abcdef" + "1" * 26


# -- lifecycle -------------------------------------------------------------------------------


def test_lifecycle_to_finished(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.start_run(run_id)
    store.start_run(run_id)  # a retried start is harmless
    assert store.get_run(run_id)["status"] == "RUNNING"
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None) is True
    run = store.get_run(run_id)
    assert (run["status"], run["exit_code"], run["failure_reason"]) == ("FINISHED", 0, None)
    assert run["end_time"] >= run["start_time"]
    assert_valid(run)


def test_terminal_status_is_written_once(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.finish_run(run_id, RunStatus.FAILED, None, "runner_lost") is True
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None) is False
    assert store.finish_run(run_id, RunStatus.KILLED, 137, "cancelled") is False
    run = store.get_run(run_id)
    assert (run["status"], run["exit_code"], run["failure_reason"]) == (
        "FAILED",
        None,
        "runner_lost",
    )


def test_finished_run_cannot_start(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.finish_run(run_id, RunStatus.KILLED, None, "cancelled")
    with pytest.raises(
        StoreError, match=f"cannot start run {run_id}: it has already ended as KILLED"
    ):
        store.start_run(run_id)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RunStatus.RUNNING, "a run can only finish as FINISHED, FAILED or KILLED, not RUNNING"),
        ("DONE", "unknown run status 'DONE'; expected one of SCHEDULED, RUNNING, FINISHED"),
    ],
)
def test_finish_run_needs_terminal_status(store: Store, status: Any, message: str) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match=re.escape(message)):
        store.finish_run(run_id, status, 0, None)
    assert store.get_run(run_id)["status"] == "SCHEDULED"


def test_finish_run_accepts_status_names(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.finish_run(run_id, "failed", 2, "exit 2") is True  # type: ignore[arg-type]
    assert store.get_run(run_id)["status"] == "FAILED"


def test_update_run_and_live_runs(store: Store) -> None:
    run_id = store.create_run(make_new())
    ended = store.create_run(make_new())
    store.finish_run(ended, RunStatus.FINISHED, 0, None)
    store.update_run(run_id, runner_pid=42, runner_host="box", runner_start=12.5, command="x")
    store.update_run(run_id, environment={"manager": "conda"})
    store.update_run(run_id)  # nothing to change is fine
    store.heartbeat(run_id)
    [live] = store.live_runs()
    assert (live.run_id, live.status, live.backend) == (run_id, RunStatus.SCHEDULED, "local")
    assert (live.runner_pid, live.runner_host, live.runner_start) == (42, "box", 12.5)
    assert isinstance(live.heartbeat_ms, int) and live.heartbeat_ms > 0
    run = store.get_run(run_id)
    assert (run["command"], run["environment"]) == ("x", {"manager": "conda"})


def test_update_run_refuses_environment_without_manager(store: Store) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match="the run environment must name its manager"):
        store.update_run(run_id, environment={"python": "3.11"})


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.start_run(MISSING),
        lambda s: s.update_run(MISSING, command="x"),
        lambda s: s.update_run(MISSING),
        lambda s: s.finish_run(MISSING, RunStatus.FINISHED, 0, None),
        lambda s: s.heartbeat(MISSING),
        lambda s: s.log_params(MISSING, {"a": "1"}),
        lambda s: s.set_tags(MISSING, {"a": "1"}),
        lambda s: s.log_metrics(MISSING, [("m", 1.0, 0, 0)]),
    ],
)
def test_writes_to_a_missing_run(store: Store, call: Any) -> None:
    with pytest.raises(RunNotFound, match=f"^run '{MISSING}' not found$"):
        call(store)


# -- params, tags, metrics -------------------------------------------------------------------


def test_params_are_immutable(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.log_params(run_id, {"alpha": "0.5", "beta": "2"})
    message = f"param 'alpha' of run {run_id} is already '0.5'; cannot change it to '0.7'"
    with pytest.raises(StoreError, match=re.escape(message)):
        store.log_params(run_id, {"gamma": "1", "alpha": "0.7"})
    assert store.get_run(run_id)["parameters"] == {"alpha": "0.5", "beta": "2"}


def test_tags_are_replaced(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.set_tags(run_id, {"team": "infra", "note": "rerun"})
    assert store.get_run(run_id)["tags"] == {"team": "infra", "note": "rerun"}
    with pytest.raises(StoreError, match="tag 'n' must be a string, got int"):
        store.set_tags(run_id, {"n": 1})  # type: ignore[dict-item]


def test_latest_metric_by_step_then_timestamp(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, [("loss", 0.9, 1, 100), ("loss", 0.5, 3, 50), ("loss", 0.7, 2, 900)])
    store.log_metrics(run_id, [("loss", 0.1, 2, 999), ("acc", 0.3, 0, 10), ("acc", 0.4, 0, 5)])
    assert store.get_run(run_id)["metrics"] == {"loss": 0.5, "acc": 0.3}
    store.log_metrics(run_id, [("loss", 0.4, 3, 50), ("acc", float("nan"), 0, 10)])
    assert store.get_run(run_id)["metrics"] == {"loss": 0.4, "acc": None}  # ties: last one wins
    store.log_metrics(run_id, [])
    assert_valid(store.get_run(run_id))


def test_metric_keys_are_checked(store: Store) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match="metric key '' must be a string of 1 to 256 characters"):
        store.log_metrics(run_id, [("ok", 1.0, 0, 0), ("", 1.0, 0, 0)])
    assert store.get_run(run_id)["metrics"] == {}


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (("m", "high", 0, 0), "a metric must be (key, number, step, timestamp): could not convert"),
        (("m", 1.0, None, 0), "a metric must be (key, number, step, timestamp): int() argument"),
        (("m", 1.0, 0), "a metric must be (key, number, step, timestamp): not enough values"),
    ],
)
def test_malformed_metrics(store: Store, metric: Any, message: str) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match=re.escape(message)):
        store.log_metrics(run_id, [("ok", 1.0, 0, 0), metric])
    assert store.get_run(run_id)["metrics"] == {}


def test_many_metrics_in_one_call(store: Store, tmp_path: Path) -> None:
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, ((f"m{i % 7}", float(i), i, i) for i in range(20_000)))
    assert store.get_run(run_id)["metrics"]["m6"] == 19_998.0
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (20_000,)


# -- listing ---------------------------------------------------------------------------------


def test_list_runs_newest_first_and_filters(store: Store) -> None:
    ids = [store.create_run(make_new(experiment="a" if i % 2 else "b")) for i in range(5)]
    store.start_run(ids[1])
    assert [run["run_id"] for run in store.list_runs()] == ids[::-1]
    assert [run["run_id"] for run in store.list_runs(experiment="a")] == [ids[3], ids[1]]
    assert [run["run_id"] for run in store.list_runs(status="running")] == [ids[1]]
    assert [run["run_id"] for run in store.list_runs(limit=2)] == [ids[4], ids[3]]
    assert store.list_runs(limit=0) == [] and store.list_runs(experiment="none") == []
    for run in store.list_runs():
        assert_valid(run)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "DONE"}, "unknown run status 'DONE'; expected one of SCHEDULED, RUNNING"),
        ({"limit": -1}, "the run limit must be zero or more, not -1"),
    ],
)
def test_list_runs_refuses_bad_filters(store: Store, kwargs: Any, message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        store.list_runs(**kwargs)


def test_list_runs_reads_children_of_many_runs(store: Store) -> None:
    ids = [store.create_run(make_new(parameters={"i": str(i)})) for i in range(records.CHUNK + 3)]
    params = {run["run_id"]: run["parameters"]["i"] for run in store.list_runs()}
    assert params == {run_id: str(i) for i, run_id in enumerate(ids)}


# -- both implementations agree --------------------------------------------------------------


def test_implementations_match_the_protocol_signatures() -> None:
    from runner.store.sql import SqlStore
    from runner.store.sqlite import SqliteStore

    for name, method in inspect.getmembers(Store, inspect.isfunction):
        if not name.startswith("_"):
            wanted = inspect.signature(method)
            for impl in (SqlStore, SqliteStore):
                assert inspect.signature(getattr(impl, name)) == wanted, (impl, name)


def test_implementations_read_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shared.db"
    written = {}
    for impl in sorted(IMPLS):
        with open_with(impl, path, monkeypatch) as store:  # type: ignore[attr-defined]
            run_id = store.create_run(make_new(run_name=impl))
            store.log_metrics(run_id, [("m", 1.5, 1, 1)])
            store.finish_run(run_id, RunStatus.FINISHED, 0, None)
            written[run_id] = store.get_run(run_id)
    for impl in sorted(IMPLS):
        with open_with(impl, path, monkeypatch) as store:  # type: ignore[attr-defined]
            assert {run["run_id"]: run for run in store.list_runs()} == written


# -- schema and migrations -------------------------------------------------------------------


def test_head_revision_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [HEAD_REVISION]
    assert sorted(script.revision for script in scripts.walk_revisions()) == list(KNOWN_REVISIONS)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_migrated_schema_matches_schema_module(
    impl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from runner.store.schema import metadata

    open_with(impl, tmp_path / "m.db", monkeypatch).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_database_newer_than_runner(
    impl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_with(impl, tmp_path / "n.db", monkeypatch).close()
    with sqlite3.connect(tmp_path / "n.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="has schema revision '9999', newer than this") as caught:
        open_with(impl, tmp_path / "n.db", monkeypatch)
    assert caught.value.hint == "upgrade runner (pip install -U runner) to use this store"


FAST_PATH = textwrap.dedent(
    """
    import sys
    from runner.status import RunStatus
    from runner.store import NewRun
    from runner.store.open import open_store
    store = open_store(sys.argv[1])
    new = NewRun("e", "main", "true", "local", {}, {}, {"manager": "local"})
    run_id = store.create_run(new)
    store.start_run(run_id)
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    print(sorted(m for m in ("sqlalchemy", "alembic", "filelock") if m in sys.modules))
    """
)


def test_cli_path_imports_no_sqlalchemy_once_at_head(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fast.db'}"
    first = subprocess.run([sys.executable, "-c", FAST_PATH, uri], capture_output=True, text=True)
    assert first.stdout.strip() == "['alembic', 'filelock', 'sqlalchemy']", first.stderr
    again = subprocess.run([sys.executable, "-c", FAST_PATH, uri], capture_output=True, text=True)
    assert again.stdout.strip() == "[]", again.stderr


# -- opening ---------------------------------------------------------------------------------


def test_default_store_lives_in_runner_home(runner_home: Path) -> None:
    with open_store() as store:  # type: ignore[attr-defined]
        store.create_run(make_new())
    assert (runner_home / "runner.db").is_file()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sqlite://", "the tracking store must be a SQLite file, not 'sqlite://'"),
        ("sqlite:///:memory:", "the tracking store must be a SQLite file"),
        ("sqlite:///x.db?mode=ro", "options in SQLite tracking URIs are not supported"),
        ("nosuch://host/db", "unsupported tracking URI nosuch://host/db"),
        ("sqlite:////nonexistent/dir/r.db", "cannot open the tracking store /nonexistent/dir/r.db"),
    ],
)
def test_open_store_errors(uri: str, message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        open_store(uri)


def test_missing_driver_is_explained_without_password() -> None:
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed")
    message = "the database driver for postgresql+psycopg://***@db/runs is not installed"
    with pytest.raises(StoreError, match=re.escape(message)) as caught:
        open_store("postgresql+psycopg://user:s3cret@db/runs")
    assert "s3cret" not in caught.value.render()
    assert caught.value.hint == (
        "install it, e.g. pip install 'psycopg[binary]' for postgresql+psycopg://"
    )


def test_unknown_impl_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_STORE_IMPL", "fast")
    with pytest.raises(StoreError, match="RUNNER_STORE_IMPL='fast' is not one of auto, sqlalchemy"):
        open_store()


def test_iso_times_and_redaction() -> None:
    assert records.iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert records.iso_utc(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert records.iso_utc(None) is None
    assert redact_uri("postgresql://u:p@h/db") == "postgresql://***@h/db"
