"""The subscriptions API (/api/v1/subscriptions): HTTP in and out, access checks, and
calls to `service` (and to other domains' services, such as entitlements') only."""

from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.orm import Session

from tollgate.catalog.enums import PricingType
from tollgate.entitlements.deps import Snapshots
from tollgate.entitlements.schemas import EntitlementRead
from tollgate.entitlements.service import preview_entitlements, read_entitlements
from tollgate.errors import NotFound
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.invoices import service as invoices
from tollgate.invoices import subscribing
from tollgate.invoices.previews import preview_invoice
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest
from tollgate.payments import standing
from tollgate.subscriptions import service
from tollgate.subscriptions.enums import SubscriptionStatus
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import (
    PeriodRange,
    PreviewResult,
    ProvisionResult,
    SubscriptionCancel,
    SubscriptionId,
    SubscriptionMigrate,
    SubscriptionPreview,
    SubscriptionProvision,
    SubscriptionRead,
    SubscriptionUpdate,
)

router = api_router(prefix="/api/v1/subscriptions", tags=["subscriptions"])
SubscriptionEnvelope = Envelope[SubscriptionRead]


def _read(session: Session, subscription: Subscription) -> SubscriptionEnvelope:
    return SubscriptionEnvelope(
        data=service.to_read(session, service.reload_subscription(session, subscription))
    )


@router.post("")
def provision_subscription(
    body: SubscriptionProvision,
    snapshots: Snapshots,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> Envelope[ProvisionResult]:
    """Subscribe a customer to a plan, with add-ons. In a product that allows one
    subscription, an upgrade replaces the current one now and a downgrade is scheduled for
    the end of its billing period (`isScheduled`)."""
    subscription, scheduled = subscribing.provision(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    subscription = service.reload_subscription(session, subscription)
    entitlements = read_entitlements(
        session,
        snapshots,
        environment_id=principal.environment_id,
        customer_ref=subscription.customer.ref_id,
        resource_ref=subscription.resource.ref_id if subscription.resource else None,
        now=now,
    )
    result = ProvisionResult(
        id=subscription.ref_id,
        is_scheduled=scheduled,
        subscription=service.to_read(session, subscription),
        entitlements=[EntitlementRead.model_validate(e) for e in entitlements],
    )
    return Envelope[ProvisionResult](data=result)


@router.get("")
def list_subscriptions(
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    customer_id: str | None = Query(None, alias="customerId"),
    plan_id: str | None = Query(None, alias="planId"),
    resource_id: str | None = Query(None, alias="resourceId"),
    status: str | None = enum_query(SubscriptionStatus),
    pricing_type: str | None = enum_query(PricingType, alias="pricingType"),
) -> Page[SubscriptionRead]:
    """List subscriptions, oldest first, optionally of one customer, plan or resource."""
    if customer_id is None:
        principal.require_listing("every customer's subscriptions (add customerId=...)")
    else:
        principal.require_customer(customer_id)
    subscriptions, cursors = service.list_subscriptions(
        session,
        environment_id=principal.environment_id,
        page=page,
        created_at=created_at,
        customer_ref=customer_id,
        plan_ref=plan_id,
        resource_ref=resource_id,
        statuses=enum_list(status, SubscriptionStatus, field="status"),
        pricing_types=enum_list(pricing_type, PricingType, field="pricingType"),
    )
    return page_of([service.to_read(session, s) for s in subscriptions], cursors)


@router.post("/preview")
def preview_subscription(
    body: SubscriptionPreview,
    snapshots: Snapshots,
    session: DbSession,
    principal: ReadPrincipal,
    now: Now,
) -> Envelope[PreviewResult]:
    """What provisioning would do, without doing it: whether it is a downgrade (and so
    scheduled), the billing period, and the entitlements the customer would hold. Amounts
    come from the same computation as the invoices the change would issue."""
    principal.require_customer(body.customer_id)
    preview = service.preview_subscription(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    entitlements = preview_entitlements(
        session,
        snapshots,
        customer=preview.customer,
        plan_version_id=preview.plan.version.id,
        addons=[(a.version.id, a.quantity) for a in preview.addons],
        start=preview.start,
        resource_ref=body.resource_id,
        now=now,
        unit_quantities=preview.price_terms.unit_quantities,
    )
    immediate, recurring = invoices.preview(session, preview, now=now)
    result = PreviewResult(
        immediate_invoice=preview_invoice(immediate),
        recurring_invoice=preview_invoice(recurring) if recurring else None,
        billing_period_range=PeriodRange(start=preview.period[0], end=preview.period[1]),
        is_plan_downgrade=preview.is_downgrade,
        has_scheduled_updates=preview.is_scheduled,
        entitlements=[EntitlementRead.model_validate(e) for e in entitlements],
    )
    return Envelope[PreviewResult](data=result)


@router.get("/{subscription_id}")
def get_subscription(
    subscription_id: str, session: DbSession, principal: ReadPrincipal
) -> SubscriptionEnvelope:
    """Retrieve one subscription, with its scheduled future updates."""
    principal.require_customer_access()
    subscription = service.get_subscription(
        session, environment_id=principal.environment_id, ref_id=subscription_id
    )
    read = service.to_read(session, subscription)
    principal.require_customer(read.customer_id)
    return SubscriptionEnvelope(data=standing.with_standing(session, read, subscription.id))


@router.patch("/{subscription_id}")
def update_subscription(
    subscription_id: str,
    body: SubscriptionUpdate,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> SubscriptionEnvelope:
    """Change add-ons, billing period, trial end, metadata or the cancellation date.
    Increases apply now; decreases wait for the end of the billing period unless
    `scheduleStrategy` is IMMEDIATE."""
    subscription = subscribing.update(
        session, environment_id=principal.environment_id, ref_id=subscription_id, data=body, now=now
    )
    return _read(session, subscription)


@router.post("/{subscription_id}/cancel")
def cancel_subscription(
    subscription_id: str,
    body: SubscriptionCancel,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> SubscriptionEnvelope:
    """Cancel now, at the end of the billing period (the product's default), or on a date.
    When it takes effect, the product's downgrade plan starts, if it has one."""
    subscription = service.cancel_subscription(
        session, environment_id=principal.environment_id, ref_id=subscription_id, data=body, now=now
    )
    return _read(session, subscription)


@router.post("/{subscription_id}/migrate")
def migrate_subscription(
    subscription_id: str,
    body: SubscriptionMigrate,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> SubscriptionEnvelope:
    """Move the subscription to the latest published versions of its plan and add-ons,
    now (the default) or at the end of the billing period."""
    subscription = service.migrate_subscription(
        session, environment_id=principal.environment_id, ref_id=subscription_id, data=body, now=now
    )
    return _read(session, subscription)


@router.delete("/{subscription_id}/future-update/schedule")
def cancel_scheduled_update(
    subscription_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[SubscriptionId]:
    """Cancel the updates waiting for the end of the billing period (a downgrade, say)."""
    subscription = service.cancel_scheduled_updates(
        session, environment_id=principal.environment_id, ref_id=subscription_id, now=now
    )
    return Envelope[SubscriptionId](data=SubscriptionId(id=subscription.ref_id))


@router.delete("/{subscription_id}/future-update/pending-payment")
def cancel_pending_payment_update(
    subscription_id: str, session: DbSession, principal: WritePrincipal
) -> Envelope[SubscriptionId]:
    """Tollgate takes no payments yet, so no update ever waits for one."""
    service.get_subscription(
        session, environment_id=principal.environment_id, ref_id=subscription_id
    )
    raise NotFound("update waiting for payment of subscription", subscription_id)
