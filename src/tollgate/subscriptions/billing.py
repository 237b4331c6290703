"""A subscription's price terms: the currency it is billed in and its unit quantities.

Chosen when it is provisioned and checked against the plan's and add-ons' charges:
- the billing period must be one the plan has a price for;
- the currency is the customer's billing currency, else that of the subscription it
  replaces, else USD, else the plan's only one; every priced package must be priced in it;
- each PER_UNIT feature of the plan gets a quantity (`unitQuantity` when there is one
  such feature, `charges` naming each otherwise; its minimum when none is given), within
  the price's minimum and maximum."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from tollgate.catalog.models import PackageVersion
from tollgate.catalog.packages import charges as catalog_charges
from tollgate.coupons import service as coupons
from tollgate.coupons.models import CouponStatus
from tollgate.customers.models import Customer
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.kit.money import wire_amount, wire_price
from tollgate.prices import quote
from tollgate.prices.bill import Terms
from tollgate.prices.discounts import Discount
from tollgate.subscriptions import offer
from tollgate.subscriptions.enums import BillingPeriod
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import AppliedCoupon, ChargeQuantity, CouponRead, PriceRead


@dataclass(frozen=True, slots=True)
class PriceTerms:
    currency: str | None  # None: nothing held has a price
    unit_quantities: dict[str, int]


def choose(
    *,
    customer: Customer,
    plan: offer.Offered,
    addons: Sequence[offer.OfferedAddon],
    billing_period: BillingPeriod,
    unit_quantity: int | None,
    quantities: Sequence[ChargeQuantity] | None,
    replacing: str | None = None,
) -> PriceTerms:
    plan_charges = catalog_charges.stored(plan.version)
    offers: list[offer.Offered | offer.OfferedAddon] = [plan, *addons]
    priced = [
        (offered.package.ref_id, found)
        for offered in offers
        if (found := catalog_charges.stored(offered.version)) is not None and _has_prices(found)
    ]
    unit_models = quote.per_unit_features(plan_charges)
    if not priced:
        if unit_quantity is not None or quantities:
            raise InvalidValue(
                f"plan '{plan.package.ref_id}' has no per-unit price to take a quantity",
                field="unitQuantity" if unit_quantity is not None else "charges",
            )
        return PriceTerms(None, {})
    period = billing_period.value
    for ref_id, found in priced:
        if period not in quote.billing_periods(found) and found.pricing_models:
            raise InvalidValue(
                f"'{ref_id}' has no {period} price; choose a billingPeriod it is priced for",
                field="billingPeriod",
            )
    offered = set.intersection(*(quote.currencies(found, period) for _, found in priced))
    currency = _currency(customer, offered, replacing)
    return PriceTerms(currency, _unit_quantities(unit_models, unit_quantity, quantities))


def terms_of(subscription: Subscription) -> Terms | None:
    """What the subscription is billed for in its current period (its versions loaded)."""
    if subscription.currency is None:
        return None
    return Terms(
        plan=priced(subscription.plan_version),
        addons=[priced(a.addon_version, a.quantity) for a in subscription.addons],
        billing_period=subscription.billing_period.value,
        currency=subscription.currency,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        unit_quantities=dict(subscription.unit_quantities or {}),
        discount=discount_of(subscription.coupon),
    )


def priced(version: PackageVersion, quantity: int = 1) -> quote.Priced:
    return quote.Priced(
        version.display_name, catalog_charges.stored(version), quantity, version_id=version.id
    )


def _has_prices(found: catalog_charges.Charges) -> bool:
    return bool(found.pricing_models or found.overage_pricing_models or found.minimum_spend)


def _currency(customer: Customer, offered: set[str], replacing: str | None) -> str:
    wanted = customer.billing_currency
    if wanted is not None:
        if wanted not in offered:
            raise InvalidValue(
                f"customer '{customer.ref_id}' is billed in {wanted.upper()}, and this plan is "
                f"priced in {_names(offered)}",
                field="planId",
            )
        return wanted
    for choice in (replacing, "usd"):
        if choice in offered:
            return choice
    if len(offered) == 1:
        return next(iter(offered))
    raise InvalidValue(
        f"the plan is priced in {_names(offered)}: set the customer's billingCurrency to "
        "choose one",
        field="customerId",
    )


def _names(currencies: set[str]) -> str:
    return ", ".join(sorted(c.upper() for c in currencies)) or "no currency in common"


def _unit_quantities(
    models: list[catalog_charges.PricingModel],
    unit_quantity: int | None,
    quantities: Sequence[ChargeQuantity] | None,
) -> dict[str, int]:
    by_feature = {m.feature_id: m for m in models if m.feature_id is not None}
    given: dict[str, tuple[int, str]] = {}
    if unit_quantity is not None:
        if len(by_feature) != 1:
            raise InvalidValue(
                "unitQuantity is for a plan with one per-unit price; this one has "
                f"{len(by_feature)}: give each in 'charges'",
                field="unitQuantity",
            )
        given[next(iter(by_feature))] = (unit_quantity, "unitQuantity")
    for i, item in enumerate(quantities or []):
        if item.id not in by_feature:
            raise InvalidValue(
                f"'{item.id}' is not a per-unit price of the plan", field=f"charges.{i}.id"
            )
        if item.id in given:
            raise InvalidValue(f"'{item.id}' is given twice", field=f"charges.{i}.id")
        given[item.id] = (item.quantity, f"charges.{i}.quantity")
    chosen = {}
    for feature_id, model in by_feature.items():
        low = model.min_unit_quantity or 1
        quantity, where = given.get(feature_id, (low, "unitQuantity"))
        if quantity < low or (model.max_unit_quantity and quantity > model.max_unit_quantity):
            top = f" to {model.max_unit_quantity}" if model.max_unit_quantity else " or more"
            raise InvalidValue(f"{feature_id}: {quantity} is outside {low}{top}", field=where)
        chosen[feature_id] = quantity
    return chosen


def price_reads(subscription: Subscription) -> list[PriceRead]:
    """The prices the subscription pays, in its billing period and currency."""
    terms = terms_of(subscription)
    if terms is None:
        return []
    reads = []
    for package, addon_id in [
        (terms.plan, None),
        *(
            (a, v.addon_version.package.ref_id)
            for a, v in zip(terms.addons, subscription.addons, strict=True)
        ),
    ]:
        for model in (package.charges.pricing_models or []) if package.charges else []:
            period = quote.period_for(model, terms.billing_period, terms.currency)
            if period is None:
                continue
            reads.append(
                PriceRead(
                    amount=wire_price(period.price.amount) if period.price else None,
                    currency=terms.currency,
                    base_charge=model.billing_model == "FLAT_FEE" and addon_id is None,
                    addon_id=addon_id,
                    feature_id=model.feature_id,
                    block_size=period.block_size,
                    tiers=[
                        tier.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for tier in catalog_charges.tier_reads(period) or []
                    ]
                    or None,
                )
            )
    return reads


def coupon_terms(
    session: Session,
    *,
    environment_id: int,
    applied: AppliedCoupon,
    currency: str | None,
    field: str,
    now: datetime,
) -> dict[str, Any] | None:
    """The coupon's terms as the subscription keeps them (they run from `now`)."""
    for name in ("billing_coupon_id", "configuration", "discount", "promotion_code"):
        if getattr(applied, name) is not None:
            where = f"{field}.{to_camel(name)}"
            raise NotImplementedYet(where, "apply a coupon of the catalog by its couponId")
    if applied.coupon_id is None:
        return None
    coupon = coupons.get_coupon(session, environment_id=environment_id, ref_id=applied.coupon_id)
    if coupon.status is CouponStatus.ARCHIVED:
        raise InvalidValue(f"coupon '{coupon.ref_id}' is archived", field=f"{field}.couponId")
    if currency is None:
        raise InvalidValue(
            "the plan has no price for a coupon to take off", field=f"{field}.couponId"
        )
    amounts = {a["currency"]: a["minor"] for a in coupon.amounts_off or []}
    if coupon.percent_off is None and currency not in amounts:
        raise InvalidValue(
            f"coupon '{coupon.ref_id}' has no amount off in {currency.upper()}",
            field=f"{field}.couponId",
        )
    ends = (
        None
        if coupon.duration_in_months is None
        else now + relativedelta(months=coupon.duration_in_months)
    )
    return {
        "id": coupon.ref_id,
        "name": coupon.name,
        "percentOff": coupon.percent_off,
        "amountsOff": amounts,
        "endsAt": ends.isoformat() if ends else None,
    }


def discount_of(stored: dict[str, Any] | None) -> Discount | None:
    if not stored:
        return None
    return Discount(
        code=stored["id"],
        name=stored["name"],
        percent_off=Decimal(stored["percentOff"]) if stored.get("percentOff") else None,
        amounts_off=dict(stored.get("amountsOff") or {}),
        ends_at=datetime.fromisoformat(stored["endsAt"]) if stored.get("endsAt") else None,
    )


def coupon_reads(subscription: Subscription, now: datetime) -> list[CouponRead]:
    discount = discount_of(subscription.coupon)
    if discount is None:
        return []
    currency = subscription.currency or "usd"
    return (
        [
            CouponRead(
                id=discount.code,
                name=discount.name,
                status="ACTIVE" if discount.applies(now) else "EXPIRED",
                percent_off=float(discount.percent_off)
                if discount.percent_off is not None
                else None,
                amounts_off=[
                    {"amount": wire_amount(minor, code), "currency": code}
                    for code, minor in discount.amounts_off.items()
                ]
                or None,
            )
        ]
        if currency
        else []
    )


def changed_quantities(
    version: PackageVersion, held: dict[str, int], requested: Sequence[ChargeQuantity]
) -> dict[str, int]:
    """The held quantities with those `requested` changed, each within its price's bounds."""
    models = quote.per_unit_features(catalog_charges.stored(version))
    if not models:
        raise InvalidValue("the plan has no per-unit price to change", field="charges")
    given = _unit_quantities(models, None, requested)
    named = {item.id for item in requested}
    return {
        feature: given[feature] if feature in named else held.get(feature, given[feature])
        for feature in given
    }
