"""The tracking store's tables as SQLAlchemy Core metadata: the one definition of the schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from runner.store import statements

# Constraint names are spelled out so later migrations (batch mode on SQLite) can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Milliseconds since the epoch overflow 32 bits; on SQLite INTEGER is already 64-bit.
Millis = BigInteger
# Partial index predicates, as the queries in statements.py spell them.
LIVE = statements.LIVE
BACKEND_OWNED = f"{LIVE} AND runner_pid IS NULL"


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": text(predicate), "postgresql_where": text(predicate)}


experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created", Millis, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("run_name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", Millis, nullable=False),
    Column("end_time", Millis),
    Column("exit_code", Integer),
    Column("failure_reason", Text),
    Column("entry_point", String(256), nullable=False),
    Column("command", Text, nullable=False),
    Column("backend", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("parent_run_id", String(32)),
    Column("runner_pid", Integer),
    Column("runner_host", String(256)),
    Column("runner_start", Float),
    Column("heartbeat", Millis),
    # Listings, newest first, unfiltered or by status and/or experiment (keyset pages).
    Index(None, "start_time"),
    Index(None, "status", "start_time"),
    Index(None, "experiment_id", "start_time"),
    Index(None, "experiment_id", "status", "start_time"),
    # Only live runs, so the reconciler's queries cost the live runs, not all runs.
    Index("ix_runs_live_runner", "runner_host", "runner_pid", "runner_start", **_where(LIVE)),
    Index("ix_runs_live_heartbeat", "status", "heartbeat", **_where(LIVE)),
    Index("ix_runs_live_backend", "backend", "start_time", **_where(BACKEND_OWNED)),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

# ``id`` orders metrics logged with equal step and timestamp; on SQLite it is the rowid itself.
metrics = Table(
    "metrics",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Float),  # NULL stands for NaN, which SQLite cannot store
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
    Index(None, "run_id", "key", "step"),
)

# Kept current by log_metrics so reading a run never scans its whole metric history.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
)

# When a recurring job (e.g. a batched backend query) last ran, for Store.claim_interval.
intervals = Table(
    "intervals",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("done_at", Millis, nullable=False),
)

# Client-supplied keys of writes already applied to a run (server journal records and
# retried requests): a write whose key is here is not applied again.
write_keys = Table(
    "write_keys",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(64), primary_key=True),
)

# The run a client's create request made, so a retried create returns it instead of another.
run_requests = Table(
    "run_requests",
    metadata,
    Column("request_key", String(64), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
)

# Searching runs by param, tag (a prefix of the value is indexed) and latest metric value.
Index("ix_params_search", params.c.key, text(statements.VALUE_PREFIX), params.c.run_id)
Index("ix_tags_search", tags.c.key, text(statements.VALUE_PREFIX), tags.c.run_id)
Index(
    "ix_latest_metrics_search",
    latest_metrics.c.key,
    latest_metrics.c.value,
    latest_metrics.c.run_id,
)
