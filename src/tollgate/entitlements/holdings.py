"""Reading what a customer holds out of the database, in the engine's terms."""

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import EntitlementBehavior, PackageStatus
from tollgate.catalog.models import Feature, PackageEntitlement, PackageVersion
from tollgate.customers.models import (
    Customer,
    CustomerResource,
    PromotionalEntitlement,
    PromotionStatus,
)
from tollgate.entitlements.engine import (
    CustomerHoldings,
    FeatureInfo,
    PackageGrants,
    Promotion,
    SubscriptionPhase,
    Terms,
)
from tollgate.kit.periods import Period
from tollgate.subscriptions.enums import LIVE_STATUSES, ScheduleStatus, SubscriptionStatus
from tollgate.subscriptions.enums import TrialEndBehavior as EndBehavior
from tollgate.subscriptions.models import Subscription


class PackageGrantsCache:
    """Published versions never change, so their grants are read once per process. A
    plan's parent is its parent's latest published version, which a publish changes: the
    snapshot store clears an environment's entries whenever its catalog changes."""

    def __init__(self) -> None:
        self._grants: dict[int, PackageGrants] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()

    def get(self, session: Session, version_id: int) -> PackageGrants:
        grants = self._grants.get(version_id)
        if grants is None:
            grants = self._load(session, version_id, depth=0)
            with self._lock:
                self._grants[version_id] = grants
        return grants

    def _load(self, session: Session, version_id: int, *, depth: int) -> PackageGrants:
        version = session.scalars(
            select(PackageVersion)
            .options(
                selectinload(PackageVersion.package),
                selectinload(PackageVersion.entitlements).selectinload(PackageEntitlement.feature),
            )
            .where(PackageVersion.id == version_id)
        ).one()
        parent = None
        if version.parent_package_id is not None and depth < 32:
            parent_version_id = session.scalar(
                select(PackageVersion.id)
                .where(
                    PackageVersion.package_id == version.parent_package_id,
                    PackageVersion.status == PackageStatus.PUBLISHED,
                )
                .order_by(PackageVersion.version_number.desc())
                .limit(1)
            )
            if parent_version_id is not None:
                parent = self._load(session, parent_version_id, depth=depth + 1)
        return PackageGrants(
            ref_id=version.package.ref_id,
            version_number=version.version_number,
            entitlements=tuple(_terms(e, version.published_at) for e in version.entitlements),
            parent=parent,
        )


def _terms(entitlement: PackageEntitlement, published_at: datetime | None) -> Terms:
    return Terms(
        feature_ref=entitlement.feature.ref_id,
        updated_at=published_at or entitlement.updated_at,
        is_granted=entitlement.is_granted,
        overrides=entitlement.behavior is EntitlementBehavior.OVERRIDE,
        usage_limit=entitlement.usage_limit,
        has_unlimited_usage=entitlement.has_unlimited_usage,
        has_soft_limit=entitlement.has_soft_limit,
        reset_period=Period(entitlement.reset_period) if entitlement.reset_period else None,
        reset_according_to=_according_to(entitlement.reset_period_configuration),
        enum_values=frozenset(entitlement.enum_values) if entitlement.enum_values else None,
    )


def _according_to(configuration: dict[str, Any] | None) -> str | None:
    return configuration.get("accordingTo") if configuration else None


def load_features(session: Session, environment_id: int) -> dict[str, FeatureInfo]:
    rows = session.execute(
        select(
            Feature.ref_id,
            Feature.display_name,
            Feature.feature_type,
            Feature.meter_type,
            Feature.status,
            Feature.units,
            Feature.units_plural,
            Feature.description,
        ).where(Feature.environment_id == environment_id)
    )
    return {
        row.ref_id: FeatureInfo(
            row.ref_id,
            row.display_name,
            str(row.feature_type),
            str(row.meter_type),
            str(row.status),
            units=row.units,
            units_plural=row.units_plural,
            description=row.description,
        )
        for row in rows
    }


def customer_version(
    session: Session, *, environment_id: int, customer_ref: str
) -> tuple[int, int, bool] | None:
    """(row id, entitlements version, archived) of a customer, read before its holdings so
    a snapshot is never labelled newer than what it was computed from."""
    row = session.execute(
        select(Customer.id, Customer.entitlements_version, Customer.archived_at).where(
            Customer.environment_id == environment_id, Customer.ref_id == customer_ref
        )
    ).one_or_none()
    if row is None:
        return None
    return row[0], row[1], row[2] is not None


