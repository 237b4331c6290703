"""A plan's or add-on's prices (`charges`), as the client writes them and reads them back.

Charges are part of a package version: set on a draft (a full replace, as the client's
docs say), copied into the next draft, frozen by publish. They are stored as the validated
request, amounts as decimal strings, so a read gives back exactly what was written and
`prices/` can compute from them without a float ever touching money.

Rules checked here, each naming the field to fix:
- FLAT_FEE and MINIMUM_SPEND carry one `price` per period, in whole minor units of its
  currency (no 10.5 JPY); PER_UNIT and USAGE_BASED name a feature and carry a unit `price`
  (finer than a cent is fine: 0.0005 per API call) or `tiers` with a `tiersMode`.
- Every pricing model prices the same set of (billing period, currency), so a subscription
  in any of them has a price for every charge.
- What would be silently wrong if ignored (credits, country-localized prices) is refused
  by name."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, ValidationInfo, WithJsonSchema

from tollgate.catalog.enums import FeatureType, MeterType, PricingType, ResetPeriod
from tollgate.catalog.models import Feature, PackageVersion
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import MAX_INT, JsonFloat, JsonInt, Refused, ShortText
from tollgate.kit.currencies import CURRENCIES
from tollgate.kit.money import MoneyError, check_unit_price, to_minor, wire_price

BillingPeriodName = Literal["MONTHLY", "ANNUALLY"]
BillingModel = Literal["FLAT_FEE", "MINIMUM_SPEND", "PER_UNIT", "USAGE_BASED", "CREDIT_BASED"]
BillingCadence = Literal["RECURRING", "ONE_OFF"]
TiersMode = Literal["VOLUME", "GRADUATED"]
MAX_AMOUNT = Decimal(10) ** 13  # far beyond any price, and exact in every currency's minor units


def _currency(value: object) -> object:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in CURRENCIES:
            return lowered
        raise ValueError(f"'{value}' is not an ISO 4217 currency code Tollgate knows")
    return value


Currency = Annotated[
    str,
    BeforeValidator(_currency),
    Field(min_length=3, max_length=3, description="ISO 4217 code, lowercase"),
]


def _json_number(value: object, info: ValidationInfo) -> Decimal:
    """A JSON number as an exact decimal (the JSON text's digits, not a binary float's)."""
    if isinstance(value, str) and info.context and info.context.get("stored"):
        return Decimal(value)  # stored charges keep amounts as decimal strings
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a JSON number")
    # json.loads gives a float; its repr is the shortest text that reads back as it, which is
    # the JSON text itself for any amount of up to 15 significant digits.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


Amount = Annotated[
    Decimal,
    BeforeValidator(_json_number),
    Field(ge=0, le=MAX_AMOUNT),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": float(MAX_AMOUNT)}),
]
WireAmount = Annotated[Decimal, PlainSerializer(wire_price, return_type=float)]


class Price(RequestModel):
    amount: Amount
    currency: Currency = "usd"


class Tier(RequestModel):
    up_to: Annotated[JsonFloat, Field(gt=0, le=2**53)] | None = None
    unit_price: Price | None = None
    flat_price: Price | None = None


class PricePeriod(RequestModel):
    billing_period: BillingPeriodName
    price: Price | None = None
    tiers: Annotated[list[Tier], Field(min_length=1, max_length=20)] | None = None
    block_size: Annotated[JsonFloat, Field(gt=0, le=MAX_INT)] | None = None
    billing_country_code: Refused = None
    credit_rate: Refused = None
    credit_grant_cadence: Refused = None


class ResetConfiguration(RequestModel):
    according_to: Annotated[str, Field(max_length=32)]


class PricingModel(RequestModel):
    billing_model: BillingModel
    price_periods: Annotated[list[PricePeriod], Field(min_length=1, max_length=8)]
    billing_cadence: BillingCadence = "RECURRING"
    feature_id: ShortText | None = None
    min_unit_quantity: Annotated[JsonInt, Field(ge=1, le=MAX_INT)] | None = None
    max_unit_quantity: Annotated[JsonInt, Field(ge=1, le=MAX_INT)] | None = None
    tiers_mode: TiersMode | None = None
    reset_period: ResetPeriod | None = None
    monthly_reset_period_configuration: ResetConfiguration | None = None
    weekly_reset_period_configuration: ResetConfiguration | None = None
    yearly_reset_period_configuration: ResetConfiguration | None = None
    top_up_custom_currency_id: Refused = None


class OveragePricingModel(RequestModel):
    price_periods: Annotated[list[PricePeriod], Field(min_length=1, max_length=8)]
    feature_id: ShortText
    tiers_mode: TiersMode | None = None
    entitlement: Refused = None  # the included amount is the plan's own entitlement
    credit_entitlement: Refused = None
    currency_id: Refused = None


class MinimumSpend(RequestModel):
    billing_period: BillingPeriodName
    minimum: Price


class Charges(RequestModel):
    """The whole pricing of a draft: every list given replaces the stored one."""

    pricing_type: PricingType
    billing_id: ShortText | None = None
    pricing_models: Annotated[list[PricingModel], Field(max_length=50)] | None = None
    overage_pricing_models: Annotated[list[OveragePricingModel], Field(max_length=50)] | None = None
    overage_billing_period: Literal["ON_SUBSCRIPTION_RENEWAL", "MONTHLY"] | None = None
    minimum_spend: Annotated[list[MinimumSpend], Field(max_length=8)] | None = None


class PriceRead(WireModel):
    amount: WireAmount
    currency: str


class TierRead(WireModel):
    up_to: float | None = None
    unit_price: PriceRead | None = None
    flat_price: PriceRead | None = None


class ChargeRead(WireModel):
    """One price period of one pricing model, as `GET .../charges` lists it."""

    id: str
    billing_cadence: BillingCadence
    billing_model: BillingModel
    billing_period: BillingPeriodName
    created_at: datetime
    billing_country_code: str | None = None
    billing_id: str | None = None
    block_size: float | None = None
    feature_id: str | None = None
    max_unit_quantity: int | None = None
    min_unit_quantity: int | None = None
    price: PriceRead | None = None
    tiers: list[TierRead] | None = None
    tiers_mode: TiersMode | None = None


def apply(version: PackageVersion, charges: Charges, features: Mapping[str, Feature]) -> None:
    """Check `charges` and make them the draft's whole pricing."""
    _check(charges, features)
    version.pricing_type = charges.pricing_type
    if charges.billing_id is not None:
        version.billing_id = charges.billing_id
    version.charges = charges.model_dump(mode="json", by_alias=True, exclude_none=True)


