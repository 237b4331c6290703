"""webhook lease tokens, indexes of owed messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    owed = sa.text("status = 'PENDING'")
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_webhook_messages_endpoint_id")
        batch_op.drop_index("ix_webhook_messages_status")
        batch_op.create_index("ix_webhook_messages_endpoint_id", ["endpoint_id", "id"])
        batch_op.create_index("ix_webhook_messages_ref_id", ["ref_id"])
        batch_op.create_index(
            "ix_webhook_messages_owed",
            ["endpoint_id", "ordering_key", "id"],
            sqlite_where=owed,
            postgresql_where=owed,
        )
        batch_op.create_index(
            "ix_webhook_messages_owed_in_order", ["id"], sqlite_where=owed, postgresql_where=owed
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_messages_owed_in_order")
        batch_op.drop_index("ix_webhook_messages_owed")
        batch_op.drop_index("ix_webhook_messages_ref_id")
        batch_op.drop_index("ix_webhook_messages_endpoint_id")
        batch_op.create_index(
            "ix_webhook_messages_endpoint_id", ["endpoint_id", "ordering_key", "id"]
        )
        batch_op.create_index("ix_webhook_messages_status", ["status", "next_attempt_at"])
        batch_op.drop_column("lease_token")
