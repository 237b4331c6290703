"""Webhooks the customers domain emits: `customer.*` and `promotionalEntitlement.*`."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.models import Feature
from tollgate.customers.models import Customer, PromotionalEntitlement
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


def announce_customers(
    session: Session, changes: list[tuple[EventType, Customer]], *, now: datetime
) -> None:
    """Owe webhooks for these customer changes, in this transaction."""
    if not changes:
        return
    session.flush()  # row ids, for `entityId`
    outbox.emit_many(
        session,
        environment_id=changes[0][1].environment_id,
        events=[
            outbox.Event(event_type, _customer_entity(customer), customer.ref_id)
            for event_type, customer in changes
        ],
        now=now,
    )


def _customer_entity(customer: Customer) -> dict[str, Any]:
    """A customer's fields as Stigg's webhooks carry them."""
    return {
        "entityId": str(customer.id),
        "id": customer.ref_id,
        "name": customer.name,
        "email": customer.email,
        "billingId": customer.billing_id,
        "metadata": customer.metadata_,
        "isArchived": customer.archived_at is not None,
        "createdAt": customer.created_at,  # the outbox writes moments as the wire does
        "updatedAt": customer.updated_at,
    }


def announce_promotions(
    session: Session,
    environment_id: int,
    changes: list[tuple[EventType, PromotionalEntitlement]],
    now: datetime,
) -> None:
    """Owe a `promotionalEntitlement.*` webhook for each change, in this transaction."""
    if not changes:
        return
    session.flush()
    ids = {promotion.id for _, promotion in changes}
    refs = {
        row.id: (row.customer_ref, row.feature_ref)
        for row in session.execute(
            select(
                PromotionalEntitlement.id,
                Customer.ref_id.label("customer_ref"),
                Feature.ref_id.label("feature_ref"),
            )
            .join(Customer, Customer.id == PromotionalEntitlement.customer_id)
            .join(Feature, Feature.id == PromotionalEntitlement.feature_id)
            .where(PromotionalEntitlement.id.in_(ids))
        )
    }
    events = []
    for event_type, promotion in changes:
        customer_ref, feature_ref = refs[promotion.id]
        entity = {
            "entityId": str(promotion.id),
            "id": str(promotion.id),
            "customer": {"id": customer_ref},
            "feature": {"id": feature_ref},
            "status": promotion.status.value,
            "period": promotion.period.value if promotion.period else None,
            "startDate": promotion.start_date,
            "endDate": promotion.end_date,
            "usageLimit": promotion.usage_limit,
            "hasUnlimitedUsage": promotion.has_unlimited_usage,
            "hasSoftLimit": promotion.has_soft_limit,
            "resetPeriod": promotion.reset_period,
            "enumValues": promotion.enum_values,
        }
        events.append(outbox.Event(event_type, entity, customer_ref))
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)
