"""coupons: a percentage or fixed amounts off, for some months or for ever; the coupon a
subscription holds

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", _ID, nullable=False),
        sa.Column("environment_id", _ID, nullable=False),
        sa.Column("ref_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("percent_off", sa.String(length=16), nullable=True),
        sa.Column("amounts_off", sa.JSON(), nullable=True),
        sa.Column("duration_in_months", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment_id", "ref_id"),
    )
    op.create_index("ix_coupons_environment_id", "coupons", ["environment_id"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("coupon", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("coupon")
    op.drop_index("ix_coupons_environment_id", table_name="coupons")
    op.drop_table("coupons")
