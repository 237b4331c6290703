from typing import Annotated

from fastapi import Depends, Query, status

from tollgate.catalog.enums import ProductStatus
from tollgate.catalog.products import service
from tollgate.catalog.products.duplication import duplicate_product as duplicate
from tollgate.catalog.products.schemas import (
    ProductCreate,
    ProductDuplicate,
    ProductRead,
    ProductUpdate,
)
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest

router = api_router(prefix="/api/v1/products", tags=["products"])
ProductEnvelope = Envelope[ProductRead]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_product(
    body: ProductCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> ProductEnvelope:
    """Create a product to hold plans and add-ons."""
    product = service.create_product(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    return ProductEnvelope(data=service.to_read(product))


@router.get("")
def list_products(
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    id: str | None = Query(None, description="Only the product with this id"),
    status: str | None = enum_query(ProductStatus),
) -> Page[ProductRead]:
    """List the environment's products, oldest first."""
    products, cursors = service.list_products(
        session,
        environment_id=principal.environment_id,
        page=page,
        created_at=created_at,
        ref_id=id,
        statuses=enum_list(status, ProductStatus, field="status"),
    )
    return page_of([service.to_read(product) for product in products], cursors)


@router.get("/{product_id}")
def get_product(product_id: str, session: DbSession, principal: ReadPrincipal) -> ProductEnvelope:
    """Retrieve one product by its id (a Tollgate addition; the Stigg client only lists)."""
    product = service.get_product(
        session, environment_id=principal.environment_id, ref_id=product_id
    )
    return ProductEnvelope(data=service.to_read(product))


@router.patch("/{product_id}")
def update_product(
    product_id: str, body: ProductUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> ProductEnvelope:
    """Change a product's names, metadata, or the settings of its subscriptions."""
    product = service.update_product(
        session, environment_id=principal.environment_id, ref_id=product_id, data=body, now=now
    )
    return ProductEnvelope(data=service.to_read(product))


@router.post("/{product_id}/archive")
def archive_product(
    product_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> ProductEnvelope:
    """Archive a product whose plans and add-ons are all archived."""
    product = service.archive_product(
        session, environment_id=principal.environment_id, ref_id=product_id, now=now
    )
    return ProductEnvelope(data=service.to_read(product))


@router.post("/{product_id}/unarchive")
def unarchive_product(
    product_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> ProductEnvelope:
    """Restore an archived product."""
    product = service.unarchive_product(
        session, environment_id=principal.environment_id, ref_id=product_id, now=now
    )
    return ProductEnvelope(data=service.to_read(product))


@router.post("/{product_id}/duplicate", status_code=status.HTTP_201_CREATED)
def duplicate_product(
    product_id: str,
    body: ProductDuplicate,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> ProductEnvelope:
    """Copy a product with its plans and add-ons; their ids get `-<targetId>` appended."""
    product = duplicate(
        session, environment_id=principal.environment_id, ref_id=product_id, data=body, now=now
    )
    return ProductEnvelope(data=service.to_read(product))
