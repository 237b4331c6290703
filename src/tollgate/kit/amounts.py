"""Usage amounts, stored exactly as whole numbers of 1/100,000 units.

Stigg accepts fractional usage rounded half away from zero to 5 decimal places. Storing
the scaled integer keeps every sum exact on both databases (SQLite has no exact decimal
column) and lets a counter be incremented in SQL. A 64-bit counter then holds up to
92,233,720,368,547 units: ample for usage, and a report beyond it is refused by name."""

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

SCALE = 100_000
MAX_UNITS = 2**63 - 1
MAX_VALUE = MAX_UNITS // SCALE  # 92,233,720,368,547 units
MAX_FRACTIONAL = 2**35
_PLACES = Decimal("0.00001")


class AmountOutOfRange(ValueError):
    pass


def to_units(value: float | int | Decimal) -> int:
    """The scaled integer of a reported value, rounded half away from zero."""
    exact = Decimal(value) if isinstance(value, int | Decimal) else Decimal(repr(value))
    if not exact.is_finite():
        raise AmountOutOfRange(f"{value!r} is not a finite number")
    if abs(exact) > MAX_VALUE:
        raise AmountOutOfRange(f"{value} is beyond ±{MAX_VALUE:,}")
    if exact != exact.to_integral_value() and abs(exact) >= MAX_FRACTIONAL:
        # Past 2**35 a float cannot carry 5 decimal places; Stigg refuses these too.
        raise AmountOutOfRange(f"{value} has a fraction, and is not below ±{MAX_FRACTIONAL:,}")
    return int(exact.quantize(_PLACES, rounding=ROUND_HALF_UP) * SCALE)


def from_units(units: int) -> int | float:
    """The wire value of a scaled integer: a whole number when it is one."""
    whole, fraction = divmod(units, SCALE)
    if fraction == 0:
        return whole
    return units / SCALE


def transform(units: int, *, divide: int, round_up: bool) -> int:
    """A meter's unit transformation (bytes to GB, say): whole units, rounded as asked."""
    quotient = Decimal(units) / (SCALE * divide)
    whole = quotient.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR)
    return int(whole) * SCALE
