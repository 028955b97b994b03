"""The confirmation email's state: sent when, attempts, last error, next try (the tick's).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("confirm_sent_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("confirm_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("confirm_error", sa.String(500)))
        batch.add_column(sa.Column("confirm_due_at", sa.DateTime(timezone=True)))
    # Whoever is pending now was asked before this column existed: take it as sent.
    op.execute("UPDATE subscribers SET confirm_sent_at = created_at WHERE status = 'pending'")


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirm_due_at")
        batch.drop_column("confirm_error")
        batch.drop_column("confirm_attempts")
        batch.drop_column("confirm_sent_at")
