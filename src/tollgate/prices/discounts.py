"""A coupon as a bill applies it: a percentage or a fixed amount off an invoice's
subtotal, while it lasts. Never more than the subtotal, never on a credit."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from tollgate.prices.proration import round_half_up


@dataclass(frozen=True, slots=True)
class Discount:
    code: str  # the coupon's id
    name: str
    percent_off: Decimal | None = None
    amounts_off: Mapping[str, int] = field(default_factory=dict)  # currency: minor units
    ends_at: datetime | None = None  # None: for ever

    def applies(self, moment: datetime) -> bool:
        return self.ends_at is None or moment < self.ends_at

    def off(self, subtotal: int, currency: str) -> int:
        """How much comes off `subtotal` (minor units): half away from zero, at most all."""
        if subtotal <= 0:
            return 0
        if self.percent_off is not None:
            return min(
                round_half_up(Fraction(subtotal) * Fraction(self.percent_off) / 100), subtotal
            )
        return min(self.amounts_off.get(currency, 0), subtotal)
