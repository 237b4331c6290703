"""The coupons API's wire shapes, as the client types them."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from tollgate.catalog.packages.charges import Amount, Currency, WireAmount
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import Description, DisplayName, JsonInt, Metadata, RefId

MAX_MONTHS = 1_200


class AmountOff(RequestModel):
    amount: Amount
    currency: Currency


class CouponCreate(RequestModel):
    id: RefId
    name: DisplayName
    description: Description | None = None
    metadata: Metadata | None = None
    percent_off: Amount | None = None
    amounts_off: Annotated[list[AmountOff], Field(max_length=50)] | None = None
    duration_in_months: Annotated[JsonInt, Field(ge=1, le=MAX_MONTHS)] | None = None


class CouponUpdate(RequestModel):
    name: DisplayName | None = None
    description: Description | None = None
    metadata: Metadata | None = None


class AmountOffRead(WireModel):
    amount: WireAmount
    currency: str


class CouponRead(WireModel):
    id: str
    name: str
    description: str | None
    metadata: dict[str, str]
    type: Literal["FIXED", "PERCENTAGE"]
    percent_off: WireAmount | None
    amounts_off: list[AmountOffRead] | None
    duration_in_months: int | None
    status: Literal["ACTIVE", "ARCHIVED"]
    source: Literal["STIGG"] = "STIGG"
    billing_id: str | None = None
    billing_link_url: str | None = None
    created_at: datetime
    updated_at: datetime
