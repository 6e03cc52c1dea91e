"""The store's server-side writes: client keys applied once, run search with indexed filters."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner.errors import RunNotFound, StoreError
from runner.status import RunStatus
from runner.store import Store, search, statements
from runner.store.keyed import Batch
from runner.store.open import open_store
from runner.store.search import RunQuery
from tests.unit.test_store import create_in_order, explain, make_new, store  # noqa: F401


def test_a_retried_create_request_returns_the_first_run(store: Any) -> None:  # noqa: F811
    first = store.create_run_once(make_new(), "req-1")
    assert store.create_run_once(make_new(run_name="other"), "req-1") == first
    assert store.create_run_once(make_new(), "req-2") != first
    assert len(store.list_runs().runs) == 2


def test_keyed_batches_are_applied_once(store: Any) -> None:  # noqa: F811
    run_id = store.create_run(make_new())
    batch = Batch(metrics=[("m", 1.0, 1, 5)], params={"p": "1"}, tags={"t": "x"})
    assert store.log_keyed(run_id, {"k1": batch}) == ["k1"]
    assert store.log_keyed(run_id, {"k1": batch, "k2": Batch(metrics=[("m", 2.0, 2, 6)])}) == ["k2"]
    assert [p.value for p in store.metric_history(run_id, "m")] == [1.0, 2.0]
    run = store.get_run(run_id)
    assert run.parameters == {"alpha": "0.5", "p": "1"} and run.tags["t"] == "x"


def test_a_refused_keyed_batch_leaves_nothing_and_no_key(store: Any) -> None:  # noqa: F811
    run_id = store.create_run(make_new())
    changed = Batch(metrics=[("m", 1.0, 1, 5)], params={"alpha": "0.9"})
    with pytest.raises(StoreError, match="param 'alpha' of run .* is already '0.5'"):
        store.log_keyed(run_id, {"k": changed})
    assert list(store.metric_history(run_id, "m")) == []
    assert store.log_keyed(run_id, {"k": Batch(metrics=[("m", 1.0, 1, 5)])}) == ["k"]


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ({"": Batch()}, "write key '' must be a string of 1 to 64 characters"),
        ({"k" * 65: Batch()}, "write key 'kkkk"),
        (
            {"a": Batch(params={"x": "1"}), "b": Batch(params={"x": "2"})},
            "param 'x' is given two values: '1', '2'",
        ),
    ],
)
def test_keyed_batches_refuse_bad_keys(
    store: Any,  # noqa: F811
    batches: dict[str, Batch],
    message: str,
) -> None:
    run_id = store.create_run(make_new())
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        store.log_keyed(run_id, batches)


def test_keyed_writes_to_a_missing_run(store: Any) -> None:  # noqa: F811
    with pytest.raises(RunNotFound, match="not found"):
        store.log_keyed("0" * 32, {"k": Batch()})


def test_search_combines_filters(store: Any) -> None:  # noqa: F811
    made = []
    for index in range(4):
        run_id = create_in_order(store, parameters={"lr": str(index % 2)}, tags={"i": str(index)})
        store.log_metrics(run_id, [("acc", index / 10, 0, 0)])
        made.append(run_id)
    store.finish_run(made[3], RunStatus.FINISHED, 0, None)

    def ids(**query: Any) -> list[str]:
        return [run.run_id for run in store.search_runs(RunQuery(**query)).runs]

    assert ids(params={"lr": "1"}) == [made[3], made[1]]
    assert ids(params={"lr": "1"}, status="RUNNING") == []
    assert ids(params={"lr": "1"}, status="FINISHED") == [made[3]]
    assert ids(metrics=[("acc", ">=", 0.2)], order="oldest") == made[2:]
    assert ids(tags={"i": "2"}, metrics=[("acc", "<", 0.5)]) == [made[2]]
    assert ids(experiment="nobody") == []
    long_value = "v" * 5000  # longer than the indexed prefix: the full value decides
    run_id = store.create_run(make_new(parameters={"blob": long_value}))
    assert ids(params={"blob": long_value}) == [run_id]
    assert ids(params={"blob": long_value[:-1] + "w"}) == []


def test_search_pages_with_tokens_in_both_orders(store: Any) -> None:  # noqa: F811
    made = [create_in_order(store) for _ in range(5)]
    for order, expected in (("newest", made[::-1]), ("oldest", made)):
        first = store.search_runs(RunQuery(order=order, limit=2))
        second = store.search_runs(RunQuery(order=order, limit=2, page_token=first.next_token))
        last = store.search_runs(RunQuery(order=order, limit=2, page_token=second.next_token))
        assert [r.run_id for page in (first, second, last) for r in page.runs] == expected
        assert (first.more, last.next_token) == (3, None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            RunQuery(metrics=[("m", "; DROP", 1.0)]),
            "metric filter 'm': unknown comparison '; DROP'",
        ),
        (RunQuery(order="random"), "unknown order 'random'; expected newest or oldest"),  # type: ignore[arg-type]
        (RunQuery(status="DONE"), "unknown run status 'DONE'"),
        (RunQuery(params={str(i): "v" for i in range(21)}), "a search takes at most 20"),
        (RunQuery(limit=-1), "the run limit must be zero or more, not -1"),
    ],
)
def test_search_refuses_what_the_sql_must_not_see(
    store: Store,  # noqa: F811
    query: RunQuery,
    message: str,
) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        store.search_runs(query)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("table", "term", "params", "index"),
    [
        (
            "params",
            statements.WITH_VALUE.format(table="params"),
            ["k", "v", "v"],
            "ix_params_search (key=? AND <expr>=?)",  # the value's prefix too, not key alone
        ),
        (
            "tags",
            statements.WITH_VALUE.format(table="tags"),
            ["k", "v", "v"],
            "ix_tags_search (key=? AND <expr>=?)",
        ),
        (
            "latest_metrics",
            statements.WITH_METRIC.format(op=">"),
            ["k", 1.0],
            "ix_latest_metrics_search (key=? AND value>?)",
        ),
    ],
)
def test_search_filters_use_their_indexes(
    table: str, term: str, params: list[Any], index: str, tmp_path: Path
) -> None:
    open_store(f"sqlite:///{tmp_path / 'q.db'}").close()
    query = statements.SELECT_RECORD + " WHERE " + term + statements.NEWEST_FIRST + " LIMIT 20"
    with sqlite3.connect(tmp_path / "q.db") as conn:
        plan = explain(conn, query, params)
    assert f"INDEX {index}" in plan, plan
    assert f"SCAN {table}" not in plan, plan


def test_metric_operators_are_the_only_sql_from_a_query() -> None:
    assert search.METRIC_OPS == ("<", "<=", "=", "!=", ">=", ">")
