"""The Store protocol over SQLAlchemy Core: PostgreSQL (postgresql+psycopg://) or any other URL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from runner.errors import StoreError
from runner.redact import redact_uri
from runner.status import RunStatus
from runner.store import LiveRun, Metric, NewRun, records, schema
from runner.store.migrate import READ_OPTION, ensure_engine_schema, sqlite_path
from runner.store.schema import experiments, latest_metrics, runs


def make_engine(uri: str) -> Engine:
    """An engine for ``uri``; SQLite connections get WAL-friendly settings and BEGIN IMMEDIATE."""
    try:
        engine = create_engine(uri, pool_pre_ping=not uri.startswith("sqlite"))
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver for {redact_uri(uri)} is not installed ({exc.name})",
            hint="install it, e.g. pip install 'psycopg[binary]' for postgresql+psycopg://",
        ) from exc
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"unsupported tracking URI {redact_uri(uri)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the "begin" hook below issues BEGIN itself
    for pragma in records.SQLITE_PRAGMAS:
        dbapi_connection.execute(pragma)


def _on_sqlite_begin(conn: Connection) -> None:
    # A deferred write transaction can hit SQLITE_BUSY on upgrade despite busy_timeout;
    # taking the write lock up front makes writers queue instead.
    reading = conn.get_execution_options().get(READ_OPTION, False)
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


class SqlStore(records.RunUpdates):
    """Runs, params, tags and metrics in any database SQLAlchemy speaks to."""

    def __init__(self, uri: str) -> None:
        self._where = redact_uri(uri)
        self._engine = make_engine(uri)
        sqlite = self._engine.dialect.name == "sqlite"
        # Same-millisecond runs: newest insert first on SQLite; PostgreSQL has no insertion order.
        self._tiebreak: ColumnElement[Any] = (
            literal_column("runs.rowid") if sqlite else runs.c.run_id
        )
        with self._errors():
            ensure_engine_schema(self._engine, sqlite_path(uri))

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    def create_run(self, new: NewRun) -> str:
        row = records.new_run_row(new)
        run_id: str = row["run_id"]
        param_rows = records.key_values("param", run_id, new.parameters)
        tag_rows = records.key_values("tag", run_id, new.tags)
        with self._write() as conn:
            row["experiment_id"] = self._experiment_id(conn, new.experiment)
            conn.execute(insert(runs), row)
            _insert(conn, schema.params, records.KV_COLUMNS, param_rows)
            _insert(conn, schema.tags, records.KV_COLUMNS, tag_rows)
        return run_id

    def start_run(self, run_id: str) -> None:
        scheduled = _run(run_id) & (runs.c.status == RunStatus.SCHEDULED.value)
        started = {"status": RunStatus.RUNNING.value, "heartbeat": records.now_ms()}
        with self._write() as conn:
            if not conn.execute(update(runs).where(scheduled).values(started)).rowcount:
                records.must_start(run_id, self._status(conn, run_id))

    def finish_run(
        self, run_id: str, status: RunStatus, exit_code: int | None, reason: str | None
    ) -> bool:
        final = records.terminal_status(status)
        live = _run(run_id) & runs.c.status.in_(records.LIVE_STATUSES)
        ended = {"end_time": records.now_ms(), "exit_code": exit_code, "failure_reason": reason}
        with self._write() as conn:
            if conn.execute(update(runs).where(live).values(status=final, **ended)).rowcount:
                return True
            self._status(conn, run_id)  # RunNotFound if there is no such run at all
            return False

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._status(conn, run_id)
            columns = schema.params.c
            query = select(columns.key, columns.value).where(columns.run_id == run_id)
            logged = {key: value for key, value in conn.execute(query)}
            rows = records.new_params(run_id, logged, params)
            _insert(conn, schema.params, records.KV_COLUMNS, rows)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        rows = records.key_values("tag", run_id, tags)
        with self._write() as conn:
            self._status(conn, run_id)
            _replace(conn, schema.tags, records.KV_COLUMNS, rows)

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        rows = records.metric_rows(run_id, metrics)
        with self._write() as conn:
            self._status(conn, run_id)
            _insert(conn, schema.metrics, records.METRIC_COLUMNS, rows)
            columns = latest_metrics.c
            query = select(columns.key, columns.step, columns.timestamp)
            query = query.where(columns.run_id == run_id)
            latest = {key: (step, ts) for key, step, ts in conn.execute(query)}
            changed = records.latest_changes(latest, rows)
            _replace(conn, latest_metrics, records.METRIC_COLUMNS, changed)

    def get_run(self, run_id: str) -> dict[str, Any]:
        low, high = records.prefix_bounds(run_id)
        with self._read() as conn:
            query = select(runs.c.run_id).where(runs.c.run_id >= low, runs.c.run_id < high)
            full = records.single_match(run_id, conn.scalars(query).all())
            return self._records(conn, [runs.c.run_id == full], None)[0]

    def list_runs(
        self, experiment: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        where = []
        if experiment is not None:
            where.append(experiments.c.name == experiment)
        if status is not None:
            where.append(runs.c.status == records.parse_status(status).value)
        records.check_limit(limit)
        with self._read() as conn:
            return self._records(conn, where, limit)

    def live_runs(self) -> list[LiveRun]:
        columns = [runs.c[name] for name in records.LIVE_COLUMNS]
        query = select(*columns).where(runs.c.status.in_(records.LIVE_STATUSES))
        with self._read() as conn:
            rows = conn.execute(query.order_by(runs.c.start_time, self._tiebreak))
            return [records.live_run(tuple(row)) for row in rows]

    def experiment_names(self) -> list[str]:
        """Names of all experiments, sorted."""
        with self._read() as conn:
            return list(conn.scalars(select(experiments.c.name).order_by(experiments.c.name)))

    def _records(
        self, conn: Connection, where: Sequence[ColumnElement[bool]], limit: int | None
    ) -> list[dict[str, Any]]:
        joined = runs.join(experiments, experiments.c.id == runs.c.experiment_id)
        query = select(*runs.c, experiments.c.name.label("experiment")).select_from(joined)
        order = (runs.c.start_time.desc(), self._tiebreak.desc())
        result = conn.execute(query.where(*where).order_by(*order).limit(limit))
        rows = [dict(row) for row in result.mappings()]
        ids = [row["run_id"] for row in rows]
        tables = {"params": schema.params, "tags": schema.tags, "metrics": latest_metrics}
        children = {kind: _children(conn, table, ids) for kind, table in tables.items()}
        return records.build_records(rows, children)

    def _experiment_id(self, conn: Connection, name: str) -> int:
        query = select(experiments.c.id).where(experiments.c.name == name)
        found: int | None = conn.scalar(query)
        if found is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(experiments).values(name=name, created=records.now_ms()))
            except IntegrityError:
                pass  # another process created it meanwhile (PostgreSQL; SQLite writers queue)
            found = conn.scalar(query)
        assert found is not None  # just inserted, or inserted by the process that won the race
        return found

    def _status(self, conn: Connection, run_id: str) -> str:
        # FOR UPDATE serialises writers of one run on PostgreSQL; SQLite ignores it.
        query = select(runs.c.status).where(_run(run_id)).with_for_update()
        status = conn.scalar(query)
        if status is None:
            raise records.not_found(run_id)
        return str(status)

    def _update(self, run_id: str, values: Mapping[str, Any]) -> None:
        with self._write() as conn:
            changed = values and conn.execute(update(runs).where(_run(run_id)).values(values))
            if not changed or not changed.rowcount:
                self._status(conn, run_id)  # RunNotFound, or a no-op update of a real run

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._errors(), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            self._errors(),
            self._engine.connect() as conn,
            conn.execution_options(**{READ_OPTION: True}).begin(),
        ):
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(f"tracking store {self._where}: {cause}") from exc


def _run(run_id: str) -> ColumnElement[bool]:
    return runs.c.run_id == run_id


def _insert(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """executemany straight to the driver: per-row SQLAlchemy parameter processing makes 100k
    metrics take seconds, and these columns (text, integers, floats) need no conversion."""
    if not rows:
        return
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(names))
    if compiled.positiontup is not None:  # qmark/format/numeric drivers take tuples in order
        assert tuple(compiled.positiontup) == tuple(names)
        conn.exec_driver_sql(str(compiled), list(rows))
    else:
        conn.exec_driver_sql(str(compiled), [dict(zip(names, row, strict=True)) for row in rows])


def _replace(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Delete the rows with the same (run_id, key), then insert: an upsert any database runs."""
    if rows:
        same = (table.c.run_id == bindparam("r")) & (table.c.key == bindparam("k"))
        conn.execute(delete(table).where(same), [{"r": row[0], "k": row[1]} for row in rows])
        _insert(conn, table, names, rows)


def _children(conn: Connection, table: Table, ids: Sequence[str]) -> list[records.KeyValue]:
    found: list[records.KeyValue] = []
    for chunk in records.chunks(ids):
        query = select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(chunk))
        found.extend((run_id, key, value) for run_id, key, value in conn.execute(query))
    return found
