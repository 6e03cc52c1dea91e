"""A sort column is written into the SQL only from a fixed list; a key is always bound."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import StoreError
from runner.store.core import SqlRunStore
from runner.store.open import open_store
from runner.store.search import RunQuery
from runner.store.sorting import SORT_COLUMNS
from tests.unit.test_store import make_new

HOSTILE = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40) | (
    st.sampled_from(["x') OR 1=1 --", "'; DROP TABLE runs; --", "?", "%s", "{tiebreak}", "a.b"])
)


@pytest.fixture(scope="module")
def store() -> Iterator[SqlRunStore]:
    opened = open_store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'runs.db'}")
    assert isinstance(opened, SqlRunStore)
    for value in ("1", "2"):
        run_id = opened.create_run(make_new(parameters={"p": value}))
        opened.log_metrics(run_id, [("loss", float(value), 0, 0)])
    yield opened
    opened.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(["params", "metrics", "tags"]), key=HOSTILE.filter(bool))
def test_any_key_is_bound_never_written(store: SqlRunStore, kind: str, key: str) -> None:
    page = store.search_runs(RunQuery(sort=f"{kind}.{key}", limit=5))
    assert len(page.runs) == 2  # every run, none with that key: the SQL ran as written
    assert len(store.search_runs(RunQuery()).runs) == 2  # and the tables are still there


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(column=HOSTILE)
def test_a_column_not_in_the_list_is_refused(store: SqlRunStore, column: str) -> None:
    kind, dot, key = column.partition(".")
    if column in (*SORT_COLUMNS, "start") or (
        dot and key and kind in ("params", "metrics", "tags")
    ):
        return
    with pytest.raises(StoreError, match=r"cannot sort by .*; expected one of start, name"):
        store.search_runs(RunQuery(sort=column))
