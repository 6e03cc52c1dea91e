"""The Store protocol written once over a Database: SQLite (stdlib or SQLAlchemy) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from runner.status import RunStatus
from runner.store import (
    LiveRun,
    Metric,
    MetricPoint,
    NewRun,
    RunnerProcess,
    RunPage,
    RunRecord,
    listing,
    records,
    rows,
)
from runner.store import statements as sql
from runner.store.database import Database, Session

if TYPE_CHECKING:  # the server's modules: not imported on the path of a plain `runner run`
    from runner.store import keyed, search

HISTORY_PAGE = 1000  # metric points per read of metric_history
_FIRST = (-(2**63), -1)  # (step, id) before every metric point
_LAST_ID = 2**63 - 1


class SqlRunStore:
    """Runs, params, tags and metrics in one database, through its Database adapter."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> SqlRunStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- writes --------------------------------------------------------------------------

    def create_run(self, new: NewRun) -> str:
        row = records.new_run_row(new)
        run_id: str = row["run_id"]
        params = records.key_values("param", run_id, new.parameters)
        tags = records.key_values("tag", run_id, new.tags)
        with self._write() as session:
            row["experiment_id"] = _experiment_id(session, new.experiment)
            session.execute(sql.INSERT_RUN, [row[name] for name in sql.RUN_COLUMNS])
            session.executemany(sql.INSERT_PARAM, params)
            session.executemany(sql.UPSERT_TAG, tags)
        return run_id

    def start_run(self, run_id: str) -> None:
        args = (RunStatus.RUNNING.value, records.now_ms(), run_id, RunStatus.SCHEDULED.value)
        with self._write() as session:
            if not session.execute(sql.START, args):
                records.must_start(run_id, _status(session, run_id))

    def update_run(
        self,
        run_id: str,
        *,
        environment: Mapping[str, Any] | None = None,
        command: str | None = None,
        runner_pid: int | None = None,
        runner_host: str | None = None,
        runner_start: float | None = None,
    ) -> None:
        values = records.update_values(
            environment=environment,
            command=command,
            runner_pid=runner_pid,
            runner_host=runner_host,
            runner_start=runner_start,
        )
        self._update(run_id, values)

    def heartbeat(self, run_id: str) -> None:
        self._update(run_id, {"heartbeat": records.now_ms()})

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool:
        final = records.terminal_status(status)
        args = (final, records.now_ms(), exit_code, reason, run_id)
        with self._write() as session:
            if session.execute(sql.FINISH, args):
                return True
            _status(session, run_id)  # RunNotFound if there is no such run at all
            return False

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._write() as session:
            _status(session, run_id)
            logged: dict[str, str] = dict(session.rows(sql.PARAMS_OF_RUN, (run_id,)))
            session.executemany(sql.INSERT_PARAM, records.new_params(run_id, logged, params))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        rows = records.key_values("tag", run_id, tags)
        with self._write() as session:
            _status(session, run_id)
            session.executemany(sql.UPSERT_TAG, rows)

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        rows = records.metric_rows(run_id, metrics)
        with self._write() as session:
            _status(session, run_id)
            session.executemany(sql.INSERT_METRIC, rows)
            session.executemany(sql.UPSERT_LATEST, records.newest_per_key(rows))

    def release_runner(self, run_id: str) -> None:
        with self._write() as session:
            if not session.execute(sql.RELEASE, (run_id,)):
                _status(session, run_id)  # RunNotFound, or a run that has already ended

    def claim_interval(self, name: str, seconds: float) -> bool:
        records.check_key("interval", name)
        now, interval = records.now_ms(), int(seconds * 1000)
        with self._write() as session:
            return session.execute(sql.CLAIM, (name, now, now - interval, now + interval)) == 1

    # -- the server's idempotent writes (client keys) -------------------------------------

    def create_run_once(self, new: NewRun, request_key: str) -> str:
        """``create_run``, unless a request with this key made a run already: then that run."""
        from runner.store import keyed

        keyed.check_write_key(request_key)
        row = records.new_run_row(new)
        params = records.key_values("param", row["run_id"], new.parameters)
        tags = records.key_values("tag", row["run_id"], new.tags)
        with self._write() as session:
            found = session.one(sql.FIND_RUN_REQUEST, (request_key,))
            if found is not None:
                return str(found[0])
            row["experiment_id"] = _experiment_id(session, new.experiment)
            session.execute(sql.INSERT_RUN, [row[name] for name in sql.RUN_COLUMNS])
            session.executemany(sql.INSERT_PARAM, params)
            session.executemany(sql.UPSERT_TAG, tags)
            session.execute(sql.INSERT_RUN_REQUEST, (request_key, row["run_id"]))
        return str(row["run_id"])

    def log_keyed(self, run_id: str, batches: Mapping[str, keyed.Batch]) -> list[str]:
        """Apply the batches whose keys this run has not seen; returns those keys.

        The check and the writes share one transaction that locks the run (PostgreSQL) or the
        database (SQLite), so two deliveries of one key never both apply.
        """
        from runner.store import keyed

        for key in batches:
            keyed.check_write_key(key)
        with self._write() as session:
            _status(session, run_id)
            fresh = keyed.fresh_keys(session, run_id, list(batches))
            keyed.write(session, run_id, keyed.merged([batches[k] for k in fresh]), fresh)
        return fresh

    def search_runs(self, query: search.RunQuery) -> RunPage:
        """The page of runs ``query`` matches (indexed filters, keyset pages)."""
        from runner.store import search

        search.check_query(query)
        with self._read() as session:
            return search.search(session, query)

    def experiments(self) -> list[tuple[int, str, int]]:
        """(id, name, created ms) of every experiment, by name."""
        with self._read() as session:
            return [(int(i), str(n), int(c)) for i, n, c in session.rows(sql.EXPERIMENTS)]

    def create_experiment(self, name: str) -> int:
        """The id of the experiment ``name``, created if it does not exist."""
        records.check_experiment(name)
        with self._write() as session:
            return _experiment_id(session, name)

    # -- runs ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        low, high = records.prefix_bounds(run_id)
        with self._read() as session:
            matches = [found for (found,) in session.rows(sql.PREFIX_MATCHES, (low, high))]
            full = records.single_match(run_id, matches)
            found = session.rows(sql.SELECT_RECORD + " WHERE run_id = ?", (full,))
            return listing.records(session, found)[0]

    def list_runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> RunPage:
        records.check_limit(limit)
        value = listing.check_filter(status)
        with self._read() as session:
            where = listing.run_filter(session, experiment, value)
            if where is None:
                return RunPage([], 0, False, None)
            where = where.after(listing.token_cursor(session, page_token))
            found = listing.page(session, where, limit)
            more, capped = listing.more_after(session, where, len(found), limit)
            runs = listing.records(session, found)
        return RunPage(runs, more, capped, runs[-1].run_id if more and runs else None)

    def iter_runs(
        self, experiment: str | None = None, status: str | None = None
    ) -> Iterator[RunRecord]:
        return self._pages(experiment, listing.check_filter(status))

    def _pages(self, experiment: str | None, status: str | None) -> Iterator[RunRecord]:
        cursor: listing.Cursor | None = None
        while True:
            with self._read() as session:  # one page per transaction: no lock held while yielding
                where = listing.run_filter(session, experiment, status)
                found = listing.page(session, where.after(cursor), listing.PAGE) if where else []
                runs = listing.records(session, found)
            yield from runs
            if len(found) < listing.PAGE:
                return
            cursor = listing.cursor_of(found[-1])

    def experiment_names(self) -> list[str]:
        """Names of all experiments, sorted."""
        with self._read() as session:
            return [name for (name,) in session.rows(sql.EXPERIMENT_NAMES)]

    # -- metrics -------------------------------------------------------------------------

    def metric_history(
        self, run_id: str, key: str, *, after_step: int | None = None, limit: int | None = None
    ) -> Iterator[MetricPoint]:
        records.check_limit(limit, "metric point")
        with self._read() as session:
            _status(session, run_id)  # RunNotFound now, not at the first next()
        start = _FIRST if after_step is None else (after_step, _LAST_ID)
        return self._history(run_id, key, start, limit)

    def _history(
        self, run_id: str, key: str, cursor: tuple[int, int], limit: int | None
    ) -> Iterator[MetricPoint]:
        left = limit
        while left is None or left > 0:
            size = HISTORY_PAGE if left is None else min(HISTORY_PAGE, left)
            with self._read() as session:
                found = session.rows(sql.HISTORY, (run_id, key, *cursor, size))
            yield from map(rows.metric_point, found)
            if len(found) < size:
                return
            cursor = (found[-1][0], found[-1][3])
            left = None if left is None else left - len(found)

    def latest_metrics(self, run_id: str) -> dict[str, MetricPoint]:
        with self._read() as session:
            _status(session, run_id)
            found = session.rows(sql.LATEST_OF_RUN, (run_id,))
        return {row[0]: rows.metric_point(row[1:]) for row in found}

    # -- live runs -----------------------------------------------------------------------

    def live_runs(self) -> list[LiveRun]:
        return self._live(sql.ALL_LIVE)

    def live_run(self, run_id: str) -> LiveRun | None:
        found = self._live(sql.LIVE_RUN, run_id)
        return found[0] if found else None

    def runner_processes(self, host: str) -> list[RunnerProcess]:
        with self._read() as session:
            return [rows.runner_process(row) for row in session.rows(sql.RUNNER_PROCESSES, (host,))]

    def live_runs_of_process(self, host: str, pid: int, start: float | None) -> list[LiveRun]:
        started = sql.NO_START if start is None else start
        return self._live(sql.RUNS_OF_PROCESS, host, pid, sql.NO_START, started)

    def stale_runs(self, older_than_ms: int, exclude_host: str) -> list[LiveRun]:
        """Live runs of other hosts whose runner's last heartbeat is over ``older_than_ms`` old."""
        return self._live(sql.STALE, records.now_ms() - older_than_ms, exclude_host)

    def backend_owned_runs(self, backend: str, limit: int) -> list[LiveRun]:
        records.check_limit(limit)
        return self._live(sql.BACKEND_OWNED, backend, limit)

    def _live(self, statement: str, *params: Any) -> list[LiveRun]:
        with self._read() as session:
            return [rows.live_run(row) for row in session.rows(statement, params)]

    # -- helpers -------------------------------------------------------------------------

    def _update(self, run_id: str, values: Mapping[str, Any]) -> None:
        # Column names come from update_run's keyword names, never from callers' data.
        assignments = ", ".join(f"{name} = ?" for name in values)
        update = f"UPDATE runs SET {assignments} WHERE run_id = ?"
        with self._write() as session:
            if not values or not session.execute(update, [*values.values(), run_id]):
                _status(session, run_id)  # RunNotFound, or a no-op update of a real run

    def _write(self) -> AbstractContextManager[Session]:
        return self._db.transaction(write=True)

    def _read(self) -> AbstractContextManager[Session]:
        return self._db.transaction(write=False)


def _experiment_id(session: Session, name: str) -> int:
    found = session.one(sql.FIND_EXPERIMENT, (name,))
    if found is None:
        # DO NOTHING: another process may create it meanwhile (SQLite writers queue; PostgreSQL
        # waits for that transaction, then the SELECT sees its row).
        session.execute(sql.INSERT_EXPERIMENT, (name, records.now_ms()))
        found = session.one(sql.FIND_EXPERIMENT, (name,))
    assert found is not None
    return int(found[0])


def _status(session: Session, run_id: str) -> str:
    lock = session.dialect.lock_row if session.write else ""
    found = session.one(sql.STATUS + lock, (run_id,))
    if found is None:
        raise records.not_found(run_id)
    return str(found[0])
