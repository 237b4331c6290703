"""`tollgate auth0 setup`: the active-users feature the login endpoint counts, and which
plans grant it."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.enums import MigrationType, PackageKind
from tollgate.catalog.features.schemas import FeatureCreate
from tollgate.catalog.features.service import create_feature
from tollgate.catalog.models import Package
from tollgate.catalog.packages import entitlements, versions
from tollgate.catalog.packages import service as packages
from tollgate.catalog.packages.schemas import EntitlementCreate
from tollgate.errors import InvalidValue
from tollgate.identity.meters import USER_FIELD, find_feature, login_meter_problem
from tollgate.subscriptions import service as subscriptions

# What --demo grants in the demo catalog's plans (None: unlimited); each child restates it.
DEMO_GRANTS: dict[str, int | None] = {
    "plan-free": 100,
    "plan-pro": 1_000,
    "plan-enterprise": None,
}


@dataclass(slots=True)
class SetUp:
    feature_created: bool
    granted: list[str] = field(default_factory=list)  # plans --demo granted it in
    drafted: list[str] = field(default_factory=list)  # demo plans left alone: a draft is open
    lacking: list[str] = field(default_factory=list)  # published plans that still lack it


def set_up(
    session: Session,
    *,
    environment_id: int,
    feature_ref: str,
    event_name: str,
    demo: bool,
    now: datetime,
) -> SetUp:
    """Create the feature unless it exists (an existing one must already be such a meter:
    it is never changed), grant it in the demo plans if asked, and list the plans that
    still lack it."""
    existing = find_feature(session, environment_id, feature_ref)
    if existing is not None:
        problem = login_meter_problem(existing, event_name)
        if problem is not None:
            raise InvalidValue(
                f"feature '{feature_ref}' exists and is left as it is: {problem}; "
                "choose another id with --feature",
                field="feature",
            )
    else:
        create_feature(
            session, environment_id=environment_id, data=_feature(feature_ref, event_name), now=now
        )
    done = SetUp(feature_created=existing is None)
    if demo:
        _grant_demo(session, environment_id, feature_ref, done, now)
    done.lacking = _plans_lacking(session, environment_id, feature_ref)
    return done


def _feature(feature_ref: str, event_name: str) -> FeatureCreate:
    meter: dict[str, Any] = {
        "aggregation": {"function": "UNIQUE", "field": USER_FIELD},
        "filters": [
            {"conditions": [{"field": "eventName", "operation": "EQUALS", "value": event_name}]}
        ],
    }
    return FeatureCreate.model_validate(
        {
            "id": feature_ref,
            "displayName": "Monthly active users",
            "description": f"Users who signed in (Auth0 '{event_name}' events), counted once",
            "featureType": "NUMBER",
            "meterType": "INCREMENTAL",
            "featureUnits": "active user",
            "featureUnitsPlural": "active users",
            "meter": meter,
        }
    )


def _grant_demo(
    session: Session, environment_id: int, feature_ref: str, done: SetUp, now: datetime
) -> None:
    """Grant the feature in each demo plan that has no entitlement to it of its own, and
    move the plan's subscribers to the new version. A plan with a draft open is left
    alone: publishing would publish someone's unfinished edits too."""
    for plan_ref, limit in DEMO_GRANTS.items():
        package = session.scalar(
            select(Package).where(
                Package.environment_id == environment_id,
                Package.ref_id == plan_ref,
                Package.kind == PackageKind.PLAN,
                Package.archived_at.is_(None),
            )
        )
        if package is None or feature_ref in _own_grants(session, package):
            continue
        if versions.draft_of(session, package_id=package.id) is not None:
            done.drafted.append(plan_ref)
            continue
        packages.create_draft(
            session, environment_id=environment_id, kind=PackageKind.PLAN, ref_id=plan_ref
        )
        grant: dict[str, Any] = {"id": feature_ref, "type": "FEATURE", "resetPeriod": "MONTH"}
        grant.update({"hasUnlimitedUsage": True} if limit is None else {"usageLimit": limit})
        entitlements.create_entitlements(
            session,
            environment_id=environment_id,
            kind=PackageKind.PLAN,
            ref_id=plan_ref,
            items=[EntitlementCreate.model_validate(grant)],
            now=now,
        )
        published = packages.publish_package(
            session,
            environment_id=environment_id,
            kind=PackageKind.PLAN,
            ref_id=plan_ref,
            migration_type=MigrationType.ALL_CUSTOMERS,
            now=now,
        )
        subscriptions.follow_publish(
            session, package=published, migration_type=MigrationType.ALL_CUSTOMERS, now=now
        )
        done.granted.append(plan_ref)


def _own_grants(session: Session, package: Package) -> set[str]:
    version = versions.latest_published(session, package_id=package.id)
    if version is None:
        return set()
    return {e.feature.ref_id for e in version.entitlements if e.feature is not None}


def _plans_lacking(session: Session, environment_id: int, feature_ref: str) -> list[str]:
    """Live published plans whose own entitlements and their parents' lack the feature."""
    plans = session.scalars(
        select(Package).where(
            Package.environment_id == environment_id,
            Package.kind == PackageKind.PLAN,
            Package.archived_at.is_(None),
        )
    ).all()
    by_id = {plan.id: plan for plan in plans}
    lacking = []
    for plan in sorted(plans, key=lambda p: p.ref_id):
        if versions.latest_published(session, package_id=plan.id) is None:
            continue
        chain: Package | None = plan
        has_it = False
        seen: set[int] = set()
        while chain is not None and chain.id not in seen and not has_it:
            seen.add(chain.id)
            has_it = feature_ref in _own_grants(session, chain)
            parent = _parent_of(session, chain)
            chain = by_id.get(parent) if parent is not None else None
        if not has_it:
            lacking.append(plan.ref_id)
    return lacking


def _parent_of(session: Session, plan: Package) -> int | None:
    version = versions.latest_published(session, package_id=plan.id)
    return version.parent_package_id if version is not None else None
