"""Indexes for paged listings and the bounded reconcile queries; the intervals table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Exactly as the store's queries spell them: SQLite uses a partial index only then.
_LIVE = "status IN ('SCHEDULED', 'RUNNING')"
_BACKEND_OWNED = f"{_LIVE} AND runner_pid IS NULL"
_LISTING = {
    "ix_runs_start_time": ["start_time"],
    "ix_runs_status_start_time": ["status", "start_time"],
    "ix_runs_experiment_id_status_start_time": ["experiment_id", "status", "start_time"],
}
_PARTIAL = {
    "ix_runs_live_runner": (["runner_host", "runner_pid", "runner_start"], _LIVE),
    "ix_runs_live_heartbeat": (["status", "heartbeat"], _LIVE),
    "ix_runs_live_backend": (["backend", "start_time"], _BACKEND_OWNED),
}


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.drop_index("ix_runs_status", table_name="runs")  # ix_runs_status_start_time covers it
    for name, columns in _LISTING.items():
        op.create_index(name, "runs", columns)
    for name, (columns, predicate) in _PARTIAL.items():
        op.create_index(name, "runs", columns, **_where(predicate))
    op.create_table(
        "intervals",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("done_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_intervals"),
    )


def downgrade() -> None:
    op.drop_table("intervals")
    for name in [*_PARTIAL, *_LISTING]:
        op.drop_index(name, table_name="runs")
    op.create_index("ix_runs_status", "runs", ["status"])
