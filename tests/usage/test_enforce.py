"""Opt-in enforced reports: counted only within the limit, decided atomically."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import Tenant, factories
from tests.support.usage import check, report, usage

pytestmark = pytest.mark.usefixtures("acme")
USERS = "feature-active-users"  # plan-free: 100 a month


def enforced(value: float, feature: str = USERS, **fields: object) -> dict[str, object]:
    return usage(feature, value, enforceLimit=True, **fields)


class TestEnforced:
    def test_counted_while_it_fits(self, http: httpx.Client) -> None:
        answered = report(http, enforced(60), enforced(40))
        assert answered.status_code == 200, answered.text
        assert answered.json()["data"][-1]["currentUsage"] == 100

    def test_refused_past_the_limit_with_nothing_counted(self, http: httpx.Client) -> None:
        report(http, usage(USERS, 90))
        refused = report(http, enforced(5), enforced(6))
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "usage_limit_exceeded"
        assert error["field"] == "usages[1].value"
        assert error["details"][0]["accessDeniedReason"] == "RequestedUsageExceedingLimit"
        assert "101 of a limit of 100" in error["message"]
        assert check(http, USERS)["currentUsage"] == 90  # the first item was not kept either

    def test_unenforced_reports_may_pass_the_limit(self, http: httpx.Client) -> None:
        assert report(http, usage(USERS, 150)).status_code == 200
        assert check(http, USERS)["currentUsage"] == 150

    def test_decreases_are_never_refused(self, http: httpx.Client) -> None:
        report(http, usage("feature-seats", 5))  # over plan-free's 3 seats
        assert report(http, enforced(-1, "feature-seats")).status_code == 200

    def test_no_entitlement_is_refused_with_its_reason(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-exports", meterType="INCREMENTAL")
        refused = report(http, enforced(1, "feature-exports"))
        assert refused.status_code == 409
        reason = refused.json()["error"]["details"][0]["accessDeniedReason"]
        assert reason == "NoFeatureEntitlementInSubscription"

    def test_soft_limits_count_and_never_refuse(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-exports", meterType="INCREMENTAL")
        grant = {"id": "feature-exports", "type": "FEATURE", "usageLimit": 2, "hasSoftLimit": True}
        factories.plan(http, id="plan-soft", entitlements=[grant], publish=True)
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-soft"})
        assert report(http, enforced(5, "feature-exports")).status_code == 200
        assert check(http, "feature-exports")["currentUsage"] == 5


class TestContention:
    def test_racing_consumers_never_pass_the_limit(self, demo_tenant: Tenant) -> None:
        def consume(worker: int) -> tuple[int, int]:
            granted = refused = 0
            with demo_tenant.http() as http:
                while refused < 3:
                    answer = report(
                        http, enforced(1, idempotencyKey=f"{worker}-{granted}-{refused}")
                    )
                    assert answer.status_code in (200, 409), answer.text
                    if answer.status_code == 200:
                        granted += 1
                    else:
                        refused += 1
            return granted, refused

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(consume, range(16)))
        assert sum(granted for granted, _ in results) == 100
        with demo_tenant.http() as http:
            assert check(http, USERS)["currentUsage"] == 100
