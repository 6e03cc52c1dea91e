"""Idempotent writes through the server (client keys) and indexes for searching runs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

# A prefix of the value is indexed: PostgreSQL cannot index a whole long text value, and the
# search queries compare the same prefix before the full value.
_VALUE_PREFIX = "substr(value, 1, 200)"
_SEARCH = {
    "ix_params_search": "params",
    "ix_tags_search": "tags",
}


def upgrade() -> None:
    op.create_table(
        "write_keys",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_write_keys_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_write_keys"),
    )
    op.create_table(
        "run_requests",
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_run_requests_run_id_runs"),
        sa.PrimaryKeyConstraint("request_key", name="pk_run_requests"),
    )
    for name, table in _SEARCH.items():
        op.create_index(name, table, ["key", sa.text(_VALUE_PREFIX), "run_id"])
    op.create_index("ix_latest_metrics_search", "latest_metrics", ["key", "value", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_search", table_name="latest_metrics")
    for name, table in _SEARCH.items():
        op.drop_index(name, table_name=table)
    op.drop_table("run_requests")
    op.drop_table("write_keys")
