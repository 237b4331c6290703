"""The rules of products: settings that name real published plans, archiving when unused."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.announcements import Change, announce
from tollgate.catalog.enums import PackageKind, ProductStatus
from tollgate.catalog.errors import StillInUse
from tollgate.catalog.models import Package, Product
from tollgate.catalog.packages import versions
from tollgate.catalog.products.schemas import (
    ProductCreate,
    ProductRead,
    ProductSettings,
    ProductUpdate,
)
from tollgate.db.errors import flush_unique
from tollgate.db.lookup import get_by_ref
from tollgate.errors import InvalidValue
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate


def get_product(
    session: Session, *, environment_id: int, ref_id: str, lock: bool = False
) -> Product:
    """Find a product; `lock` holds its row so archiving it and adding to it take turns."""
    return get_by_ref(
        session, Product, environment_id=environment_id, ref_id=ref_id, noun="product", lock=lock
    )


def list_products(
    session: Session,
    *,
    environment_id: int,
    page: PageRequest,
    created_at: CreatedAtRange,
    ref_id: str | None = None,
    statuses: list[ProductStatus] | None = None,
) -> tuple[Sequence[Product], Cursors]:
    query = select(Product).where(
        Product.environment_id == environment_id,
        *range_conditions(Product.created_at, created_at),
    )
    if ref_id is not None:
        query = query.where(Product.ref_id == ref_id)
    if statuses and len(set(statuses)) == 1:
        archived = statuses[0] is ProductStatus.ARCHIVED
        query = query.where(
            Product.archived_at.is_not(None) if archived else Product.archived_at.is_(None)
        )
    return paginate(session, query, Product.id, page)


def create_product(
    session: Session, *, environment_id: int, data: ProductCreate, now: datetime
) -> Product:
    product = Product(
        environment_id=environment_id,
        ref_id=data.id,
        display_name=data.display_name,
        description=data.description,
        metadata_=data.metadata or {},
        is_multiple_subscriptions=data.multiple_subscriptions,
        settings=ProductSettings().model_dump(by_alias=True),
    )
    session.add(product)
    flush_unique(session, kind="product", ref_id=data.id)
    announce_product(session, product, Change.CREATED, now)
    return product


def update_product(
    session: Session, *, environment_id: int, ref_id: str, data: ProductUpdate, now: datetime
) -> Product:
    product = get_product(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    given = data.model_fields_set
    if "display_name" in given:
        if data.display_name is None:
            raise InvalidValue("'displayName' cannot be null", field="displayName")
        product.display_name = data.display_name
    if "description" in given:
        product.description = data.description
    if "metadata" in given:
        product.metadata_ = data.metadata or {}
    if data.multiple_subscriptions is not None:
        product.is_multiple_subscriptions = data.multiple_subscriptions
    if data.product_settings is not None:
        check_settings(session, product=product, settings=data.product_settings)
        product.settings = data.product_settings.model_dump(by_alias=True)
    if "usage_reset_cutoff_rule" in given:
        rule = data.usage_reset_cutoff_rule
        product.usage_reset_cutoff_rule = rule.model_dump() if rule else None
    # Set here, not left to the column's onupdate: that fires only at flush, after the
    # response has been built, so the response would show the old time.
    product.updated_at = now
    announce_product(session, product, Change.UPDATED, now)
    return product


def check_settings(session: Session, *, product: Product, settings: ProductSettings) -> None:
    """Settings may only name published, unarchived plans of this very product."""
    if settings.subscription_end_setup == "DOWNGRADE_TO_FREE" and not settings.downgrade_plan_id:
        raise InvalidValue(
            "subscriptionEndSetup DOWNGRADE_TO_FREE needs a downgradePlanId",
            field="productSettings.downgradePlanId",
        )
    for field, plan_id in (
        ("downgradePlanId", settings.downgrade_plan_id),
        ("subscriptionStartPlanId", settings.subscription_start_plan_id),
    ):
        if plan_id is not None:
            _check_plan_of_product(session, product=product, plan_id=plan_id, field=field)


def _check_plan_of_product(session: Session, *, product: Product, plan_id: str, field: str) -> None:
    where = f"productSettings.{field}"
    # Locked so the plan cannot be archived while settings come to depend on it.
    plan = session.scalar(
        select(Package)
        .where(
            Package.environment_id == product.environment_id,
            Package.ref_id == plan_id,
            Package.kind == PackageKind.PLAN,
        )
        .with_for_update()
    )
    if plan is None:
        raise InvalidValue(f"{field} names plan '{plan_id}', which does not exist", field=where)
    if plan.product_id != product.id:
        raise InvalidValue(
            f"{field} names plan '{plan_id}' of another product; it must belong to "
            f"'{product.ref_id}'",
            field=where,
        )
    if plan.archived_at is not None:
        raise InvalidValue(f"{field} names archived plan '{plan_id}'", field=where)
    if versions.latest_published(session, package_id=plan.id) is None:
        raise InvalidValue(f"{field} names plan '{plan_id}', which is not published", field=where)


def archive_product(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Product:
    product = get_product(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    live = list(
        session.scalars(
            select(Package.ref_id)
            .where(Package.product_id == product.id, Package.archived_at.is_(None))
            .order_by(Package.id)
        )
    )
    if live:
        raise StillInUse(
            f"product '{ref_id}' still has plans or add-ons that are not archived: "
            f"{', '.join(live[:10])}; archive them first"
        )
    if product.archived_at is None:
        product.archived_at = product.updated_at = now
        announce_product(session, product, Change.DELETED, now)
    return product


def unarchive_product(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Product:
    product = get_product(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if product.archived_at is not None:
        product.archived_at = None
        product.updated_at = now
        announce_product(session, product, Change.UPDATED, now)
    return product


def announce_product(session: Session, product: Product, change: Change, now: datetime) -> None:
    announce(
        session,
        environment_id=product.environment_id,
        kind="product",
        change=change,
        read=lambda: to_read(product),
        now=now,
    )


def to_read(product: Product) -> ProductRead:
    return ProductRead(
        id=product.ref_id,
        display_name=product.display_name,
        description=product.description,
        metadata=product.metadata_,
        multiple_subscriptions=product.is_multiple_subscriptions,
        status=ProductStatus.ARCHIVED if product.archived_at else ProductStatus.PUBLISHED,
        product_settings=ProductSettings.model_validate(product.settings or {}),
        created_at=product.created_at,
        updated_at=product.updated_at,
    )