_PARSED = "_tollgate_parsed_charges"


def stored(version: PackageVersion) -> Charges | None:
    """The version's charges as written, amounts exact. Parsed once per loaded version:
    kept beside the very JSON it came from, so new charges are parsed afresh."""
    raw = version.charges
    if not raw or "pricingType" not in raw:
        return None
    cached = version.__dict__.get(_PARSED)
    if cached is not None and cached[0] is raw:
        parsed: Charges = cached[1]
        return parsed
    parsed = Charges.model_validate(raw, context={"stored": True})
    version.__dict__[_PARSED] = (raw, parsed)
    return parsed


def feature_ids(charges: Charges) -> set[str]:
    models: Iterable[PricingModel | OveragePricingModel] = [
        *(charges.pricing_models or []),
        *(charges.overage_pricing_models or []),
    ]
    return {model.feature_id for model in models if model.feature_id is not None}


def charge_rows(version: PackageVersion, *, overage: bool) -> list[ChargeRead]:
    charges = stored(version)
    if charges is None:
        return []
    rows = []
    if overage:
        for i, model in enumerate(charges.overage_pricing_models or []):
            for j, period in enumerate(model.price_periods):
                rows.append(
                    _row(version, f"overage-{i}-{j}", "USAGE_BASED", "RECURRING", model, period)
                )
    else:
        for i, pricing in enumerate(charges.pricing_models or []):
            for j, period in enumerate(pricing.price_periods):
                rows.append(
                    _row(
                        version,
                        f"{i}-{j}",
                        pricing.billing_model,
                        pricing.billing_cadence,
                        pricing,
                        period,
                    )
                )
    return rows


def _row(
    version: PackageVersion,
    suffix: str,
    billing_model: BillingModel,
    cadence: BillingCadence,
    model: PricingModel | OveragePricingModel,
    period: PricePeriod,
) -> ChargeRead:
    return ChargeRead(
        id=f"price-{version.id}-{suffix}",
        billing_cadence=cadence,
        billing_model=billing_model,
        billing_period=period.billing_period,
        created_at=version.created_at,
        billing_id=version.billing_id,
        block_size=period.block_size,
        feature_id=model.feature_id,
        max_unit_quantity=getattr(model, "max_unit_quantity", None),
        min_unit_quantity=getattr(model, "min_unit_quantity", None),
        price=_price_read(period.price),
        tiers=tier_reads(period),
        tiers_mode=model.tiers_mode,
    )


