"""Bills: what one moment of a subscription's life costs, before it becomes an invoice.

One function per moment, each pure (terms and usage in, lines out), so that a preview and
the invoice the change then produces are the same computation:
- `opening`: a period's recurring charges, in advance (one-off charges on the first);
- `renewal`: the new period's opening charges, and the closed period's usage and
  overage in arrears, topped up to its minimum spend;
- `closing`: the usage of terms that ended (a cancellation, a move to a free plan);
- `change`: a change mid-period: credit for the unused time of the old terms, the new
  terms for the time left (or for a whole new period when the period restarts), and the
  usage of the old terms so far."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from tollgate.prices.discounts import Discount
from tollgate.prices.proration import prorate, remaining
from tollgate.prices.quote import Line, Priced, in_advance, in_arrears, minimum_spend


@dataclass(frozen=True, slots=True)
class Terms:
    """What a subscription is billed for during one billing period."""

    plan: Priced
    billing_period: str
    currency: str
    period_start: datetime
    period_end: datetime
    addons: Sequence[Priced] = ()
    unit_quantities: Mapping[str, int] = field(default_factory=dict)
    discount: Discount | None = None

    @property
    def packages(self) -> list[Priced]:
        return [self.plan, *self.addons]


@dataclass(frozen=True, slots=True)
class Bill:
    currency: str
    period_start: datetime
    period_end: datetime
    lines: list[Line]
    discount: int = 0  # minor units off the subtotal
    discount_code: str | None = None

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


Usage = Mapping[str, Decimal]
Included = Mapping[str, Decimal | None]


def opening(terms: Terms, *, first: bool) -> Bill:
    drawn = Bill(terms.currency, terms.period_start, terms.period_end, _advance(terms, first=first))
    return _discounted(drawn, terms.discount)


def renewal(terms: Terms, closed: Terms | None, usage: Usage, included: Included) -> Bill:
    lines = _advance(terms, first=False)
    if closed is not None:
        lines += _arrears(closed, usage, included, closed_advance=_advance(closed, first=False))
    return _discounted(
        Bill(terms.currency, terms.period_start, terms.period_end, lines), terms.discount
    )


def closing(terms: Terms, usage: Usage, included: Included, *, until: datetime) -> Bill:
    """The last bill of terms that ended at `until`: their usage so far, in arrears."""
    drawn = Bill(
        terms.currency,
        terms.period_start,
        until,
        _arrears(terms, usage, included, closed_advance=None),
    )
    return _discounted(drawn, terms.discount)


def change(
    old: Terms,
    new: Terms,
    *,
    at: datetime,
    new_plan: bool,
    usage: Usage,
    included: Included,
) -> Bill:
    """The bill for moving from `old` to `new` at `at`. `new` restarts the period when its
    start is `at`; otherwise both share the period and the new terms are prorated."""
    unused = remaining(old.period_start, old.period_end, at)
    lines = [
        replace(
            line,
            kind="credit",
            description=f"Unused time on {line.description}",
            amount=-prorate(line.amount, unused),
        )
        for line in _advance(old, first=False)
        if line.amount and unused
    ]
    if new.period_start >= at:
        lines += _advance(new, first=new_plan)
    else:
        left = remaining(new.period_start, new.period_end, at)
        lines += [
            replace(
                line,
                description=f"Remaining time on {line.description}",
                amount=prorate(line.amount, left) if line.kind != "one_off" else line.amount,
            )
            for line in _advance(new, first=new_plan)
            if line.amount
        ]
    if new_plan or new.period_start >= at:
        # The old terms end here: their usage so far is billed now.
        lines += _arrears(old, usage, included, closed_advance=None)
    return _discounted(Bill(new.currency, at, new.period_end, lines), new.discount)


def _discounted(drawn: Bill, discount: Discount | None) -> Bill:
    """The bill with its coupon taken off, if the coupon still holds when the bill's
    period starts."""
    if discount is None or not discount.applies(drawn.period_start):
        return drawn
    return replace(
        drawn,
        discount=discount.off(drawn.subtotal, drawn.currency),
        discount_code=discount.code,
    )


def _advance(terms: Terms, *, first: bool) -> list[Line]:
    return [
        line
        for priced in terms.packages
        for line in in_advance(
            priced,
            billing_period=terms.billing_period,
            currency=terms.currency,
            unit_quantities=terms.unit_quantities,
            first=first,
        )
    ]


def _arrears(
    terms: Terms, usage: Usage, included: Included, *, closed_advance: list[Line] | None
) -> list[Line]:
    lines = [
        line
        for priced in terms.packages
        for line in in_arrears(
            priced,
            billing_period=terms.billing_period,
            currency=terms.currency,
            usage=usage,
            included=included,
        )
    ]
    if closed_advance is not None:
        charged = sum(line.amount for line in [*closed_advance, *lines])
        topped = minimum_spend(
            terms.plan,
            billing_period=terms.billing_period,
            currency=terms.currency,
            charged=charged,
        )
        if topped is not None:
            lines.append(topped)
    return lines
