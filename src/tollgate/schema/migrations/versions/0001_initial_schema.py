"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 23:31:45.315675
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tollgate.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("signing_secret", sa.String(length=128), nullable=False),
        sa.Column("demo_key_secret", sa.String(length=128), nullable=True),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environments")),
        sa.UniqueConstraint("name", name=op.f("uq_environments_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "environment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "kind",
            sa.Enum("server", "client", name="keykind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_api_keys_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "features",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "environment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ref_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "feature_type",
            sa.Enum("BOOLEAN", "NUMBER", "ENUM", name="featuretype", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "meter_type",
            sa.Enum(
                "None", "FLUCTUATING", "INCREMENTAL", name="metertype", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "NEW", "ACTIVE", "SUSPENDED", name="featurestatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("units", sa.String(length=255), nullable=True),
        sa.Column("units_plural", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("enum_configuration", sa.JSON(), nullable=True),
        sa.Column("meter", sa.JSON(), nullable=True),
        sa.Column("unit_transformation", sa.JSON(), nullable=True),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_features_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_features")),
        sa.UniqueConstraint(
            "environment_id", "ref_id", name=op.f("uq_features_environment_id_ref_id")
        ),
    )
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_features_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "environment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ref_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("is_multiple_subscriptions", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("usage_reset_cutoff_rule", sa.JSON(), nullable=True),
        sa.Column("archived_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_products_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint(
            "environment_id", "ref_id", name=op.f("uq_products_environment_id_ref_id")
        ),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_products_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "packages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "environment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ref_id", sa.String(length=255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("PLAN", "ADDON", name="packagekind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_packages_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_packages_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packages")),
        sa.UniqueConstraint(
            "environment_id", "ref_id", name=op.f("uq_packages_environment_id_ref_id")
        ),
    )
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_packages_environment_id"), ["environment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_packages_product_id"), ["product_id"], unique=False)

    op.create_table(
        "package_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "package_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "DRAFT", "PUBLISHED", "ARCHIVED", name="packagestatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("billing_id", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column(
            "pricing_type",
            sa.Enum("FREE", "PAID", "CUSTOM", name="pricingtype", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("charges", sa.JSON(), nullable=True),
        sa.Column(
            "parent_package_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("default_trial_config", sa.JSON(), nullable=True),
        sa.Column("compatible_addon_ids", sa.JSON(), nullable=True),
        sa.Column("max_quantity", sa.Integer(), nullable=True),
        sa.Column("dependencies", sa.JSON(), nullable=True),
        sa.Column("published_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("migration_type", sa.String(length=32), nullable=True),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_versions_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_package_id"],
            ["packages.id"],
            name=op.f("fk_package_versions_parent_package_id_packages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_versions")),
        sa.UniqueConstraint(
            "package_id",
            "version_number",
            name=op.f("uq_package_versions_package_id_version_number"),
        ),
    )
    with op.batch_alter_table("package_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_versions_package_id"), ["package_id"], unique=False
        )

    op.create_table(
        "package_entitlements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "package_version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "feature_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "behavior",
            sa.Enum(
                "Increment", "Override", name="entitlementbehavior", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("usage_limit", sa.BigInteger(), nullable=True),
        sa.Column("has_unlimited_usage", sa.Boolean(), nullable=False),
        sa.Column("has_soft_limit", sa.Boolean(), nullable=False),
        sa.Column(
            "reset_period",
            sa.Enum(
                "HOUR",
                "DAY",
                "WEEK",
                "MONTH",
                "YEAR",
                name="resetperiod",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("reset_period_configuration", sa.JSON(), nullable=True),
        sa.Column("enum_values", sa.JSON(), nullable=True),
        sa.Column("is_granted", sa.Boolean(), nullable=False),
        sa.Column("is_custom", sa.Boolean(), nullable=False),
        sa.Column("hidden_from_widgets", sa.JSON(), nullable=False),
        sa.Column("display_name_override", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("order", sa.Float(), nullable=True),
        sa.Column("created_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tollgate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_package_entitlements_feature_id_features"),
        ),
        sa.ForeignKeyConstraint(
            ["package_version_id"],
            ["package_versions.id"],
            name=op.f("fk_package_entitlements_package_version_id_package_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_entitlements")),
        sa.UniqueConstraint(
            "package_version_id",
            "feature_id",
            name=op.f("uq_package_entitlements_package_version_id_feature_id"),
        ),
    )
    with op.batch_alter_table("package_entitlements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_entitlements_feature_id"), ["feature_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_package_entitlements_package_version_id"),
            ["package_version_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("package_entitlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_entitlements_package_version_id"))
        batch_op.drop_index(batch_op.f("ix_package_entitlements_feature_id"))

    op.drop_table("package_entitlements")
    with op.batch_alter_table("package_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_versions_package_id"))

    op.drop_table("package_versions")
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_packages_product_id"))
        batch_op.drop_index(batch_op.f("ix_packages_environment_id"))

    op.drop_table("packages")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_environment_id"))

    op.drop_table("products")
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_features_environment_id"))

    op.drop_table("features")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_environment_id"))

    op.drop_table("api_keys")
    op.drop_table("environments")
