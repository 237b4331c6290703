"""Entitlement answers shared by the entitlement routes and other domains' replies."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.entitlements import engine, holdings, usage_store
from tollgate.entitlements.engine import (
    CustomerHoldings,
    FeatureInfo,
    Snapshot,
    SubscriptionPhase,
)
from tollgate.entitlements.periods import current_period_start
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import CustomerUsage
from tollgate.entitlements.wire import decision_wire


def is_metered(feature: FeatureInfo) -> bool:
    return feature.feature_type == "NUMBER" and feature.meter_type != "None"


def current_usage(snapshot: Snapshot, feature: FeatureInfo, usage: CustomerUsage) -> float:
    """Usage counted so far in the period the snapshot's entitlement is in."""
    if not is_metered(feature):
        return 0
    entitlement = snapshot.entitlements.get(feature.ref_id)
    period_start = current_period_start(feature.meter_type, entitlement)
    return usage.of(feature.ref_id, snapshot.resource_ref, period_start)


def describe_entitlements(
    snapshot: Snapshot,
    features: Mapping[str, FeatureInfo],
    usage: CustomerUsage,
    *,
    explain: bool = False,
) -> list[dict[str, Any]]:
    """Every feature the snapshot holds, each decided as a check without requested usage."""
    answers = []
    for feature_ref in sorted(snapshot.entitlements):
        feature = features.get(feature_ref)
        if feature is None:
            continue
        usage_now = current_usage(snapshot, feature, usage)
        decision = engine.check(snapshot, feature, current_usage=usage_now)
        wire = decision_wire(snapshot, decision, feature, current_usage=usage_now, explain=explain)
        answers.append(wire)
    return answers


def read_entitlements(
    session: Session,
    store: SnapshotStore,
    *,
    environment_id: int,
    customer_ref: str,
    resource_ref: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """What the customer is entitled to as `session` sees it, before it commits."""
    snapshot = store.compute(session, environment_id, customer_ref, resource_ref, now=now)
    usage = usage_store.load(session, environment_id, customer_ref, now)
    return describe_entitlements(snapshot, holdings.load_features(session, environment_id), usage)


def preview_entitlements(
    session: Session,
    store: SnapshotStore,
    *,
    customer: Customer,
    plan_version_id: int,
    addons: list[tuple[int, int]],
    start: datetime,
    resource_ref: str | None,
    now: datetime,
    unit_quantities: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """What the customer would be entitled to holding this plan, these add-ons and units of
    its per-unit prices (and its promotional grants), from `start`."""
    phase = SubscriptionPhase(
        subscription_ref="preview",
        plan=store.grants.get(session, plan_version_id),
        addons=tuple(
            (store.grants.get(session, version), quantity) for version, quantity in addons
        ),
        started_at=start,
        valid_from=start,
        valid_until=None,
        resource_ref=resource_ref,
        unit_quantities=tuple(sorted((unit_quantities or {}).items())),
    )
    held = CustomerHoldings(
        ref_id=customer.ref_id,
        is_archived=False,
        resource_refs=frozenset({resource_ref} if resource_ref else ()),
        phases=(phase,),
        promotions=tuple(holdings.load_promotions(session, customer_id=customer.id)),
    )
    snapshot = engine.compute(held, resource_ref=resource_ref, version=0, now=max(now, start))
    usage = usage_store.load(session, customer.environment_id, customer.ref_id, now)
    features = holdings.load_features(session, customer.environment_id)
    return describe_entitlements(snapshot, features, usage)
