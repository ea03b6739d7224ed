"""searches: recipe searches, their trials, and the reason a search pruned a run

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: a migration must not change when server.models does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("search", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_searches_created_at", "searches", ["created_at"])
    op.create_index("ix_searches_state", "searches", ["state"])
    op.create_table(
        "search_trials",
        sa.Column(
            "search_id", sa.String(32), sa.ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("trial_id", sa.Integer, nullable=False),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, unique=True
        ),
        sa.Column("params", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("last_step", sa.Integer, nullable=False),
        sa.Column("pruned_step", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
    )
    # A plain ADD COLUMN (see 0003: no batch mode on `runs`).
    op.add_column("runs", sa.Column("prune_reason", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "prune_reason")
    op.drop_table("search_trials")
    op.drop_index("ix_searches_state", table_name="searches")
    op.drop_index("ix_searches_created_at", table_name="searches")
    op.drop_table("searches")
