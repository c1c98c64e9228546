"""The retrieval_cleanup ledger: source keys whose passages and files are to be removed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrieval_cleanup",
        sa.Column("source_key", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_retrieval_cleanup_state", "retrieval_cleanup", ["state", "touched_at"])


def downgrade() -> None:
    op.drop_index("ix_retrieval_cleanup_state", "retrieval_cleanup")
    op.drop_table("retrieval_cleanup")
