"""run notes: free Markdown text a researcher adds to a run after the fact

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: on SQLite anything more would rebuild `runs` (see 0003).
    op.add_column("runs", sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "notes")
