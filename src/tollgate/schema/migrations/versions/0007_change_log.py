"""the change log that SDK streams follow and resume from

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tollgate.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("customer_ref", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_log")),
    )
    op.create_index("ix_change_log_environment_id", "change_log", ["environment_id", "id"])
    op.create_index(op.f("ix_change_log_created_at"), "change_log", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_change_log_created_at"), table_name="change_log")
    op.drop_index("ix_change_log_environment_id", table_name="change_log")
    op.drop_table("change_log")
