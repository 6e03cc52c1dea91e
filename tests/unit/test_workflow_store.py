"""The store's step-cache and children queries: results, refusals, indexes, migration 0003."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.errors import StoreError
from runner.status import RunStatus
from runner.store import Store, statements
from runner.store.open import open_store
from tests.unit.test_store import explain, make_new, sqlite_indexes, store, upgrade_to

__all__ = ["store"]  # the parametrised fixture, over both implementations
KEY = "k" * 64


def finished(store: Store, **changes: object) -> str:
    run_id = store.create_run(make_new(**changes))
    store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    return run_id


def test_a_cache_key_finds_the_newest_finished_run(store: Store) -> None:
    assert store.cached_run(KEY) is None
    old = finished(store)
    store.set_cache_key(old, KEY)
    new = finished(store)
    store.set_cache_key(new, KEY)
    assert store.cached_run(KEY) == new
    assert store.cached_run("other") is None


def test_only_a_finished_run_can_be_cached(store: Store) -> None:
    run_id = store.create_run(make_new())
    store.finish_run(run_id, RunStatus.FAILED, 1, "boom")
    with pytest.raises(StoreError) as caught:
        store.set_cache_key(run_id, KEY)
    assert caught.value.message == f"run {run_id} cannot be cached: it is FAILED, not FINISHED"
    assert store.cached_run(KEY) is None


def test_child_runs_oldest_first(store: Store) -> None:
    parent = finished(store)
    first = store.create_run(make_new(parent_run_id=parent))
    import time

    time.sleep(0.002)
    second = store.create_run(make_new(parent_run_id=parent))
    store.create_run(make_new())  # not a child
    assert [r.run_id for r in store.child_runs(parent)] == [first, second]
    assert store.child_runs(first) == []


@pytest.mark.parametrize(
    ("statement", "params", "index"),
    [
        (statements.CACHED_RUN, [KEY], "ix_runs_cache_key_status_end_time"),
        (statements.CHILDREN_OF_RUN, ["p"], "ix_runs_parent_run_id_start_time"),
    ],
)
def test_cache_and_children_queries_use_their_indexes(
    statement: str, params: list[str], index: str, tmp_path: Path
) -> None:
    open_store(f"sqlite:///{tmp_path / 'q.db'}").close()
    with sqlite3.connect(tmp_path / "q.db") as conn:
        plan = explain(conn, statement, params)
    assert f"INDEX {index}" in plan, plan
    assert "SCAN runs" not in plan, plan


def test_a_store_of_revision_0002_gains_the_cache_column_and_keeps_its_runs(
    tmp_path: Path,
) -> None:
    from runner.store import records

    path = tmp_path / "old.db"
    upgrade_to(path, "0002")
    row = {**records.new_run_row(make_new()), "experiment_id": 1, "status": "FINISHED"}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO experiments (id, name, created) VALUES (1, 'old', 0)")
        conn.execute(statements.INSERT_RUN, [row[name] for name in statements.RUN_COLUMNS])
    assert "ix_runs_cache_key_status_end_time" not in sqlite_indexes(path)
    with open_store(f"sqlite:///{path}") as store:  # type: ignore[attr-defined]
        store.set_cache_key(row["run_id"], KEY)
        assert store.cached_run(KEY) == row["run_id"]
    assert "ix_runs_cache_key_status_end_time" in sqlite_indexes(path)
