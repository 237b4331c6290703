"""payments: an environment's payment provider (Stripe), and every attempt to collect an
invoice

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payment_providers",
        sa.Column("id", _ID, nullable=False),
        sa.Column("environment_id", _ID, nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("secret_key", sa.String(length=255), nullable=False),
        sa.Column("webhook_secret", sa.String(length=255), nullable=True),
        sa.Column("api_base", sa.String(length=255), nullable=True),
        sa.Column("retry_days", sa.JSON(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment_id"),
        sa.UniqueConstraint("ref_id"),
    )
    op.create_table(
        "payments",
        sa.Column("id", _ID, nullable=False),
        sa.Column("environment_id", _ID, nullable=False),
        sa.Column("invoice_id", _ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("client_secret", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "attempt"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_payments_environment_id", "payments", ["environment_id"])
    op.create_index("ix_payments_provider_payment_id", "payments", ["provider_payment_id"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("payment_collection_method", sa.String(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("payment_collection_method")
    op.drop_index("ix_payments_provider_payment_id", table_name="payments")
    op.drop_index("ix_payments_environment_id", table_name="payments")
    op.drop_table("payments")
    op.drop_table("payment_providers")
