"""The subscriptions API's wire shapes: request bodies (what Tollgate refuses included)
and answers, in Stigg's camelCase."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from tollgate.catalog.enums import PricingType
from tollgate.entitlements.schemas import EntitlementRead
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import (
    MAX_INT,
    CustomerId,
    FreeJson,
    JsonBool,
    JsonInt,
    Metadata,
    Moment,
    RefId,
    Refused,
    ShortText,
)
from tollgate.subscriptions.enums import (
    BillingPeriod,
    CancellationTime,
    CancelReason,
    PaymentCollectionMethod,
    ScheduleStatus,
    ScheduleStrategy,
    ScheduleType,
    SubscriptionStatus,
    TrialEndBehavior,
)

Quantity = Annotated[JsonInt, Field(ge=1, le=MAX_INT)]


class AddonQuantity(RequestModel):
    id: RefId
    quantity: Quantity


class ChargeQuantity(RequestModel):
    """How many units of a PER_UNIT price (seats, say): `id` is the priced feature's id."""

    id: RefId
    quantity: Annotated[JsonInt, Field(ge=0, le=MAX_INT)]
    type: Literal["FEATURE", "CREDIT"] = "FEATURE"


class AppliedCoupon(RequestModel):
    """A coupon of the catalog, by id. Ad-hoc discounts and promotion codes are refused."""

    coupon_id: RefId | None = None
    billing_coupon_id: Refused = None
    configuration: Refused = None
    discount: Refused = None
    promotion_code: Refused = None


class TrialOverride(RequestModel):
    is_trial: JsonBool
    trial_end_behavior: TrialEndBehavior | None = None
    trial_end_date: Moment | None = None


class BillingInformation(RequestModel):
    """What a provider would print on its invoices. Tollgate's invoices carry no tax yet and
    are collected by its own rules: the address and tax ids change nothing and are taken;
    the rest would change an amount or how it is collected, and is refused by name when
    set (`REFUSED_BILLING_INFORMATION`)."""

    billing_address: FreeJson | None = None
    tax_ids: FreeJson | None = None
    metadata: FreeJson | None = None
    integration_id: ShortText | None = None
    charge_on_behalf_of_account: Refused = None
    coupon_id: Refused = None
    invoice_days_until_due: Refused = None
    is_backdated: Refused = None
    is_invoice_paid: Refused = None
    proration_behavior: Refused = None
    tax_percentage: Refused = None
    tax_rate_ids: Refused = None


REFUSED_BILLING_INFORMATION = (
    "charge_on_behalf_of_account",
    "coupon_id",
    "invoice_days_until_due",
    "is_backdated",
    "is_invoice_paid",
    "proration_behavior",
    "tax_percentage",
    "tax_rate_ids",
)


class Unsupported(RequestModel):
    """Fields the Stigg client can send that would change money or access if ignored;
    Tollgate refuses each by name when it is given a value."""

    budget: Refused = None
    entitlements: Refused = None
    minimum_spend: Refused = None
    price_overrides: Refused = None
    await_payment_confirmation: JsonBool | None = None


class SubscriptionTerms(Unsupported):
    """What provisioning and previewing share."""

    customer_id: CustomerId
    plan_id: RefId
    addons: Annotated[list[AddonQuantity], Field(max_length=50)] | None = None
    billing_period: BillingPeriod | None = None
    charges: Annotated[list[ChargeQuantity], Field(max_length=50)] | None = None
    applied_coupon: AppliedCoupon | None = None
    billing_country_code: ShortText | None = None
    billing_cycle_anchor: Literal["UNCHANGED", "NOW"] | None = None
    billing_information: BillingInformation | None = None
    paying_customer_id: ShortText | None = None
    resource_id: CustomerId | None = None
    schedule_strategy: ScheduleStrategy | None = None
    start_date: Moment | None = None
    trial_override_configuration: TrialOverride | None = None
    unit_quantity: Quantity | None = None


class SubscriptionProvision(SubscriptionTerms):
    id: RefId | None = None
    billing_id: ShortText | None = None
    cancellation_date: Moment | None = None
    checkout_options: Refused = None
    metadata: Metadata | None = None
    payment_collection_method: PaymentCollectionMethod | None = None
    salesforce_id: ShortText | None = None


class SubscriptionPreview(SubscriptionTerms):
    billable_features: Refused = None


class SubscriptionUpdate(Unsupported):
    charges: Annotated[list[ChargeQuantity], Field(max_length=50)] | None = None
    applied_coupon: AppliedCoupon | None = None
    addons: Annotated[list[AddonQuantity], Field(max_length=50)] | None = None
    billing_period: BillingPeriod | None = None
    billing_cycle_anchor: Literal["UNCHANGED", "NOW"] | None = None
    billing_information: BillingInformation | None = None
    cancellation_date: Moment | None = None
    metadata: Metadata | None = None
    promotion_code: ShortText | None = None
    salesforce_id: ShortText | None = None
    schedule_strategy: ScheduleStrategy | None = None
    trial_end_date: Moment | None = None


