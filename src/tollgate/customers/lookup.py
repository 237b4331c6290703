"""Finding customers; shared by every domain that gives customers something."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.errors import Conflict, NotFound


class CustomerArchived(Conflict):
    code = "customer_archived"

    def __init__(self, ref_id: str) -> None:
        super().__init__(f"customer '{ref_id}' is archived; unarchive it first")
        self.ref_id = ref_id


def get_customer(
    session: Session, *, environment_id: int, ref_id: str, lock: bool = False
) -> Customer:
    """Find a customer; `lock` makes changes to one customer's holdings take turns."""
    query = select(Customer).where(
        Customer.environment_id == environment_id, Customer.ref_id == ref_id
    )
    customer = session.scalar(query.with_for_update() if lock else query)
    if customer is None:
        raise NotFound("customer", ref_id)
    return customer


def live_customer(session: Session, *, environment_id: int, ref_id: str) -> Customer:
    """A customer that may be given things: it exists and is not archived (locked)."""
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if customer.archived_at is not None:
        raise CustomerArchived(ref_id)
    return customer
