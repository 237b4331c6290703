"""payment providers keep the Stripe account's publishable key, which the checkout widget's
Stripe Elements load with

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_providers") as batch:
        batch.add_column(sa.Column("publishable_key", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_providers") as batch:
        batch.drop_column("publishable_key")
