"""The entitlement engine: what a customer may use, and why. Pure: no I/O, no clock.

Input is what the customer holds (subscriptions with their plan version, its parent chain
and add-ons; promotional grants), each valid over a window of time; output is a snapshot of
effective entitlements at one moment, and checks decided against it.

How grants combine, per feature:
- a plan includes its parent plan's entitlements; where both name a feature, the child's
  entitlement replaces the parent's;
- an add-on entitlement adds its limit times the add-on's quantity (behavior `Increment`,
  the default), or replaces the plan's (`Override`; of several, the most generous);
- grants from independent sources (several live subscriptions, in different products or a
  customer-level one beside a resource's; a promotional grant beside them) do not add up:
  the most generous prevails, as Stigg's "generous" rule has it (unlimited beats any limit,
  a higher limit a lower one; enum values unite). A revoked grant (`isGranted: false`)
  prevails only where nothing grants the feature.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tollgate.kit.periods import Period, bounds, reset_anchor


class DenyReason(StrEnum):
    FEATURE_NOT_FOUND = "FeatureNotFound"
    CUSTOMER_NOT_FOUND = "CustomerNotFound"
    CUSTOMER_IS_ARCHIVED = "CustomerIsArchived"
    CUSTOMER_RESOURCE_NOT_FOUND = "CustomerResourceNotFound"
    NO_ACTIVE_SUBSCRIPTION = "NoActiveSubscription"
    NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION = "NoFeatureEntitlementInSubscription"
    REQUESTED_USAGE_EXCEEDING_LIMIT = "RequestedUsageExceedingLimit"
    REQUESTED_VALUES_MISMATCH = "RequestedValuesMismatch"
    FEATURE_TYPE_MISMATCH = "FeatureTypeMismatch"
    REVOKED = "Revoked"


class GrantSource(StrEnum):
    PLAN = "PLAN"
    ADDON = "ADDON"
    PROMOTION = "PROMOTION"


@dataclass(frozen=True, slots=True)
class FeatureInfo:
    ref_id: str
    display_name: str
    feature_type: str  # BOOLEAN, NUMBER, ENUM
    meter_type: str  # None, FLUCTUATING, INCREMENTAL
    status: str
    # For people, not for decisions: what the SDKs' widgets print.
    units: str | None = None
    units_plural: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Terms:
    """What one entitlement row of a plan, add-on or promotion says about a feature."""

    feature_ref: str
    updated_at: datetime
    is_granted: bool = True
    overrides: bool = False  # behavior Override (add-ons); plans always override parents
    usage_limit: int | None = None
    has_unlimited_usage: bool = False
    has_soft_limit: bool = False
    reset_period: Period | None = None
    reset_according_to: str | None = None
    enum_values: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class PackageGrants:
    """A published plan or add-on version and the entitlements it holds."""

    ref_id: str
    version_number: int
    entitlements: tuple[Terms, ...]
    parent: "PackageGrants | None" = None


@dataclass(frozen=True, slots=True)
class SubscriptionPhase:
    """A subscription as it is over one window of time. A subscription with a scheduled
    downgrade is two phases: the current plan until the change, the new one after."""

    subscription_ref: str
    plan: PackageGrants
    addons: tuple[tuple[PackageGrants, int], ...]
    started_at: datetime  # usage periods count from here
    valid_from: datetime
    valid_until: datetime | None
    resource_ref: str | None = None
    # Units bought of each per-unit price (seats): the plan's limit for that feature.
    unit_quantities: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Promotion:
    terms: Terms
    started_at: datetime
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerHoldings:
    """Everything the engine needs about one customer."""

    ref_id: str
    is_archived: bool
    resource_refs: frozenset[str]
    phases: tuple[SubscriptionPhase, ...]
    promotions: tuple[Promotion, ...]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One grant that shaped an effective entitlement, for `?explain=true`."""

    source: GrantSource
    ref_id: str
    version_number: int | None
    subscription_ref: str | None
    quantity: int
    usage_limit: int | None
    has_unlimited_usage: bool
    is_granted: bool
    effect: str  # grants, inherited, adds, overrides, replaced, revoked, outweighed

    def as_wire(self) -> dict[str, object]:
        return {
            "source": self.source.value,
            "id": self.ref_id,
            "versionNumber": self.version_number,
            "subscriptionId": self.subscription_ref,
            "quantity": self.quantity,
            "usageLimit": self.usage_limit,
            "hasUnlimitedUsage": self.has_unlimited_usage,
            "isGranted": self.is_granted,
            "effect": self.effect,
        }


