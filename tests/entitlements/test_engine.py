"""The entitlement engine, without a database: holdings in, snapshots and decisions out."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tollgate.entitlements.engine import (
    Contribution,
    CustomerHoldings,
    Decision,
    DenyReason,
    Effective,
    FeatureInfo,
    GrantSource,
    PackageGrants,
    Promotion,
    Snapshot,
    SubscriptionPhase,
    Terms,
    check,
    compute,
    customer_reason,
    not_found_snapshot,
)
from tollgate.kit.periods import Period

SEATS = "feature-seats"  # NUMBER
SSO = "feature-sso"  # BOOLEAN
REGIONS = "feature-regions"  # ENUM

UPDATED = datetime(2024, 1, 1, tzinfo=UTC)
START = datetime(2024, 1, 31, 9, 30, tzinfo=UTC)  # a Wednesday, and a month end
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)  # a Sunday
MICROSECOND = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Factories ---------------------------------------------------------------------------------


def grant(
    *,
    feature: str = SEATS,
    limit: int | None = None,
    unlimited: bool = False,
    soft: bool = False,
    is_granted: bool = True,
    overrides: bool = False,
    reset: Period | None = None,
    according_to: str | None = None,
    values: Iterable[str] | None = None,
    updated_at: datetime = UPDATED,
) -> Terms:
    return Terms(
        feature_ref=feature,
        updated_at=updated_at,
        is_granted=is_granted,
        overrides=overrides,
        usage_limit=limit,
        has_unlimited_usage=unlimited,
        has_soft_limit=soft,
        reset_period=reset,
        reset_according_to=according_to,
        enum_values=None if values is None else frozenset(values),
    )


def package(
    *,
    ref: str = "plan-basic",
    version: int = 1,
    grants: Iterable[Terms] = (),
    parent: PackageGrants | None = None,
) -> PackageGrants:
    return PackageGrants(ref, version, tuple(grants), parent)


def phase(
    *,
    plan: PackageGrants | None = None,
    addons: Iterable[tuple[PackageGrants, int]] = (),
    subscription: str = "subscription-1",
    started_at: datetime = START,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    resource: str | None = None,
    units: dict[str, int] | None = None,
) -> SubscriptionPhase:
    return SubscriptionPhase(
        subscription_ref=subscription,
        plan=plan if plan is not None else package(grants=[grant(limit=10)]),
        addons=tuple(addons),
        started_at=started_at,
        valid_from=valid_from if valid_from is not None else started_at,
        valid_until=valid_until,
        resource_ref=resource,
        unit_quantities=tuple(sorted((units or {}).items())),
    )


def promotion(
    *, terms: Terms, started_at: datetime = START, valid_until: datetime | None = None
) -> Promotion:
    return Promotion(terms=terms, started_at=started_at, valid_until=valid_until)


def holdings(
    *,
    phases: Iterable[SubscriptionPhase] = (),
    promotions: Iterable[Promotion] = (),
    resources: Iterable[str] = (),
    is_archived: bool = False,
    ref: str = "customer-1",
) -> CustomerHoldings:
    return CustomerHoldings(
        ref_id=ref,
        is_archived=is_archived,
        resource_refs=frozenset(resources),
        phases=tuple(phases),
        promotions=tuple(promotions),
    )


def feature(
    *, ref: str = SEATS, feature_type: str = "NUMBER", meter_type: str = "FLUCTUATING"
) -> FeatureInfo:
    return FeatureInfo(ref, ref, feature_type, meter_type, "ACTIVE")


BOOLEAN_SSO = feature(ref=SSO, feature_type="BOOLEAN", meter_type="None")
ENUM_REGIONS = feature(ref=REGIONS, feature_type="ENUM", meter_type="None")


def contribution(
    *,
    source: GrantSource = GrantSource.PLAN,
    ref: str = "plan-basic",
    version: int | None = 1,
    subscription: str | None = "subscription-1",
    quantity: int = 1,
    limit: int | None = None,
    unlimited: bool = False,
    is_granted: bool = True,
    effect: str = "grants",
) -> Contribution:
    return Contribution(
        source, ref, version, subscription, quantity, limit, unlimited, is_granted, effect
    )


def promoted(
    *,
    feature_ref: str = SEATS,
    limit: int | None = None,
    unlimited: bool = False,
    is_granted: bool = True,
    effect: str = "grants",
) -> Contribution:
    """A promotion's contribution to explain: no package, no subscription."""
    return contribution(
        source=GrantSource.PROMOTION,
        ref=feature_ref,
        version=None,
        subscription=None,
        limit=limit,
        unlimited=unlimited,
        is_granted=is_granted,
        effect=effect,
    )


def snapshot(
    held: CustomerHoldings,
    *,
    now: datetime = NOW,
    resource: str | None = None,
    version: int = 7,
) -> Snapshot:
    return compute(held, resource_ref=resource, version=version, now=now)


def effective(
    held: CustomerHoldings,
    *,
    ref: str = SEATS,
    now: datetime = NOW,
    resource: str | None = None,
) -> Effective:
    entitlements = snapshot(held, now=now, resource=resource).entitlements
    assert ref in entitlements, sorted(entitlements)
    return entitlements[ref]


def decide(
    held: CustomerHoldings,
    info: FeatureInfo | None = None,
    *,
    now: datetime = NOW,
    resource: str | None = None,
    requested_usage: int | None = None,
    requested_values: Iterable[str] | None = None,
    current_usage: float = 0,
) -> Decision:
    return check(
        snapshot(held, now=now, resource=resource),
        info if info is not None else feature(),
        requested_usage=requested_usage,
        requested_values=requested_values,
        current_usage=current_usage,
    )


def one_plan(*grants: Terms, started_at: datetime = START) -> CustomerHoldings:
    """A customer with one live subscription to a plan holding `grants`."""
    return holdings(phases=[phase(plan=package(grants=grants), started_at=started_at)])


# Deny reasons, in Stigg's order -------------------------------------------------------------


class TestCustomerNotFound:
    def test_an_unknown_customer_is_denied_for_every_feature(self) -> None:
        found = not_found_snapshot("customer-x", None, NOW)
        decision = check(found, feature())
        assert decision == Decision(False, DenyReason.CUSTOMER_NOT_FOUND, None)

    def test_it_comes_before_feature_not_found(self) -> None:
        found = not_found_snapshot("customer-x", None, NOW)
        assert check(found, None).reason is DenyReason.CUSTOMER_NOT_FOUND

    def test_it_comes_before_a_type_mismatch(self) -> None:
        found = not_found_snapshot("customer-x", "site-a", NOW)
        decision = check(found, BOOLEAN_SSO, requested_usage=3)
        assert decision.reason is DenyReason.CUSTOMER_NOT_FOUND

    def test_the_not_found_snapshot(self) -> None:
        found = not_found_snapshot("customer-x", "site-a", NOW)
        assert found.customer_ref == "customer-x"
        assert found.resource_ref == "site-a"
        assert found.version == 0
        assert found.computed_at == NOW
        assert found.expires_at is None
        assert found.customer_found is False
        assert found.has_subscription is False
        assert dict(found.entitlements) == {}
        assert customer_reason(found) is DenyReason.CUSTOMER_NOT_FOUND


class TestCustomerIsArchived:
    def test_an_archived_customer_is_denied_even_with_a_live_grant(self) -> None:
        held = holdings(phases=[phase()], is_archived=True)
        assert decide(held) == Decision(False, DenyReason.CUSTOMER_IS_ARCHIVED, None)

    def test_the_snapshot_still_holds_the_entitlements(self) -> None:
        held = holdings(phases=[phase()], is_archived=True)
        computed = snapshot(held)
        assert computed.is_archived is True
        assert SEATS in computed.entitlements

    def test_it_comes_before_an_unknown_resource(self) -> None:
        held = holdings(phases=[phase()], is_archived=True)
        assert decide(held, resource="site-x").reason is DenyReason.CUSTOMER_IS_ARCHIVED

    def test_it_comes_before_feature_not_found(self) -> None:
        held = holdings(is_archived=True)
        assert check(snapshot(held), None).reason is DenyReason.CUSTOMER_IS_ARCHIVED