def tier_reads(period: PricePeriod) -> list[TierRead] | None:
    if not period.tiers:
        return None
    return [
        TierRead(
            up_to=tier.up_to,
            unit_price=_price_read(tier.unit_price),
            flat_price=_price_read(tier.flat_price),
        )
        for tier in period.tiers
    ]


def _price_read(price: Price | None) -> PriceRead | None:
    return None if price is None else PriceRead(amount=price.amount, currency=price.currency)


# --- The rules -----------------------------------------------------------------------------


def _check(charges: Charges, features: Mapping[str, Feature]) -> None:
    models = charges.pricing_models or []
    overage = charges.overage_pricing_models or []
    every: list[PricingModel | OveragePricingModel] = [*models, *overage]
    if charges.pricing_type is not PricingType.PAID and (
        models or overage or charges.minimum_spend
    ):
        raise InvalidValue(
            f"a {charges.pricing_type.value} package has no prices: set pricingType PAID "
            "or leave out pricingModels, overagePricingModels and minimumSpend",
            field="charges.pricingType",
        )
    priced: set[str] = set()
    for i, model in enumerate(models):
        where = f"charges.pricingModels.{i}"
        _check_model(model, where, features)
        if model.feature_id is not None:
            if model.feature_id in priced:
                raise InvalidValue(
                    f"feature '{model.feature_id}' is priced twice", field=f"{where}.featureId"
                )
            priced.add(model.feature_id)
    for i, extra in enumerate(overage):
        where = f"charges.overagePricingModels.{i}"
        _metered(extra.feature_id, f"{where}.featureId", features)
        for j, period in enumerate(extra.price_periods):
            _check_unit_pricing(period, extra.tiers_mode, f"{where}.pricePeriods.{j}")
        if extra.feature_id in priced:
            raise InvalidValue(
                f"feature '{extra.feature_id}' has a usage price already; an overage price "
                "is for usage beyond an entitlement",
                field=f"{where}.featureId",
            )
    for i, spend in enumerate(charges.minimum_spend or []):
        _whole_minor(spend.minimum, f"charges.minimumSpend.{i}.minimum.amount")
    _same_offers(every)


def _check_model(model: PricingModel, where: str, features: Mapping[str, Feature]) -> None:
    kind = model.billing_model
    if kind == "CREDIT_BASED":
        raise NotImplementedYet(f"{where}.billingModel", "CREDIT_BASED prices need credits")
    if model.billing_cadence == "ONE_OFF" and kind not in ("FLAT_FEE", "PER_UNIT"):
        raise InvalidValue(
            f"a {kind} price is charged every period: ONE_OFF is for FLAT_FEE and PER_UNIT",
            field=f"{where}.billingCadence",
        )
    if kind in ("FLAT_FEE", "MINIMUM_SPEND"):
        for name in ("feature_id", "tiers_mode", "min_unit_quantity", "max_unit_quantity"):
            if getattr(model, name) is not None:
                raise InvalidValue(
                    f"a {kind} price has no {_camel(name)}", field=f"{where}.{_camel(name)}"
                )
        for j, period in enumerate(model.price_periods):
            at = f"{where}.pricePeriods.{j}"
            if period.price is None or period.tiers is not None or period.block_size is not None:
                raise InvalidValue(
                    f"a {kind} price period has one 'price' and no tiers or blockSize", field=at
                )
            _whole_minor(period.price, f"{at}.price.amount")
        return
    if model.feature_id is None:
        raise InvalidValue(
            f"a {kind} price names the feature it counts", field=f"{where}.featureId"
        )
    if kind == "USAGE_BASED":
        _metered(model.feature_id, f"{where}.featureId", features)
        if model.min_unit_quantity is not None or model.max_unit_quantity is not None:
            raise InvalidValue(
                "unit quantities are for PER_UNIT prices; usage comes from the meter",
                field=f"{where}.minUnitQuantity",
            )
    else:
        feature = _feature(model.feature_id, f"{where}.featureId", features)
        if feature.feature_type is not FeatureType.NUMBER and feature.meter_type is MeterType.NONE:
            raise InvalidValue(
                f"feature '{feature.ref_id}' is a {feature.feature_type.value} feature: "
                "a PER_UNIT price counts a number or metered feature (seats, say)",
                field=f"{where}.featureId",
            )
        low, high = model.min_unit_quantity, model.max_unit_quantity
        if low is not None and high is not None and high < low:
            raise InvalidValue(
                f"maxUnitQuantity {high} is below minUnitQuantity {low}",
                field=f"{where}.maxUnitQuantity",
            )
    for j, period in enumerate(model.price_periods):
        _check_unit_pricing(period, model.tiers_mode, f"{where}.pricePeriods.{j}")


