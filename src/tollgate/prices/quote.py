"""What a package's charges come to: invoice lines, exact to the minor unit.

Every amount here is a `Decimal` in currency units until a line is made, and a line holds
whole minor units, rounded once (half away from zero). Recurring charges are billed in
advance for the period they cover; usage and overage in arrears, from the usage of the
period that closed.

Tiers, as the payment providers define them:
- VOLUME: every unit is priced by the one tier the whole quantity falls in;
- GRADUATED: each tier prices the units that fall within it.
A tier's flat price is added when any unit falls in it (VOLUME: the tier chosen). No units,
no charge, in either mode. A block size bills usage in whole blocks, rounded up."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from tollgate.catalog.packages.charges import (
    Charges,
    OveragePricingModel,
    PricePeriod,
    PricingModel,
    Tier,
    TiersMode,
    period_currency,
)
from tollgate.kit.money import from_minor, round_minor

LineKind = Literal["base", "unit", "one_off", "usage", "overage", "minimum", "credit", "discount"]


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an invoice: what it charges for, how many, at what price, and the total."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: int  # minor units of the invoice's currency
    feature_id: str | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    """A package as a subscription holds it: its name, charges and quantity (add-ons)."""

    name: str
    charges: Charges | None
    quantity: int = 1
    version_id: int | None = None  # the catalog version priced, when it is one


def currencies(charges: Charges | None, billing_period: str) -> set[str]:
    """The currencies the package is priced in for `billing_period` (empty if free)."""
    if charges is None:
        return set()
    models: Sequence[PricingModel | OveragePricingModel] = [
        *(charges.pricing_models or []),
        *(charges.overage_pricing_models or []),
    ]
    return {
        period_currency(period)
        for model in models
        for period in model.price_periods
        if period.billing_period == billing_period
    }


def billing_periods(charges: Charges | None) -> set[str]:
    if charges is None:
        return set()
    return {
        period.billing_period
        for model in charges.pricing_models or []
        for period in model.price_periods
    }


def per_unit_features(charges: Charges | None) -> list[PricingModel]:
    """The PER_UNIT models: each needs a quantity from the subscription."""
    if charges is None:
        return []
    return [m for m in charges.pricing_models or [] if m.billing_model == "PER_UNIT"]


def in_advance(
    priced: Priced,
    *,
    billing_period: str,
    currency: str,
    unit_quantities: Mapping[str, int],
    first: bool,
) -> list[Line]:
    """The package's charges for a period ahead: flat fees and per-unit prices (one-off
    ones only on the first invoice)."""
    if priced.charges is None:
        return []
    lines = []
    for model in priced.charges.pricing_models or []:
        if model.billing_cadence == "ONE_OFF" and not first:
            continue
        period = period_for(model, billing_period, currency)
        if period is None:
            continue
        kind: LineKind = "one_off" if model.billing_cadence == "ONE_OFF" else "base"
        if model.billing_model == "FLAT_FEE":
            assert period.price is not None
            quantity = Decimal(priced.quantity)
            lines.append(_line(kind, priced.name, quantity, period.price.amount, None, currency))
        elif model.billing_model == "PER_UNIT":
            assert model.feature_id is not None
            units = Decimal(unit_quantities.get(model.feature_id, 0) * priced.quantity)
            amount, unit_price = _unit_amount(period, units, model.tiers_mode)
            lines.append(
                Line(
                    kind="one_off" if kind == "one_off" else "unit",
                    description=f"{priced.name}: {model.feature_id}",
                    quantity=units,
                    unit_price=unit_price,
                    amount=round_minor(amount, currency),
                    feature_id=model.feature_id,
                )
            )
    return lines


def in_arrears(
    priced: Priced,
    *,
    billing_period: str,
    currency: str,
    usage: Mapping[str, Decimal],
    included: Mapping[str, Decimal | None],
) -> list[Line]:
    """Usage-based prices on the closed period's `usage`, and overage prices on the usage
    beyond what the plan includes (`included`; None: unlimited, never overage)."""
    if priced.charges is None:
        return []
    lines = []
    for model in priced.charges.pricing_models or []:
        if model.billing_model != "USAGE_BASED":
            continue
        period = period_for(model, billing_period, currency)
        if period is None or model.feature_id is None:
            continue
        units = usage.get(model.feature_id, Decimal(0))
        amount, unit_price = _unit_amount(period, units, model.tiers_mode)
        lines.append(
            Line(
                kind="usage",
                description=f"{priced.name}: {model.feature_id} usage",
                quantity=units,
                unit_price=unit_price,
                amount=round_minor(amount, currency),
                feature_id=model.feature_id,
            )
        )
    for extra in priced.charges.overage_pricing_models or []:
        period = period_for(extra, billing_period, currency)
        limit = included.get(extra.feature_id, Decimal(0))
        if period is None or limit is None:
            continue
        units = max(usage.get(extra.feature_id, Decimal(0)) - limit, Decimal(0))
        if units == 0:
            continue
        amount, unit_price = _unit_amount(period, units, extra.tiers_mode)
        lines.append(
            Line(
                kind="overage",
                description=f"{priced.name}: {extra.feature_id} beyond {limit:,}",
                quantity=units,
                unit_price=unit_price,
                amount=round_minor(amount, currency),
                feature_id=extra.feature_id,
            )
        )
    return lines


def minimum_spend(
    priced: Priced, *, billing_period: str, currency: str, charged: int
) -> Line | None:
    """A line that tops the period's charges (`charged`, minor units) up to the minimum."""
    if priced.charges is None:
        return None
    minimums = [
        spend.minimum.amount
        for spend in priced.charges.minimum_spend or []
        if spend.billing_period == billing_period and spend.minimum.currency == currency
    ]
    for model in priced.charges.pricing_models or []:
        period = period_for(model, billing_period, currency)
        if model.billing_model == "MINIMUM_SPEND" and period and period.price:
            minimums.append(period.price.amount)
    if not minimums:
        return None
    floor = round_minor(max(minimums), currency)
    if charged >= floor:
        return None
    return Line(
        kind="minimum",
        description=f"{priced.name}: minimum spend",
        quantity=Decimal(1),
        unit_price=from_minor(floor - charged, currency),
        amount=floor - charged,
    )


