from typing import Annotated

from fastapi import Depends, Query, status

from tollgate.catalog.enums import FeatureStatus, FeatureType, MeterType
from tollgate.catalog.features import service
from tollgate.catalog.features.schemas import FeatureCreate, FeatureRead, FeatureUpdate
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest

router = api_router(prefix="/api/v1/features", tags=["features"])
FeatureEnvelope = Envelope[FeatureRead]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_feature(
    body: FeatureCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> FeatureEnvelope:
    """Create a feature: BOOLEAN, NUMBER (optionally metered) or ENUM."""
    feature = service.create_feature(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    return FeatureEnvelope(data=service.to_read(feature))


@router.get("")
def list_features(
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    id: str | None = Query(None, description="Only the feature with this id"),
    feature_type: str | None = enum_query(FeatureType, alias="featureType"),
    meter_type: str | None = enum_query(MeterType, alias="meterType"),
    status: str | None = enum_query(FeatureStatus),
) -> Page[FeatureRead]:
    """List the environment's features, oldest first."""
    features, cursors = service.list_features(
        session,
        environment_id=principal.environment_id,
        page=page,
        created_at=created_at,
        ref_id=id,
        feature_types=enum_list(feature_type, FeatureType, field="featureType"),
        meter_types=enum_list(meter_type, MeterType, field="meterType"),
        statuses=enum_list(status, FeatureStatus, field="status"),
    )
    return page_of([service.to_read(feature) for feature in features], cursors)


@router.get("/{feature_id}")
def get_feature(feature_id: str, session: DbSession, principal: ReadPrincipal) -> FeatureEnvelope:
    """Retrieve one feature by its id."""
    feature = service.get_feature(
        session, environment_id=principal.environment_id, ref_id=feature_id
    )
    return FeatureEnvelope(data=service.to_read(feature))


@router.patch("/{feature_id}")
def update_feature(
    feature_id: str, body: FeatureUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> FeatureEnvelope:
    """Change a feature's names, units, metadata, enum values, meter or unit transformation.

    Its type and meter type never change: create a new feature instead."""
    feature = service.update_feature(
        session, environment_id=principal.environment_id, ref_id=feature_id, data=body, now=now
    )
    return FeatureEnvelope(data=service.to_read(feature))


@router.post("/{feature_id}/archive")
def archive_feature(
    feature_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> FeatureEnvelope:
    """Archive (suspend) a feature that no plan or add-on grants any more."""
    feature = service.archive_feature(
        session, environment_id=principal.environment_id, ref_id=feature_id, now=now
    )
    return FeatureEnvelope(data=service.to_read(feature))


@router.post("/{feature_id}/unarchive")
def unarchive_feature(
    feature_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> FeatureEnvelope:
    """Restore an archived feature so entitlements may use it again."""
    feature = service.unarchive_feature(
        session, environment_id=principal.environment_id, ref_id=feature_id, now=now
    )
    return FeatureEnvelope(data=service.to_read(feature))
