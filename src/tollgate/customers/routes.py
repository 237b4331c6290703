from typing import Annotated

from fastapi import Depends, Query, status

from tollgate.customers import lookup, promotions, service
from tollgate.customers.models import PromotionStatus
from tollgate.customers.schemas import (
    CustomerCreate,
    CustomerImport,
    CustomerRead,
    CustomerUpdate,
    ImportResult,
    PromotionGrants,
    PromotionRead,
    ResourceRead,
)
from tollgate.http.deps import (
    CustomerReadPrincipal,
    DbSession,
    Now,
    ReadPrincipal,
    WritePrincipal,
)
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.http.types import MAX_BATCH_BODY_BYTES
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest
from tollgate.subscriptions import service as subscriptions

router = api_router(prefix="/api/v1/customers", tags=["customers"])
CustomerEnvelope = Envelope[CustomerRead]


@router.post("", status_code=status.HTTP_201_CREATED)
def provision_customer(
    body: CustomerCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> CustomerEnvelope:
    """Create a customer (an individual or an organization), under the SaaS's own id."""
    customer = service.provision_customer(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    return CustomerEnvelope(data=service.to_read(customer))


@router.get("")
def list_customers(
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    email: str | None = Query(None, description="Only customers with exactly this email"),
    name: str | None = Query(None, description="Only customers with exactly this name"),
) -> Page[CustomerRead]:
    """List the environment's customers, oldest first."""
    principal.require_listing("customers")
    customers, cursors = service.list_customers(
        session,
        environment_id=principal.environment_id,
        page=page,
        created_at=created_at,
        email=email,
        name=name,
    )
    return page_of([service.to_read(customer) for customer in customers], cursors)


@router.post("/import", max_body_size=MAX_BATCH_BODY_BYTES)
def import_customers(
    body: CustomerImport, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[ImportResult]:
    """Create many customers at once (up to 1,000). Ids that exist are updated with the
    given fields instead, so running the same import twice changes nothing."""
    result = service.import_customers(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    return Envelope[ImportResult](data=result)


@router.get("/{customer_id}")
def get_customer(
    customer_id: str, session: DbSession, principal: CustomerReadPrincipal
) -> CustomerEnvelope:
    """Retrieve one customer."""
    customer = lookup.get_customer(
        session, environment_id=principal.environment_id, ref_id=customer_id
    )
    return CustomerEnvelope(data=service.to_read(customer))


@router.patch("/{customer_id}")
def update_customer(
    customer_id: str, body: CustomerUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> CustomerEnvelope:
    """Change the fields given; the others stay as they are."""
    customer = service.update_customer(
        session, environment_id=principal.environment_id, ref_id=customer_id, data=body, now=now
    )
    return CustomerEnvelope(data=service.to_read(customer))


@router.post("/{customer_id}/archive")
def archive_customer(
    customer_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> CustomerEnvelope:
    """Archive a customer: its live subscriptions end at once and checks deny it access."""
    customer = service.archive_customer(
        session, environment_id=principal.environment_id, ref_id=customer_id, now=now
    )
    subscriptions.end_subscriptions_of_archived_customer(session, customer=customer, now=now)
    return CustomerEnvelope(data=service.to_read(customer))


@router.post("/{customer_id}/unarchive")
def unarchive_customer(
    customer_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> CustomerEnvelope:
    """Restore an archived customer (its ended subscriptions stay ended)."""
    customer = service.unarchive_customer(
        session, environment_id=principal.environment_id, ref_id=customer_id, now=now
    )
    return CustomerEnvelope(data=service.to_read(customer))


@router.get("/{customer_id}/resources")
def list_customer_resources(
    customer_id: str,
    session: DbSession,
    principal: CustomerReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
) -> Page[ResourceRead]:
    """The customer's resources (workspaces, projects...) that hold subscriptions."""
    resources, cursors = service.list_resources(
        session, environment_id=principal.environment_id, ref_id=customer_id, page=page
    )
    return page_of(
        [
            ResourceRead(id=r.ref_id, created_at=r.created_at, updated_at=r.updated_at)
            for r in resources
        ],
        cursors,
    )


@router.get("/{customer_id}/promotional-entitlements")
def list_promotional_entitlements(
    customer_id: str,
    session: DbSession,
    principal: CustomerReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    status: str | None = enum_query(PromotionStatus),
) -> Page[PromotionRead]:
    """The customer's promotional grants, current and past."""
    rows, cursors = promotions.list_promotions(
        session,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        page=page,
        created_at=created_at,
        statuses=enum_list(status, PromotionStatus, field="status"),
    )
    name = principal.environment_name
    return page_of([promotions.to_read(row, environment_name=name) for row in rows], cursors)


@router.post("/{customer_id}/promotional-entitlements")
def grant_promotional_entitlements(
    customer_id: str, body: PromotionGrants, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[list[PromotionRead]]:
    """Grant features outside any plan, for a period; they override the plan's terms. A
    grant for a feature that already has one replaces it."""
    rows = promotions.grant_promotions(
        session,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        data=body,
        now=now,
    )
    name = principal.environment_name
    return Envelope[list[PromotionRead]](
        data=[promotions.to_read(row, environment_name=name) for row in rows]
    )


@router.delete("/{customer_id}/promotional-entitlements/{feature_id}")
def revoke_promotional_entitlement(
    customer_id: str, feature_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[PromotionRead]:
    """End a promotional grant now; the customer falls back to its subscriptions' terms."""
    row = promotions.revoke_promotion(
        session,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        feature_ref=feature_id,
        now=now,
    )
    return Envelope[PromotionRead](
        data=promotions.to_read(row, environment_name=principal.environment_name)
    )
