"""`Tollgate` and `AsyncTollgate` against a live server, on both backends: cached checks
never touch the network, every decision equals the server's own check, changes made
elsewhere (subscriptions, usage, the catalog) reach the cache through the stream, and a
refresh that failed is tried again until it succeeds; usage is counted at once and
delivered exactly once (also by close, and after a reply that the server could not take
it yet), and a report made after close is counted as dropped; customer tokens read one
customer only."""

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support import Tenant
from tests.support.sdk import STREAM_PATH, CountingTransport, StartSdk
from tollgate.environments.tokens import customer_token as server_customer_token
from tollgate_sdk import (
    AccessDeniedReason,
    AsyncTollgate,
    BooleanEntitlement,
    EnumEntitlement,
    MeteredEntitlement,
    NumericEntitlement,
    Source,
    Tollgate,
    customer_token,
)

DEADLINE = 5.0  # how long a change may take to reach the SDK's cache
# After a failed load the SDK pauses loads for 5 s (OFFLINE_SECONDS), then tries again.
RETRY_DEADLINE = 15.0

STATES_PATH = "/api/v1/sdk/states"
STATE_PATH = re.compile(r"/api/v1/sdk/customers/[^/]+/state")
USAGE_PATH = "/api/v1/usage"
LOADER = "tollgate-sdk-loader"

SSO = "feature-sso"
SEATS = "feature-seats"
USERS = "feature-active-users"
REGION = "feature-region"


# --- the server's side ------------------------------------------------------------------


def customer(http: httpx.Client, customer_id: str, *, plan_id: str | None = None) -> str:
    created = http.post("/api/v1/customers", json={"id": customer_id})
    assert created.status_code == 201, created.text
    if plan_id is not None:
        subscribe(http, customer_id, plan_id)
    return customer_id


def subscribe(
    http: httpx.Client, customer_id: str, plan_id: str, *, resource_id: str | None = None
) -> None:
    body = {"customerId": customer_id, "planId": plan_id}
    if resource_id is not None:
        body["resourceId"] = resource_id
    provisioned = http.post("/api/v1/subscriptions", json=body)
    assert provisioned.status_code == 200, provisioned.text


def report(
    http: httpx.Client, customer_id: str, feature_id: str, value: float, **fields: Any
) -> None:
    usage = {"customerId": customer_id, "featureId": feature_id, "value": value, **fields}
    reported = http.post("/api/v1/usage", json={"usages": [usage]})
    assert reported.status_code == 200, reported.text


def add_region_feature(http: httpx.Client) -> None:
    """An ENUM feature (the demo catalog has none): regions eu, us and apac."""
    region = {
        "id": REGION,
        "displayName": "Region",
        "featureType": "ENUM",
        "enumConfiguration": [{"value": v, "displayName": v} for v in ("eu", "us", "apac")],
    }
    created = http.post("/api/v1/features", json=region)
    assert created.status_code == 201, created.text


def promote(http: httpx.Client, customer_id: str, *grants: dict[str, Any]) -> None:
    """Grant promotional entitlements for a month."""
    body = {"promotionalEntitlements": [{"period": "1 month", **g} for g in grants]}
    granted = http.post(f"/api/v1/customers/{customer_id}/promotional-entitlements", json=body)
    assert granted.status_code == 200, granted.text


