"""Money: exact amounts, kept in a currency's minor units (cents, yen, fils).

Amounts arrive as JSON numbers (the client types them as floats). Pydantic parses a JSON
number into a `Decimal` from its text, so `19.99` is exactly 19.99 and never a binary float.
From there on a charge is an integer count of minor units, and arithmetic on prices is done
in `Decimal` and rounded once, half away from zero, when it becomes an amount owed.

Unit prices may be finer than a minor unit (a tenth of a cent per API call, as Stripe's
`unit_amount_decimal` allows); amounts owed never are.

Only the wire turns an amount back into a JSON number (`wire_amount`): a float holds every
whole number of minor units below 2**53 exactly, and its shortest repr is the decimal text,
so 1999 cents go out as 19.99."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units, for the currencies that have other than two.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "isk",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# The finest unit price stored: Stripe's `unit_amount_decimal` carries 12 decimal places.
UNIT_PRICE_PLACES = 12
# The largest amount in minor units: a 64-bit integer column, and exact as a float on the wire.
MAX_MINOR = 2**53 - 1


class MoneyError(ValueError):
    """An amount a currency cannot hold; the message says what to change."""


def exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (0 for JPY, 3 for KWD)."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount as whole minor units; one finer than the currency's unit is refused."""
    if not amount.is_finite():
        raise MoneyError(f"{amount} is not a finite amount")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        places = exponent(currency)
        raise MoneyError(
            f"{amount} {currency.upper()} has more than {places} decimal place"
            f"{'' if places == 1 else 's'}"
        )
    minor = int(scaled)
    if abs(minor) > MAX_MINOR:
        raise MoneyError(f"{amount} {currency.upper()} is too large")
    return minor


def check_unit_price(amount: Decimal, currency: str) -> Decimal:
    """A price per unit: may be finer than a minor unit, to 12 decimal places."""
    if not amount.is_finite() or amount < 0:
        raise MoneyError(f"{amount} is not a price: it must be a finite amount of 0 or more")
    if amount != amount.quantize(Decimal(1).scaleb(-UNIT_PRICE_PLACES)):
        raise MoneyError(f"{amount} has more than {UNIT_PRICE_PLACES} decimal places")
    if abs(amount.scaleb(exponent(currency))) > MAX_MINOR:
        raise MoneyError(f"{amount} {currency.upper()} is too large")
    return amount


def round_minor(amount: Decimal, currency: str) -> int:
    """An exact amount rounded to whole minor units, half away from zero."""
    return int(amount.scaleb(exponent(currency)).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def wire_amount(minor: int, currency: str) -> int | float:
    """The JSON number for an amount in minor units: whole when it is whole."""
    amount = from_minor(minor, currency)
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def wire_price(price: Decimal) -> int | float:
    """The JSON number for a unit price (which may be finer than a minor unit)."""
    if price == price.to_integral_value():
        return int(price)
    return float(price)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount owed or paid: whole minor units of one currency."""

    minor: int
    currency: str

    def __add__(self, other: "Money") -> "Money":
        if other.currency != self.currency:
            raise MoneyError(f"cannot add {other.currency.upper()} to {self.currency.upper()}")
        return Money(self.minor + other.minor, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.minor, self.currency)

    @property
    def amount(self) -> Decimal:
        return from_minor(self.minor, self.currency)

    @property
    def wire(self) -> int | float:
        return wire_amount(self.minor, self.currency)

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(0, currency)