class TestCustomerResourceNotFound:
    def test_an_unknown_resource_is_denied(self) -> None:
        held = holdings(phases=[phase()], resources=["site-a"])
        decision = decide(held, resource="site-x")
        assert decision == Decision(False, DenyReason.CUSTOMER_RESOURCE_NOT_FOUND, None)

    def test_a_customer_without_resources(self) -> None:
        held = holdings(phases=[phase()])
        assert decide(held, resource="site-a").reason is DenyReason.CUSTOMER_RESOURCE_NOT_FOUND

    def test_it_comes_before_feature_not_found(self) -> None:
        held = holdings(phases=[phase()])
        decision = check(snapshot(held, resource="site-x"), None)
        assert decision.reason is DenyReason.CUSTOMER_RESOURCE_NOT_FOUND

    def test_the_snapshot_of_an_unknown_resource_is_empty(self) -> None:
        held = holdings(
            phases=[phase(valid_until=NOW + timedelta(days=1))],
            promotions=[promotion(terms=grant(feature=SSO))],
        )
        computed = snapshot(held, resource="site-x", version=4)
        assert computed.customer_ref == "customer-1"
        assert computed.resource_ref == "site-x"
        assert computed.version == 4
        assert computed.computed_at == NOW
        assert computed.customer_found is True
        assert computed.resource_found is False
        assert computed.has_subscription is False
        assert computed.expires_at is None
        assert dict(computed.entitlements) == {}


class TestCustomerReason:
    def test_none_for_a_customer_with_a_subscription(self) -> None:
        assert customer_reason(snapshot(holdings(phases=[phase()]))) is None

    def test_none_for_a_customer_with_only_a_promotion(self) -> None:
        held = holdings(promotions=[promotion(terms=grant(feature=SSO))])
        assert customer_reason(snapshot(held)) is None

    def test_no_active_subscription_for_a_customer_holding_nothing(self) -> None:
        assert customer_reason(snapshot(holdings())) is DenyReason.NO_ACTIVE_SUBSCRIPTION

    def test_none_for_a_known_resource(self) -> None:
        held = holdings(resources=["site-a"], phases=[phase()])
        assert customer_reason(snapshot(held, resource="site-a")) is None


class TestFeatureNotFound:
    def test_an_unknown_feature_is_denied(self) -> None:
        held = holdings(phases=[phase()])
        assert check(snapshot(held), None) == Decision(False, DenyReason.FEATURE_NOT_FOUND, None)

    def test_it_comes_after_no_active_subscription(self) -> None:
        # Stigg's clients decide the customer and its subscriptions before the feature.
        assert check(snapshot(holdings()), None).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION


class TestFeatureTypeMismatch:
    @pytest.mark.parametrize("info", [feature(), BOOLEAN_SSO])
    def test_requested_values_need_an_enum_feature(self, info: FeatureInfo) -> None:
        held = one_plan(grant(limit=10), grant(feature=SSO))
        decision = decide(held, info, requested_values=["eu"])
        assert decision == Decision(False, DenyReason.FEATURE_TYPE_MISMATCH, None)

    def test_even_an_empty_list_of_values(self) -> None:
        held = one_plan(grant(limit=10))
        assert decide(held, requested_values=[]).reason is DenyReason.FEATURE_TYPE_MISMATCH

    @pytest.mark.parametrize("info", [BOOLEAN_SSO, ENUM_REGIONS])
    def test_requested_usage_needs_a_number_feature(self, info: FeatureInfo) -> None:
        held = one_plan(grant(feature=SSO), grant(feature=REGIONS, values=["eu"]))
        decision = decide(held, info, requested_usage=1)
        assert decision == Decision(False, DenyReason.FEATURE_TYPE_MISMATCH, None)

    def test_even_a_requested_usage_of_zero(self) -> None:
        held = one_plan(grant(feature=SSO))
        decision = decide(held, BOOLEAN_SSO, requested_usage=0)
        assert decision.reason is DenyReason.FEATURE_TYPE_MISMATCH

    def test_it_comes_after_no_active_subscription(self) -> None:
        decision = decide(holdings(), BOOLEAN_SSO, requested_usage=1)
        assert decision.reason is DenyReason.NO_ACTIVE_SUBSCRIPTION

    def test_it_comes_before_revoked(self) -> None:
        held = one_plan(grant(feature=SSO, is_granted=False))
        decision = decide(held, BOOLEAN_SSO, requested_values=["eu"])
        assert decision.reason is DenyReason.FEATURE_TYPE_MISMATCH

    def test_matching_requests_are_not_a_mismatch(self) -> None:
        held = one_plan(grant(limit=10), grant(feature=REGIONS, values=["eu"]))
        assert decide(held, requested_usage=2).is_granted is True
        assert decide(held, ENUM_REGIONS, requested_values=["eu"]).is_granted is True


class TestNoActiveSubscription:
    def test_a_customer_without_subscriptions(self) -> None:
        assert decide(holdings()) == Decision(False, DenyReason.NO_ACTIVE_SUBSCRIPTION, None)

    def test_a_customer_whose_subscription_ended(self) -> None:
        held = holdings(phases=[phase(valid_until=NOW - timedelta(days=1))])
        assert decide(held).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION

    def test_a_customer_whose_subscription_has_not_started(self) -> None:
        held = holdings(phases=[phase(valid_from=NOW + timedelta(days=1))])
        assert decide(held).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION

    def test_a_promotion_is_not_a_subscription_but_is_a_grant(self) -> None:
        held = holdings(promotions=[promotion(terms=grant(feature=SSO))])
        assert snapshot(held).has_subscription is False
        assert decide(held, BOOLEAN_SSO).is_granted is True
        # What the grants leave out, only a subscription would give.
        assert decide(held).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION


class TestConfigurationValues:
    """A NUMBER feature without a meter is a value (days of retention), not a quota."""

    def test_granted_with_its_value_whatever_the_request(self) -> None:
        retention = feature(meter_type="None")
        held = one_plan(grant(limit=30))
        decision = decide(held, retention, requested_usage=365, current_usage=0)
        assert decision.is_granted is True
        assert decision.entitlement is not None
        assert decision.entitlement.usage_limit == 30

    def test_a_zero_value_is_still_granted(self) -> None:
        assert decide(one_plan(grant(limit=0)), feature(meter_type="None")).is_granted is True

    def test_a_metered_feature_is_held_to_its_limit(self) -> None:
        held = one_plan(grant(limit=30))
        decision = decide(held, feature(meter_type="INCREMENTAL"), requested_usage=31)
        assert decision.reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT


class TestNoFeatureEntitlementInSubscription:
    def test_a_live_subscription_without_the_feature(self) -> None:
        held = one_plan(grant(feature=SSO))
        decision = decide(held)
        assert decision == Decision(False, DenyReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION, None)

    def test_a_subscription_that_ended_does_not_count(self) -> None:
        held = holdings(
            phases=[
                phase(valid_until=NOW),
                phase(subscription="subscription-2", plan=package(grants=[grant(feature=SSO)])),
            ]
        )
        assert decide(held, BOOLEAN_SSO).is_granted is True
        assert decide(held).reason is DenyReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION


class TestRevoked:
    def test_a_grant_that_is_not_granted_is_revoked(self) -> None:
        held = one_plan(grant(feature=SSO, is_granted=False))
        decision = decide(held, BOOLEAN_SSO)
        assert decision.is_granted is False
        assert decision.reason is DenyReason.REVOKED
        assert decision.entitlement is not None
        assert decision.entitlement.is_granted is False

    def test_it_comes_before_a_values_mismatch(self) -> None:
        held = one_plan(grant(feature=REGIONS, values=["us"], is_granted=False))
        decision = decide(held, ENUM_REGIONS, requested_values=["eu"])
        assert decision.reason is DenyReason.REVOKED

    def test_it_comes_before_exceeding_the_limit(self) -> None:
        held = one_plan(grant(limit=1, is_granted=False))
        assert decide(held, requested_usage=5).reason is DenyReason.REVOKED

    def test_even_an_unlimited_grant(self) -> None:
        held = one_plan(grant(unlimited=True, is_granted=False))
        assert decide(held).reason is DenyReason.REVOKED


