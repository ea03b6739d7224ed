"""metric_blocks: per-256-step min/max summaries that make downsampling long series cheap

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_STEPS = 256  # frozen copy of server.models.METRIC_BLOCK_STEPS at the time of this migration


def upgrade() -> None:
    op.create_table(
        "metric_blocks",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_step", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_step", sa.Integer(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "block"),
        sqlite_with_rowid=False,
    )
    # Backfill from the points already stored (step >= 0, so integer division is the floor).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            INSERT INTO metric_blocks (run_id, key, block, count, min_step, min_value, max_step, max_value)
            SELECT run_id, key, step / {BLOCK_STEPS}, count(*),
                   (array_agg(step ORDER BY value ASC, step))[1], min(value),
                   (array_agg(step ORDER BY value DESC, step))[1], max(value)
            FROM metrics GROUP BY run_id, key, step / {BLOCK_STEPS}
            """
        )
    else:
        # SQLite takes a bare column from the row holding the lone MIN() (or MAX()) of its group.
        op.execute(
            f"""
            INSERT INTO metric_blocks (run_id, key, block, count, min_step, min_value, max_step, max_value)
            SELECT run_id, key, step / {BLOCK_STEPS}, count(*), step, min(value), step, 0.0
            FROM metrics GROUP BY run_id, key, step / {BLOCK_STEPS}
            """
        )
        op.execute(
            f"""
            UPDATE metric_blocks SET (max_step, max_value) = (
                SELECT step, max(value) FROM metrics m
                WHERE m.run_id = metric_blocks.run_id AND m.key = metric_blocks.key
                  AND m.step / {BLOCK_STEPS} = metric_blocks.block
            )
            """
        )


def downgrade() -> None:
    op.drop_table("metric_blocks")
