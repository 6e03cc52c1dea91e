"""Fill a SQLite store of either tool with copies of one run it wrote itself (stdlib only)."""

# Creating a million runs through runner's or MLflow's API would take hours; copying the rows the
# tool wrote for one template run gives every copy the tool's own shape (params, tags, metrics).

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

Changes = Callable[[int], dict[str, Any]]  # copy index -> new values of the run's own columns


def status_of(index: int) -> str:
    """5 % of the copies FAILED, 2 % KILLED, the rest FINISHED."""
    if index % 20 == 7:
        return "FAILED"
    return "KILLED" if index % 50 == 3 else "FINISHED"


def run_id_of(index: int) -> str:
    """A random-looking but reproducible 32-hex-digit run id for copy ``index``."""
    return hashlib.blake2b(f"bench-run-{index}".encode(), digest_size=16).hexdigest()


def start_ms(index: int, count: int) -> int:
    """Copies start one second apart, the last one a second before now (the template is newer)."""
    return int(time.time() * 1000) - (count - index) * 1000


def copy_run(
    conn: sqlite3.Connection, key: str, template: str, count: int, changes: Changes
) -> None:
    """``count`` copies of run ``template`` in every table with a ``key`` column, in one
    transaction; ``changes(i)`` holds copy i's new ``key`` and its other changed run columns."""
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB: the indexes of a million runs
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    with conn:
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            if key in [row[1] for row in info]:
                _copy_table(conn, table, info, key, template, count, changes)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone is the whole store


def _copy_table(
    conn: sqlite3.Connection,
    table: str,
    info: list[tuple[Any, ...]],
    key: str,
    template: str,
    count: int,
    changes: Changes,
) -> None:
    columns = [row[1] for row in info]
    rows = conn.execute(f"SELECT * FROM {table} WHERE {key} = ?", (template,)).fetchall()
    is_run = table == "runs"
    # A lone INTEGER PRIMARY KEY (e.g. metrics.id) is the rowid: each copy gets a new one.
    primary = [row for row in info if row[5]]
    rowid = {primary[0][1]: None} if len(primary) == 1 and primary[0][2] == "INTEGER" else {}
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def copies() -> Iterator[tuple[Any, ...]]:
        for index in range(count):
            changed = changes(index)
            new = {**rowid, **(changed if is_run else {key: changed[key]})}
            for row in rows:
                yield tuple(new.get(name, value) for name, value in zip(columns, row, strict=True))

    conn.executemany(insert, copies())
