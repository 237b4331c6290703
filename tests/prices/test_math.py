"""Money math, table-tested: proration, tiers, minimum spend, currencies' minor units."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from tollgate.catalog.packages.charges import Charges, Tier
from tollgate.kit.money import MoneyError, check_unit_price, round_minor, to_minor, wire_amount
from tollgate.prices import quote
from tollgate.prices.proration import prorate, remaining, round_half_up


def day(year: int, month: int, d: int, hour: int = 0) -> datetime:
    return datetime(year, month, d, hour, tzinfo=UTC)


class TestMinorUnits:
    @pytest.mark.parametrize(
        ("amount", "currency", "minor"),
        [
            ("19.99", "usd", 1999),
            ("1980", "jpy", 1980),
            ("5.125", "kwd", 5125),
            ("0.5", "eur", 50),
            ("12345678.9", "usd", 1234567890),
        ],
    )
    def test_exact_amounts_become_whole_minor_units(
        self, amount: str, currency: str, minor: int
    ) -> None:
        assert to_minor(Decimal(amount), currency) == minor
        assert Decimal(repr(wire_amount(minor, currency))) == Decimal(amount)

    @pytest.mark.parametrize(
        ("amount", "currency", "places"),
        [
            ("10.5", "jpy", "0 decimal places"),
            ("1.001", "usd", "2 decimal places"),
            ("1.0001", "kwd", "3 decimal places"),
        ],
    )
    def test_finer_than_the_minor_unit_is_refused(
        self, amount: str, currency: str, places: str
    ) -> None:
        with pytest.raises(MoneyError, match=places):
            to_minor(Decimal(amount), currency)

    def test_unit_prices_go_to_twelve_places_and_round_once(self) -> None:
        assert check_unit_price(Decimal("0.000000000001"), "usd")
        with pytest.raises(MoneyError):
            check_unit_price(Decimal("0.0000000000001"), "usd")
        # 3 x 0.0005 = 0.0015 USD rounds half away from zero to 0 cents; 10 x is 1 cent.
        assert round_minor(3 * Decimal("0.0005"), "usd") == 0
        assert round_minor(10 * Decimal("0.0005"), "usd") == 1
        assert round_minor(Decimal("0.005"), "usd") == 1
        assert round_minor(Decimal("-0.005"), "usd") == -1
        assert round_minor(Decimal("0.5"), "jpy") == 1
        assert round_minor(Decimal("1.0005"), "kwd") == 1001

    def test_sums_never_drift_as_floats_do(self) -> None:
        cents = sum(to_minor(Decimal("0.1"), "usd") for _ in range(10))
        assert cents == 100
        assert sum(0.1 for _ in range(10)) != 1.0  # what the minor units avoid


class TestProration:
    @pytest.mark.parametrize(("year", "month"), [(2027, 1), (2027, 2), (2028, 2), (2027, 4)])
    def test_every_day_of_the_month(self, year: int, month: int) -> None:
        start = day(year, month, 1)
        end = day(year + month // 12, month % 12 + 1, 1)
        days = (end - start).days
        for elapsed in range(days + 1):
            at = start + timedelta(days=elapsed)
            share = remaining(start, end, at)
            assert share == Fraction(days - elapsed, days)
            # $30.00 a month: the unused part, to the cent, rounded half away from zero.
            expected = (Decimal(3000) * (days - elapsed) / days).quantize(
                Decimal(1), "ROUND_HALF_UP"
            )
            assert prorate(3000, share) == int(expected)

    def test_a_leap_year_has_366_days(self) -> None:
        start, end = day(2028, 1, 1), day(2029, 1, 1)
        assert remaining(start, end, day(2028, 3, 1)) == Fraction(366 - 60, 366)
        assert prorate(36600, remaining(start, end, day(2028, 3, 1))) == 30600
        assert remaining(day(2027, 1, 1), day(2028, 1, 1), day(2027, 3, 1)) == Fraction(306, 365)

    def test_half_a_day_counts(self) -> None:
        share = remaining(day(2027, 4, 1), day(2027, 5, 1), day(2027, 4, 16, 12))
        assert share == Fraction(29, 60)  # 14.5 of 30 days
        assert prorate(1000, share) == 483  # 483.33...

    def test_outside_the_period(self) -> None:
        start, end = day(2027, 4, 1), day(2027, 5, 1)
        assert remaining(start, end, day(2027, 3, 1)) == 1
        assert remaining(start, end, end) == 0

    @pytest.mark.parametrize(
        ("value", "rounded"),
        [
            (Fraction(1, 2), 1),
            (Fraction(-1, 2), -1),
            (Fraction(3, 2), 2),
            (Fraction(5, 3), 2),
            (Fraction(4, 3), 1),
            (Fraction(-4, 3), -1),
            (Fraction(0), 0),
        ],
    )
    def test_half_away_from_zero(self, value: Fraction, rounded: int) -> None:
        assert round_half_up(value) == rounded


TIERS = [
    Tier.model_validate({"upTo": 1000, "unitPrice": {"amount": 0}}),
    Tier.model_validate(
        {"upTo": 10000, "unitPrice": {"amount": 0.002}, "flatPrice": {"amount": 5}}
    ),
    Tier.model_validate({"unitPrice": {"amount": 0.0005}}),
]


class TestTiers:
    @pytest.mark.parametrize(
        ("quantity", "graduated", "volume"),
        [
            (0, "0", "0"),
            (1, "0", "0"),
            (1000, "0", "0"),
            (1001, "5.002", "7.002"),
            (10000, "23", "25"),
            (10001, "23.0005", "5.0005"),
            (20000, "28", "10"),
        ],
    )
    def test_each_boundary(self, quantity: int, graduated: str, volume: str) -> None:
        assert quote.tiered(Decimal(quantity), TIERS, "GRADUATED") == Decimal(graduated)
        assert quote.tiered(Decimal(quantity), TIERS, "VOLUME") == Decimal(volume)


def charges(**fields: Any) -> Charges:
    return Charges.model_validate({"pricingType": "PAID", **fields})


def flat(amount: float, currency: str = "usd", **extra: Any) -> dict[str, Any]:
    return {
        "billingModel": "FLAT_FEE",
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": {"amount": amount, "currency": currency}}
        ],
        **extra,
    }


class TestQuote:
    def test_flat_per_unit_and_one_off_in_advance(self) -> None:
        priced = quote.Priced(
            "Pro",
            charges(
                pricingModels=[
                    flat(29),
                    flat(99, billingCadence="ONE_OFF"),
                    {
                        "billingModel": "PER_UNIT",
                        "featureId": "seats",
                        "pricePeriods": [{"billingPeriod": "MONTHLY", "price": {"amount": 4.5}}],
                    },
                ]
            ),
        )
        first = quote.in_advance(
            priced,
            billing_period="MONTHLY",
            currency="usd",
            unit_quantities={"seats": 3},
            first=True,
        )
        assert [(line.kind, line.amount) for line in first] == [
            ("base", 2900),
            ("one_off", 9900),
            ("unit", 1350),
        ]
        renewal = quote.in_advance(
            priced,
            billing_period="MONTHLY",
            currency="usd",
            unit_quantities={"seats": 3},
            first=False,
        )
        assert [line.amount for line in renewal] == [2900, 1350]
        assert (
            quote.in_advance(
                priced, billing_period="ANNUALLY", currency="usd", unit_quantities={}, first=False
            )
            == []
        )

    def test_add_on_quantity_multiplies(self) -> None:
        priced = quote.Priced("Extra seats", charges(pricingModels=[flat(5)]), quantity=4)
        [line] = quote.in_advance(
            priced, billing_period="MONTHLY", currency="usd", unit_quantities={}, first=False
        )
        assert (line.quantity, line.amount) == (Decimal(4), 2000)

    def test_usage_and_overage_in_arrears_with_blocks(self) -> None:
        priced = quote.Priced(
            "Pro",
            charges(
                pricingModels=[
                    {
                        "billingModel": "USAGE_BASED",
                        "featureId": "calls",
                        "pricePeriods": [
                            {"billingPeriod": "MONTHLY", "price": {"amount": 1}, "blockSize": 1000}
                        ],
                    }
                ],
                overagePricingModels=[
                    {
                        "featureId": "storage",
                        "pricePeriods": [{"billingPeriod": "MONTHLY", "price": {"amount": 0.1}}],
                    }
                ],
            ),
        )
        lines = quote.in_arrears(
            priced,
            billing_period="MONTHLY",
            currency="usd",
            usage={"calls": Decimal(2500), "storage": Decimal("120.5")},
            included={"storage": Decimal(100)},
        )
        assert [(line.kind, line.quantity, line.amount) for line in lines] == [
            ("usage", 2500, 300),  # 3 blocks of 1,000 at $1
            ("overage", Decimal("20.5"), 205),
        ]
        unlimited = quote.in_arrears(
            priced,
            billing_period="MONTHLY",
            currency="usd",
            usage={"storage": Decimal(10**6)},
            included={"storage": None},
        )
        assert [line.kind for line in unlimited] == ["usage"]

    def test_minimum_spend_tops_up(self) -> None:
        priced = quote.Priced(
            "Usage",
            charges(minimumSpend=[{"billingPeriod": "MONTHLY", "minimum": {"amount": 50}}]),
        )
        line = quote.minimum_spend(priced, billing_period="MONTHLY", currency="usd", charged=1234)
        assert line is not None
        assert line.amount == 5000 - 1234
        assert line.unit_price == Decimal("37.66")
        assert (
            quote.minimum_spend(priced, billing_period="MONTHLY", currency="usd", charged=5000)
            is None
        )

    @pytest.mark.parametrize(
        ("currency", "amount", "minor"),
        [("jpy", 1980, 1980), ("usd", 19.99, 1999), ("kwd", 5.125, 5125)],
    )
    def test_currencies_of_every_precision(self, currency: str, amount: float, minor: int) -> None:
        priced = quote.Priced("Pro", charges(pricingModels=[flat(amount, currency)]))
        assert quote.currencies(priced.charges, "MONTHLY") == {currency}
        [line] = quote.in_advance(
            priced, billing_period="MONTHLY", currency=currency, unit_quantities={}, first=False
        )
        assert line.amount == minor
