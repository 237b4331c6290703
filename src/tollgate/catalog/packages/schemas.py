from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from tollgate.catalog.enums import (
    EntitlementBehavior,
    MigrationType,
    PackageStatus,
    PricingType,
    ResetPeriod,
)
from tollgate.catalog.packages.charges import Charges
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import (
    MAX_INT,
    Description,
    DisplayName,
    JsonBool,
    JsonFloat,
    JsonInt,
    Metadata,
    RefId,
    Refused,
    ShortText,
)

MAX_BIGINT = 2**63 - 1  # the widest integer both databases store

Widget = Literal["PAYWALL", "CUSTOMER_PORTAL", "CHECKOUT"]
MonthlyAnchor = Literal["SubscriptionStart", "StartOfTheMonth"]
WeeklyAnchor = Literal[
    "SubscriptionStart",
    "EverySunday",
    "EveryMonday",
    "EveryTuesday",
    "EveryWednesday",
    "EveryThursday",
    "EveryFriday",
    "EverySaturday",
]


class TrialBudget(RequestModel):
    has_soft_limit: JsonBool
    limit: Annotated[JsonFloat, Field(ge=0, le=MAX_BIGINT)]


class TrialConfig(RequestModel):
    duration: Annotated[
        JsonFloat, Field(gt=0, le=3_650, description="At most 3,650 days or months")
    ]
    units: Literal["DAY", "MONTH"]
    budget: TrialBudget | None = None
    trial_end_behavior: Literal["CONVERT_TO_PAID", "CANCEL_SUBSCRIPTION"] | None = None


class PackageCreate(RequestModel):
    id: RefId
    display_name: DisplayName
    product_id: RefId
    billing_id: ShortText | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    pricing_type: PricingType | None = None
    status: PackageStatus = PackageStatus.DRAFT


class PlanCreate(PackageCreate):
    default_trial_config: TrialConfig | None = None
    parent_plan_id: RefId | None = None


class AddonCreate(PackageCreate):
    max_quantity: Annotated[JsonInt, Field(ge=1, le=MAX_INT)] | None = None


class PackageUpdate(RequestModel):
    billing_id: ShortText | None = None
    charges: Charges | None = None
    description: Description | None = None
    display_name: DisplayName | None = None
    metadata: Metadata | None = None


class PlanUpdate(PackageUpdate):
    compatible_addon_ids: Annotated[list[RefId], Field(max_length=100)] | None = None
    default_trial_config: TrialConfig | None = None
    parent_plan_id: RefId | None = None


class AddonUpdate(PackageUpdate):
    dependencies: Annotated[list[RefId], Field(max_length=100)] | None = None
    max_quantity: Annotated[JsonInt, Field(ge=1, le=MAX_INT)] | None = None
    status: Refused = None  # changed by publish and archive, never by an update


class PublishRequest(RequestModel):
    migration_type: MigrationType


class EntitlementRef(WireModel):
    id: str
    type: Literal["FEATURE", "CREDIT"] = "FEATURE"


class PackageRead(WireModel):
    id: str
    display_name: str
    description: str | None
    billing_id: str | None
    metadata: dict[str, str]
    pricing_type: PricingType | None
    product_id: str
    status: PackageStatus
    version_number: int
    is_latest: bool
    entitlements: list[EntitlementRef]
    created_at: datetime
    updated_at: datetime


class PlanRead(PackageRead):
    parent_plan_id: str | None
    default_trial_config: TrialConfig | None
    compatible_addon_ids: list[str]


class AddonRead(PackageRead):
    max_quantity: int | None
    dependencies: list[str]


class PublishResult(WireModel):
    task_id: str | None = None


class RemovedDraft(WireModel):
    id: str


class ResetAnchor(WireModel):
    according_to: str


class MonthlyResetConfiguration(RequestModel):
    according_to: MonthlyAnchor


class WeeklyResetConfiguration(RequestModel):
    according_to: WeeklyAnchor


class YearlyResetConfiguration(RequestModel):
    according_to: Literal["SubscriptionStart"]


class EntitlementFields(RequestModel):
    """What a FEATURE entitlement can say, on create and on update alike."""

    type: Literal["FEATURE", "CREDIT"]
    behavior: EntitlementBehavior | None = None
    description: Description | None = None
    display_name_override: ShortText | None = None
    enum_values: Annotated[list[ShortText], Field(max_length=100)] | None = None
    has_soft_limit: JsonBool | None = None
    has_unlimited_usage: JsonBool | None = None
    hidden_from_widgets: Annotated[list[Widget], Field(max_length=3)] | None = None
    is_custom: JsonBool | None = None
    is_granted: JsonBool | None = None
    order: JsonFloat | None = None
    reset_period: ResetPeriod | None = None
    usage_limit: Annotated[JsonInt, Field(ge=0, le=MAX_BIGINT)] | None = None
    monthly_reset_period_configuration: MonthlyResetConfiguration | None = None
    weekly_reset_period_configuration: WeeklyResetConfiguration | None = None
    yearly_reset_period_configuration: YearlyResetConfiguration | None = None
    # CREDIT entitlements: refused by name until credits exist.
    amount: JsonFloat | None = None
    cadence: Literal["MONTH", "YEAR"] | None = None
    dependency_feature_id: ShortText | None = None


class EntitlementCreate(EntitlementFields):
    id: RefId


class EntitlementsCreate(RequestModel):
    entitlements: Annotated[list[EntitlementCreate], Field(min_length=1, max_length=200)]


class EntitlementUpdate(EntitlementFields):
    pass


class EntitlementRead(WireModel):
    id: str
    type: Literal["FEATURE"] = "FEATURE"
    behavior: EntitlementBehavior
    description: str | None
    display_name_override: str | None
    enum_values: list[str] | None
    has_soft_limit: bool
    has_unlimited_usage: bool
    hidden_from_widgets: list[Widget]
    is_custom: bool
    is_granted: bool
    order: float | None
    reset_period: ResetPeriod | None
    reset_period_configuration: ResetAnchor | None
    usage_limit: int | None
    created_at: datetime
    updated_at: datetime
