from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from tollgate.catalog.enums import ResetPeriod
from tollgate.catalog.packages.schemas import (
    MAX_BIGINT,
    MonthlyResetConfiguration,
    ResetAnchor,
    WeeklyResetConfiguration,
    YearlyResetConfiguration,
)
from tollgate.customers.models import PromotionPeriod, PromotionStatus
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import (
    CustomerId,
    Description,
    FreeJson,
    JsonBool,
    JsonInt,
    Metadata,
    Moment,
    RefId,
    Refused,
    ShortText,
)
from tollgate.kit.currencies import CURRENCIES


def _known_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(
            f"'{code}' is not a currency Tollgate knows; give an ISO 4217 code such as usd"
        )
    return code


Currency = Annotated[str, Field(max_length=3), AfterValidator(_known_currency)]
Email = Annotated[str, Field(max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")]
VendorIdentifier = Literal[
    "AUTH0",
    "ZUORA",
    "STRIPE",
    "HUBSPOT",
    "AWS_MARKETPLACE",
    "SNOWFLAKE",
    "SALESFORCE",
    "BIG_QUERY",
    "OPEN_FGA",
    "APP_STORE",
    "RECEIVED",
    "PREQUEL",
    "AIRWALLEX",
    "STRIPE_INVOICING",
]


class Integration(RequestModel):
    id: ShortText
    synced_entity_id: ShortText | None
    vendor_identifier: VendorIdentifier


class PaymentMethod(RequestModel):
    billing_id: ShortText | None
    card_expiry_month: Annotated[JsonInt, Field(ge=1, le=12)] | None
    card_expiry_year: Annotated[JsonInt, Field(ge=1900, le=9999)] | None
    card_last4_digits: Annotated[str, Field(max_length=4, pattern=r"^\d{4}$")] | None
    type: Literal["CARD", "BANK", "CASH_APP", "PAYPAL"] | None


class CustomerFields(RequestModel):
    """What provisioning and updating a customer may set."""

    billing_currency: Currency | None = None
    billing_id: ShortText | None = None
    coupon_id: Refused = None
    default_payment_method: PaymentMethod | None = None
    email: Email | None = None
    integrations: Annotated[list[Integration], Field(max_length=20)] | None = None
    language: Annotated[str, Field(max_length=64)] | None = None
    metadata: Metadata | None = None
    name: ShortText | None = None
    # Payment-provider details are stored as given and handed back; Tollgate reads none.
    passthrough: FreeJson | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None


class CustomerCreate(CustomerFields):
    id: CustomerId


class CustomerUpdate(CustomerFields):
    pass


class CustomerImportItem(RequestModel):
    id: CustomerId
    email: Email | None
    name: ShortText | None
    billing_id: ShortText | None = None
    metadata: Metadata | None = None
    payment_method_id: ShortText | None = None
    salesforce_id: ShortText | None = None
    updated_at: Moment | None = None


class CustomerImport(RequestModel):
    customers: Annotated[list[CustomerImportItem], Field(min_length=1, max_length=1000)]
    integration_id: ShortText | None = None


class ImportResult(WireModel):
    new_customers: list[str]


class IntegrationRead(WireModel):
    id: str
    synced_entity_id: str | None
    vendor_identifier: str


class CustomerRead(WireModel):
    id: str
    name: str | None
    email: str | None
    billing_id: str | None
    billing_currency: str | None
    coupon_id: str | None
    default_payment_method: dict[str, Any] | None
    integrations: list[IntegrationRead]
    language: str | None
    metadata: dict[str, str]
    passthrough: dict[str, Any] | None
    timezone: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ResourceRead(WireModel):
    id: str
    created_at: datetime
    updated_at: datetime


class PromotionGrant(RequestModel):
    feature_id: RefId
    period: PromotionPeriod
    custom_end_date: Moment | None = None
    enum_values: Annotated[list[ShortText], Field(max_length=100)] | None = None
    has_soft_limit: JsonBool | None = None
    has_unlimited_usage: JsonBool | None = None
    is_visible: JsonBool | None = None
    reset_period: ResetPeriod | None = None
    usage_limit: Annotated[JsonInt, Field(ge=0, le=MAX_BIGINT)] | None = None
    monthly_reset_period_configuration: MonthlyResetConfiguration | None = None
    weekly_reset_period_configuration: WeeklyResetConfiguration | None = None
    yearly_reset_period_configuration: YearlyResetConfiguration | None = None
    description: Description | None = None


class PromotionGrants(RequestModel):
    promotional_entitlements: Annotated[list[PromotionGrant], Field(min_length=1, max_length=100)]


class PromotionRead(WireModel):
    id: str
    feature_id: str
    environment_id: str
    status: PromotionStatus
    period: PromotionPeriod
    start_date: datetime
    end_date: datetime | None
    usage_limit: int | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    reset_period: ResetPeriod | None
    reset_period_configuration: ResetAnchor | None
    enum_values: list[str] | None
    is_visible: bool
    description: str | None
    feature_group_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
