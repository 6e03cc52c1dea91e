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
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.errors import RunNotFound, StoreError
from runner.redact import redact_uri
from runner.status import RunStatus
from runner.store import (
    MetricPoint,
    NewRun,
    RunnerProcess,
    RunPage,
    RunRecord,
    Store,
    core,
    listing,
    records,
    statements,
)
from runner.store.database import SQLITE
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


def create_in_order(store: Store, **changes: Any) -> str:
    """Create a run, then wait for the clock's next millisecond: PostgreSQL orders the runs of
    one millisecond by id, so tests of listing order need distinct start times."""
    run_id = store.create_run(make_new(**changes))
    time.sleep(0.002)
    return run_id


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


def assert_valid(record: RunRecord) -> None:
    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(record.to_dict())


def ids_of(runs: Iterable[RunRecord]) -> list[str]:
    return [run.run_id for run in runs]


# -- creating and reading runs ---------------------------------------------------------------


def test_create_run_records_everything(store: Store) -> None:
    run_id = store.create_run(make_new(parent_run_id="f" * 32))
    run = store.get_run(run_id)
    assert_valid(run)
    assert run.run_id == run_id and re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert (run.experiment, run.status, run.end_time) == ("exp", RunStatus.SCHEDULED, None)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", run.run_name)
    assert run.parameters == {"alpha": "0.5"} and run.tags == {"team": "ml"}
    assert run.source["commit"] == "a" * 40 and run.source["branch"] is None
    assert run.environment == {"manager": "uv", "lock_digest": "sha256:00"}
    assert run.parent_run_id == "f" * 32 and run.metrics == {}


def test_record_dict_is_the_json_record(store: Store) -> None:
    run = store.get_run(store.create_run(make_new()))
    data = run.to_dict()
    assert list(data) == RUN_SCHEMA["required"]  # the order `runner runs show --json` prints
    assert type(data["status"]) is str and data["status"] == "SCHEDULED"
    assert json.loads(json.dumps(data)) == data
    data["parameters"]["alpha"] = "changed"
    assert run.parameters == {"alpha": "0.5"}  # to_dict hands out copies


def test_given_run_name_is_kept(store: Store) -> None:
    assert store.get_run(store.create_run(make_new(run_name="baseline"))).run_name == "baseline"


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
    assert store.list_runs().runs == []


def test_get_run_by_unique_prefix(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.get_run(run_id[:6]).run_id == run_id
    assert store.get_run(run_id[:9].upper()).run_id == run_id


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
    assert store.get_run("abcdef1").run_id == "abcdef" + "1" * 26


# -- lifecycle -------------------------------------------------------------------------------


def test_lifecycle_to_finished(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.start_run(run_id)
    store.start_run(run_id)  # a retried start is harmless
    assert store.get_run(run_id).status == "RUNNING"
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None) is True
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.failure_reason) == ("FINISHED", 0, None)
    assert run.end_time is not None and run.end_time >= run.start_time
    assert_valid(run)


def test_terminal_status_is_written_once(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.finish_run(run_id, RunStatus.FAILED, None, "runner_lost") is True
    assert store.finish_run(run_id, RunStatus.FINISHED, 0, None) is False
    assert store.finish_run(run_id, RunStatus.KILLED, 137, "cancelled") is False
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.failure_reason) == ("FAILED", None, "runner_lost")


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
    assert store.get_run(run_id).status == "SCHEDULED"


def test_finish_run_accepts_status_names(store: Store) -> None:
    run_id = store.create_run(make_new())
    assert store.finish_run(run_id, "failed", 2, "exit 2") is True  # type: ignore[arg-type]
    assert store.get_run(run_id).status == "FAILED"


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
    assert (run.command, run.environment) == ("x", {"manager": "conda"})
    assert store.live_run(run_id) == live and store.live_run(ended) is None


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
        lambda s: s.release_runner(MISSING),
        lambda s: s.metric_history(MISSING, "m"),
        lambda s: s.latest_metrics(MISSING),
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
    assert store.get_run(run_id).parameters == {"alpha": "0.5", "beta": "2"}


