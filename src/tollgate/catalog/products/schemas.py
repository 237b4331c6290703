from datetime import datetime
from typing import Literal

from pydantic import Field

from tollgate.catalog.enums import ProductStatus
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import Description, DisplayName, JsonBool, Metadata, RefId, ShortText

CancellationTime = Literal["END_OF_BILLING_PERIOD", "IMMEDIATE", "SPECIFIC_DATE"]
EndSetup = Literal["DOWNGRADE_TO_FREE", "CANCEL_SUBSCRIPTION"]
StartSetup = Literal["PLAN_SELECTION", "TRIAL_PERIOD", "FREE_PLAN"]


class ProductSettings(RequestModel):
    subscription_cancellation_time: CancellationTime = "END_OF_BILLING_PERIOD"
    subscription_end_setup: EndSetup = "CANCEL_SUBSCRIPTION"
    subscription_start_setup: StartSetup = "PLAN_SELECTION"
    downgrade_plan_id: ShortText | None = None
    prorate_at_end_of_billing_period: JsonBool | None = None
    subscription_start_plan_id: ShortText | None = None


class UsageResetCutoffRule(RequestModel):
    behavior: Literal["NEVER_RESET", "ALWAYS_RESET", "BILLING_PERIOD_CHANGE"]


class ProductCreate(RequestModel):
    id: RefId
    display_name: DisplayName
    description: Description | None = None
    metadata: Metadata | None = None
    multiple_subscriptions: JsonBool = False


class ProductUpdate(RequestModel):
    description: Description | None = None
    display_name: DisplayName | None = None
    metadata: Metadata | None = None
    multiple_subscriptions: JsonBool | None = None
    product_settings: ProductSettings | None = None
    usage_reset_cutoff_rule: UsageResetCutoffRule | None = None


class ProductDuplicate(RequestModel):
    target_id: RefId
    description: Description | None = None
    display_name: DisplayName | None = None


class ProductRead(WireModel):
    id: str
    display_name: str
    description: str | None
    metadata: dict[str, str] = Field(default_factory=dict)
    multiple_subscriptions: bool
    status: ProductStatus
    product_settings: ProductSettings | None
    created_at: datetime
    updated_at: datetime