def server_check(
    http: httpx.Client, customer_id: str, feature_id: str, **params: Any
) -> dict[str, Any]:
    response = http.get(
        f"/api/v1/customers/{customer_id}/entitlements/check",
        params={"featureId": feature_id, **params},
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def server_usage(http: httpx.Client, customer_id: str, feature_id: str) -> float:
    usage: float = server_check(http, customer_id, feature_id)["currentUsage"]
    return usage


def eventually(probe: Callable[[], object], expected: object, *, within: float = DEADLINE) -> None:
    """Wait until `probe()` answers `expected`; fail if it has not within `within` s."""
    deadline = time.monotonic() + within
    while (seen := probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {seen!r} after {within} s, expected {expected!r}")
        time.sleep(0.02)


# --- 1. cached checks -------------------------------------------------------------------


class TestCachedChecks:
    def test_thousands_of_checks_of_a_loaded_customer_send_no_request(
        self, start_sdk: StartSdk, transport: CountingTransport, demo_http: httpx.Client
    ) -> None:
        add_region_feature(demo_http)
        customer(demo_http, "acme", plan_id="plan-pro")
        promote(demo_http, "acme", {"featureId": REGION, "enumValues": ["eu", "us"]})
        sdk = start_sdk(transport=transport)
        here = threading.current_thread().name

        first = sdk.get_boolean_entitlement("acme", SSO)
        assert (first.has_access, first.source) == (True, Source.SERVER)
        assert [s.path for s in transport.requests(thread=here)] == [
            "/api/v1/sdk/customers/acme/state"
        ]
        mine, everyone = len(transport.requests(thread=here)), len(transport.requests())

        sources: set[Source] = set()
        for _ in range(1000):
            answers = (
                sdk.get_boolean_entitlement("acme", SSO),
                sdk.get_metered_entitlement("acme", SEATS, requested_usage=2),
                sdk.get_numeric_entitlement("acme", SEATS),
                sdk.get_enum_entitlement("acme", REGION, requested_values=["eu"]),
            )
            assert all(a.has_access for a in answers), answers
            sources.update(a.source for a in answers)

        assert sources == {Source.CACHE}
        assert transport.requests(thread=here)[mine:] == []
        # The stream's start-up re-read (the features, and the customer if it was cached by
        # then) may still be on its way from the loader thread; nothing more.
        assert len(transport.requests()) - everyone <= 2, transport.requests()[everyone:]
        assert len(transport.streams()) == 1


# --- 2. the same decisions as the server ------------------------------------------------


@dataclass(frozen=True)
class Case:
    customer_id: str
    kind: str  # boolean, numeric, metered, enum
    feature_id: str
    granted: bool
    reason: AccessDeniedReason | None
    resource_id: str | None = None
    requested_usage: int | None = None
    requested_values: tuple[str, ...] | None = None


Answer = BooleanEntitlement | NumericEntitlement | MeteredEntitlement | EnumEntitlement


def ask_sdk(sdk: Tollgate, case: Case) -> Answer:
    where = {"resource_id": case.resource_id}
    if case.kind == "boolean":
        return sdk.get_boolean_entitlement(case.customer_id, case.feature_id, **where)
    if case.kind == "numeric":
        return sdk.get_numeric_entitlement(case.customer_id, case.feature_id, **where)
    if case.kind == "metered":
        return sdk.get_metered_entitlement(
            case.customer_id, case.feature_id, requested_usage=case.requested_usage, **where
        )
    return sdk.get_enum_entitlement(
        case.customer_id, case.feature_id, requested_values=case.requested_values, **where
    )


def ask_server(http: httpx.Client, case: Case) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if case.resource_id is not None:
        params["resourceId"] = case.resource_id
    if case.requested_usage is not None:
        params["requestedUsage"] = case.requested_usage
    if case.requested_values is not None:
        params["requestedValues"] = ",".join(case.requested_values)
    return server_check(http, case.customer_id, case.feature_id, **params)


def sdk_view(answer: Answer) -> tuple[object, ...]:
    """What the SDK's answer says, in the server's terms, as far as its kind tells."""
    reason = answer.access_denied_reason.value if answer.access_denied_reason else None
    if isinstance(answer, MeteredEntitlement):
        return (answer.has_access, reason, answer.usage_limit, answer.current_usage)
    if isinstance(answer, NumericEntitlement):
        return (answer.has_access, reason, answer.value)
    return (answer.has_access, reason)


def server_view(data: dict[str, Any], kind: str) -> tuple[object, ...]:
    head = (data["isGranted"], data["accessDeniedReason"])
    if kind == "metered":
        # A feature that is not a number has no usage; the SDK says 0.
        return (*head, data["usageLimit"], data["currentUsage"] or 0)
    if kind == "numeric":
        return (*head, data["usageLimit"])
    return head


R = AccessDeniedReason
NONE_GRANTED = R.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION
EXCEEDING = R.REQUESTED_USAGE_EXCEEDING_LIMIT
MISMATCH = R.FEATURE_TYPE_MISMATCH

CASES = [
    Case("ghost", "boolean", SSO, False, R.CUSTOMER_NOT_FOUND),
    Case("ghost", "metered", SEATS, False, R.CUSTOMER_NOT_FOUND),
    Case("idle", "boolean", SSO, False, R.NO_ACTIVE_SUBSCRIPTION),
    Case("idle", "metered", USERS, False, R.NO_ACTIVE_SUBSCRIPTION),
    Case("free", "boolean", SSO, False, NONE_GRANTED),
    Case("free", "enum", REGION, False, NONE_GRANTED),
    Case("free", "metered", SEATS, True, None),
    Case("free", "numeric", SEATS, True, None),
    Case("free", "boolean", SEATS, True, None),
    Case("free", "metered", SEATS, True, None, requested_usage=1),  # 2 used + 1 <= 3
    Case("free", "metered", SEATS, False, EXCEEDING, requested_usage=2),
    Case("free", "metered", USERS, True, None, requested_usage=93),  # 7 used + 93 <= 100
    Case("free", "metered", USERS, False, EXCEEDING, requested_usage=94),
    Case("free", "boolean", "feature-nope", False, R.FEATURE_NOT_FOUND),
    Case("free", "metered", "feature-nope", False, R.FEATURE_NOT_FOUND),
    Case("free", "enum", SSO, False, MISMATCH, requested_values=("eu",)),
    Case("free", "enum", SEATS, False, MISMATCH, requested_values=("eu",)),
    Case("free", "metered", SSO, False, MISMATCH, requested_usage=1),
    Case("gone", "boolean", SSO, False, R.CUSTOMER_IS_ARCHIVED),
    Case("gone", "metered", SEATS, False, R.CUSTOMER_IS_ARCHIVED),
    Case("teams", "boolean", SSO, False, NONE_GRANTED),
    Case("teams", "metered", SEATS, True, None),
    Case("teams", "boolean", SSO, True, None, resource_id="ws-1"),
    Case("teams", "metered", SEATS, True, None, resource_id="ws-1", requested_usage=20),
    Case("teams", "metered", SEATS, False, EXCEEDING, resource_id="ws-1", requested_usage=21),
    Case("teams", "boolean", SSO, False, R.CUSTOMER_RESOURCE_NOT_FOUND, resource_id="ws-2"),
    Case("promo", "boolean", SSO, True, None),
    Case("promo", "enum", REGION, True, None, requested_values=("eu", "us")),
    Case("promo", "enum", REGION, False, R.REQUESTED_VALUES_MISMATCH, requested_values=("apac",)),
    Case("promo", "metered", USERS, True, None, requested_usage=50),
    Case("promo", "metered", USERS, False, EXCEEDING, requested_usage=51),
    Case("promo", "metered", SEATS, False, R.NO_ACTIVE_SUBSCRIPTION),
]


@pytest.fixture
def situations(demo_http: httpx.Client) -> None:
    """Customers in every situation `CASES` asks about ("ghost" does not exist)."""
    add_region_feature(demo_http)
    customer(demo_http, "idle")
    customer(demo_http, "free", plan_id="plan-free")
    report(demo_http, "free", SEATS, 2, updateBehavior="SET")
    report(demo_http, "free", USERS, 7)
    customer(demo_http, "gone", plan_id="plan-free")
    archived = demo_http.post("/api/v1/customers/gone/archive")
    assert archived.status_code == 200, archived.text
    customer(demo_http, "teams", plan_id="plan-free")
    subscribe(demo_http, "teams", "plan-pro", resource_id="ws-1")
    customer(demo_http, "promo")
    promote(
        demo_http,
        "promo",
        {"featureId": SSO},
        {"featureId": REGION, "enumValues": ["eu", "us"]},
        {"featureId": USERS, "usageLimit": 50},
    )


@pytest.mark.usefixtures("situations")
class TestSameDecisionsAsTheServer:
    def test_every_situation_is_decided_alike(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        sdk = start_sdk()
        # Twice: the first check of each customer loads it, the others answer from memory.
        for attempt in ("loading", "cached"):
            differences = []
            for case in CASES:
                answer = ask_sdk(sdk, case)
                server = server_view(ask_server(demo_http, case), case.kind)
                expected = (case.granted, case.reason.value if case.reason else None)
                if sdk_view(answer) != server or server[:2] != expected:
                    differences.append((case, sdk_view(answer), server))
                if attempt == "cached":
                    assert answer.source is Source.CACHE, (case, answer)
            assert differences == [], attempt

    def test_the_limits_and_usage_the_sdk_gives(self, start_sdk: StartSdk) -> None:
        sdk = start_sdk()
        seats = sdk.get_metered_entitlement("free", SEATS)
        assert (seats.usage_limit, seats.current_usage, seats.remaining) == (3, 2, 1)
        users = sdk.get_metered_entitlement("free", USERS)
        assert (users.usage_limit, users.current_usage, users.reset_period) == (100, 7, "MONTH")
        assert users.usage_period_end is not None
        assert sdk.get_numeric_entitlement("teams", SEATS, resource_id="ws-1").value == 20
        region = sdk.get_enum_entitlement("promo", REGION)
        assert region.enum_values == frozenset({"eu", "us"})
        listed = {e.feature_id: type(e) for e in sdk.get_entitlements("promo")}
        assert listed == {
            USERS: MeteredEntitlement,
            REGION: EnumEntitlement,
            SSO: BooleanEntitlement,
        }


# --- 3. changes reach the SDK -----------------------------------------------------------


class TestChangesReachTheSdk:
    def test_a_subscription_provisioned_elsewhere(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme")
        sdk = start_sdk()
        denied = sdk.get_boolean_entitlement("acme", SSO)
        assert denied.access_denied_reason is R.NO_ACTIVE_SUBSCRIPTION

        subscribe(demo_http, "acme", "plan-free")
        eventually(lambda: sdk.get_numeric_entitlement("acme", SEATS).value, 3)
        assert sdk.get_boolean_entitlement("acme", SSO).access_denied_reason is NONE_GRANTED

        subscribe(demo_http, "acme", "plan-pro")
        eventually(lambda: sdk.get_boolean_entitlement("acme", SSO).has_access, True)
        seats = sdk.get_numeric_entitlement("acme", SEATS)
        assert (seats.value, seats.source) == (20, Source.CACHE)

    def test_usage_reported_by_other_clients(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk()
        other = start_sdk()
        assert sdk.get_metered_entitlement("acme", USERS).current_usage == 0

        report(demo_http, "acme", USERS, 5)
        eventually(lambda: sdk.get_metered_entitlement("acme", USERS).current_usage, 5)

        other.report_usage("acme", USERS, 11)
        assert other.flush()
        eventually(lambda: sdk.get_metered_entitlement("acme", USERS).current_usage, 16)
        full = sdk.get_metered_entitlement("acme", USERS, requested_usage=85)
        assert (full.has_access, full.source) == (False, Source.CACHE)

    def test_a_feature_added_to_the_catalog(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk()

        def reason() -> AccessDeniedReason | None:
            return sdk.get_boolean_entitlement("acme", "feature-audit").access_denied_reason

        assert reason() is R.FEATURE_NOT_FOUND

        feature = {"id": "feature-audit", "displayName": "Audit", "featureType": "BOOLEAN"}
        assert demo_http.post("/api/v1/features", json=feature).status_code == 201
        eventually(reason, NONE_GRANTED)

    def test_a_plan_change_published_for_all_customers(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk()
        assert sdk.get_metered_entitlement("acme", SEATS).usage_limit == 3

        assert demo_http.post("/api/v1/plans/plan-free/draft").status_code == 200
        changed = demo_http.patch(
            f"/api/v1/plans/plan-free/entitlements/{SEATS}",
            json={"type": "FEATURE", "usageLimit": 7},
        )
        assert changed.status_code == 200, changed.text
        published = demo_http.post(
            "/api/v1/plans/plan-free/publish", json={"migrationType": "ALL_CUSTOMERS"}
        )
        assert published.status_code == 200, published.text
        eventually(lambda: sdk.get_metered_entitlement("acme", SEATS).usage_limit, 7)


class TestAFailedRefreshIsTriedAgain:
    def test_an_upgrade_whose_refresh_failed_arrives_once_the_server_answers(
        self, start_sdk: StartSdk, transport: CountingTransport, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(transport=transport)
        # Cached by the loader, after the start-up re-read it queued before going live: no
        # load of acme is pending when its state requests start failing.
        sdk.prefetch(["acme"])
        eventually(
            lambda: [s.status for s in transport.requests(thread=LOADER) if s.path == STATES_PATH],
            [200],
        )
        cached = sdk.get_boolean_entitlement("acme", SSO)
        assert (cached.access_denied_reason, cached.source) == (NONE_GRANTED, Source.CACHE)

        refused = threading.Event()

        def state_unreachable(request: httpx.Request) -> httpx.Response | None:
            # A refresh reads the states of every customer it was told of in one request.
            if request.method == "POST" and request.url.path == STATES_PATH:
                refused.set()
                raise httpx.ConnectError("connection refused (by the test)", request=request)
            return None

        transport.intercept = state_unreachable
        subscribe(demo_http, "acme", "plan-pro")
        assert refused.wait(DEADLINE), "the SDK never tried to read acme after its upgrade"
        transport.intercept = None

        # Nothing else will announce acme again: only a retry brings the upgrade.
        eventually(
            lambda: sdk.get_boolean_entitlement("acme", SSO).has_access,
            True,
            within=RETRY_DEADLINE,
        )
        assert sdk.get_numeric_entitlement("acme", SEATS).value == 20


# --- 4. usage ----------------------------------------------------------------------------


class TestUsage:
    def test_a_report_counts_at_once_and_flush_delivers_it(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60)
        assert sdk.get_metered_entitlement("acme", USERS).current_usage == 0

        keys = [sdk.report_usage("acme", USERS, 4) for _ in range(3)]
        assert len(set(keys)) == 3
        users = sdk.get_metered_entitlement("acme", USERS, requested_usage=88)
        assert (users.current_usage, users.has_access, sdk.usage_waiting) == (12, True, 3)
        assert not sdk.get_metered_entitlement("acme", USERS, requested_usage=89).has_access
        assert server_usage(demo_http, "acme", USERS) == 0  # nothing sent yet

        assert sdk.flush()
        assert (sdk.usage_waiting, sdk.usage_dropped) == (0, 0)
        assert server_usage(demo_http, "acme", USERS) == 12
        assert sdk.get_metered_entitlement("acme", USERS).current_usage == 12

    def test_a_key_sent_again_is_counted_once(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60)
        assert sdk.report_usage("acme", USERS, 6, idempotency_key="login-1") == "login-1"
        assert sdk.flush()
        assert server_usage(demo_http, "acme", USERS) == 6

        sdk.report_usage("acme", USERS, 6, idempotency_key="login-1")  # a retry, say
        assert sdk.flush()
        assert server_usage(demo_http, "acme", USERS) == 6
        eventually(lambda: sdk.get_metered_entitlement("acme", USERS).current_usage, 6)

    def test_a_key_reused_for_another_report_is_dropped_alone(
        self, start_sdk: StartSdk, demo_http: httpx.Client
    ) -> None:
        """The server refuses it for good (409 idempotency_key_reused): waiting for it would
        hold up everything queued after it."""
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60)
        sdk.report_usage("acme", USERS, 6, idempotency_key="login-1")
        assert sdk.flush()
        sdk.report_usage("acme", USERS, 2)
        sdk.report_usage("acme", USERS, 7, idempotency_key="login-1")
        sdk.report_usage("acme", USERS, 3)
        assert sdk.flush(timeout=8)
        assert (sdk.usage_waiting, sdk.usage_dropped) == (0, 1)
        assert server_usage(demo_http, "acme", USERS) == 11

    def test_set_replaces_the_count(self, start_sdk: StartSdk, demo_http: httpx.Client) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        report(demo_http, "acme", SEATS, 1)
        sdk = start_sdk(flush_interval=60)
        assert sdk.get_metered_entitlement("acme", SEATS).current_usage == 1

        sdk.report_usage("acme", SEATS, 2, update_behavior="SET")
        sdk.report_usage("acme", SEATS, 1)
        seats = sdk.get_metered_entitlement("acme", SEATS)
        assert (seats.current_usage, seats.has_access) == (3, False)  # 3 used of 3

        assert sdk.flush()
        assert server_usage(demo_http, "acme", SEATS) == 3
        sdk.report_usage("acme", SEATS, 0, update_behavior="SET")
        assert sdk.get_metered_entitlement("acme", SEATS).current_usage == 0
        assert sdk.flush()
        assert server_usage(demo_http, "acme", SEATS) == 0
        with pytest.raises(ValueError, match="DELTA"):
            sdk.report_usage("acme", SEATS, 1, update_behavior="ADD")

    @pytest.mark.parametrize(
        ("customer_id", "feature_id"), [("acme", "feature-nope"), ("nobody", USERS)]
    )
    def test_an_invalid_report_is_dropped_alone(
        self, start_sdk: StartSdk, demo_http: httpx.Client, customer_id: str, feature_id: str
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60)
        sdk.report_usage("acme", USERS, 2)
        sdk.report_usage(customer_id, feature_id, 1)
        sdk.report_usage("acme", USERS, 3)
        assert sdk.flush()
        assert (sdk.usage_waiting, sdk.usage_dropped) == (0, 1)
        assert server_usage(demo_http, "acme", USERS) == 5
        assert sdk.get_metered_entitlement("acme", USERS).current_usage == 5

    def test_close_sends_what_is_queued(
        self, start_sdk: StartSdk, demo_http: httpx.Client, transport: CountingTransport
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60, transport=transport)
        sdk.report_usage("acme", USERS, 9)
        assert server_usage(demo_http, "acme", USERS) == 0
        sdk.close()
        assert sdk.usage_waiting == 0
        assert server_usage(demo_http, "acme", USERS) == 9

    def test_leaving_the_context_sends_what_is_queued(
        self, demo_tenant: Tenant, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        with Tollgate(
            demo_tenant.server_key,
            base_url=demo_tenant.base_url,
            flush_interval=60,
        ) as sdk:
            sdk.report_usage("acme", USERS, 4)
        assert server_usage(demo_http, "acme", USERS) == 4


class TestUsageTheServerCouldNotTakeWaits:
    @pytest.mark.parametrize(
        ("status", "code"), [(409, "conflict"), (401, "unauthenticated")], ids=["409", "401"]
    )
    def test_a_batch_answered_that_it_must_wait_is_sent_again(
        self,
        start_sdk: StartSdk,
        transport: CountingTransport,
        demo_http: httpx.Client,
        status: int,
        code: str,
    ) -> None:
        """409: another request still holds an idempotency key; 401: a key being rotated.
        Neither says the reports are invalid, so none may be dropped."""
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60, transport=transport)
        answered: list[httpx.Request] = []

        def busy_once(request: httpx.Request) -> httpx.Response | None:
            if request.method == "POST" and request.url.path == USAGE_PATH and not answered:
                answered.append(request)  # not forwarded: the server never saw it
                error = {"code": code, "message": "held by another request", "field": None}
                return httpx.Response(status, json={"error": error})
            return None

        transport.intercept = busy_once
        sdk.report_usage("acme", USERS, 5)
        assert sdk.flush(timeout=8)

        assert (sdk.usage_waiting, sdk.usage_dropped) == (0, 0)
        posts = [s.status for s in transport.requests() if s.path == USAGE_PATH]
        assert posts == [status, 200]
        assert server_usage(demo_http, "acme", USERS) == 5
        assert sdk.get_metered_entitlement("acme", USERS).current_usage == 5


class SharedSocketTransport(CountingTransport):
    """Also holds a second descriptor of the stream's socket, as a process forked after
    the client started (a pre-forking web server's worker) would: closing the client's
    descriptor alone then neither ends the connection nor wakes the thread reading it."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == STREAM_PATH:
            sock = response.extensions["network_stream"].get_extra_info("socket")
            self.held.append(os.dup(sock.fileno()))
        return response

    def close(self) -> None:
        for descriptor in self.held:
            os.close(descriptor)
        self.held.clear()
        super().close()


def new_threads(before: set[threading.Thread], name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.name == name]


class TestClose:
    def test_close_ends_the_stream(self, start_sdk: StartSdk) -> None:
        before = set(threading.enumerate())
        shared = SharedSocketTransport()
        try:
            sdk = start_sdk(transport=shared)
            [stream] = new_threads(before, "tollgate-sdk-stream")
            assert shared.held
            sdk.close()
            # close() waits for the stream's thread: still alive means its read never ended.
            assert not stream.is_alive()
        finally:
            shared.close()

    def test_close_right_after_the_start_ends_the_stream(self, start_sdk: StartSdk) -> None:
        before = set(threading.enumerate())
        sdk = start_sdk(wait=False)  # the stream is still connecting
        [stream] = new_threads(before, "tollgate-sdk-stream")
        sdk.close()
        assert not stream.is_alive()

    def test_a_closed_client_is_not_live(self, start_sdk: StartSdk) -> None:
        sdk = start_sdk()
        assert sdk.is_live
        sdk.close()
        assert not sdk.is_live

    def test_a_report_after_close_is_dropped_and_not_sent(
        self, start_sdk: StartSdk, transport: CountingTransport, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        sdk = start_sdk(flush_interval=60, transport=transport)
        sdk.close()
        sent = len(transport.sent)

        sdk.report_usage("acme", USERS, 3)
        sdk.report_event("acme", "login")

        assert (sdk.usage_dropped, sdk.usage_waiting) == (2, 0)
        assert sdk.flush(timeout=1)
        assert transport.sent[sent:] == []
        assert server_usage(demo_http, "acme", USERS) == 0


EXITING_PROGRAM = """
import sys
from tollgate_sdk import Tollgate

tollgate = Tollgate(sys.argv[1], base_url=sys.argv[2], flush_interval=3600)
tollgate.report_usage("acme", sys.argv[3], 7)
# No close(): the interpreter exits with the report still queued.
"""


class TestInterpreterExit:
    def test_what_is_queued_is_sent_when_the_program_ends(
        self, demo_tenant: Tenant, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        args = [demo_tenant.server_key, demo_tenant.base_url, USERS]
        finished = subprocess.run(
            [sys.executable, "-c", EXITING_PROGRAM, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr
        assert server_usage(demo_http, "acme", USERS) == 7


# --- 5. customer tokens ------------------------------------------------------------------


class TestCustomerTokens:
    def test_a_token_reads_its_own_customer_only(
        self, demo_tenant: Tenant, demo_http: httpx.Client, signing_secret: str
    ) -> None:
        for name in ("acme", "globex"):
            customer(demo_http, name, plan_id="plan-free")
        token = customer_token("acme", signing_secret)
        assert token == server_customer_token("acme", signing_secret)
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            browser.headers["X-CUSTOMER-TOKEN"] = token
            for name, status in (("acme", 200), ("globex", 403)):
                check = browser.get(
                    f"/api/v1/customers/{name}/entitlements/check", params={"featureId": SEATS}
                )
                state = browser.get(f"/api/v1/sdk/customers/{name}/state")
                assert (check.status_code, state.status_code) == (status, status), name
            state = browser.get("/api/v1/sdk/customers/acme/state").json()["data"]
            assert state["customerId"] == "acme"

    def test_a_token_signed_with_another_secret_is_refused(
        self, demo_tenant: Tenant, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            browser.headers["X-CUSTOMER-TOKEN"] = customer_token("acme", "not-the-secret")
            assert browser.get("/api/v1/sdk/customers/acme/state").status_code == 401

    def test_the_stream_refuses_a_client_key(
        self, demo_tenant: Tenant, start_sdk: StartSdk, transport: CountingTransport
    ) -> None:
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            assert browser.get("/api/v1/sdk/stream").status_code == 403
        sdk = start_sdk(api_key=demo_tenant.client_key, transport=transport, wait=False)
        eventually(lambda: [s.status for s in transport.streams()][:1], [403])
        assert not sdk.is_live


# --- 6. AsyncTollgate --------------------------------------------------------------------


class TestAsyncTollgate:
    def test_checks_usage_and_changes_under_asyncio(
        self, demo_tenant: Tenant, demo_http: httpx.Client
    ) -> None:
        customer(demo_http, "acme", plan_id="plan-free")

        async def story() -> None:
            async with AsyncTollgate(
                demo_tenant.server_key, base_url=demo_tenant.base_url, flush_interval=60
            ) as sdk:
                assert await sdk.wait_for_initialization(timeout=10)
                first = await sdk.get_boolean_entitlement("acme", SSO)
                assert (first.access_denied_reason, first.source) == (NONE_GRANTED, Source.SERVER)
                seats = await sdk.get_numeric_entitlement("acme", SEATS)
                assert (seats.value, seats.source) == (3, Source.CACHE)

                sdk.report_usage("acme", USERS, 8)
                users = await sdk.get_metered_entitlement("acme", USERS)
                assert (users.current_usage, users.source) == (8, Source.CACHE)
                assert await sdk.flush()
                assert server_usage(demo_http, "acme", USERS) == 8

                subscribe(demo_http, "acme", "plan-pro")
                deadline = time.monotonic() + DEADLINE
                while not (await sdk.get_boolean_entitlement("acme", SSO)).has_access:
                    assert time.monotonic() < deadline, "the upgrade never reached the SDK"
                    await asyncio.sleep(0.02)
                # The new plan's usage period starts now: the server counts afresh.
                users = await sdk.get_metered_entitlement("acme", USERS)
                counted = server_usage(demo_http, "acme", USERS)
                assert (users.usage_limit, users.current_usage) == (1000, counted)
                sdk.report_usage("acme", USERS, 1)
                users = await sdk.get_metered_entitlement("acme", USERS)
                assert users.current_usage == counted + 1
            # Leaving the block sent what was queued.
            assert server_usage(demo_http, "acme", USERS) == counted + 1

        asyncio.run(story())
