"""The step cache key on runs, and the indexes for cache hits and a run's children."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cache_key", sa.String(64), nullable=True))
    # a hit is one index probe: the newest FINISHED run of a key
    op.create_index(
        "ix_runs_cache_key_status_end_time", "runs", ["cache_key", "status", "end_time"]
    )
    op.create_index("ix_runs_parent_run_id_start_time", "runs", ["parent_run_id", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent_run_id_start_time", table_name="runs")
    op.drop_index("ix_runs_cache_key_status_end_time", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cache_key")
