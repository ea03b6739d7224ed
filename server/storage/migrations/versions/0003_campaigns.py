"""campaigns: sweeps, sweep membership of runs, and pretrain -> evaluate chains

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: a migration must not change when server.models does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("study", sa.String(64), nullable=True),
        sa.Column("config", JSON, nullable=False),
        sa.Column("grid", JSON, nullable=True),
        sa.Column("overrides", JSON, nullable=True),
        sa.Column("evaluate", JSON, nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("skipped", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_sweeps_created_at", "sweeps", ["created_at"])
    # Plain ADD COLUMNs, no foreign key: on SQLite a constraint would need Alembic's batch mode, which
    # rebuilds `runs` and, with foreign keys on, would cascade-delete every metric and event of it.
    op.add_column("runs", sa.Column("sweep_id", sa.String(32), nullable=True))
    op.add_column("runs", sa.Column("evaluate", JSON, nullable=True))
    op.add_column("runs", sa.Column("evaluation_id", sa.String(32), nullable=True))
    op.create_index("ix_runs_sweep_id", "runs", ["sweep_id"])
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent_id", table_name="runs")
    op.drop_index("ix_runs_sweep_id", table_name="runs")
    for column in ("evaluation_id", "evaluate", "sweep_id"):
        op.drop_column("runs", column)
    op.drop_index("ix_sweeps_created_at", table_name="sweeps")
    op.drop_table("sweeps")