def _check_unit_pricing(period: PricePeriod, tiers_mode: TiersMode | None, at: str) -> None:
    if (period.price is None) == (period.tiers is None):
        raise InvalidValue("give either a unit 'price' or 'tiers', not both or neither", field=at)
    if period.price is not None:
        _unit_price(period.price, f"{at}.price.amount")
        return
    assert period.tiers is not None
    if tiers_mode is None:
        raise InvalidValue("tiers need a tiersMode: VOLUME or GRADUATED", field=f"{at}.tiers")
    currencies = set()
    previous = 0.0
    for k, tier in enumerate(period.tiers):
        where = f"{at}.tiers.{k}"
        last = k == len(period.tiers) - 1
        if (tier.up_to is None) != last:
            raise InvalidValue(
                "every tier but the last has an 'upTo'; the last has none (it is unbounded)",
                field=f"{where}.upTo",
            )
        if tier.up_to is not None:
            if tier.up_to <= previous or tier.up_to != int(tier.up_to):
                raise InvalidValue(
                    "tiers' 'upTo' are whole numbers, each above the one before",
                    field=f"{where}.upTo",
                )
            previous = tier.up_to
        if tier.unit_price is None and tier.flat_price is None:
            raise InvalidValue("a tier has a unitPrice, a flatPrice or both", field=where)
        if tier.unit_price is not None:
            _unit_price(tier.unit_price, f"{where}.unitPrice.amount")
            currencies.add(tier.unit_price.currency)
        if tier.flat_price is not None:
            _whole_minor(tier.flat_price, f"{where}.flatPrice.amount")
            currencies.add(tier.flat_price.currency)
    if len(currencies) > 1:
        raise InvalidValue("a period's tiers are priced in one currency", field=f"{at}.tiers")


def _same_offers(models: Sequence[PricingModel | OveragePricingModel]) -> None:
    """Every pricing model prices the same (billing period, currency) pairs."""
    offers = [set(_offers(model)) for model in models]
    everything = set().union(*offers) if offers else set()
    for i, (model, have) in enumerate(zip(models, offers, strict=True)):
        if len(have) != len(list(_offers(model))):
            raise InvalidValue(
                "a pricing model prices each billing period and currency once",
                field=f"charges.{_list_name(model)}.{i}.pricePeriods",
            )
        missing = everything - have
        if missing:
            period, currency = sorted(missing)[0]
            raise InvalidValue(
                f"no {period} price in {currency.upper()}: every pricing model needs one, as "
                "another prices that billing period and currency",
                field=f"charges.{_list_name(model)}.{i}.pricePeriods",
            )


def _offers(model: PricingModel | OveragePricingModel) -> Iterator[tuple[str, str]]:
    for period in model.price_periods:
        yield period.billing_period, period_currency(period)


def period_currency(period: PricePeriod) -> str:
    """The currency a price period is in (its price's, or its tiers')."""
    if period.price is not None:
        return period.price.currency
    for tier in period.tiers or []:
        price = tier.unit_price or tier.flat_price
        if price is not None:
            return price.currency
    return "usd"


def _list_name(model: PricingModel | OveragePricingModel) -> str:
    return "pricingModels" if isinstance(model, PricingModel) else "overagePricingModels"


def _whole_minor(price: Price, field: str) -> None:
    try:
        to_minor(price.amount, price.currency)
    except MoneyError as error:
        raise InvalidValue(str(error), field=field) from error


def _unit_price(price: Price, field: str) -> None:
    try:
        check_unit_price(price.amount, price.currency)
    except MoneyError as error:
        raise InvalidValue(str(error), field=field) from error


def _feature(ref_id: str, field: str, features: Mapping[str, Feature]) -> Feature:
    feature = features.get(ref_id)
    if feature is None:
        raise InvalidValue(f"feature '{ref_id}' was not found", field=field)
    return feature


def _metered(ref_id: str, field: str, features: Mapping[str, Feature]) -> Feature:
    feature = _feature(ref_id, field, features)
    if feature.meter_type is MeterType.NONE:
        raise InvalidValue(
            f"feature '{ref_id}' is not metered: usage prices need a metered feature",
            field=field,
        )
    return feature


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