def test_tags_are_replaced(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.set_tags(run_id, {"team": "infra", "note": "rerun"})
    assert store.get_run(run_id).tags == {"team": "infra", "note": "rerun"}
    with pytest.raises(StoreError, match="tag 'n' must be a string, got int"):
        store.set_tags(run_id, {"n": 1})  # type: ignore[dict-item]


def test_latest_metric_by_step_then_timestamp(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, [("loss", 0.9, 1, 100), ("loss", 0.5, 3, 50), ("loss", 0.7, 2, 900)])
    store.log_metrics(run_id, [("loss", 0.1, 2, 999), ("acc", 0.3, 0, 10), ("acc", 0.4, 0, 5)])
    assert store.get_run(run_id).metrics == {"loss": 0.5, "acc": 0.3}
    store.log_metrics(run_id, [("loss", 0.4, 3, 50), ("acc", float("nan"), 0, 10)])
    assert store.get_run(run_id).metrics == {"loss": 0.4, "acc": None}  # ties: last one wins
    store.log_metrics(run_id, [])
    assert_valid(store.get_run(run_id))


def test_metric_keys_are_checked(store: Store) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match="metric key '' must be a string of 1 to 256 characters"):
        store.log_metrics(run_id, [("ok", 1.0, 0, 0), ("", 1.0, 0, 0)])
    assert store.get_run(run_id).metrics == {}


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
    assert store.get_run(run_id).metrics == {}


def test_many_metrics_in_one_call(store: Store, tmp_path: Path) -> None:
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, ((f"m{i % 7}", float(i), i, i) for i in range(20_000)))
    assert store.get_run(run_id).metrics["m6"] == 19_998.0
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (20_000,)


# -- listing ---------------------------------------------------------------------------------


def test_list_runs_newest_first_and_filters(store: Store) -> None:
    ids = [create_in_order(store, experiment="a" if i % 2 else "b") for i in range(5)]
    store.start_run(ids[1])
    store.start_run(ids[2])
    assert ids_of(store.list_runs().runs) == ids[::-1]
    assert ids_of(store.list_runs(experiment="a").runs) == [ids[3], ids[1]]
    assert ids_of(store.list_runs(status="running").runs) == [ids[2], ids[1]]
    assert ids_of(store.list_runs(experiment="a", status="RUNNING").runs) == [ids[1]]
    assert ids_of(store.list_runs(limit=2).runs) == [ids[4], ids[3]]
    assert store.list_runs(limit=0) == RunPage([], 5, False, None)
    assert store.list_runs(experiment="none") == RunPage([], 0, False, None)
    for run in store.list_runs().runs:
        assert_valid(run)


def test_list_runs_pages_with_tokens(store: Store) -> None:
    ids = [create_in_order(store) for _ in range(25)][::-1]
    first = store.list_runs()
    assert (ids_of(first.runs), first.more, first.capped) == (ids[:20], 5, False)
    assert first.next_token == ids[19]
    second = store.list_runs(page_token=first.next_token, limit=3)
    assert (ids_of(second.runs), second.more, second.next_token) == (ids[20:23], 2, ids[22])
    last = store.list_runs(page_token=second.next_token)
    assert (ids_of(last.runs), last.more, last.next_token) == (ids[23:], 0, None)


def test_more_runs_are_counted_up_to_a_cap(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "MORE_CAP", 4)
    ids = [create_in_order(store) for _ in range(10)][::-1]
    assert store.list_runs(limit=2) == RunPage(store.list_runs(limit=2).runs, 4, True, ids[1])
    assert (store.list_runs(limit=6).more, store.list_runs(limit=6).capped) == (4, False)


def test_unknown_page_token(store: Store) -> None:
    with pytest.raises(StoreError, match=f"page token '{MISSING}' names no run") as caught:
        store.list_runs(page_token=MISSING)
    assert caught.value.hint == "use the token printed with the previous page"


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


