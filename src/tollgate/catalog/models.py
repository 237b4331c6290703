"""Catalog tables.

A plan or add-on is a `Package` (its identity: id, kind, product) with `PackageVersion`
rows. At most one version is a DRAFT; published versions are never edited, so a
subscription can point at one and keep exactly what it bought.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollgate.catalog.enums import (
    EntitlementBehavior,
    FeatureStatus,
    FeatureType,
    MeterType,
    PackageKind,
    PackageStatus,
    PricingType,
    ResetPeriod,
)
from tollgate.db.base import Base, BigIntPK, TimestampMixin, UTCDateTime, enum_column

Json = dict[str, Any]


class Feature(TimestampMixin, Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    feature_type: Mapped[FeatureType] = mapped_column(enum_column(FeatureType))
    meter_type: Mapped[MeterType] = mapped_column(enum_column(MeterType))
    status: Mapped[FeatureStatus] = mapped_column(enum_column(FeatureStatus))
    units: Mapped[str | None] = mapped_column(String(255))
    units_plural: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    enum_configuration: Mapped[list[Json] | None] = mapped_column(JSON)
    meter: Mapped[Json | None] = mapped_column(JSON)
    unit_transformation: Mapped[Json | None] = mapped_column(JSON)


class Product(TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    is_multiple_subscriptions: Mapped[bool] = mapped_column(Boolean, default=False)
    # productSettings as Stigg shapes it; plan ids inside are checked on every write.
    settings: Mapped[Json] = mapped_column(JSON, default=dict)
    usage_reset_cutoff_rule: Mapped[Json | None] = mapped_column(JSON)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Package(Base):
    __tablename__ = "packages"
    # Plans and add-ons share one id space so an id always names one thing.
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[PackageKind] = mapped_column(enum_column(PackageKind))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    product: Mapped[Product] = relationship(lazy="raise")


class PackageVersion(TimestampMixin, Base):
    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("package_id", "version_number"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), index=True
    )
    version_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[PackageStatus] = mapped_column(enum_column(PackageStatus))
    display_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    billing_id: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    pricing_type: Mapped[PricingType | None] = mapped_column(enum_column(PricingType))
    charges: Mapped[Json | None] = mapped_column(JSON)
    # Plans only: the parent whose entitlements this plan includes, its trial and add-ons.
    parent_package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id"))
    default_trial_config: Mapped[Json | None] = mapped_column(JSON)
    compatible_addon_ids: Mapped[list[str] | None] = mapped_column(JSON)
    # Add-ons only.
    max_quantity: Mapped[int | None] = mapped_column(Integer)
    dependencies: Mapped[list[str] | None] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    migration_type: Mapped[str | None] = mapped_column(String(32))

    package: Mapped[Package] = relationship(lazy="raise", foreign_keys=[package_id])
    entitlements: Mapped[list["PackageEntitlement"]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="PackageEntitlement.id",
        back_populates="package_version",
    )


class PackageEntitlement(TimestampMixin, Base):
    __tablename__ = "package_entitlements"
    __table_args__ = (UniqueConstraint("package_version_id", "feature_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    package_version_id: Mapped[int] = mapped_column(
        ForeignKey("package_versions.id", ondelete="CASCADE"), index=True
    )
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id"), index=True)
    behavior: Mapped[EntitlementBehavior] = mapped_column(enum_column(EntitlementBehavior))
    usage_limit: Mapped[int | None] = mapped_column(BigInteger)
    has_unlimited_usage: Mapped[bool] = mapped_column(Boolean, default=False)
    has_soft_limit: Mapped[bool] = mapped_column(Boolean, default=False)
    reset_period: Mapped[ResetPeriod | None] = mapped_column(enum_column(ResetPeriod))
    reset_period_configuration: Mapped[Json | None] = mapped_column(JSON)
    enum_values: Mapped[list[str] | None] = mapped_column(JSON)
    is_granted: Mapped[bool] = mapped_column(Boolean, default=True)
    is_custom: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_from_widgets: Mapped[list[str]] = mapped_column(JSON, default=list)
    display_name_override: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    order: Mapped[float | None] = mapped_column(Float)

    package_version: Mapped[PackageVersion] = relationship(
        lazy="raise", back_populates="entitlements"
    )
    feature: Mapped[Feature] = relationship(lazy="raise")
