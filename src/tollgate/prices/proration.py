"""Proration: the share of a billing period that remains, and what it is worth.

Time is measured in whole seconds, as Stripe does, so a change at noon on the 15th of a
30-day month credits exactly 15.5 / 30 of the period. The fraction is exact (a `Fraction`
of seconds) and the amount is rounded once, half away from zero, to minor units."""

from datetime import datetime
from fractions import Fraction


def remaining(start: datetime, end: datetime, at: datetime) -> Fraction:
    """The share of [start, end) still to come at `at`: 1 before it, 0 after it."""
    total = int((end - start).total_seconds())
    if total <= 0 or at >= end:
        return Fraction(0)
    if at <= start:
        return Fraction(1)
    return Fraction(int((end - at).total_seconds()), total)


def prorate(minor: int, share: Fraction) -> int:
    """`minor` units times `share`, rounded half away from zero."""
    return round_half_up(minor * share)


def round_half_up(value: Fraction) -> int:
    """The nearest whole number, a half going away from zero; exact, in integers."""
    magnitude = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude
