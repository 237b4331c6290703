"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from tollgate.catalog.models import (
    Feature,
    Package,
    PackageEntitlement,
    PackageVersion,
    Product,
)
from tollgate.db.base import Base
from tollgate.environments.models import ApiKey, Environment

__all__ = [
    "ApiKey",
    "Base",
    "Environment",
    "Feature",
    "Package",
    "PackageEntitlement",
    "PackageVersion",
    "Product",
]
