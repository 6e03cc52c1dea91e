"""The Store protocol over the stdlib sqlite3 module: the CLI need not import SQLAlchemy."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from runner.errors import StoreError
from runner.status import RunStatus
from runner.store import LiveRun, Metric, NewRun, records
from runner.store.migrate import ensure_sqlite_schema

_RUN_SELECT = (
    f"SELECT {', '.join('r.' + name for name in records.RUN_COLUMNS)}, e.name AS experiment"
    " FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)
_RUN_ORDER = " ORDER BY r.start_time DESC, r.rowid DESC LIMIT ?"
_INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(records.RUN_COLUMNS)})"
    f" VALUES ({', '.join(':' + name for name in records.RUN_COLUMNS)})"
)
_INSERT_KV = "INSERT INTO {} (run_id, key, value) VALUES (?, ?, ?)"
_INSERT_METRIC = "INSERT INTO {} (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)"
_DELETE_KEY = "DELETE FROM {} WHERE run_id = ? AND key = ?"
_FINISH = (
    "UPDATE runs SET status = ?, end_time = ?, exit_code = ?, failure_reason = ?"
    " WHERE run_id = ? AND status IN (?, ?)"
)
_START = "UPDATE runs SET status = ?, heartbeat = ? WHERE run_id = ? AND status = ?"
_LIVE = (
    f"SELECT {', '.join(records.LIVE_COLUMNS)} FROM runs WHERE status IN (?, ?)"
    " ORDER BY start_time, rowid"
)


class SqliteStore(records.RunUpdates):
    """Runs, params, tags and metrics in one SQLite file through a single connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.RLock()  # one connection per process, shared by its threads
        self._conn = self._connect()
        with self._errors():
            ensure_sqlite_schema(self._conn, path)

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def create_run(self, new: NewRun) -> str:
        row = records.new_run_row(new)
        run_id: str = row["run_id"]
        param_rows = records.key_values("param", run_id, new.parameters)
        tag_rows = records.key_values("tag", run_id, new.tags)
        with self._write() as conn:
            row["experiment_id"] = self._experiment_id(conn, new.experiment)
            conn.execute(_INSERT_RUN, row)
            conn.executemany(_INSERT_KV.format("params"), param_rows)
            conn.executemany(_INSERT_KV.format("tags"), tag_rows)
        return run_id

    def start_run(self, run_id: str) -> None:
        args = (RunStatus.RUNNING.value, records.now_ms(), run_id, RunStatus.SCHEDULED.value)
        with self._write() as conn:
            if not conn.execute(_START, args).rowcount:
                records.must_start(run_id, self._status(conn, run_id))

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool:
        final = records.terminal_status(status)
        args = (final, records.now_ms(), exit_code, reason, run_id, *records.LIVE_STATUSES)
        with self._write() as conn:
            if conn.execute(_FINISH, args).rowcount:
                return True
            self._status(conn, run_id)  # RunNotFound if there is no such run at all
            return False

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._status(conn, run_id)
            query = "SELECT key, value FROM params WHERE run_id = ?"
            logged = dict(conn.execute(query, (run_id,)).fetchall())
            conn.executemany(
                _INSERT_KV.format("params"), records.new_params(run_id, logged, params)
            )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        rows = records.key_values("tag", run_id, tags)
        with self._write() as conn:
            self._status(conn, run_id)
            conn.executemany(_DELETE_KEY.format("tags"), [row[:2] for row in rows])
            conn.executemany(_INSERT_KV.format("tags"), rows)

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        rows = records.metric_rows(run_id, metrics)
        with self._write() as conn:
            self._status(conn, run_id)
            conn.executemany(_INSERT_METRIC.format("metrics"), rows)
            query = "SELECT key, step, timestamp FROM latest_metrics WHERE run_id = ?"
            latest = {key: (step, ts) for key, step, ts in conn.execute(query, (run_id,))}
            changed = records.latest_changes(latest, rows)
            conn.executemany(_DELETE_KEY.format("latest_metrics"), [row[:2] for row in changed])
            conn.executemany(_INSERT_METRIC.format("latest_metrics"), changed)

    def get_run(self, run_id: str) -> dict[str, Any]:
        low, high = records.prefix_bounds(run_id)
        query = "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ?"
        with self._read() as conn:
            matches = [found for (found,) in conn.execute(query, (low, high))]
            full = records.single_match(run_id, matches)
            return self._records(conn, " WHERE r.run_id = ?", [full], None)[0]

    def list_runs(
        self, experiment: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        where, args = [], []
        if experiment is not None:
            where.append("e.name = ?")
            args.append(experiment)
        if status is not None:
            where.append("r.status = ?")
            args.append(records.parse_status(status).value)
        clause = " WHERE " + " AND ".join(where) if where else ""
        records.check_limit(limit)
        with self._read() as conn:
            return self._records(conn, clause, args, limit)

    def live_runs(self) -> list[LiveRun]:
        with self._read() as conn:
            return [records.live_run(row) for row in conn.execute(_LIVE, records.LIVE_STATUSES)]

    def experiment_names(self) -> list[str]:
        """Names of all experiments, sorted."""
        with self._read() as conn:
            return [name for (name,) in conn.execute("SELECT name FROM experiments ORDER BY name")]

    def _records(
        self, conn: sqlite3.Connection, where: str, args: list[str], limit: int | None
    ) -> list[dict[str, Any]]:
        cursor = conn.execute(
            _RUN_SELECT + where + _RUN_ORDER, (*args, -1 if limit is None else limit)
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        ids = [row["run_id"] for row in rows]
        tables = {"params": "params", "tags": "tags", "metrics": "latest_metrics"}
        children = {kind: _children(conn, table, ids) for kind, table in tables.items()}
        return records.build_records(rows, children)

    def _experiment_id(self, conn: sqlite3.Connection, name: str) -> int:
        # Race-free: BEGIN IMMEDIATE lets one writer at a time between the SELECT and the INSERT.
        found = conn.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        if found is not None:
            return int(found[0])
        insert = "INSERT INTO experiments (name, created) VALUES (?, ?)"
        return int(conn.execute(insert, (name, records.now_ms())).lastrowid or 0)

    def _status(self, conn: sqlite3.Connection, run_id: str) -> str:
        found = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if found is None:
            raise records.not_found(run_id)
        return str(found[0])

    def _update(self, run_id: str, values: Mapping[str, Any]) -> None:
        # Column names come from update_run's keyword names, never from callers' data.
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        with self._write() as conn:
            update = f"UPDATE runs SET {assignments} WHERE run_id = :run_id"
            if not values or not conn.execute(update, {**values, "run_id": run_id}).rowcount:
                self._status(conn, run_id)

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: the module must not BEGIN on its own; _transaction does.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in records.SQLITE_PRAGMAS:
                conn.execute(pragma)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the tracking store {self._path}: {exc}",
                hint="check that its directory exists and is writable",
            ) from exc
        return conn

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # Taking the write lock up front: a deferred transaction that later writes can fail
        # with SQLITE_BUSY at once, whatever busy_timeout says.
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN")  # one consistent snapshot; WAL writers go on

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            self._conn.execute(begin)
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"tracking store {self._path}: {exc}") from exc


def _children(conn: sqlite3.Connection, table: str, ids: Sequence[str]) -> list[records.KeyValue]:
    found: list[records.KeyValue] = []
    for chunk in records.chunks(ids):
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks})"
        found.extend(conn.execute(query, chunk))
    return found
