"""The catalog's enumerations, spelled exactly as Stigg's wire format spells them."""

from enum import StrEnum


class FeatureType(StrEnum):
    BOOLEAN = "BOOLEAN"
    NUMBER = "NUMBER"
    ENUM = "ENUM"


class MeterType(StrEnum):
    NONE = "None"
    FLUCTUATING = "FLUCTUATING"  # a level such as seats; never resets
    INCREMENTAL = "INCREMENTAL"  # a counter such as API calls; resets each period


class FeatureStatus(StrEnum):
    NEW = "NEW"  # not yet in any package
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"  # archived


class ProductStatus(StrEnum):
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class PackageKind(StrEnum):
    PLAN = "PLAN"
    ADDON = "ADDON"


class PackageStatus(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class PricingType(StrEnum):
    FREE = "FREE"
    PAID = "PAID"
    CUSTOM = "CUSTOM"


class ResetPeriod(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


class EntitlementBehavior(StrEnum):
    INCREMENT = "Increment"
    OVERRIDE = "Override"


class MigrationType(StrEnum):
    NEW_CUSTOMERS = "NEW_CUSTOMERS"
    ALL_CUSTOMERS = "ALL_CUSTOMERS"
