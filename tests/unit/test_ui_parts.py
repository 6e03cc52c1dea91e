"""The web UI's parts without a browser: the filter box, metric buckets in the store, charts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import NewRun
from runner.store.core import SqlRunStore
from runner.store.open import open_store
from runner.ui import charts, provenance
from runner.ui.filters import FilterError, parse_filter, run_query


@pytest.fixture
def store() -> Iterator[SqlRunStore]:
    opened = open_store(None)
    assert isinstance(opened, SqlRunStore)
    yield opened
    opened.close()


def a_run(store: SqlRunStore) -> str:
    new = NewRun("e", "main", "true", "local", {}, {}, {"manager": "local"})
    return store.create_run(new)


def test_the_filter_box_reads_the_rest_searchs_terms() -> None:
    found = parse_filter(
        "params.alpha = 0.5 and tags.`team name` = 'n l p' AND metrics.loss <= 1e-3"
        ' and status = failed and params.path = "a \\"b\\" c"'
    )
    assert dict(found.params) == {"alpha": "0.5", "path": 'a "b" c'}
    assert dict(found.tags) == {"team name": "n l p"}
    assert found.metrics == (("loss", "<=", 0.001),)
    assert found.status == "FAILED"
    query = run_query(found, "exp", None, 50, None)
    assert (query.experiment, query.status, query.limit) == ("exp", "FAILED", 50)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alpha = 1", "cannot read the filter from 'alpha = 1'"),
        ("params.alpha < 1", "params.alpha: only = compares text, not <"),
        ("metrics.loss < low", "metrics.loss: 'low' is not a number"),
        ("metrics < 1", "metrics needs a key: metrics.NAME"),
        ("params.a = 1 and", "the filter ends with 'and': a term must follow it"),
        (" and ".join(f"params.p{i} = 1" for i in range(21)), "a filter takes at most 20"),
    ],
)
def test_a_filter_it_cannot_read_says_where(text: str, message: str) -> None:
    with pytest.raises(FilterError) as refused:
        parse_filter(text)
    assert refused.value.message.startswith(message)


def test_buckets_keep_every_point_and_every_extreme(store: SqlRunStore) -> None:
    run_id = a_run(store)
    values = [math.sin(step / 300) for step in range(10_000)]
    values[4321] = 50.0  # one spike in 10,000: a stride would skip it
    points = [("m", value, step, 1_000 + step) for step, value in enumerate(values)]
    store.log_metrics(run_id, [*points, ("m", math.nan, 10_000, 20_000)])
    summary = store.metric_summary(run_id, "m", "step", 400)
    assert summary.total == 10_001  # NaN counted, not drawn
    assert sum(bucket.points for bucket in summary.buckets) == 10_000
    assert 395 <= len(summary.buckets) <= 401
    assert max(bucket.high for bucket in summary.buckets) == 50.0
    assert min(bucket.low for bucket in summary.buckets) == min(values)
    assert summary.buckets[0].first == 0 and summary.buckets[-1].last == 9_999
    by_time = store.metric_summary(run_id, "m", "timestamp", 100)
    assert sum(bucket.points for bucket in by_time.buckets) == 10_000
    assert by_time.buckets[0].first == 1_000


def test_a_key_with_no_points_has_no_buckets(store: SqlRunStore) -> None:
    run_id = a_run(store)
    assert store.metric_summary(run_id, "absent", "step", 400) == (0, [])


def test_a_long_series_is_drawn_from_its_buckets_spike_included(store: SqlRunStore) -> None:
    run_id = a_run(store)
    store.log_metrics(
        run_id, [("m", 50.0 if s == 777 else 1.0 / (s + 1), s, s) for s in range(5000)]
    )
    series = charts.bucket_series("m", store.metric_summary(run_id, "m", "step", 400), "step")
    assert series.total == 5000 and len(series.points) <= 2 * 401  # 401: PostgreSQL rounds
    assert max(y for _x, y, _note in series.points) == 50.0
    svg = str(charts.line_chart([series], "step", "m by step"))
    assert svg.count('class="pt"') == len(series.points)
    assert 'data-points="5000"' in svg
    spike = next(note for _x, y, note in series.points if y == 50.0)
    assert re.fullmatch(r"m, steps \d+-\d+ \(\d+-\d+\): \d+ points, lowest .+, highest 50", spike)


def test_chart_labels_are_escaped() -> None:
    series = charts.Series("<b>", [(0.0, 1.0, "<i>"), (1.0, 2.0, "&")], 2)
    svg = str(charts.line_chart([series], "step", "<script>"))
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg and "&lt;i&gt;" in svg and "&amp;" in svg


def test_an_empty_chart_says_so() -> None:
    svg = str(charts.line_chart([charts.Series("m", [], 3)], "step", "m"))
    assert "no values" in svg


def test_a_log_read_in_chunks_never_splits_a_character(tmp_path: Path) -> None:
    text = "naïve → ünïcode ✓\n" * 50
    (tmp_path / provenance.LOG_FILE).write_bytes(text.encode())
    pieces, offset = [], 0
    while True:
        chunk = provenance.read_log(tmp_path, offset, 7)  # 7 bytes: cuts inside characters
        if not chunk.text and chunk.offset == offset:
            break
        pieces.append(chunk.text)
        offset = chunk.offset
    assert "".join(pieces) == text
    tail = provenance.read_log(tmp_path, -20, 20)
    assert tail.start == len(text.encode()) - 20 and tail.text.endswith("✓\n")
    assert provenance.read_log(tmp_path / "absent", 0, 10) == ("", 0, 0)


def test_a_page_of_values_never_splits_a_step(store: SqlRunStore) -> None:
    from starlette.datastructures import QueryParams

    from runner.server.artifacts import open_artifact_store
    from runner.ui.views import VALUES_PAGE, Views

    run_id = a_run(store)
    # 999 steps of one point, then step 999 logged three times: it straddles the page's end
    points = [("m", float(s), s, s) for s in range(999)] + [("m", 9.0, 999, t) for t in range(3)]
    store.log_metrics(run_id, [*points, ("m", 1.0, 1000, 0)])
    views = Views(store, open_artifact_store(None))
    first = views.values(run_id, QueryParams("key=m"))
    assert len(first["points"]) == VALUES_PAGE - 1 and first["next_step"] == 998
    second = views.values(run_id, QueryParams("key=m&after_step=998"))
    assert [p.step for p in second["points"]] == [999, 999, 999, 1000]
    assert second["next_step"] is None


def test_the_runs_table_sorts_every_matching_run_by_a_metric_page_by_page(
    store: SqlRunStore,
) -> None:
    from runner.ui.table import TableRequest, load_table

    losses = {}
    for index in range(7):
        run_id = a_run(store)
        losses[run_id] = float((index * 3) % 7)
        store.log_metrics(run_id, [("loss", losses[run_id], 0, 0)])
    shown: list[str] = []
    token = None
    while True:
        query = run_query(parse_filter("metrics.loss >= 1"), None, None, 2, token)
        table = load_table(store, TableRequest(query, "metrics.loss", descending=False))
        shown += [run.run_id for run in table.runs]
        token = table.next_token
        if token is None:
            break
    assert shown == sorted((r for r in losses if losses[r] >= 1), key=losses.__getitem__)
    unknown = load_table(
        store, TableRequest(run_query(parse_filter(""), None, None, 9, None), "params.", True)
    )
    assert [run.run_id for run in unknown.runs] == list(losses)[::-1]  # the newest first