def load_holdings(
    session: Session,
    grants: PackageGrantsCache,
    *,
    customer_id: int,
    customer_ref: str,
    is_archived: bool,
) -> CustomerHoldings:
    rows = session.execute(
        select(CustomerResource.id, CustomerResource.ref_id).where(
            CustomerResource.customer_id == customer_id
        )
    )
    resources = dict(rows.tuples().all())
    subscriptions = session.scalars(
        select(Subscription)
        .options(selectinload(Subscription.addons), selectinload(Subscription.schedules))
        .where(Subscription.customer_id == customer_id, Subscription.status.in_(LIVE_STATUSES))
        .order_by(Subscription.id)
    ).all()
    phases = [
        phase
        for subscription in subscriptions
        for phase in subscription_phases(
            session, grants, subscription, resources.get(subscription.resource_id or 0)
        )
    ]
    return CustomerHoldings(
        ref_id=customer_ref,
        is_archived=is_archived,
        resource_refs=frozenset(resources.values()),
        phases=tuple(phases),
        promotions=tuple(load_promotions(session, customer_id=customer_id)),
    )


def subscription_phases(
    session: Session,
    grants: PackageGrantsCache,
    subscription: Subscription,
    resource_ref: str | None,
) -> list[SubscriptionPhase]:
    """The subscription over time: as it is now, then as each scheduled update makes it."""
    end = _access_end(subscription)
    plan_version_id = subscription.plan_version_id
    addons = [(addon.addon_version_id, addon.quantity) for addon in subscription.addons]
    units = tuple(sorted((subscription.unit_quantities or {}).items()))
    segments: list[
        tuple[int, list[tuple[int, int]], tuple[tuple[str, int], ...], datetime, datetime | None]
    ] = []
    start = subscription.start_date
    pending = [s for s in subscription.schedules if s.status is ScheduleStatus.SCHEDULED]
    for schedule in sorted(pending, key=lambda s: s.scheduled_at):
        if end is not None and schedule.scheduled_at >= end:
            break
        segments.append((plan_version_id, addons, units, start, schedule.scheduled_at))
        target = schedule.target
        if target.plan_version_id is not None or target.unit_quantities:
            units = target.unit_quantities  # a new plan's quantities, or new quantities
        plan_version_id = target.plan_version_id or plan_version_id
        if target.addons is not None:
            addons = [(a.version_id, a.quantity) for a in target.addons]
        start = schedule.scheduled_at
    segments.append((plan_version_id, addons, units, start, end))
    return [
        SubscriptionPhase(
            subscription_ref=subscription.ref_id,
            plan=grants.get(session, plan_id),
            addons=tuple((grants.get(session, version_id), n) for version_id, n in addon_list),
            started_at=subscription.start_date,
            valid_from=valid_from,
            valid_until=valid_until,
            resource_ref=resource_ref,
            unit_quantities=unit_quantities,
        )
        for plan_id, addon_list, unit_quantities, valid_from, valid_until in segments
    ]


def _access_end(subscription: Subscription) -> datetime | None:
    """When access ends: the cancellation, or a trial's end when the trial does not convert."""
    end = subscription.end_date
    trial_end = subscription.trial_end_date
    if (
        subscription.status in (SubscriptionStatus.NOT_STARTED, SubscriptionStatus.IN_TRIAL)
        and subscription.trial_end_behavior is EndBehavior.CANCEL_SUBSCRIPTION
        and trial_end is not None
    ):
        return trial_end if end is None else min(end, trial_end)
    return end


def load_promotions(session: Session, *, customer_id: int) -> Iterable[Promotion]:
    rows = session.scalars(
        select(PromotionalEntitlement)
        .options(selectinload(PromotionalEntitlement.feature))
        .where(
            PromotionalEntitlement.customer_id == customer_id,
            PromotionalEntitlement.status == PromotionStatus.ACTIVE,
        )
    )
    for promotion in rows:
        yield Promotion(
            terms=Terms(
                feature_ref=promotion.feature.ref_id,
                updated_at=promotion.updated_at,
                usage_limit=promotion.usage_limit,
                has_unlimited_usage=promotion.has_unlimited_usage,
                has_soft_limit=promotion.has_soft_limit,
                reset_period=Period(promotion.reset_period) if promotion.reset_period else None,
                reset_according_to=_according_to(promotion.reset_period_configuration),
                enum_values=frozenset(promotion.enum_values) if promotion.enum_values else None,
            ),
            started_at=promotion.start_date,
            valid_until=promotion.end_date,
        )
