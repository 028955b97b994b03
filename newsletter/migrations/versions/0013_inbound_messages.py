"""Inbound messages: bounces, complaints, auto-replies and mailed unsubscribes, stored raw.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("mail_from", sa.String(320), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column(
            "status", _enum("inbound_status", "received", "processed", "failed"), nullable=False
        ),
        sa.Column(
            "kind",
            _enum(
                "inbound_kind",
                "hard_bounce",
                "soft_bounce",
                "delayed",
                "complaint",
                "auto_reply",
                "unsubscribe",
                "unknown",
            ),
            nullable=True,
        ),
        sa.Column("subscriber_id", BigId, nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("attributed_by", sa.String(16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_inbound_messages_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    for column in ("received_at", "kind", "subscriber_id", "edition_id"):
        op.create_index(
            op.f(f"ix_inbound_messages_{column}"), "inbound_messages", [column], unique=False
        )


def downgrade() -> None:
    for column in ("received_at", "kind", "subscriber_id", "edition_id"):
        op.drop_index(op.f(f"ix_inbound_messages_{column}"), table_name="inbound_messages")
    op.drop_table("inbound_messages")
