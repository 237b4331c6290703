"""`/api/v1/plans` and `/api/v1/addons`: the same lifecycle for both kinds of package."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PackageKind, PackageStatus
from tollgate.catalog.models import Package, PackageVersion
from tollgate.catalog.packages import charges, entitlements, service, versions
from tollgate.catalog.packages.charges import ChargeRead
from tollgate.catalog.packages.schemas import (
    AddonCreate,
    AddonRead,
    AddonUpdate,
    EntitlementRead,
    EntitlementsCreate,
    EntitlementUpdate,
    PlanCreate,
    PlanRead,
    PlanUpdate,
    PublishRequest,
    PublishResult,
    RemovedDraft,
)
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, Pagination, page_of
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest
from tollgate.subscriptions import service as subscriptions

plans_router = api_router(prefix="/api/v1/plans", tags=["plans"])
addons_router = api_router(prefix="/api/v1/addons", tags=["add-ons"])


class EntitlementList(Page[EntitlementRead]):
    pass


def _read(session: Session, version: PackageVersion) -> PlanRead | AddonRead:
    package = session.get(Package, version.package_id, options=[selectinload(Package.product)])
    assert package is not None
    return service.to_read(session, package)


def _present(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str
) -> PlanRead | AddonRead:
    package = versions.get_package(session, environment_id=environment_id, kind=kind, ref_id=ref_id)
    return service.to_read(session, package)


def _add_lifecycle_routes(router: APIRouter, kind: PackageKind, read_model: type) -> None:
    """Routes that are the same for plans and add-ons, bar names and the read shape."""
    name = "plan" if kind is PackageKind.PLAN else "addon"
    noun = versions.noun(kind)
    envelope = Envelope[read_model]  # type: ignore[valid-type]

    @router.get("", operation_id=f"list_{name}s", response_model=Page[read_model])  # type: ignore[valid-type]
    def list_packages(
        session: DbSession,
        principal: ReadPrincipal,
        page: Annotated[PageRequest, Depends(page_request)],
        created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
        product_id: str | None = Query(None, alias="productId"),
        status: str | None = enum_query(PackageStatus),
    ) -> object:
        packages, cursors = service.list_packages(
            session,
            environment_id=principal.environment_id,
            kind=kind,
            page=page,
            created_at=created_at,
            product_ref_id=product_id,
            statuses=enum_list(status, PackageStatus, field="status"),
        )
        return page_of([service.to_read(session, package) for package in packages], cursors)

    list_packages.__doc__ = f"List {noun}s, oldest first. Each shows its draft if it has one."

    @router.get("/{ref_id}", operation_id=f"get_{name}", response_model=envelope)
    def get_package(ref_id: str, session: DbSession, principal: ReadPrincipal) -> object:
        return envelope(
            data=_present(
                session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id
            )
        )

    get_package.__doc__ = f"Retrieve a {noun}: its draft if it has one, else its latest version."

    @router.post("/{ref_id}/draft", operation_id=f"create_{name}_draft", response_model=envelope)
    def create_draft(ref_id: str, session: DbSession, principal: WritePrincipal) -> object:
        version = service.create_draft(
            session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id
        )
        return envelope(data=_read(session, version))

    create_draft.__doc__ = f"Open a draft of the {noun}, copied from its latest version."

    @router.delete(
        "/{ref_id}/draft",
        operation_id=f"remove_{name}_draft",
        response_model=Envelope[RemovedDraft],
    )
    def remove_draft(
        ref_id: str, session: DbSession, principal: WritePrincipal, now: Now
    ) -> object:
        removed = service.remove_draft(
            session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id, now=now
        )
        return Envelope[RemovedDraft](data=removed)

    remove_draft.__doc__ = f"Discard the {noun}'s draft (a never-published {noun} goes with it)."

    @router.post(
        "/{ref_id}/publish", operation_id=f"publish_{name}", response_model=Envelope[PublishResult]
    )
    def publish(
        ref_id: str, body: PublishRequest, session: DbSession, principal: WritePrincipal, now: Now
    ) -> object:
        package = service.publish_package(
            session,
            environment_id=principal.environment_id,
            kind=kind,
            ref_id=ref_id,
            migration_type=body.migration_type,
            now=now,
        )
        # The subscriptions' part of the publish, in the same transaction.
        subscriptions.follow_publish(
            session, package=package, migration_type=body.migration_type, now=now
        )
        return Envelope[PublishResult](data=PublishResult(task_id=None))

    publish.__doc__ = f"Publish the {noun}'s draft as its newest immutable version."

    @router.post("/{ref_id}/archive", operation_id=f"archive_{name}", response_model=envelope)
    def archive(ref_id: str, session: DbSession, principal: WritePrincipal, now: Now) -> object:
        version = service.archive_package(
            session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id, now=now
        )
        return envelope(data=_read(session, version))

    archive.__doc__ = f"Archive the {noun}; refused while other packages or products use it."

    _add_entitlement_routes(router, kind, name, noun)

    charge_lists = ["charges"] + (["overage-charges"] if kind is PackageKind.PLAN else [])
    for segment in charge_lists:
        _add_charges_route(router, kind, name, noun, segment)


def _add_charges_route(
    router: APIRouter, kind: PackageKind, name: str, noun: str, segment: str
) -> None:
    @router.get(
        f"/{{ref_id}}/{segment}",
        operation_id=f"list_{name}_{segment.replace('-', '_')}",
        response_model=Page[ChargeRead],
    )
    def list_charges(
        ref_id: str,
        session: DbSession,
        principal: ReadPrincipal,
        page: Annotated[PageRequest, Depends(page_request)],
    ) -> object:
        package = versions.get_package(
            session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id
        )
        version = versions.newest(session, package_id=package.id)
        # A package has a handful of prices: one page holds them all.
        rows = charges.charge_rows(version, overage=segment == "overage-charges")
        return Page[ChargeRead](data=rows, pagination=Pagination())

    list_charges.__doc__ = (
        f"The {noun}'s {segment.replace('-', ' ')}: one per pricing model and billing period, "
        "of its draft if it has one, else of its latest version."
    )


def _add_entitlement_routes(router: APIRouter, kind: PackageKind, name: str, noun: str) -> None:
    @router.get(
        "/{ref_id}/entitlements",
        operation_id=f"list_{name}_entitlements",
        response_model=EntitlementList,
    )
    def list_entitlements(ref_id: str, session: DbSession, principal: ReadPrincipal) -> object:
        rows = entitlements.list_entitlements(
            session, environment_id=principal.environment_id, kind=kind, ref_id=ref_id
        )
        return EntitlementList(
            data=[entitlements.to_read(row) for row in rows], pagination=Pagination()
        )

    list_entitlements.__doc__ = f"The {noun}'s entitlements (of its draft if it has one)."

    @router.post(
        "/{ref_id}/entitlements",
        operation_id=f"create_{name}_entitlements",
        status_code=status.HTTP_201_CREATED,
        response_model=Envelope[list[EntitlementRead]],
    )
    def create_entitlements(
        ref_id: str,
        body: EntitlementsCreate,
        session: DbSession,
        principal: WritePrincipal,
        now: Now,
    ) -> object:
        rows = entitlements.create_entitlements(
            session,
            environment_id=principal.environment_id,
            kind=kind,
            ref_id=ref_id,
            items=body.entitlements,
            now=now,
        )
        return Envelope[list[EntitlementRead]](data=[entitlements.to_read(row) for row in rows])

    create_entitlements.__doc__ = f"Add entitlements to the {noun}'s draft."

    @router.patch(
        "/{ref_id}/entitlements/{feature_id}",
        operation_id=f"update_{name}_entitlement",
        response_model=Envelope[EntitlementRead],
    )
    def update_entitlement(
        ref_id: str,
        feature_id: str,
        body: EntitlementUpdate,
        session: DbSession,
        principal: WritePrincipal,
        now: Now,
    ) -> object:
        row = entitlements.update_entitlement(
            session,
            environment_id=principal.environment_id,
            kind=kind,
            ref_id=ref_id,
            feature_ref_id=feature_id,
            data=body,
            now=now,
        )
        return Envelope[EntitlementRead](data=entitlements.to_read(row))

    update_entitlement.__doc__ = (
        f"Change one entitlement (named by its feature id) on the {noun}'s draft."
    )

    @router.delete(
        "/{ref_id}/entitlements/{feature_id}",
        operation_id=f"delete_{name}_entitlement",
        response_model=Envelope[EntitlementRead],
    )
    def delete_entitlement(
        ref_id: str, feature_id: str, session: DbSession, principal: WritePrincipal, now: Now
    ) -> object:
        row = entitlements.delete_entitlement(
            session,
            environment_id=principal.environment_id,
            kind=kind,
            ref_id=ref_id,
            feature_ref_id=feature_id,
            now=now,
        )
        return Envelope[EntitlementRead](data=entitlements.to_read(row))

    delete_entitlement.__doc__ = f"Remove one entitlement from the {noun}'s draft."


@plans_router.post("", status_code=status.HTTP_201_CREATED)
def create_plan(
    body: PlanCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[PlanRead]:
    """Create a plan, as a draft unless `status` is PUBLISHED."""
    version = service.create_package(
        session,
        environment_id=principal.environment_id,
        kind=PackageKind.PLAN,
        data=body,
        now=now,
    )
    return Envelope[PlanRead](data=_read(session, version))


@plans_router.patch("/{ref_id}")
def update_plan(
    ref_id: str, body: PlanUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[PlanRead]:
    """Edit a plan. Names, description and metadata may change on a published version;
    parent, trial, add-ons and pricing need a draft."""
    version = service.update_package(
        session,
        environment_id=principal.environment_id,
        kind=PackageKind.PLAN,
        ref_id=ref_id,
        data=body,
        now=now,
    )
    return Envelope[PlanRead](data=_read(session, version))


@addons_router.post("", status_code=status.HTTP_201_CREATED)
def create_addon(
    body: AddonCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[AddonRead]:
    """Create an add-on, as a draft unless `status` is PUBLISHED."""
    version = service.create_package(
        session,
        environment_id=principal.environment_id,
        kind=PackageKind.ADDON,
        data=body,
        now=now,
    )
    return Envelope[AddonRead](data=_read(session, version))


@addons_router.patch("/{ref_id}")
def update_addon(
    ref_id: str, body: AddonUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[AddonRead]:
    """Edit an add-on. Names, description and metadata may change on a published version;
    max quantity, dependencies and pricing need a draft."""
    version = service.update_package(
        session,
        environment_id=principal.environment_id,
        kind=PackageKind.ADDON,
        ref_id=ref_id,
        data=body,
        now=now,
    )
    return Envelope[AddonRead](data=_read(session, version))


_add_lifecycle_routes(plans_router, PackageKind.PLAN, PlanRead)
_add_lifecycle_routes(addons_router, PackageKind.ADDON, AddonRead)