def tiered(quantity: Decimal, tiers: Sequence[Tier], mode: TiersMode) -> Decimal:
    """The exact amount, in currency units, of `quantity` on `tiers`."""
    if quantity <= 0:
        return Decimal(0)
    if mode == "VOLUME":
        tier = next(
            (t for t in tiers if t.up_to is None or quantity <= Decimal(repr(t.up_to))),
            tiers[-1],
        )
        return _tier_amount(tier, quantity)
    total = Decimal(0)
    below = Decimal(0)
    for tier in tiers:
        top = None if tier.up_to is None else Decimal(repr(tier.up_to))
        inside = quantity - below if top is None else min(quantity, top) - below
        if inside <= 0:
            break
        total += _tier_amount(tier, inside)
        if top is None:
            break
        below = top
    return total


def _tier_amount(tier: Tier, units: Decimal) -> Decimal:
    unit = tier.unit_price.amount if tier.unit_price else Decimal(0)
    flat = tier.flat_price.amount if tier.flat_price else Decimal(0)
    return units * unit + flat


def _unit_amount(
    period: PricePeriod, units: Decimal, mode: TiersMode | None
) -> tuple[Decimal, Decimal]:
    """(amount, unit price shown) for `units` on a period's unit price or tiers."""
    if period.block_size:
        block = Decimal(repr(period.block_size))
        units = (units / block).to_integral_value(rounding=ROUND_CEILING)
    if period.price is not None:
        return units * period.price.amount, period.price.amount
    assert period.tiers is not None
    assert mode is not None
    amount = tiered(units, period.tiers, mode)
    return amount, (amount / units if units else Decimal(0))


def _line(
    kind: LineKind,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    feature_id: str | None,
    currency: str,
) -> Line:
    return Line(
        kind=kind,
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=round_minor(quantity * unit_price, currency),
        feature_id=feature_id,
    )


def period_for(
    model: PricingModel | OveragePricingModel, billing_period: str, currency: str
) -> PricePeriod | None:
    for period in model.price_periods:
        if period.billing_period == billing_period and period_currency(period) == currency:
            return period
    return None
