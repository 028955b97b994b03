"""Which process ran the last scheduler tick (host:pid), shown beside its time.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy): SQLite keeps the table as it is.
    op.add_column("scheduler_state", sa.Column("last_tick_by", sa.String(length=200)))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_state") as batch:
        batch.drop_column("last_tick_by")
