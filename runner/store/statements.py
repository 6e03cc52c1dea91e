"""The store's SQL, written once with ``?`` placeholders, in SQL both SQLite and PostgreSQL run."""

from __future__ import annotations

# Columns of ``runs`` in the order rows are inserted.
RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "exit_code",
    "failure_reason",
    "entry_point",
    "command",
    "backend",
    "source",
    "environment",
    "parent_run_id",
    "runner_pid",
    "runner_host",
    "runner_start",
    "heartbeat",
)
# What a run record is read from, in the order rows.run_record takes it, then the tiebreak.
RECORD_COLUMNS = (
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "exit_code",
    "failure_reason",
    "entry_point",
    "command",
    "source",
    "environment",
    "backend",
    "parent_run_id",
)
LIVE_COLUMNS = (
    "run_id",
    "status",
    "backend",
    "runner_pid",
    "runner_host",
    "runner_start",
    "heartbeat",
)
# Written out, never bound: SQLite uses a partial index only for a query containing its exact
# WHERE term, and PostgreSQL cannot prove a parameter matches. Migration 0002 has the same text.
LIVE = "status IN ('SCHEDULED', 'RUNNING')"
# Runs started in the same millisecond: newest insert first on SQLite (rowid); PostgreSQL has no
# insertion order, so the run id decides. ``{tiebreak}`` is the dialect's column.
NEWEST_FIRST = " ORDER BY start_time DESC, {tiebreak} DESC"
OLDEST_FIRST = " ORDER BY start_time, {tiebreak}"

INSERT_RUN = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * 18)})"
INSERT_PARAM = "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)"
UPSERT_TAG = (
    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
INSERT_METRIC = "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)"
# A key's latest value is the one with the highest (step, timestamp); on a tie the last logged.
UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, key) DO UPDATE"
    " SET value = excluded.value, step = excluded.step, timestamp = excluded.timestamp"
    " WHERE (excluded.step, excluded.timestamp) >= (latest_metrics.step, latest_metrics.timestamp)"
)
FIND_EXPERIMENT = "SELECT id FROM experiments WHERE name = ?"
INSERT_EXPERIMENT = (
    "INSERT INTO experiments (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
)
EXPERIMENT_NAMES = "SELECT name FROM experiments ORDER BY name"
STATUS = "SELECT status FROM runs WHERE run_id = ?"  # + the dialect's row lock in writes
START = "UPDATE runs SET status = ?, heartbeat = ? WHERE run_id = ? AND status = ?"
FINISH = (
    "UPDATE runs SET status = ?, end_time = ?, exit_code = ?, failure_reason = ?"
    f" WHERE run_id = ? AND {LIVE}"
)
RELEASE = (
    "UPDATE runs SET runner_pid = NULL, runner_host = NULL, runner_start = NULL"
    f" WHERE run_id = ? AND {LIVE}"
)
PARAMS_OF_RUN = "SELECT key, value FROM params WHERE run_id = ?"
PREFIX_MATCHES = "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ?"
SELECT_RECORD = f"SELECT {', '.join(RECORD_COLUMNS)}, {{tiebreak}} FROM runs"
CURSOR_OF_RUN = "SELECT start_time, {tiebreak} FROM runs WHERE run_id = ?"
AFTER_CURSOR = "(start_time, {tiebreak}) < (?, ?)"
COUNT_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM runs{where} LIMIT ?) AS counted"
CHILDREN = "SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks})"
EXPERIMENTS_BY_ID = "SELECT id, name FROM experiments WHERE id IN ({marks})"

SELECT_LIVE = f"SELECT {', '.join(LIVE_COLUMNS)} FROM runs WHERE {LIVE}"
ALL_LIVE = SELECT_LIVE + OLDEST_FIRST
LIVE_RUN = SELECT_LIVE + " AND run_id = ?"
# NULL never equals NULL: a missing start time is compared as this impossible one.
NO_START = -1.0
RUNNER_PROCESSES = (
    f"SELECT DISTINCT runner_pid, runner_start FROM runs WHERE {LIVE}"
    " AND runner_host = ? AND runner_pid IS NOT NULL ORDER BY runner_pid"
)
RUNS_OF_PROCESS = (
    SELECT_LIVE
    + " AND runner_host = ? AND runner_pid = ? AND COALESCE(runner_start, ?) = ?"
    + OLDEST_FIRST
)
STALE = (
    SELECT_LIVE + " AND heartbeat < ? AND runner_pid IS NOT NULL"
    " AND (runner_host IS NULL OR runner_host <> ?)" + OLDEST_FIRST
)
BACKEND_OWNED = SELECT_LIVE + " AND runner_pid IS NULL AND backend = ?" + OLDEST_FIRST + " LIMIT ?"

HISTORY = (
    "SELECT step, timestamp, value, id FROM metrics WHERE run_id = ? AND key = ?"
    " AND (step, id) > (?, ?) ORDER BY step, id LIMIT ?"
)
LATEST_OF_RUN = "SELECT key, step, timestamp, value FROM latest_metrics WHERE run_id = ?"

# Claimed when never claimed, when the interval passed, or when the last claim lies more than
# an interval ahead (this clock went back, or another host's runs ahead): never starved.
CLAIM = (
    "INSERT INTO intervals (name, done_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
    " SET done_at = excluded.done_at WHERE intervals.done_at <= ? OR intervals.done_at > ?"
)

# -- the server's idempotent writes and run search (migration 0004) ----------------------------
# Params and tags are searched by key and value: the index holds this prefix of the value, and
# a search binds the prefix itself. The full value is compared as ``value || ''``: SQLite would
# otherwise propagate ``value = ?`` into the prefix term, which then no longer matches the index.
PREFIX_LENGTH = 200
VALUE_PREFIX = f"substr(value, 1, {PREFIX_LENGTH})"
KNOWN_WRITE_KEYS = "SELECT key FROM write_keys WHERE run_id = ? AND key IN ({marks})"
INSERT_WRITE_KEY = "INSERT INTO write_keys (run_id, key) VALUES (?, ?)"
FIND_RUN_REQUEST = "SELECT run_id FROM run_requests WHERE request_key = ?"
INSERT_RUN_REQUEST = "INSERT INTO run_requests (request_key, run_id) VALUES (?, ?)"
EXPERIMENTS = "SELECT id, name, created FROM experiments ORDER BY name"
WITH_VALUE = (
    "run_id IN (SELECT run_id FROM {table} WHERE key = ?"
    f" AND {VALUE_PREFIX} = ? AND value || '' = ?)"
)
WITH_METRIC = "run_id IN (SELECT run_id FROM latest_metrics WHERE key = ? AND value {op} ?)"
BEFORE_CURSOR = "(start_time, {tiebreak}) > (?, ?)"