class SubscriptionCancel(RequestModel):
    cancellation_action: Literal["DEFAULT", "REVOKE_ENTITLEMENTS"] | None = None
    cancellation_time: CancellationTime | None = None
    end_date: Moment | None = None
    prorate: JsonBool | None = None


class SubscriptionMigrate(RequestModel):
    subscription_migration_time: Literal["END_OF_BILLING_PERIOD", "IMMEDIATE"] | None = None


class AddonRead(WireModel):
    id: str
    quantity: int


class TargetPackage(WireModel):
    id: str


class FutureUpdate(WireModel):
    scheduled_execution_time: datetime
    schedule_status: ScheduleStatus
    subscription_schedule_type: ScheduleType
    target_package: TargetPackage | None


class PriceRead(WireModel):
    """One price the subscription pays, as the client's `prices` list shows it."""

    amount: float | None = None
    currency: str | None = None
    base_charge: bool = False
    addon_id: str | None = None
    feature_id: str | None = None
    block_size: float | None = None
    tiers: list[dict[str, Any]] | None = None


class CouponRead(WireModel):
    id: str
    name: str
    status: Literal["ACTIVE", "EXPIRED", "REMOVED"]
    percent_off: float | None = None
    amounts_off: list[dict[str, Any]] | None = None


class TrialRead(WireModel):
    trial_end_behavior: TrialEndBehavior


PaymentCollection = Literal["NOT_REQUIRED", "PROCESSING", "FAILED", "ACTION_REQUIRED"]


class LatestInvoice(WireModel):
    """The subscription's latest invoice, as a subscription's read shows it."""

    billing_id: str
    created_at: datetime
    requires_action: bool
    status: Literal["OPEN", "CANCELED", "PAID"]
    amount_due: float
    billing_reason: str
    currency: str
    pdf_url: str
    total: float
    payment_secret: str | None = Field(
        None,
        description="Tollgate addition: while its payment waits for the customer to "
        "authenticate, the secret their browser confirms it with (Stripe.js)",
    )


class SubscriptionRead(WireModel):
    id: str
    customer_id: str
    resource_id: str | None
    plan_id: str
    plan_version: int = Field(description="Tollgate addition: the plan version held")
    pricing_type: PricingType
    status: SubscriptionStatus
    billing_id: str | None
    billing_period: BillingPeriod
    payment_collection: PaymentCollection = "NOT_REQUIRED"
    payment_collection_method: PaymentCollectionMethod = PaymentCollectionMethod.CHARGE
    latest_invoice: LatestInvoice | None = None
    start_date: datetime
    end_date: datetime | None
    effective_end_date: datetime | None
    cancellation_date: datetime | None
    cancel_reason: CancelReason | None
    billing_cycle_anchor: datetime
    current_billing_period_start: datetime
    current_billing_period_end: datetime
    trial_end_date: datetime | None
    trial: TrialRead | None
    addons: list[AddonRead]
    future_updates: list[FutureUpdate]
    metadata: dict[str, str]
    coupons: list[CouponRead] = Field(default_factory=list)
    prices: list[PriceRead] = Field(default_factory=list)
    currency: str | None = Field(None, description="Tollgate addition: what it is billed in")
    unit_quantities: dict[str, int] = Field(
        default_factory=dict, description="Tollgate addition: units of each per-unit price"
    )
    subscription_entitlements: list[Any] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ProvisionResult(WireModel):
    id: str
    status: Literal["SUCCESS", "PAYMENT_REQUIRED"] = "SUCCESS"
    is_scheduled: bool
    subscription: SubscriptionRead
    entitlements: list[EntitlementRead]


class SubscriptionId(WireModel):
    id: str


class PeriodRange(WireModel):
    start: datetime | None
    end: datetime | None


class PreviewLine(WireModel):
    currency: str
    description: str
    sub_total: float
    unit_price: float
    quantity: float | None = None


class PreviewPeriod(WireModel):
    start: datetime
    end: datetime


class Invoice(WireModel):
    """An invoice a preview foresees: what it would charge, line by line."""

    sub_total: float = 0
    total: float = 0
    currency: str | None = None
    discount: float = 0
    tax: float = 0
    billing_period_range: PreviewPeriod | None = None
    lines: list[PreviewLine] = Field(default_factory=list)


class PreviewResult(WireModel):
    immediate_invoice: Invoice
    recurring_invoice: Invoice | None
    billing_period_range: PeriodRange
    is_plan_downgrade: bool
    has_scheduled_updates: bool
    free_items: list[AddonRead] = Field(default_factory=list)
    entitlements: list[EntitlementRead] = Field(
        description="Tollgate addition: what the customer would be entitled to"
    )