class TestRequestedValuesMismatch:
    def held(self) -> CustomerHoldings:
        return one_plan(grant(feature=REGIONS, values=["us", "eu"]))

    @pytest.mark.parametrize("requested", [["us"], ["eu", "us"], ("us", "us"), []])
    def test_values_within_the_grant_are_granted(self, requested: list[str]) -> None:
        decision = decide(self.held(), ENUM_REGIONS, requested_values=requested)
        assert decision.is_granted is True
        assert decision.reason is None

    @pytest.mark.parametrize("requested", [["ap"], ["us", "ap"], ["US"]])
    def test_any_value_outside_the_grant_is_a_mismatch(self, requested: list[str]) -> None:
        decision = decide(self.held(), ENUM_REGIONS, requested_values=requested)
        assert decision.is_granted is False
        assert decision.reason is DenyReason.REQUESTED_VALUES_MISMATCH
        assert decision.entitlement == effective(self.held(), ref=REGIONS)

    def test_a_grant_without_values_matches_nothing(self) -> None:
        held = one_plan(grant(feature=REGIONS))
        decision = decide(held, ENUM_REGIONS, requested_values=["us"])
        assert decision.reason is DenyReason.REQUESTED_VALUES_MISMATCH

    def test_without_requested_values_an_enum_is_granted(self) -> None:
        assert decide(self.held(), ENUM_REGIONS).is_granted is True

    def test_a_generator_of_values_is_read(self) -> None:
        decision = decide(self.held(), ENUM_REGIONS, requested_values=(v for v in ["ap"]))
        assert decision.reason is DenyReason.REQUESTED_VALUES_MISMATCH


class TestRequestedUsageExceedingLimit:
    def test_requested_usage_defaults_to_one(self) -> None:
        held = one_plan(grant(limit=10))
        assert decide(held, current_usage=9).is_granted is True
        decision = decide(held, current_usage=10)
        assert decision.is_granted is False
        assert decision.reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT
        assert decision.entitlement == effective(held)

    def test_usage_up_to_the_limit_is_granted(self) -> None:
        held = one_plan(grant(limit=10))
        assert decide(held, requested_usage=5, current_usage=5).is_granted is True
        decision = decide(held, requested_usage=6, current_usage=5)
        assert decision.reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT

    def test_a_request_of_zero_at_the_limit_is_granted(self) -> None:
        held = one_plan(grant(limit=10))
        assert decide(held, requested_usage=0, current_usage=10).is_granted is True

    def test_fractional_usage_counts(self) -> None:
        held = one_plan(grant(limit=10))
        assert decide(held, current_usage=9.5).is_granted is False
        assert decide(held, current_usage=8.5).is_granted is True

    def test_a_soft_limit_is_never_exceeded(self) -> None:
        held = one_plan(grant(limit=10, soft=True))
        decision = decide(held, requested_usage=100, current_usage=1000)
        assert decision == Decision(True, None, effective(held))

    def test_unlimited_usage_is_never_exceeded(self) -> None:
        held = one_plan(grant(unlimited=True))
        decision = decide(held, requested_usage=10**9, current_usage=10**12)
        assert decision == Decision(True, None, effective(held))

    def test_a_number_grant_without_a_limit_allows_nothing(self) -> None:
        held = one_plan(grant())
        decision = decide(held, current_usage=0)
        assert decision.reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT

    def test_a_zero_limit_allows_a_request_of_zero(self) -> None:
        held = one_plan(grant(limit=0))
        assert decide(held).is_granted is False
        assert decide(held, requested_usage=0).is_granted is True

    @pytest.mark.parametrize("info", [BOOLEAN_SSO, ENUM_REGIONS])
    def test_limits_only_bind_number_features(self, info: FeatureInfo) -> None:
        held = one_plan(grant(feature=info.ref_id, limit=0, values=["us"]))
        assert decide(held, info, current_usage=50).is_granted is True


class TestGranted:
    def test_a_granted_decision_carries_the_entitlement(self) -> None:
        held = one_plan(grant(feature=SSO))
        decision = decide(held, BOOLEAN_SSO)
        assert decision == Decision(True, None, effective(held, ref=SSO))


# How grants combine ---------------------------------------------------------------------


class TestPlanInheritance:
    BASE = package(
        ref="plan-base",
        version=2,
        grants=[
            grant(feature=SSO),
            grant(limit=5, reset=Period.MONTH),
            grant(feature=REGIONS, values=["us"]),
        ],
    )

    def pro(self, *grants: Terms) -> PackageGrants:
        return package(ref="plan-pro", version=3, grants=grants, parent=self.BASE)

    def test_a_plan_includes_its_parents_entitlements(self) -> None:
        held = holdings(phases=[phase(plan=self.pro())])
        sso = effective(held, ref=SSO)
        assert sso.is_granted is True
        assert sso.contributions == (contribution(ref="plan-base", version=2, effect="inherited"),)

    def test_the_childs_entitlement_replaces_the_parents(self) -> None:
        held = holdings(phases=[phase(plan=self.pro(grant(limit=50, updated_at=NOW)))])
        seats = effective(held)
        assert seats.usage_limit == 50
        assert seats.reset_period is None
        assert seats.usage_period_end is None
        assert seats.updated_at == NOW
        # The parent's entitlement is gone, so it is not in explain either.
        assert seats.contributions == (contribution(ref="plan-pro", version=3, limit=50),)

    def test_a_limited_child_replaces_an_unlimited_parent(self) -> None:
        base = package(ref="plan-base", grants=[grant(unlimited=True)])
        child = package(ref="plan-pro", grants=[grant(limit=20)], parent=base)
        seats = effective(holdings(phases=[phase(plan=child)]))
        # Not the most generous: a child replaces its parent even when it gives less.
        assert (seats.usage_limit, seats.has_unlimited_usage) == (20, False)
        assert seats.contributions == (contribution(ref="plan-pro", limit=20),)

    def test_enum_values_are_replaced_not_united(self) -> None:
        held = holdings(phases=[phase(plan=self.pro(grant(feature=REGIONS, values=["eu"])))])
        assert effective(held, ref=REGIONS).enum_values == frozenset({"eu"})

    def test_a_child_can_revoke_a_parents_feature(self) -> None:
        held = holdings(phases=[phase(plan=self.pro(grant(feature=SSO, is_granted=False)))])
        assert decide(held, BOOLEAN_SSO).reason is DenyReason.REVOKED

    def test_inheritance_runs_through_the_whole_chain(self) -> None:
        root = package(ref="plan-free", grants=[grant(limit=1), grant(feature=SSO)])
        middle = package(ref="plan-team", grants=[grant(limit=2)], parent=root)
        top = package(ref="plan-business", parent=middle)
        held = holdings(phases=[phase(plan=top)])
        assert effective(held).usage_limit == 2
        assert effective(held).contributions == (
            contribution(ref="plan-team", limit=2, effect="inherited"),
        )
        assert effective(held, ref=SSO).contributions == (
            contribution(ref="plan-free", effect="inherited"),
        )

    def test_the_nearest_plan_wins_over_every_ancestor(self) -> None:
        root = package(ref="plan-free", grants=[grant(limit=1)])
        middle = package(ref="plan-team", grants=[grant(limit=2)], parent=root)
        top = package(ref="plan-business", grants=[grant(limit=3)], parent=middle)
        assert effective(holdings(phases=[phase(plan=top)])).usage_limit == 3

    def test_a_long_chain_of_plans_inherits_from_its_root(self) -> None:
        plan = package(ref="plan-0", grants=[grant(feature=SSO)])
        for level in range(1, 32):
            plan = package(ref=f"plan-{level}", parent=plan)
        assert decide(holdings(phases=[phase(plan=plan)]), BOOLEAN_SSO).is_granted is True


