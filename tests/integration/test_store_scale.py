"""Big stores through the real CLI and API: listing pages, `--all` and metric history stay small."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.status import RunStatus
from runner.store import NewRun
from runner.store.open import open_store
from tests.helpers import run_cli

STATUSES = ("FINISHED", "FAILED", "FINISHED", "KILLED")  # clone i gets STATUSES[i % 4]
FIRST_START = 1_000_000_000_000  # clone i started at FIRST_START + i ms, before the template


def make_template(db: Path, experiment: str = "exp") -> str:
    """One finished run with a param, a tag and a metric, created through the store."""
    with open_store(f"sqlite:///{db}") as store:  # type: ignore[attr-defined]
        new = NewRun(experiment, "main", "true", "local", {"a": "1"}, {}, {"manager": "local"})
        run_id: str = store.create_run(new)
        store.set_tags(run_id, {"team": "ml"})
        store.log_metrics(run_id, [("acc", 0.5, 1, 1)])
        store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    return run_id


def clone_runs(db: Path, template: str, count: int) -> list[str]:
    """``count`` copies of ``template`` and its params in one transaction, oldest first (creating
    them one by one through the store would take minutes)."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        fresh = ("run_id", "status", "start_time")
        select = ", ".join("?" if name in fresh else name for name in columns)
        insert = f"INSERT INTO runs ({', '.join(columns)}) SELECT {select} FROM runs"
        rows = ((run_id, STATUSES[i % 4], FIRST_START + i) for i, run_id in enumerate(ids))
        assert [name for name in columns if name in fresh] == list(fresh)  # the order of `rows`
        conn.executemany(insert + " WHERE run_id = ?", ((*row, template) for row in rows))
        params = "INSERT INTO params (run_id, key, value) SELECT ?, key, value FROM params"
        conn.executemany(params + " WHERE run_id = ?", ((run_id, template) for run_id in ids))
    return ids


@pytest.fixture
def store_db(runner_home: Path) -> Path:
    return runner_home / "runner.db"


def listed_ids(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()[1:]]


def test_list_shows_the_newest_20_and_how_to_see_more(store_db: Path) -> None:
    template = make_template(store_db)
    newest = [template, *clone_runs(store_db, template, 199)[::-1]]
    first = run_cli("runs", "list")
    assert first.returncode == 0, first.stderr
    assert listed_ids(first.stdout) == [run_id[:12] for run_id in newest[:20]]
    assert first.stdout.startswith("RUN ID        STATUS    EXPERIMENT  ENTRY POINT  STARTED ")
    more = f"... 180 more: --limit 200, --page-token {newest[19]} or --all\n"
    assert first.stderr == more
    second = run_cli("runs", "list", "--page-token", newest[19], "--limit", "30")
    assert listed_ids(second.stdout) == [run_id[:12] for run_id in newest[20:50]]
    assert second.stderr == f"... 150 more: --limit 180, --page-token {newest[49]} or --all\n"
    everything = run_cli("runs", "list", "--all")
    assert listed_ids(everything.stdout) == [run_id[:12] for run_id in newest]
    assert everything.stderr == ""
    assert run_cli("runs", "list", "--limit", "200").stderr == ""


