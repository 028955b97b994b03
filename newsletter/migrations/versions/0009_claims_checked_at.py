"""Stale claims are requeued only when seen stale twice: when the tick first saw them.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("claims_checked_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("claims_checked_at")
