"""the logins the Auth0 Action reported, with their answers, for idempotency

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tollgate.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth0_logins",
        sa.Column("id", _ID, nullable=False),
        sa.Column("environment_id", _ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("user_ref", sa.String(length=255), nullable=False),
        sa.Column("organization_ref", sa.String(length=255), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("logged_in_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_auth0_logins_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth0_logins")),
        sa.UniqueConstraint(
            "environment_id",
            "idempotency_key",
            name=op.f("uq_auth0_logins_environment_id_idempotency_key"),
        ),
    )
    op.create_index(op.f("ix_auth0_logins_recorded_at"), "auth0_logins", ["recorded_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_auth0_logins_recorded_at"), table_name="auth0_logins")
    op.drop_table("auth0_logins")
