"""What the customers domain tells the change feed: a customer's holdings changed.

Writers (subscriptions, promotional grants, archiving) call `record_holdings_change` and
nothing more. The version bump makes every process's cached snapshot of the customer stale
once the transaction commits; the cause lets the entitlement announcer, which follows the
feed inside the transaction, say why in `entitlements.updated`."""

from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.db.changes import Change, ChangeKind, record


class Trigger(StrEnum):
    """Why a customer's entitlements changed (the `trigger` of `entitlements.updated`)."""

    SUBSCRIPTION_CREATED = "SUBSCRIPTION_CREATED"
    SUBSCRIPTION_CHANGED = "SUBSCRIPTION_CHANGED"  # an update, a transition, an ending
    # A publish moved its subscriptions to the new version, or changed a parent plan.
    PLAN_PUBLISHED = "PLAN_PUBLISHED"
    PROMOTIONAL_ENTITLEMENT_CHANGED = "PROMOTIONAL_ENTITLEMENT_CHANGED"
    CUSTOMER_ARCHIVED = "CUSTOMER_ARCHIVED"
    CUSTOMER_UNARCHIVED = "CUSTOMER_UNARCHIVED"


def record_holdings_change(session: Session, customer: Customer, *, trigger: Trigger) -> None:
    """The customer's subscriptions or grants changed: a new snapshot version, announced
    (and its webhook owed) when the transaction commits."""
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
    change = Change(
        ChangeKind.CUSTOMER, customer.environment_id, customer.ref_id, version, trigger.value
    )
    record(session, change)


def record_new_customer(session: Session, customer: Customer) -> None:
    """A process may hold a "not found" snapshot of this id (version 0): it is now stale.
    A new customer holds nothing, so there is nothing to announce."""
    record(session, Change(ChangeKind.CUSTOMER, customer.environment_id, customer.ref_id, 1))