def test_iter_runs_refuses_unknown_status_at_once(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown run status 'DONE'; expected one of SCHEDULED"):
        store.iter_runs(status="DONE")  # not only at the first next()


def test_iter_runs_reads_every_run_in_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PAGE", 3)
    ids = [create_in_order(store, experiment="a" if i % 3 else "b") for i in range(10)]
    assert ids_of(store.iter_runs()) == ids[::-1]
    assert ids_of(store.iter_runs(experiment="a")) == [i for n, i in enumerate(ids) if n % 3][::-1]
    assert ids_of(store.iter_runs(status="FINISHED")) == []
    assert ids_of(store.iter_runs(experiment="none")) == []


def test_list_runs_reads_children_of_many_runs(store: Store) -> None:
    ids = [store.create_run(make_new(parameters={"i": str(i)})) for i in range(records.CHUNK + 3)]
    listed = store.list_runs(limit=records.CHUNK + 3).runs
    assert {run.run_id: run.parameters["i"] for run in listed} == {
        run_id: str(i) for i, run_id in enumerate(ids)
    }
    assert ids_of(store.iter_runs()) == ids_of(listed)  # across a page boundary


# -- metric history --------------------------------------------------------------------------


def test_metric_history_by_step_then_logging_order(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, [("loss", 0.5, 2, 20), ("loss", 0.9, 1, 10), ("acc", 0.1, 1, 10)])
    store.log_metrics(run_id, [("loss", 0.4, 2, 5), ("loss", float("nan"), 3, 30)])
    history = list(store.metric_history(run_id, "loss"))
    assert history == [(1, 10, 0.9), (2, 20, 0.5), (2, 5, 0.4), (3, 30, None)]
    assert history[0] == MetricPoint(step=1, timestamp=10, value=0.9)
    assert list(store.metric_history(run_id, "loss", after_step=1, limit=2)) == history[1:3]
    assert list(store.metric_history(run_id, "loss", limit=0)) == []
    assert list(store.metric_history(run_id, "nope")) == []
    with pytest.raises(StoreError, match="the metric point limit must be zero or more, not -1"):
        store.metric_history(run_id, "loss", limit=-1)
    assert store.latest_metrics(run_id) == {"loss": (3, 30, None), "acc": (1, 10, 0.1)}


def test_metric_history_reads_in_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "HISTORY_PAGE", 4)
    run_id = store.create_run(make_new())
    store.log_metrics(run_id, [("m", float(i), i // 2, i) for i in range(11)])
    assert [point.timestamp for point in store.metric_history(run_id, "m")] == list(range(11))
    assert len(list(store.metric_history(run_id, "m", limit=9))) == 9
    assert [p.value for p in store.metric_history(run_id, "m", after_step=3)] == [8.0, 9.0, 10.0]


# -- live runs -------------------------------------------------------------------------------


def live_run_on(store: Store, host: str | None, pid: int | None, start: float | None) -> str:
    return create_in_order(store, runner_host=host, runner_pid=pid, runner_start=start)


def test_runner_processes_are_distinct_per_host(store: Store) -> None:
    for pid, start in [(7, 1.5), (7, 1.5), (7, 2.5), (3, None), (None, None)]:
        live_run_on(store, "here", pid, start)
    live_run_on(store, "there", 8, 1.0)
    ended = live_run_on(store, "here", 9, 1.0)
    store.finish_run(ended, RunStatus.FAILED, None, "lost")
    assert store.runner_processes("here") == [
        RunnerProcess(3, None),
        RunnerProcess(7, 1.5),
        RunnerProcess(7, 2.5),
    ]
    assert store.runner_processes("nowhere") == []


def test_live_runs_of_one_process(store: Store) -> None:
    mine = [live_run_on(store, "here", 7, 1.5) for _ in range(2)]
    live_run_on(store, "here", 7, 2.5)  # the same pid reused by a later process
    live_run_on(store, "there", 7, 1.5)
    unknown_start = live_run_on(store, "here", 7, None)
    store.start_run(mine[1])
    runs = store.live_runs_of_process("here", 7, 1.5)
    assert [(run.run_id, run.status) for run in runs] == [
        (mine[0], RunStatus.SCHEDULED),
        (mine[1], RunStatus.RUNNING),
    ]
    assert [run.run_id for run in store.live_runs_of_process("here", 7, None)] == [unknown_start]
    store.finish_run(mine[0], RunStatus.FINISHED, 0, None)
    assert [run.run_id for run in store.live_runs_of_process("here", 7, 1.5)] == [mine[1]]


def test_stale_runs_are_other_hosts_without_recent_heartbeat(store: Store) -> None:
    other = live_run_on(store, "there", 8, 1.0)
    live_run_on(store, "here", 7, 1.0)
    live_run_on(store, "there", None, None)  # owned by its backend: no heartbeat expected
    assert store.stale_runs(60_000, exclude_host="here") == []
    time.sleep(0.005)
    assert [run.run_id for run in store.stale_runs(1, exclude_host="here")] == [other]
    store.heartbeat(other)
    assert store.stale_runs(60_000, exclude_host="here") == []


def test_released_runs_are_owned_by_their_backend(store: Store) -> None:
    runs = [live_run_on(store, "here", 7, 1.0) for _ in range(4)]
    other = store.create_run(make_new(backend="slurm"))
    for run_id in runs[:3]:
        store.release_runner(run_id)
    store.finish_run(runs[0], RunStatus.FINISHED, 0, None)
    store.release_runner(runs[0])  # an ended run is left as it is
    owned = store.backend_owned_runs("local", limit=10)
    assert [run.run_id for run in owned] == runs[1:3]
    assert {(run.runner_pid, run.runner_host, run.runner_start) for run in owned} == {
        (None, None, None)
    }
    assert [run.run_id for run in store.backend_owned_runs("local", limit=1)] == runs[1:2]
    assert [run.run_id for run in store.backend_owned_runs("slurm", limit=5)] == [other]
    assert store.runner_processes("here") == [RunnerProcess(7, 1.0)]  # runs[3] only


def test_claim_interval(store: Store) -> None:
    assert store.claim_interval("docker-poll", 3600) is True
    assert store.claim_interval("docker-poll", 3600) is False
    assert store.claim_interval("slurm-poll", 3600) is True
    time.sleep(0.005)
    assert store.claim_interval("docker-poll", 0.001) is True
    with pytest.raises(StoreError, match="interval key '' must be a string of 1 to 256"):
        store.claim_interval("", 1)


def test_a_claim_from_the_future_does_not_starve_others(store: Store, tmp_path: Path) -> None:
    assert store.claim_interval("poll", 60) is True
    with sqlite3.connect(tmp_path / "runs.db") as conn:  # a clock that has since gone back
        conn.execute("UPDATE intervals SET done_at = done_at + 3600000")
    assert store.claim_interval("poll", 60) is True
    assert store.claim_interval("poll", 60) is False


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
            assert {run.run_id: run for run in store.iter_runs()} == written


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


# The indexes of migration 0002: name -> (columns, partial index predicate or None).
LIVE = "status IN ('SCHEDULED', 'RUNNING')"
NEW_INDEXES = {
    "ix_runs_start_time": (["start_time"], None),
    "ix_runs_status_start_time": (["status", "start_time"], None),
    "ix_runs_experiment_id_start_time": (["experiment_id", "start_time"], None),
    "ix_runs_experiment_id_status_start_time": (["experiment_id", "status", "start_time"], None),
    "ix_runs_live_runner": (["runner_host", "runner_pid", "runner_start"], LIVE),
    "ix_runs_live_heartbeat": (["status", "heartbeat"], LIVE),
    "ix_runs_live_backend": (["backend", "start_time"], f"{LIVE} AND runner_pid IS NULL"),
}


def sqlite_indexes(path: Path) -> dict[str, tuple[list[str], str | None]]:
    found = {}
    with sqlite3.connect(path) as conn:
        query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'runs' AND sql LIKE 'CREATE%'"
        for name, sql in conn.execute(query).fetchall():
            columns = [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
            found[name] = (columns, sql.partition(" WHERE ")[2] or None)
    return found


def upgrade_to(path: Path, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from runner.store.engine import make_engine

    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", SCRIPT_LOCATION)
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_live_statuses_are_spelled_out_in_the_statements() -> None:
    live = ", ".join(f"'{status.value}'" for status in RunStatus if not status.is_terminal)
    assert f"status IN ({live})" == statements.LIVE == LIVE


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_indexes_after_migration_on_sqlite(
    impl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_with(impl, tmp_path / "i.db", monkeypatch).close()
    indexes = sqlite_indexes(tmp_path / "i.db")
    assert {name: indexes.get(name) for name in NEW_INDEXES} == NEW_INDEXES
    assert "ix_runs_status" not in indexes  # ix_runs_status_start_time serves its queries


def test_a_store_of_revision_0001_is_migrated_with_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade_to(path, "0001")
    row = {**records.new_run_row(make_new()), "experiment_id": 1}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO experiments (id, name, created) VALUES (1, 'old', 0)")
        conn.execute(statements.INSERT_RUN, [row[name] for name in statements.RUN_COLUMNS])
    assert "ix_runs_start_time" not in sqlite_indexes(path)
    with open_store(f"sqlite:///{path}") as store:  # type: ignore[attr-defined]
        assert ids_of(store.list_runs(experiment="old").runs) == [row["run_id"]]
        assert store.claim_interval("new-table", 1) is True
    assert set(NEW_INDEXES) <= set(sqlite_indexes(path))


def explain(conn: sqlite3.Connection, statement: str, params: Iterable[Any]) -> str:
    query = "EXPLAIN QUERY PLAN " + SQLITE.sql(statement)
    return " / ".join(row[3] for row in conn.execute(query, tuple(params)))


def listing_query(where: listing.Filter) -> tuple[str, tuple[Any, ...]]:
    where = where.after((1, 1))
    query = statements.SELECT_RECORD + where.where() + statements.NEWEST_FIRST + " LIMIT ?"
    return query, (*where.params, 20)


@pytest.mark.parametrize(
    ("statement", "params", "index"),
    [
        (statements.RUNNER_PROCESSES, ["h"], "ix_runs_live_runner"),
        (statements.RUNS_OF_PROCESS, ["h", 1, -1.0, 1.0], "ix_runs_live_runner"),
        (statements.STALE, [1, "h"], "ix_runs_live_heartbeat"),
        (statements.BACKEND_OWNED, ["docker", 5], "ix_runs_live_backend"),
        (statements.HISTORY, ["r", "k", 0, 0, 5], "ix_metrics_run_id_key_step"),
        (*listing_query(listing.Filter()), "ix_runs_start_time"),
        (*listing_query(listing.Filter(("status = ?",), ("FAILED",))), "ix_runs_status_start"),
        (*listing_query(listing.Filter(("experiment_id = ?",), (1,))), "ix_runs_experiment_id_s"),
        (
            *listing_query(listing.Filter(("status = ?", "experiment_id = ?"), ("FAILED", 1))),
            "ix_runs_experiment_id_status_start_time",
        ),
    ],
)
def test_sqlite_queries_use_their_indexes(
    statement: str, params: list[Any], index: str, tmp_path: Path
) -> None:
    open_store(f"sqlite:///{tmp_path / 'q.db'}").close()
    with sqlite3.connect(tmp_path / "q.db") as conn:
        plan = explain(conn, statement, params)
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
    assert "SCAN runs" not in plan, plan
    if statement.startswith(statements.SELECT_RECORD):  # pages come in index order, unsorted
        assert "TEMP B-TREE" not in plan, plan


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


# -- searching runs ordered by any column (SQL order, keyset tokens) -------------------------


def _sorted_pages(store: Any, limit: int, **query: Any) -> tuple[list[str], list[int]]:
    """Every run of a column-sorted search, page by page, and the "more" count of each page."""
    from runner.store.search import RunQuery

    found: list[str] = []
    mores: list[int] = []
    token = None
    while True:
        page = store.search_runs(RunQuery(limit=limit, page_token=token, **query))
        found += [run.run_id for run in page.runs]
        mores.append(page.more)
        token = page.next_token
        if token is None:
            return found, mores


def _made_for_sorting(store: Store) -> dict[str, tuple[str | None, float | None]]:
    """12 runs: a param ``p`` with repeats, a metric ``loss`` with ties; one run lacks both."""
    made: dict[str, tuple[str | None, float | None]] = {}
    for index in range(12):
        param = None if index == 5 else f"v{index % 4}"
        run_id = store.create_run(make_new(parameters={"p": param} if param else {}))
        loss = None if index == 5 else float((index * 7) % 5)
        if loss is not None:
            store.log_metrics(run_id, [("loss", 9.0, 0, 1), ("loss", loss, 1, 2)])  # the latest
        made[run_id] = (param, loss)
    return made


def test_search_sorts_by_a_metric_across_pages(store: Store) -> None:
    made = _made_for_sorting(store)
    with_loss = [run_id for run_id, (_p, loss) in made.items() if loss is not None]
    (missing,) = set(made) - set(with_loss)
    up = sorted(with_loss, key=lambda run_id: (made[run_id][1], run_id))
    found, mores = _sorted_pages(store, 5, sort="metrics.loss", ascending=True)
    assert found == [*up, missing]  # by the latest value, ties by run id, the run without last
    assert mores == [7, 2, 0]
    down = sorted(with_loss, key=lambda run_id: (made[run_id][1], run_id), reverse=True)
    assert _sorted_pages(store, 5, sort="metrics.loss")[0] == [*down, missing]


def test_search_sorts_by_a_param_across_pages_with_a_filter(store: Store) -> None:
    made = _made_for_sorting(store)
    with_param = [run_id for run_id, (param, _l) in made.items() if param is not None]
    down = sorted(with_param, key=lambda run_id: (made[run_id][0] or "", run_id), reverse=True)
    found, _mores = _sorted_pages(store, 4, sort="params.p")
    assert found == [*down, *(set(made) - set(with_param))]
    wanted = [run_id for run_id in down if (made[run_id][1] or 0) >= 2]
    filtered = _sorted_pages(store, 2, sort="params.p", metrics=[("loss", ">=", 2.0)])[0]
    assert filtered == wanted


def test_search_sorts_by_run_columns(store: Store) -> None:
    from runner.store.search import RunQuery

    first = create_in_order(store, run_name="b-run")
    second = create_in_order(store, run_name="a-run")
    store.finish_run(second, RunStatus.FINISHED, 0, None)
    by_name = store.search_runs(RunQuery(sort="name", ascending=True))  # type: ignore[attr-defined]
    assert [run.run_id for run in by_name.runs] == [second, first]
    by_end = store.search_runs(RunQuery(sort="duration"))  # type: ignore[attr-defined]
    assert [run.run_id for run in by_end.runs] == [second, first]  # no end yet: last
    by_status = store.search_runs(RunQuery(sort="status"))  # type: ignore[attr-defined]
    assert [run.status for run in by_status.runs] == [RunStatus.SCHEDULED, RunStatus.FINISHED]
    by_start = store.search_runs(RunQuery(sort="start", ascending=True))  # type: ignore[attr-defined]
    assert [run.run_id for run in by_start.runs] == [first, second]


def test_search_refuses_an_unknown_sort_column(store: Store) -> None:
    from runner.store.search import RunQuery

    with pytest.raises(StoreError, match="cannot sort by 'colour'; expected one of start, name"):
        store.search_runs(RunQuery(sort="colour"))  # type: ignore[attr-defined]
