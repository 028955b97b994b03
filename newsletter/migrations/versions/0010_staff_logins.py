"""Staff sessions held on the server (ended by logout, password change, disable, role change,
idle time), and disabled staff accounts.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "staff_users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "staff_logins",
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_users.id"],
            name="fk_staff_logins_staff_user_id_staff_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("secret_hash", name="pk_staff_logins"),
    )
    op.create_index("ix_staff_logins_staff_user_id", "staff_logins", ["staff_user_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_logins_staff_user_id", table_name="staff_logins")
    op.drop_table("staff_logins")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("disabled_at")
