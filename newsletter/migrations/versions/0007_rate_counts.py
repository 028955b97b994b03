"""The rate limiter's counts in the database, for installations without Redis.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_counts",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_counts"),
    )
    op.create_index("ix_rate_counts_expires_at", "rate_counts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_counts_expires_at", table_name="rate_counts")
    op.drop_table("rate_counts")
