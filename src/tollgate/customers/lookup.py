"""Finding customers; shared by every domain that gives customers something."""

from sqlalchemy.orm import Session

from tollgate.customers.errors import CustomerArchived
from tollgate.customers.models import Customer
from tollgate.db.lookup import get_by_ref


def get_customer(
    session: Session, *, environment_id: int, ref_id: str, lock: bool = False
) -> Customer:
    """Find a customer; `lock` makes changes to one customer's holdings take turns."""
    return get_by_ref(
        session, Customer, environment_id=environment_id, ref_id=ref_id, noun="customer", lock=lock
    )


def live_customer(session: Session, *, environment_id: int, ref_id: str) -> Customer:
    """A customer that may be given things: it exists and is not archived (locked)."""
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if customer.archived_at is not None:
        raise CustomerArchived(ref_id)
    return customer
