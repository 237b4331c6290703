"""Entitlement answers shared by the entitlement routes and other domains' replies."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.entitlements import engine, holdings
from tollgate.entitlements.engine import (
    CustomerHoldings,
    FeatureInfo,
    Snapshot,
    SubscriptionPhase,
)
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.wire import decision_wire


def current_usage(_snapshot: Snapshot, _feature: FeatureInfo) -> float:
    """Usage counted so far in the period. Zero until usage metering exists."""
    return 0


def entitlement_list(
    snapshot: Snapshot, features: dict[str, FeatureInfo], *, explain: bool = False
) -> list[dict[str, Any]]:
    """Every feature the snapshot holds, each decided as a check without requested usage."""
    answers = []
    for feature_ref in sorted(snapshot.entitlements):
        feature = features.get(feature_ref)
        if feature is None:
            continue
        usage = current_usage(snapshot, feature)
        decision = engine.check(snapshot, feature, current_usage=usage)
        answers.append(decision_wire(decision, feature, current_usage=usage, explain=explain))
    return answers


def entitlements_in(
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
    return entitlement_list(snapshot, holdings.load_features(session, environment_id))


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
) -> list[dict[str, Any]]:
    """What the customer would be entitled to holding this plan and these add-ons (and its
    promotional grants), from `start`."""
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
    )
    held = CustomerHoldings(
        ref_id=customer.ref_id,
        is_archived=False,
        resource_refs=frozenset({resource_ref} if resource_ref else ()),
        phases=(phase,),
        promotions=tuple(holdings.load_promotions(session, customer_id=customer.id)),
    )
    snapshot = engine.compute(held, resource_ref=resource_ref, version=0, now=max(now, start))
    return entitlement_list(snapshot, holdings.load_features(session, customer.environment_id))