@dataclass(frozen=True, slots=True)
class Effective:
    """A feature's effective entitlement at the snapshot's moment."""

    feature_ref: str
    is_granted: bool
    usage_limit: int | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    enum_values: frozenset[str] | None
    reset_period: Period | None
    usage_period_anchor: datetime | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    valid_until: datetime | None
    updated_at: datetime
    contributions: tuple[Contribution, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A customer's (or one resource's) effective entitlements at `computed_at`, true until
    `expires_at` unless something they depend on changes first."""

    customer_ref: str
    resource_ref: str | None
    version: int
    computed_at: datetime
    expires_at: datetime | None
    customer_found: bool
    is_archived: bool = False
    resource_found: bool = True
    has_subscription: bool = False
    entitlements: Mapping[str, Effective] = field(default_factory=dict)
    # Filled by the wire layer with each entitlement's rendered terms, so a snapshot that
    # answers many checks formats its dates once. The engine never reads it.
    wire_memo: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Decision:
    is_granted: bool
    reason: DenyReason | None
    entitlement: Effective | None


def not_found_snapshot(customer_ref: str, resource_ref: str | None, now: datetime) -> Snapshot:
    return Snapshot(customer_ref, resource_ref, 0, now, None, customer_found=False)


def compute(
    holdings: CustomerHoldings, *, resource_ref: str | None, version: int, now: datetime
) -> Snapshot:
    """The effective entitlements of a customer (or of one of its resources) at `now`."""
    if resource_ref is not None and resource_ref not in holdings.resource_refs:
        return Snapshot(
            customer_ref=holdings.ref_id,
            resource_ref=resource_ref,
            version=version,
            computed_at=now,
            expires_at=None,
            customer_found=True,
            is_archived=holdings.is_archived,
            resource_found=False,
        )
    boundaries: list[datetime] = []
    live = []
    for phase in holdings.phases:
        if phase.resource_ref not in (None, resource_ref):
            continue
        boundaries.extend(t for t in (phase.valid_from, phase.valid_until) if t and t > now)
        if phase.valid_from <= now and (phase.valid_until is None or now < phase.valid_until):
            live.append(phase)
    sources: dict[str, list[Effective]] = {}
    for phase in live:
        for feature_ref, effective in _phase_entitlements(phase, now).items():
            sources.setdefault(feature_ref, []).append(effective)
    for promotion in holdings.promotions:
        if promotion.valid_until is not None and promotion.valid_until <= now:
            continue
        if promotion.valid_until is not None:
            boundaries.append(promotion.valid_until)
        sources.setdefault(promotion.terms.feature_ref, []).append(_promoted(promotion, now))
    merged = {feature_ref: _most_generous(found) for feature_ref, found in sources.items()}
    boundaries.extend(e.usage_period_end for e in merged.values() if e.usage_period_end)
    return Snapshot(
        customer_ref=holdings.ref_id,
        resource_ref=resource_ref,
        version=version,
        computed_at=now,
        expires_at=min(boundaries, default=None),
        customer_found=True,
        is_archived=holdings.is_archived,
        resource_found=True,
        has_subscription=bool(live),
        entitlements=merged,
    )


def _phase_entitlements(phase: SubscriptionPhase, now: datetime) -> dict[str, Effective]:
    result: dict[str, Effective] = {}
    bought = dict(phase.unit_quantities)
    for level in _chain_root_first(phase.plan):
        effect = "grants" if level is phase.plan else "inherited"
        for terms in level.entitlements:
            if terms.feature_ref in bought and terms.is_granted:
                # A per-unit price sells the limit: as many as were bought.
                terms = replace(
                    terms, usage_limit=bought[terms.feature_ref], has_unlimited_usage=False
                )
            # A child's entitlement replaces its parent's, whose contribution goes with it.
            contribution = _contribution(terms, GrantSource.PLAN, level, phase, 1, effect)
            result[terms.feature_ref] = _effective(
                terms, phase.started_at, phase.valid_until, now, (contribution,)
            )
    overriding: dict[str, list[Effective]] = {}
    adding: dict[str, list[Effective]] = {}
    for addon, quantity in phase.addons:
        for terms in addon.entitlements:
            effect = "overrides" if terms.overrides else "adds"
            contribution = _contribution(terms, GrantSource.ADDON, addon, phase, quantity, effect)
            own = _effective(
                _scaled(terms, quantity), phase.started_at, phase.valid_until, now, (contribution,)
            )
            group = overriding if terms.overrides else adding
            group.setdefault(terms.feature_ref, []).append(own)
    for feature_ref in overriding.keys() | adding.keys():
        result[feature_ref] = _with_addons(
            result.get(feature_ref), overriding.get(feature_ref, []), adding.get(feature_ref, [])
        )
    return result


def _with_addons(
    plan: Effective | None, overriding: list[Effective], adding: list[Effective]
) -> Effective:
    """Overriding add-ons replace the plan's terms (the most generous of them wins); the
    others then add to what stands. Neither depends on the order of the add-ons, and a
    revoked add-on entitlement (`isGranted: false`) adds nothing."""
    revoked = [a for a in (*overriding, *adding) if not a.is_granted]
    overriding = [a for a in overriding if a.is_granted]
    adding = sorted((a for a in adding if a.is_granted), key=_addon_order)
    base = plan if plan is not None and plan.is_granted else None
    if overriding:
        base = _most_generous(overriding)
    for addon in adding:
        base = addon if base is None else _added(base, addon)
    set_aside: list[Effective] = list(revoked)
    if plan is not None and (overriding or not plan.is_granted):
        set_aside.insert(0, plan)
    if base is None:  # nothing grants the feature: a revocation is the answer
        base = set_aside.pop(0)
    earlier = tuple(
        replace(c, effect="replaced" if item.is_granted else "revoked")
        for item in set_aside
        for c in item.contributions
    )
    return replace(base, contributions=(*earlier, *base.contributions)) if earlier else base


_PERIOD_RANK = {period: rank for rank, period in enumerate(Period)}


def _addon_order(addon: Effective) -> tuple[int, str]:
    """A fixed order for adding add-ons, so the usage period kept never depends on the
    order they were listed in."""
    rank = _PERIOD_RANK[addon.reset_period] if addon.reset_period else len(_PERIOD_RANK)
    return rank, addon.contributions[0].ref_id if addon.contributions else ""


def _chain_root_first(plan: PackageGrants) -> list[PackageGrants]:
    chain: list[PackageGrants] = []
    level: PackageGrants | None = plan
    while level is not None and len(chain) < 32:  # parents never cycle; the cap is a guard
        chain.append(level)
        level = level.parent
    return list(reversed(chain))


def _contribution(
    terms: Terms,
    source: GrantSource,
    package: PackageGrants,
    phase: SubscriptionPhase,
    quantity: int,
    effect: str,
) -> Contribution:
    return Contribution(
        source=source,
        ref_id=package.ref_id,
        version_number=package.version_number,
        subscription_ref=phase.subscription_ref,
        quantity=quantity,
        usage_limit=terms.usage_limit,
        has_unlimited_usage=terms.has_unlimited_usage,
        is_granted=terms.is_granted,
        effect=effect,
    )


def _scaled(terms: Terms, quantity: int) -> Terms:
    if terms.usage_limit is None or quantity == 1:
        return terms
    return replace(terms, usage_limit=terms.usage_limit * quantity)


def _effective(
    terms: Terms,
    started_at: datetime,
    valid_until: datetime | None,
    now: datetime,
    contributions: tuple[Contribution, ...],
) -> Effective:
    anchor = start = end = None
    if terms.reset_period is not None:
        anchor = reset_anchor(started_at, terms.reset_period, terms.reset_according_to)
        start, end = bounds(anchor, terms.reset_period, now)
    return Effective(
        feature_ref=terms.feature_ref,
        is_granted=terms.is_granted,
        usage_limit=None if terms.has_unlimited_usage else terms.usage_limit,
        has_unlimited_usage=terms.has_unlimited_usage,
        has_soft_limit=terms.has_soft_limit,
        enum_values=terms.enum_values,
        reset_period=terms.reset_period,
        usage_period_anchor=anchor,
        usage_period_start=start,
        usage_period_end=end,
        valid_until=valid_until,
        updated_at=terms.updated_at,
        contributions=contributions,
    )


def _added(a: Effective, b: Effective) -> Effective:
    """An add-on on top of what a plan grants: limits add up, unlimited wins."""
    unlimited = a.has_unlimited_usage or b.has_unlimited_usage
    limit = None
    if not unlimited and (a.usage_limit is not None or b.usage_limit is not None):
        limit = (a.usage_limit or 0) + (b.usage_limit or 0)
    return replace(
        _first_with_period(a, b),
        is_granted=True,
        usage_limit=limit,
        has_unlimited_usage=unlimited,
        has_soft_limit=a.has_soft_limit and b.has_soft_limit,
        enum_values=_union(a.enum_values, b.enum_values),
        valid_until=_later(a.valid_until, b.valid_until),
        updated_at=max(a.updated_at, b.updated_at),
        contributions=(*a.contributions, *b.contributions),
    )


def _generosity(effective: Effective) -> tuple[bool, bool, int, bool, datetime]:
    # A soft limit allows more than a hard one of the same size. Among equals, the grant
    # that lasts longer, so validUntil says when access changes.
    return (
        effective.is_granted,
        effective.has_unlimited_usage,
        effective.usage_limit or 0,
        effective.has_soft_limit,
        effective.valid_until or datetime.max.replace(tzinfo=UTC),
    )


def _most_generous(candidates: list[Effective]) -> Effective:
    """Grants of one feature from independent sources (several subscriptions, or a
    subscription and a promotion): the most generous prevails, as in Stigg; enum values
    unite. Ties go to the earlier candidate."""
    winner = candidates[0]
    for candidate in candidates[1:]:
        if _generosity(candidate) > _generosity(winner):
            winner = candidate
    if len(candidates) == 1:
        return winner
    granted = [c for c in candidates if c.is_granted]
    enum_values: frozenset[str] | None = None
    for candidate in granted:
        enum_values = _union(enum_values, candidate.enum_values)
    contributions: list[Contribution] = []
    for candidate in candidates:
        kept = candidate is winner or (enum_values is not None and candidate.is_granted)
        contributions.extend(
            c if kept else replace(c, effect="outweighed") for c in candidate.contributions
        )
    return replace(
        winner,
        enum_values=enum_values if granted else winner.enum_values,
        updated_at=max(c.updated_at for c in candidates),
        contributions=tuple(contributions),
    )


def _first_with_period(a: Effective, b: Effective) -> Effective:
    return a if a.reset_period is not None or b.reset_period is None else b


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    return a if b is None else a | b


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return None
    return max(a, b)


def _promoted(promotion: Promotion, now: datetime) -> Effective:
    terms = promotion.terms
    contribution = Contribution(
        source=GrantSource.PROMOTION,
        ref_id=terms.feature_ref,
        version_number=None,
        subscription_ref=None,
        quantity=1,
        usage_limit=terms.usage_limit,
        has_unlimited_usage=terms.has_unlimited_usage,
        is_granted=terms.is_granted,
        effect="grants",
    )
    return _effective(terms, promotion.started_at, promotion.valid_until, now, (contribution,))


def check(
    snapshot: Snapshot,
    feature: FeatureInfo | None,
    *,
    requested_usage: int | None = None,
    requested_values: Iterable[str] | None = None,
    current_usage: float = 0,
) -> Decision:
    """Decide one check. The reason is the first of Stigg's reasons that applies, in the
    order Stigg's clients decide them: the customer, its subscriptions, the feature, the
    grant, the requested values or usage."""
    reason = customer_reason(snapshot)
    if reason is None and feature is None:
        reason = DenyReason.FEATURE_NOT_FOUND
    if reason is not None or feature is None:
        return Decision(False, reason, None)
    if (requested_values is not None and feature.feature_type != "ENUM") or (
        requested_usage is not None and feature.feature_type != "NUMBER"
    ):
        return Decision(False, DenyReason.FEATURE_TYPE_MISMATCH, None)
    entitlement = snapshot.entitlements.get(feature.ref_id)
    if entitlement is None:
        if snapshot.has_subscription:
            return Decision(False, DenyReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION, None)
        # Promotional grants only: what they do not grant, a subscription would.
        return Decision(False, DenyReason.NO_ACTIVE_SUBSCRIPTION, None)
    if not entitlement.is_granted:
        return Decision(False, DenyReason.REVOKED, entitlement)
    if requested_values is not None:
        allowed = entitlement.enum_values or frozenset()
        if not allowed.issuperset(requested_values):
            return Decision(False, DenyReason.REQUESTED_VALUES_MISMATCH, entitlement)
    # A NUMBER feature without a meter is a configuration value (say, days of retention):
    # nothing consumes it, so it is granted with its value as the limit.
    metered = feature.feature_type == "NUMBER" and feature.meter_type != "None"
    if metered and not _within_limit(
        entitlement, current_usage, 1 if requested_usage is None else requested_usage
    ):
        return Decision(False, DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT, entitlement)
    return Decision(True, None, entitlement)


def customer_reason(snapshot: Snapshot) -> DenyReason | None:
    """Why nothing at all is granted to this customer (or resource), if that is so."""
    if not snapshot.customer_found:
        return DenyReason.CUSTOMER_NOT_FOUND
    if snapshot.is_archived:
        return DenyReason.CUSTOMER_IS_ARCHIVED
    if not snapshot.resource_found:
        return DenyReason.CUSTOMER_RESOURCE_NOT_FOUND
    if not snapshot.has_subscription and not snapshot.entitlements:
        return DenyReason.NO_ACTIVE_SUBSCRIPTION
    return None


def _within_limit(entitlement: Effective, current_usage: float, requested: int) -> bool:
    if entitlement.has_unlimited_usage or entitlement.has_soft_limit:
        return True
    return current_usage + requested <= (entitlement.usage_limit or 0)