def test_filters_page_too(store_db: Path) -> None:
    template = make_template(store_db)
    make_template(store_db, experiment="other")
    clones = clone_runs(store_db, template, 100)
    failed = [run_id for i, run_id in enumerate(clones) if STATUSES[i % 4] == "FAILED"][::-1]
    result = run_cli("runs", "list", "--status", "failed", "--experiment", "exp", "--json")
    assert [record["run_id"] for record in json.loads(result.stdout)] == failed[:20]
    assert result.stderr == f"... 5 more: --limit 25, --page-token {failed[19]} or --all\n"
    assert len(json.loads(run_cli("runs", "list", "--experiment", "other", "--json").stdout)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--limit", "5"], "Error: --all lists every run; it takes no --limit or --page"),
        (["--limit", "-1"], "Error: Invalid value for '--limit': -1 is not in the range x>=0."),
        (["--page-token", "f" * 32], f"error: page token '{'f' * 32}' names no run in this store"),
    ],
)
def test_list_option_errors(store_db: Path, args: list[str], message: str) -> None:
    make_template(store_db)
    result = run_cli("runs", "list", *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# A child's peak RSS is the VmHWM of its own memory map, written at exit to the file named by
# its first argument: os.wait4 and getrusage would report this (big) pytest process's RSS, which
# a child inherits when it is forked.
REPORT_PEAK = textwrap.dedent(
    """
    import atexit, sys
    PEAK_FILE = sys.argv.pop(1)
    def report_peak():
        with open("/proc/self/status") as status, open(PEAK_FILE, "w") as out:
            out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    atexit.register(report_peak)
    """
)
CLI = REPORT_PEAK + "from runner.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def peak_rss_mb(script: str, args: list[str], stdout: Path) -> float:
    """Run ``script`` with ``args`` and its output in ``stdout``; its peak RSS in MB."""
    peak = stdout.with_suffix(".peak")
    with stdout.open("wb") as out:
        argv = [sys.executable, "-c", script, str(peak), *args]
        result = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return int(peak.read_text()) / 1024


def read_run_ids(listing: Path) -> Iterator[str]:
    """Run ids of a `runs list --json` output, read line by line (a record's id line)."""
    with listing.open() as lines:
        for line in lines:
            if line.startswith('    "run_id": '):
                yield json.loads(line.split(": ", 1)[1].rstrip(",\n"))


@pytest.mark.slow
def test_all_json_streams_100k_runs_in_bounded_memory(store_db: Path, tmp_path: Path) -> None:
    template = make_template(store_db)
    newest = [template, *clone_runs(store_db, template, 100_000)[::-1]]
    page_rss = peak_rss_mb(CLI, ["runs", "list", "--json"], tmp_path / "page.json")
    all_rss = peak_rss_mb(CLI, ["runs", "list", "--all", "--json"], tmp_path / "all.json")
    # Held in memory, 100,000 records take hundreds of MB; streamed, about one page's worth.
    assert all_rss < page_rss + 40, (page_rss, all_rss)
    assert list(read_run_ids(tmp_path / "all.json")) == newest
    records = json.loads((tmp_path / "all.json").read_text())  # the whole output is one list
    assert len(records) == 100_001 and records[-1]["parameters"] == {"a": "1"}


HISTORY_READER = REPORT_PEAK + textwrap.dedent(
    """
    from runner.store.open import open_store
    store = open_store(sys.argv[1])
    count, last = 0, -1
    for point in store.metric_history(sys.argv[2], "loss", limit=int(sys.argv[3]) or None):
        assert point.step > last
        count, last = count + 1, point.step
    print(count)
    """
)


def log_history(db: Path, run_id: str, points: int) -> None:
    """``points`` values of ``loss`` (step i, timestamp i), straight into the metrics table."""
    insert = "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, 'loss', ?, ?, ?)"
    with sqlite3.connect(db) as conn:
        conn.executemany(insert, ((run_id, i / points, i, i) for i in range(points)))


@pytest.mark.slow
def test_metric_history_of_a_million_points_in_bounded_memory(
    store_db: Path, tmp_path: Path
) -> None:
    run_id = make_template(store_db)
    log_history(store_db, run_id, 1_000_000)
    args = [f"sqlite:///{store_db}", run_id]
    few_rss = peak_rss_mb(HISTORY_READER, [*args, "10"], tmp_path / "few.txt")
    all_rss = peak_rss_mb(HISTORY_READER, [*args, "0"], tmp_path / "all.txt")
    assert (tmp_path / "few.txt").read_text() == "10\n"
    assert (tmp_path / "all.txt").read_text() == "1000000\n"
    assert all_rss < few_rss + 30, (few_rss, all_rss)  # a million points held would be >100 MB
