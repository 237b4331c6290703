"""What services call when they change something entitlements depend on.

Both write a version bump and a change record in the caller's transaction; caches in every
process learn of it when (and only if) that transaction commits. A customer's change also
owes `entitlements.updated` if its terms moved (`announce`)."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.db.changes import Change, ChangeKind, record
from tollgate.entitlements.announcements import Trigger, announce


def customer_changed(
    session: Session, customer: Customer, *, trigger: Trigger, now: datetime
) -> None:
    """The customer's subscriptions or grants changed: a new snapshot version."""
    session.flush()
    version = session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        # updated_at is named so its onupdate default does not fire: the customer's own
        # fields did not change, only what it holds.
        .values(
            entitlements_version=Customer.entitlements_version + 1,
            updated_at=Customer.updated_at,
        )
        .returning(Customer.entitlements_version)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    record(session, Change(ChangeKind.CUSTOMER, customer.environment_id, customer.ref_id, version))
    announce(session, customer, trigger=trigger, now=now)


def catalog_changed(session: Session, environment_id: int) -> None:
    """Features or published versions changed: every snapshot of the environment is stale."""
    record(session, Change(ChangeKind.ENVIRONMENT, environment_id))
