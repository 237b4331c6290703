"""A customer's credit: what invoices with a negative total (a credit for unused time
larger than the new charges) left over, taken from the next invoices in the same currency
until it is used up. Nothing is ever lost to rounding or to a refund Tollgate cannot make."""

from collections.abc import Iterable

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tollgate.invoices.models import Invoice, InvoiceState


def credit(session: Session, customer_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """Each (customer, currency)'s unused credit, in minor units."""
    left = func.sum(case((Invoice.total < 0, -Invoice.total), else_=0) - Invoice.credit_applied)
    rows = session.execute(
        select(Invoice.customer_id, Invoice.currency, left)
        .where(Invoice.customer_id.in_(set(customer_ids)), Invoice.state != InvoiceState.VOID)
        .group_by(Invoice.customer_id, Invoice.currency)
    ).tuples()
    return {(customer, currency): int(amount) for customer, currency, amount in rows if amount}


def take(available: dict[tuple[int, str], int], customer_id: int, currency: str, total: int) -> int:
    """How much of the customer's credit an invoice of `total` uses (and use it up)."""
    key = (customer_id, currency)
    used = min(available.get(key, 0), max(total, 0))
    if used:
        available[key] -= used
    return used
