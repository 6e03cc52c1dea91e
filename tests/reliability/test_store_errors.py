"""A store file that is not runner's, a corrupt one, and a database runner does not speak: one
clear message each, exit 1, never a traceback, and another program's database left untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.helpers import run_cli

FOREIGN = (
    "is not a runner tracking store: it has tables ({tables}) but no runner schema version, "
    "so it belongs to another program and is left untouched"
)


def _clean(stderr: str) -> None:
    assert "Traceback" not in stderr and "unexpected error" not in stderr and "[SQL" not in stderr


@pytest.mark.parametrize("impl", ["auto", "sqlalchemy"])
@pytest.mark.parametrize("tables", [["foo"], ["runs"]])
def test_another_programs_database_is_refused_and_untouched(
    runner_home: Path, impl: str, tables: list[str]
) -> None:
    db = runner_home / "runner.db"
    with sqlite3.connect(db) as conn:
        for table in tables:
            conn.execute(f"CREATE TABLE {table} (a INTEGER)")
    before = db.read_bytes()
    result = run_cli("runs", "list", env={"RUNNER_STORE_IMPL": impl})
    assert result.returncode == 1
    assert FOREIGN.format(tables=", ".join(tables)) in result.stderr
    _clean(result.stderr)
    assert db.read_bytes() == before  # not one table added


def test_a_file_that_is_not_a_database(runner_home: Path) -> None:
    db = runner_home / "runner.db"
    db.write_bytes(b"\x00garbage" * 1000)
    result = run_cli("runs", "list")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: the tracking store {db} is not a readable SQLite database (file is not a "
        "database)\nhint: if it is damaged, move it aside (runner starts a new store) or "
        "restore a backup\n"
    )


def test_a_database_runner_does_not_speak_is_named(runner_home: Path) -> None:
    result = run_cli("runs", "list", env={"RUNNER_TRACKING_URI": "mysql://u:pw@localhost/db"})
    assert result.returncode == 1
    assert result.stderr == (
        "error: unsupported tracking URI mysql://***@localhost/db: runner keeps runs in SQLite "
        "or PostgreSQL\nhint: use sqlite:////path/to/runner.db or "
        "postgresql+psycopg://user@host/db\n"
    )