class TestAddonIncrement:
    PLAN = package(grants=[grant(limit=10, updated_at=UPDATED)])

    def held(self, *addons: tuple[PackageGrants, int]) -> CustomerHoldings:
        return holdings(phases=[phase(plan=self.PLAN, addons=addons)])

    def addon(self, *grants: Terms, ref: str = "addon-seats") -> PackageGrants:
        return package(ref=ref, version=4, grants=grants)

    def test_an_add_on_adds_its_limit_times_its_quantity(self) -> None:
        seats = effective(self.held((self.addon(grant(limit=5)), 3)))
        assert seats.usage_limit == 25
        assert seats.contributions == (
            contribution(limit=10),
            contribution(
                source=GrantSource.ADDON,
                ref="addon-seats",
                version=4,
                quantity=3,
                limit=5,
                effect="adds",
            ),
        )

    def test_a_quantity_of_zero_adds_nothing(self) -> None:
        assert effective(self.held((self.addon(grant(limit=5)), 0))).usage_limit == 10

    @pytest.mark.parametrize("reverse", [False, True])
    def test_several_add_ons_all_add_in_any_order(self, reverse: bool) -> None:
        addons = [
            (self.addon(grant(limit=5)), 2),
            (self.addon(grant(limit=100), ref="addon-more-seats"), 1),
        ]
        seats = effective(self.held(*(reversed(addons) if reverse else addons)))
        assert seats.usage_limit == 120
        assert set(seats.contributions) == {
            contribution(limit=10),
            contribution(
                source=GrantSource.ADDON,
                ref="addon-seats",
                version=4,
                quantity=2,
                limit=5,
                effect="adds",
            ),
            contribution(
                source=GrantSource.ADDON,
                ref="addon-more-seats",
                version=4,
                limit=100,
                effect="adds",
            ),
        }

    def test_an_add_on_can_grant_a_feature_the_plan_lacks(self) -> None:
        held = self.held((self.addon(grant(feature="feature-api-calls", limit=100)), 2))
        calls = effective(held, ref="feature-api-calls")
        assert (calls.is_granted, calls.usage_limit) == (True, 200)
        assert calls.contributions == (
            contribution(
                source=GrantSource.ADDON,
                ref="addon-seats",
                version=4,
                quantity=2,
                limit=100,
                effect="adds",
            ),
        )

    def test_on_a_revoked_plan_entitlement_only_the_add_on_counts(self) -> None:
        plan = package(grants=[grant(limit=10, is_granted=False)])
        addon = self.addon(grant(limit=5))
        held = holdings(phases=[phase(plan=plan, addons=[(addon, 3)])])
        seats = effective(held)
        assert (seats.is_granted, seats.usage_limit) == (True, 15)
        assert seats.contributions == (
            contribution(limit=10, is_granted=False, effect="revoked"),
            contribution(
                source=GrantSource.ADDON,
                ref="addon-seats",
                version=4,
                quantity=3,
                limit=5,
                effect="adds",
            ),
        )
        assert decide(held, current_usage=14).is_granted is True
        assert decide(held, current_usage=15).reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT

    def test_an_unlimited_plan_stays_unlimited(self) -> None:
        plan = package(grants=[grant(unlimited=True)])
        held = holdings(phases=[phase(plan=plan, addons=[(self.addon(grant(limit=5)), 1)])])
        seats = effective(held)
        assert (seats.usage_limit, seats.has_unlimited_usage) == (None, True)

    def test_an_unlimited_add_on_makes_the_feature_unlimited(self) -> None:
        seats = effective(self.held((self.addon(grant(unlimited=True)), 1)))
        assert (seats.usage_limit, seats.has_unlimited_usage) == (None, True)

    def test_a_soft_limit_add_on_on_a_hard_limit_gives_a_hard_limit(self) -> None:
        held = self.held((self.addon(grant(limit=5, soft=True)), 1))
        seats = effective(held)
        assert (seats.usage_limit, seats.has_soft_limit) == (15, False)
        assert decide(held, current_usage=15).reason is DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT

    @pytest.mark.parametrize(
        ("plan_soft", "addon_soft", "soft"),
        [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
    )
    def test_the_limit_is_soft_only_when_both_are_soft(
        self, plan_soft: bool, addon_soft: bool, soft: bool
    ) -> None:
        plan = package(grants=[grant(limit=10, soft=plan_soft)])
        addon = self.addon(grant(limit=5, soft=addon_soft))
        seats = effective(holdings(phases=[phase(plan=plan, addons=[(addon, 1)])]))
        assert (seats.usage_limit, seats.has_soft_limit) == (15, soft)

    def test_enum_values_are_united(self) -> None:
        plan = package(grants=[grant(feature=REGIONS, values=["us"])])
        addon = self.addon(grant(feature=REGIONS, values=["eu", "ap"]))
        held = holdings(phases=[phase(plan=plan, addons=[(addon, 1)])])
        assert effective(held, ref=REGIONS).enum_values == frozenset({"us", "eu", "ap"})

    def test_the_latest_update_is_reported(self) -> None:
        held = self.held((self.addon(grant(limit=5, updated_at=NOW)), 1))
        assert effective(held).updated_at == NOW

    def test_the_plans_usage_period_is_kept(self) -> None:
        plan = package(grants=[grant(limit=10, reset=Period.DAY)])
        addon = self.addon(grant(limit=5, reset=Period.MONTH))
        seats = effective(holdings(phases=[phase(plan=plan, addons=[(addon, 1)])]))
        assert seats.reset_period is Period.DAY

    def test_the_add_ons_usage_period_applies_when_the_plan_has_none(self) -> None:
        seats = effective(self.held((self.addon(grant(limit=5, reset=Period.MONTH)), 1)))
        assert seats.reset_period is Period.MONTH
        assert (seats.usage_period_start, seats.usage_period_end) == (
            datetime(2024, 2, 29, 9, 30, tzinfo=UTC),
            datetime(2024, 3, 31, 9, 30, tzinfo=UTC),
        )


class TestUnitsBought:
    """A per-unit price sells its feature's limit: the quantity bought replaces the plan's."""

    def test_the_quantity_bought_is_the_limit(self) -> None:
        plan = package(grants=[grant(unlimited=True)])
        assert effective(holdings(phases=[phase(plan=plan, units={SEATS: 7})])).usage_limit == 7
        assert not effective(
            holdings(phases=[phase(plan=plan, units={SEATS: 7})])
        ).has_unlimited_usage

    def test_add_ons_still_add_to_it(self) -> None:
        plan = package(grants=[grant(limit=10)])
        addon = package(ref="addon-seats", version=4, grants=[grant(limit=5)])
        held = holdings(phases=[phase(plan=plan, addons=[(addon, 2)], units={SEATS: 3})])
        assert effective(held).usage_limit == 13

    def test_a_feature_the_plan_does_not_grant_stays_ungranted(self) -> None:
        plan = package(grants=[grant(limit=10)])
        held = holdings(phases=[phase(plan=plan, units={"feature-other": 4})])
        assert "feature-other" not in snapshot(held).entitlements


class TestAddonOverride:
    PLAN = package(grants=[grant(limit=10, unlimited=False, reset=Period.DAY)])

    def addon(
        self, limit: int, *, ref: str = "addon-seats", overrides: bool = True
    ) -> PackageGrants:
        return package(ref=ref, version=2, grants=[grant(limit=limit, overrides=overrides)])

    def held(self, *addons: tuple[PackageGrants, int]) -> CustomerHoldings:
        return holdings(phases=[phase(plan=self.PLAN, addons=addons)])

    def overriding(
        self, limit: int, *, ref: str = "addon-seats", quantity: int = 1
    ) -> Contribution:
        return contribution(
            source=GrantSource.ADDON,
            ref=ref,
            version=2,
            quantity=quantity,
            limit=limit,
            effect="overrides",
        )

    def test_an_overriding_add_on_replaces_the_plans_terms(self) -> None:
        seats = effective(self.held((self.addon(100), 1)))
        assert seats.usage_limit == 100
        assert seats.reset_period is None
        assert seats.contributions == (
            contribution(limit=10, effect="replaced"),
            self.overriding(100),
        )

    def test_it_can_lower_the_limit(self) -> None:
        assert effective(self.held((self.addon(3), 1))).usage_limit == 3

    def test_it_is_multiplied_by_its_quantity(self) -> None:
        seats = effective(self.held((self.addon(100), 3)))
        assert seats.usage_limit == 300
        assert seats.contributions[-1] == self.overriding(100, quantity=3)

    def test_it_replaces_an_unlimited_plan(self) -> None:
        plan = package(grants=[grant(unlimited=True)])
        held = holdings(phases=[phase(plan=plan, addons=[(self.addon(100), 1)])])
        seats = effective(held)
        assert (seats.usage_limit, seats.has_unlimited_usage) == (100, False)

    def test_without_a_plan_entitlement_its_own_terms_hold(self) -> None:
        plan = package(grants=[grant(feature=SSO)])
        held = holdings(phases=[phase(plan=plan, addons=[(self.addon(100), 1)])])
        seats = effective(held)
        assert (seats.is_granted, seats.usage_limit) == (True, 100)
        assert seats.contributions == (self.overriding(100),)

    def test_it_grants_over_a_revoked_plan_entitlement(self) -> None:
        plan = package(grants=[grant(limit=10, is_granted=False)])
        held = holdings(phases=[phase(plan=plan, addons=[(self.addon(100), 1)])])
        seats = effective(held)
        assert (seats.is_granted, seats.usage_limit) == (True, 100)
        assert seats.contributions == (
            contribution(limit=10, is_granted=False, effect="revoked"),
            self.overriding(100),
        )

    @pytest.mark.parametrize("reverse", [False, True])
    def test_of_two_overriding_add_ons_the_larger_wins_in_any_order(self, reverse: bool) -> None:
        # Stigg: "the maximum override value will be used", whatever the add-ons' order.
        addons = [(self.addon(20, ref="addon-a"), 1), (self.addon(50, ref="addon-b"), 1)]
        seats = effective(self.held(*(reversed(addons) if reverse else addons)))
        assert seats.usage_limit == 50
        assert set(seats.contributions) == {
            contribution(limit=10, effect="replaced"),
            contribution(
                source=GrantSource.ADDON, ref="addon-a", version=2, limit=20, effect="outweighed"
            ),
            self.overriding(50, ref="addon-b"),
        }

    @pytest.mark.parametrize("reverse", [False, True])
    def test_increment_add_ons_add_on_top_of_the_override_in_any_order(self, reverse: bool) -> None:
        increment = (self.addon(5, ref="addon-increment", overrides=False), 2)
        override = (self.addon(50, ref="addon-override"), 1)
        addons = [override, increment] if reverse else [increment, override]
        seats = effective(self.held(*addons))
        assert seats.usage_limit == 60
        assert seats.contributions == (
            contribution(limit=10, effect="replaced"),
            self.overriding(50, ref="addon-override"),
            contribution(
                source=GrantSource.ADDON,
                ref="addon-increment",
                version=2,
                quantity=2,
                limit=5,
                effect="adds",
            ),
        )


class TestConcurrentSubscriptions:
    """Live subscriptions in different products do not add up: per feature, the most
    generous grant prevails (granted, then unlimited, then the higher limit, then the later
    end); ties go to the earlier subscription."""

    def held(
        self,
        first: Terms,
        second: Terms,
        *,
        first_ends: datetime | None = None,
        second_starts: datetime = START,
        second_ends: datetime | None = None,
    ) -> CustomerHoldings:
        return holdings(
            phases=[
                phase(plan=package(ref="plan-a", grants=[first]), valid_until=first_ends),
                phase(
                    plan=package(ref="plan-b", grants=[second]),
                    subscription="subscription-2",
                    started_at=second_starts,
                    valid_until=second_ends,
                ),
            ]
        )

    @pytest.mark.parametrize("higher_first", [False, True])
    def test_the_higher_limit_prevails_rather_than_a_sum(self, higher_first: bool) -> None:
        first, second = (15, 10) if higher_first else (10, 15)
        seats = effective(self.held(grant(limit=first), grant(limit=second)))
        assert seats.usage_limit == 15
        assert seats.contributions == (
            contribution(
                ref="plan-a", limit=first, effect="grants" if higher_first else "outweighed"
            ),
            contribution(
                ref="plan-b",
                subscription="subscription-2",
                limit=second,
                effect="outweighed" if higher_first else "grants",
            ),
        )

    @pytest.mark.parametrize("unlimited_first", [True, False])
    def test_unlimited_wins(self, unlimited_first: bool) -> None:
        grants = [grant(unlimited=True), grant(limit=15)]
        seats = effective(self.held(*(grants if unlimited_first else reversed(grants))))
        assert (seats.usage_limit, seats.has_unlimited_usage) == (None, True)

    def test_enum_values_unite(self) -> None:
        held = self.held(grant(feature=REGIONS, values=["us"]), grant(feature=REGIONS))
        assert effective(held, ref=REGIONS).enum_values == frozenset({"us"})
        held = self.held(
            grant(feature=REGIONS, values=["us"]), grant(feature=REGIONS, values=["eu"])
        )
        regions = effective(held, ref=REGIONS)
        assert regions.enum_values == frozenset({"us", "eu"})
        # Both grants shaped the answer, so neither is outweighed.
        assert regions.contributions == (
            contribution(ref="plan-a"),
            contribution(ref="plan-b", subscription="subscription-2"),
        )

    def test_a_revoked_grants_enum_values_are_not_united(self) -> None:
        held = self.held(
            grant(feature=REGIONS, values=["us"]),
            grant(feature=REGIONS, values=["eu"], is_granted=False),
        )
        regions = effective(held, ref=REGIONS)
        assert regions.enum_values == frozenset({"us"})
        assert regions.contributions == (
            contribution(ref="plan-a"),
            contribution(
                ref="plan-b", subscription="subscription-2", is_granted=False, effect="outweighed"
            ),
        )

    @pytest.mark.parametrize("larger_first", [True, False])
    @pytest.mark.parametrize("larger_soft", [True, False])
    def test_the_prevailing_grants_soft_limit_holds(
        self, larger_soft: bool, larger_first: bool
    ) -> None:
        larger, smaller = grant(limit=10, soft=larger_soft), grant(limit=5, soft=not larger_soft)
        seats = effective(self.held(*((larger, smaller) if larger_first else (smaller, larger))))
        assert (seats.usage_limit, seats.has_soft_limit) == (10, larger_soft)

    def test_features_from_each_subscription_are_all_granted(self) -> None:
        held = self.held(grant(limit=10), grant(feature=SSO))
        assert set(snapshot(held).entitlements) == {SEATS, SSO}

    def test_a_grant_on_either_side_grants(self) -> None:
        held = self.held(grant(is_granted=False), grant(limit=15))
        decision = decide(held)
        assert decision.is_granted is True

    def test_a_revoked_grant_is_outweighed_by_any_grant(self) -> None:
        held = self.held(grant(limit=100, is_granted=False), grant(limit=15))
        seats = effective(held)
        assert (seats.is_granted, seats.usage_limit) == (True, 15)
        assert seats.contributions == (
            contribution(ref="plan-a", limit=100, is_granted=False, effect="outweighed"),
            contribution(ref="plan-b", subscription="subscription-2", limit=15),
        )

    def test_a_revoked_unlimited_grant_does_not_make_the_feature_unlimited(self) -> None:
        held = self.held(grant(unlimited=True, is_granted=False), grant(limit=15))
        seats = effective(held)
        assert (seats.usage_limit, seats.has_unlimited_usage) == (15, False)

    def test_revoked_on_both_sides_is_revoked(self) -> None:
        held = self.held(grant(limit=5, is_granted=False), grant(limit=15, is_granted=False))
        assert decide(held).reason is DenyReason.REVOKED

    def test_the_latest_update_is_reported(self) -> None:
        held = self.held(grant(limit=1, updated_at=NOW), grant(limit=1))
        assert effective(held).updated_at == NOW

    def test_the_prevailing_grant_keeps_its_own_end(self) -> None:
        soon = NOW + timedelta(days=3)
        seats = effective(self.held(grant(limit=15), grant(limit=10), first_ends=soon))
        assert (seats.usage_limit, seats.valid_until) == (15, soon)

    @pytest.mark.parametrize("longer_first", [True, False])
    def test_among_equal_grants_the_later_end_prevails(self, longer_first: bool) -> None:
        sooner, later = NOW + timedelta(days=3), NOW + timedelta(days=9)
        first_end, second_end = (later, sooner) if longer_first else (sooner, later)
        held = self.held(
            grant(limit=1), grant(limit=1), first_ends=first_end, second_ends=second_end
        )
        assert effective(held).valid_until == later

    @pytest.mark.parametrize("open_ended_first", [True, False])
    def test_among_equal_grants_the_open_ended_one_prevails(self, open_ended_first: bool) -> None:
        ends = NOW + timedelta(days=3)
        held = self.held(
            grant(limit=1),
            grant(limit=1),
            first_ends=None if open_ended_first else ends,
            second_ends=ends if open_ended_first else None,
        )
        seats = effective(held)
        assert seats.valid_until is None
        prevailing = "subscription-1" if open_ended_first else "subscription-2"
        (granted,) = (c for c in seats.contributions if c.effect == "grants")
        assert granted.subscription_ref == prevailing

    def test_a_full_tie_goes_to_the_earlier_subscription(self) -> None:
        later_start = datetime(2024, 3, 1, 6, tzinfo=UTC)
        held = self.held(
            grant(limit=1), grant(limit=1, reset=Period.DAY), second_starts=later_start
        )
        seats = effective(held)
        assert seats.reset_period is None
        assert seats.contributions == (
            contribution(ref="plan-a", limit=1),
            contribution(ref="plan-b", subscription="subscription-2", limit=1, effect="outweighed"),
        )

    def test_the_prevailing_grants_usage_period_applies(self) -> None:
        later_start = datetime(2024, 3, 1, 6, tzinfo=UTC)
        held = self.held(
            grant(limit=1), grant(limit=2, reset=Period.DAY), second_starts=later_start
        )
        seats = effective(held)
        assert seats.reset_period is Period.DAY
        assert seats.usage_period_anchor == later_start
        assert seats.usage_period_start == datetime(2024, 3, 10, 6, tzinfo=UTC)

    def test_an_ended_subscription_is_no_candidate(self) -> None:
        held = self.held(grant(limit=10), grant(limit=15), second_ends=NOW)
        seats = effective(held)
        assert seats.usage_limit == 10
        assert seats.contributions == (contribution(ref="plan-a", limit=10),)


class TestPromotions:
    """A promotion is one more independent grant: the most generous grant prevails, so a
    promotion can raise what a customer gets but never lower or revoke it."""

    def test_a_smaller_promotion_is_outweighed(self) -> None:
        held = holdings(
            phases=[phase(plan=package(grants=[grant(limit=100)]))],
            promotions=[promotion(terms=grant(limit=20, updated_at=NOW))],
        )
        seats = effective(held)
        assert (seats.usage_limit, seats.valid_until) == (100, None)
        assert seats.updated_at == NOW
        assert seats.contributions == (
            contribution(limit=100),
            promoted(limit=20, effect="outweighed"),
        )

    def test_a_larger_promotion_prevails_with_its_valid_until(self) -> None:
        end = NOW + timedelta(days=14)
        held = holdings(
            phases=[phase()],
            promotions=[promotion(terms=grant(limit=500), valid_until=end)],
        )
        seats = effective(held)
        assert (seats.usage_limit, seats.valid_until) == (500, end)
        assert seats.contributions == (
            contribution(limit=10, effect="outweighed"),
            promoted(limit=500),
        )

    def test_a_promotion_can_make_a_feature_unlimited(self) -> None:
        held = holdings(phases=[phase()], promotions=[promotion(terms=grant(unlimited=True))])
        seats = effective(held)
        assert (seats.usage_limit, seats.has_unlimited_usage) == (None, True)

    def test_a_promotion_grants_without_a_subscription(self) -> None:
        held = holdings(promotions=[promotion(terms=grant(feature=SSO))])
        assert decide(held, BOOLEAN_SSO).is_granted is True

    def test_a_revoking_promotion_does_not_revoke_a_subscriptions_grant(self) -> None:
        held = holdings(phases=[phase()], promotions=[promotion(terms=grant(is_granted=False))])
        assert decide(held, current_usage=9).is_granted is True
        seats = effective(held)
        assert (seats.is_granted, seats.usage_limit) == (True, 10)
        assert seats.contributions == (
            contribution(limit=10),
            promoted(is_granted=False, effect="outweighed"),
        )

    def test_a_revoking_promotion_revokes_where_nothing_grants(self) -> None:
        held = holdings(
            phases=[phase()], promotions=[promotion(terms=grant(feature=SSO, is_granted=False))]
        )
        assert decide(held, BOOLEAN_SSO).reason is DenyReason.REVOKED

    def test_of_equal_grants_an_open_ended_promotion_outlasts_an_ending_subscription(
        self,
    ) -> None:
        ends = NOW + timedelta(days=3)
        held = holdings(
            phases=[phase(valid_until=ends)], promotions=[promotion(terms=grant(limit=10))]
        )
        seats = effective(held)
        assert (seats.usage_limit, seats.valid_until) == (10, None)
        assert seats.contributions == (
            contribution(limit=10, effect="outweighed"),
            promoted(limit=10),
        )

    def test_of_equal_grants_an_open_ended_subscription_outlasts_an_ending_promotion(
        self,
    ) -> None:
        ends = NOW + timedelta(days=3)
        held = holdings(
            phases=[phase()], promotions=[promotion(terms=grant(limit=10), valid_until=ends)]
        )
        seats = effective(held)
        assert (seats.usage_limit, seats.valid_until) == (10, None)
        assert seats.contributions == (
            contribution(limit=10),
            promoted(limit=10, effect="outweighed"),
        )

    def test_its_end_is_its_valid_until(self) -> None:
        end = NOW + timedelta(days=14)
        held = holdings(promotions=[promotion(terms=grant(limit=5), valid_until=end)])
        assert effective(held).valid_until == end

    def test_a_lifetime_promotion_has_no_valid_until(self) -> None:
        held = holdings(promotions=[promotion(terms=grant(limit=5))])
        assert effective(held).valid_until is None

    @pytest.mark.parametrize("ended", [NOW - timedelta(days=1), NOW])
    def test_an_ended_promotion_gives_way_to_the_plan(self, ended: datetime) -> None:
        held = holdings(
            phases=[phase()],
            promotions=[promotion(terms=grant(limit=500), valid_until=ended)],
        )
        seats = effective(held)
        assert seats.usage_limit == 10
        assert seats.contributions == (contribution(limit=10),)

    def test_one_microsecond_before_its_end_it_still_holds(self) -> None:
        end = NOW + MICROSECOND
        held = holdings(
            phases=[phase()], promotions=[promotion(terms=grant(limit=500), valid_until=end)]
        )
        assert effective(held).usage_limit == 500

    def test_its_usage_period_counts_from_the_promotions_start(self) -> None:
        started = datetime(2024, 2, 20, 10, tzinfo=UTC)
        held = holdings(
            phases=[phase(plan=package(grants=[grant(limit=1, reset=Period.DAY)]))],
            promotions=[promotion(terms=grant(limit=5, reset=Period.MONTH), started_at=started)],
        )
        seats = effective(held)
        assert seats.reset_period is Period.MONTH
        assert seats.usage_period_anchor == started
        assert seats.usage_period_start == started
        assert seats.usage_period_end == datetime(2024, 3, 20, 10, tzinfo=UTC)

    def test_a_promotion_holds_for_every_resource(self) -> None:
        held = holdings(resources=["site-a"], promotions=[promotion(terms=grant(feature=SSO))])
        assert decide(held, BOOLEAN_SSO, resource="site-a").is_granted is True
        assert decide(held, BOOLEAN_SSO).is_granted is True


# Time ------------------------------------------------------------------------------------


class TestWindows:
    def test_a_phase_that_has_not_started_grants_nothing(self) -> None:
        starts = NOW + timedelta(days=1)
        computed = snapshot(holdings(phases=[phase(valid_from=starts)]))
        assert computed.has_subscription is False
        assert dict(computed.entitlements) == {}
        assert computed.expires_at == starts

    def test_a_phase_that_ended_grants_nothing(self) -> None:
        computed = snapshot(holdings(phases=[phase(valid_until=NOW - timedelta(days=1))]))
        assert computed.has_subscription is False
        assert dict(computed.entitlements) == {}
        assert computed.expires_at is None

    def test_the_start_is_inclusive(self) -> None:
        held = holdings(phases=[phase(valid_from=NOW)])
        assert decide(held).is_granted is True
        assert decide(held, now=NOW - MICROSECOND).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION

    def test_the_end_is_exclusive(self) -> None:
        held = holdings(phases=[phase(valid_until=NOW)])
        assert decide(held, now=NOW - MICROSECOND).is_granted is True
        assert decide(held).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION


class TestScheduledPhaseSwitch:
    SWITCH = NOW + timedelta(days=5)
    PRO = package(ref="plan-pro", grants=[grant(limit=50), grant(feature=SSO)])
    BASIC = package(ref="plan-basic", version=2, grants=[grant(limit=10)])

    def held(self) -> CustomerHoldings:
        return holdings(
            phases=[
                phase(plan=self.PRO, valid_until=self.SWITCH),
                phase(plan=self.BASIC, valid_from=self.SWITCH),
            ]
        )

    def test_before_the_switch_the_current_plan_holds(self) -> None:
        computed = snapshot(self.held(), now=self.SWITCH - MICROSECOND)
        assert computed.entitlements[SEATS].usage_limit == 50
        assert computed.entitlements[SEATS].valid_until == self.SWITCH
        assert computed.entitlements[SSO].is_granted is True
        assert computed.expires_at == self.SWITCH

    def test_at_the_switch_the_new_plan_holds(self) -> None:
        computed = snapshot(self.held(), now=self.SWITCH)
        assert computed.entitlements[SEATS].usage_limit == 10
        assert computed.entitlements[SEATS].valid_until is None
        assert computed.entitlements[SEATS].contributions == (
            contribution(ref="plan-basic", version=2, limit=10),
        )
        assert computed.expires_at is None

    def test_a_feature_the_new_plan_lacks_is_gone_at_the_switch(self) -> None:
        decision = decide(self.held(), BOOLEAN_SSO, now=self.SWITCH)
        assert decision.reason is DenyReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION

    def test_long_after_the_switch_the_new_plan_holds(self) -> None:
        later = self.SWITCH + timedelta(days=400)
        assert effective(self.held(), now=later).usage_limit == 10

    def test_the_two_phases_of_one_subscription_never_add_up(self) -> None:
        for moment in (START, NOW, self.SWITCH - MICROSECOND):
            assert effective(self.held(), now=moment).usage_limit == 50
        for moment in (self.SWITCH, self.SWITCH + MICROSECOND):
            assert effective(self.held(), now=moment).usage_limit == 10


class TestExpiresAt:
    def test_nothing_to_change_means_no_expiry(self) -> None:
        assert snapshot(holdings(phases=[phase()])).expires_at is None
        assert snapshot(holdings()).expires_at is None

    def test_a_phase_end(self) -> None:
        end = NOW + timedelta(days=3)
        assert snapshot(holdings(phases=[phase(valid_until=end)])).expires_at == end

    def test_a_future_phase_start(self) -> None:
        starts = NOW + timedelta(days=2)
        held = holdings(phases=[phase(), phase(subscription="subscription-2", valid_from=starts)])
        assert snapshot(held).expires_at == starts

    def test_a_usage_period_end(self) -> None:
        held = one_plan(grant(limit=10, reset=Period.MONTH))
        assert snapshot(held).expires_at == datetime(2024, 3, 31, 9, 30, tzinfo=UTC)

    def test_a_promotion_end(self) -> None:
        end = NOW + timedelta(hours=5)
        held = holdings(promotions=[promotion(terms=grant(feature=SSO), valid_until=end)])
        assert snapshot(held).expires_at == end

    def test_the_earliest_boundary_wins(self) -> None:
        held = holdings(
            phases=[
                phase(
                    plan=package(grants=[grant(limit=1, reset=Period.DAY)]),
                    valid_until=NOW + timedelta(days=3),
                ),
                phase(subscription="subscription-2", valid_from=NOW + timedelta(days=2)),
            ],
            promotions=[promotion(terms=grant(feature=SSO), valid_until=NOW + timedelta(hours=30))],
        )
        assert snapshot(held).expires_at == datetime(2024, 3, 11, 9, 30, tzinfo=UTC)

    def test_a_boundary_at_now_is_past(self) -> None:
        held = holdings(
            phases=[
                phase(valid_until=NOW),
                phase(subscription="subscription-2", valid_from=NOW),
            ]
        )
        assert snapshot(held).expires_at is None

    def test_past_boundaries_are_ignored(self) -> None:
        held = holdings(
            phases=[phase(valid_until=NOW - timedelta(days=1))],
            promotions=[promotion(terms=grant(feature=SSO), valid_until=NOW - timedelta(hours=1))],
        )
        assert snapshot(held).expires_at is None

    def test_the_usage_period_of_a_replaced_or_outweighed_grant_is_ignored(self) -> None:
        plan = package(grants=[grant(limit=10, reset=Period.DAY)])
        addon = package(ref="addon-seats", grants=[grant(limit=100, overrides=True)])
        held = holdings(phases=[phase(plan=plan, addons=[(addon, 1)])])
        assert snapshot(held).expires_at is None
        promoted = holdings(
            phases=[phase(plan=plan)], promotions=[promotion(terms=grant(limit=100))]
        )
        assert snapshot(promoted).expires_at is None

    def test_another_resources_boundaries_are_ignored(self) -> None:
        held = holdings(
            resources=["site-a", "site-b"],
            phases=[
                phase(resource="site-a"),
                phase(
                    subscription="subscription-b",
                    resource="site-b",
                    valid_until=NOW + timedelta(days=1),
                ),
            ],
        )
        assert snapshot(held, resource="site-a").expires_at is None
        assert snapshot(held).expires_at is None
        assert snapshot(held, resource="site-b").expires_at == NOW + timedelta(days=1)


class TestUsagePeriods:
    """The subscription started on Wednesday 31 January 2024, 09:30; now is Sunday
    10 March 2024, 12:00."""

    def usage(
        self, period: Period, according_to: str | None = None, *, now: datetime = NOW
    ) -> tuple[datetime | None, datetime | None, datetime | None]:
        held = one_plan(grant(limit=10, reset=period, according_to=according_to))
        seats = effective(held, now=now)
        assert seats.reset_period is period
        return seats.usage_period_anchor, seats.usage_period_start, seats.usage_period_end

    @pytest.mark.parametrize(
        ("period", "according_to", "anchor", "start", "end"),
        [
            (Period.MONTH, None, START, utc(2024, 2, 29, 9, 30), utc(2024, 3, 31, 9, 30)),
            (
                Period.MONTH,
                "SubscriptionStart",
                START,
                utc(2024, 2, 29, 9, 30),
                utc(2024, 3, 31, 9, 30),
            ),
            (
                Period.MONTH,
                "StartOfTheMonth",
                utc(2024, 1, 1),
                utc(2024, 3, 1),
                utc(2024, 4, 1),
            ),
            (Period.WEEK, None, START, utc(2024, 3, 6, 9, 30), utc(2024, 3, 13, 9, 30)),
            (
                Period.WEEK,
                "EveryMonday",
                utc(2024, 1, 29),
                utc(2024, 3, 4),
                utc(2024, 3, 11),
            ),
            (
                Period.WEEK,
                "EverySunday",
                utc(2024, 1, 28),
                utc(2024, 3, 10),
                utc(2024, 3, 17),
            ),
            (Period.DAY, None, START, utc(2024, 3, 10, 9, 30), utc(2024, 3, 11, 9, 30)),
            (Period.HOUR, None, START, utc(2024, 3, 10, 11, 30), utc(2024, 3, 10, 12, 30)),
            (Period.YEAR, None, START, utc(2024, 1, 31, 9, 30), utc(2025, 1, 31, 9, 30)),
        ],
    )
    def test_periods(
        self,
        period: Period,
        according_to: str | None,
        anchor: datetime,
        start: datetime,
        end: datetime,
    ) -> None:
        assert self.usage(period, according_to) == (anchor, start, end)

    def test_without_a_reset_period_there_is_no_usage_period(self) -> None:
        seats = effective(one_plan(grant(limit=10)))
        assert seats.reset_period is None
        assert seats.usage_period_anchor is None
        assert seats.usage_period_start is None
        assert seats.usage_period_end is None

    def test_at_a_period_end_the_next_period_begins(self) -> None:
        end = datetime(2024, 3, 31, 9, 30, tzinfo=UTC)
        assert self.usage(Period.MONTH, now=end)[1:] == (
            end,
            datetime(2024, 4, 30, 9, 30, tzinfo=UTC),
        )

    def test_the_month_end_anchor_does_not_drift(self) -> None:
        moment = datetime(2024, 5, 15, tzinfo=UTC)
        assert self.usage(Period.MONTH, now=moment)[1:] == (
            datetime(2024, 4, 30, 9, 30, tzinfo=UTC),
            datetime(2024, 5, 31, 9, 30, tzinfo=UTC),
        )

    def test_periods_count_from_the_phases_start_not_its_window(self) -> None:
        switch = datetime(2024, 3, 5, tzinfo=UTC)
        held = holdings(
            phases=[
                phase(
                    plan=package(grants=[grant(limit=10, reset=Period.MONTH)]),
                    valid_from=switch,
                )
            ]
        )
        seats = effective(held)
        assert seats.usage_period_anchor == START
        assert seats.usage_period_start == datetime(2024, 2, 29, 9, 30, tzinfo=UTC)

    def test_the_anchor_is_in_utc(self) -> None:
        plus_five = timezone(timedelta(hours=5))
        started = datetime(2024, 2, 1, 3, 0, tzinfo=plus_five)  # 31 January, 22:00 UTC
        held = one_plan(
            grant(limit=10, reset=Period.MONTH, according_to="StartOfTheMonth"),
            started_at=started,
        )
        seats = effective(held)
        assert seats.usage_period_anchor == datetime(2024, 1, 1, tzinfo=UTC)
        assert seats.usage_period_start == datetime(2024, 3, 1, tzinfo=UTC)


class TestValidUntil:
    def test_an_open_ended_subscription(self) -> None:
        assert effective(holdings(phases=[phase()])).valid_until is None

    def test_a_subscription_that_ends(self) -> None:
        end = NOW + timedelta(days=20)
        assert effective(holdings(phases=[phase(valid_until=end)])).valid_until == end

    def test_add_on_grants_end_with_their_subscription(self) -> None:
        end = NOW + timedelta(days=20)
        addon = package(ref="addon-sso", grants=[grant(feature=SSO)])
        held = holdings(phases=[phase(addons=[(addon, 1)], valid_until=end)])
        assert effective(held, ref=SSO).valid_until == end


# Resources ---------------------------------------------------------------------------------


class TestResourceScoping:
    def held(self) -> CustomerHoldings:
        return holdings(
            resources=["site-a", "site-b"],
            phases=[
                phase(plan=package(ref="plan-org", grants=[grant(feature=SSO)])),
                phase(
                    plan=package(ref="plan-site", grants=[grant(limit=10)]),
                    subscription="subscription-a",
                    resource="site-a",
                ),
                phase(
                    plan=package(ref="plan-site", grants=[grant(limit=20)]),
                    subscription="subscription-b",
                    resource="site-b",
                ),
            ],
        )

    def test_a_resources_subscription_holds_for_that_resource(self) -> None:
        assert effective(self.held(), resource="site-a").usage_limit == 10
        assert effective(self.held(), resource="site-b").usage_limit == 20

    def test_a_customer_level_subscription_holds_for_every_resource(self) -> None:
        for resource in ("site-a", "site-b", None):
            assert decide(self.held(), BOOLEAN_SSO, resource=resource).is_granted is True

    def test_resource_subscriptions_do_not_hold_at_customer_level(self) -> None:
        decision = decide(self.held())
        assert decision.reason is DenyReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION

    def test_another_resources_subscription_is_not_active_here(self) -> None:
        held = holdings(
            resources=["site-a", "site-b"],
            phases=[phase(resource="site-a")],
        )
        assert decide(held, resource="site-b").reason is DenyReason.NO_ACTIVE_SUBSCRIPTION
        assert decide(held).reason is DenyReason.NO_ACTIVE_SUBSCRIPTION
        assert decide(held, resource="site-a").is_granted is True

    def both_levels(self, *, customer_limit: int, resource_limit: int) -> CustomerHoldings:
        return holdings(
            resources=["site-a"],
            phases=[
                phase(plan=package(ref="plan-org", grants=[grant(limit=customer_limit)])),
                phase(
                    plan=package(ref="plan-site", grants=[grant(limit=resource_limit)]),
                    subscription="subscription-a",
                    resource="site-a",
                ),
            ],
        )

    def test_the_more_generous_of_customer_and_resource_subscriptions_prevails(self) -> None:
        held = self.both_levels(customer_limit=5, resource_limit=10)
        seats = effective(held, resource="site-a")
        assert seats.usage_limit == 10
        assert seats.contributions == (
            contribution(ref="plan-org", limit=5, effect="outweighed"),
            contribution(ref="plan-site", subscription="subscription-a", limit=10),
        )
        assert effective(held).usage_limit == 5

    def test_a_more_generous_customer_level_subscription_prevails_for_a_resource(self) -> None:
        held = self.both_levels(customer_limit=20, resource_limit=10)
        seats = effective(held, resource="site-a")
        assert seats.usage_limit == 20
        assert seats.contributions == (
            contribution(ref="plan-org", limit=20),
            contribution(
                ref="plan-site", subscription="subscription-a", limit=10, effect="outweighed"
            ),
        )

    def test_the_snapshot_names_its_resource(self) -> None:
        computed = snapshot(self.held(), resource="site-a")
        assert computed.resource_ref == "site-a"
        assert computed.resource_found is True
        assert computed.has_subscription is True


# Snapshot and explain ----------------------------------------------------------------------


class TestSnapshot:
    def test_it_records_who_when_and_which_version(self) -> None:
        computed = snapshot(holdings(phases=[phase()], ref="customer-9"), version=12)
        assert computed.customer_ref == "customer-9"
        assert computed.resource_ref is None
        assert computed.version == 12
        assert computed.computed_at == NOW
        assert computed.customer_found is True
        assert computed.is_archived is False
        assert computed.resource_found is True
        assert computed.has_subscription is True

    def test_an_effective_entitlement_in_full(self) -> None:
        held = one_plan(grant(limit=10, reset=Period.MONTH, soft=True))
        assert effective(held) == Effective(
            feature_ref=SEATS,
            is_granted=True,
            usage_limit=10,
            has_unlimited_usage=False,
            has_soft_limit=True,
            enum_values=None,
            reset_period=Period.MONTH,
            usage_period_anchor=START,
            usage_period_start=datetime(2024, 2, 29, 9, 30, tzinfo=UTC),
            usage_period_end=datetime(2024, 3, 31, 9, 30, tzinfo=UTC),
            valid_until=None,
            updated_at=UPDATED,
            contributions=(contribution(limit=10),),
        )

    def test_an_unlimited_grant_reports_no_limit(self) -> None:
        seats = effective(one_plan(grant(limit=10, unlimited=True)))
        assert (seats.usage_limit, seats.has_unlimited_usage) == (None, True)
        assert seats.contributions == (contribution(limit=10, unlimited=True),)


class TestContributionWire:
    def test_a_contribution_in_the_explain_shape(self) -> None:
        wire = contribution(
            source=GrantSource.ADDON,
            ref="addon-seats",
            version=3,
            quantity=2,
            limit=5,
            effect="adds",
        ).as_wire()
        assert wire == {
            "source": "ADDON",
            "id": "addon-seats",
            "versionNumber": 3,
            "subscriptionId": "subscription-1",
            "quantity": 2,
            "usageLimit": 5,
            "hasUnlimitedUsage": False,
            "isGranted": True,
            "effect": "adds",
        }

    def test_a_promotions_contribution(self) -> None:
        held = holdings(promotions=[promotion(terms=grant(feature=SSO))])
        (granted,) = effective(held, ref=SSO).contributions
        assert granted.as_wire() == {
            "source": "PROMOTION",
            "id": SSO,
            "versionNumber": None,
            "subscriptionId": None,
            "quantity": 1,
            "usageLimit": None,
            "hasUnlimitedUsage": False,
            "isGranted": True,
            "effect": "grants",
        }
