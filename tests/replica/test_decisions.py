"""The replica decides every check as Tollgate does: a table of situations (every feature
type and every deny reason, as the engine's own tests cover them), each asked of both."""

from typing import Any

import httpx
import pytest

from tests.replica.conftest import Pair, eventually
from tests.support import factories

# (customer, feature, what is asked) -> the reason Tollgate gives (None: granted).
SITUATIONS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("t-plan", "feature-sso", {}, None),
    ("t-plan", "feature-sso", {"requestedUsage": 1}, "FeatureTypeMismatch"),
    ("t-plan", "feature-region", {"requestedValues": ["eu"]}, None),
    ("t-plan", "feature-region", {"requestedValues": ["eu", "apac"]}, "RequestedValuesMismatch"),
    ("t-plan", "feature-storage", {"requestedUsage": 50}, None),  # a soft limit
    ("t-plan", "feature-active-users", {}, None),
    ("t-plan", "feature-active-users", {"requestedUsage": 2}, None),
    ("t-plan", "feature-active-users", {"requestedUsage": 3}, "RequestedUsageExceedingLimit"),
    ("t-plan", "feature-api-calls", {}, "Revoked"),
    ("t-plan", "feature-seats", {}, "NoFeatureEntitlementInSubscription"),
    ("t-plan", "feature-nope", {}, "FeatureNotFound"),
    ("t-plan", "feature-sso", {"resourceId": "ws-nope"}, "CustomerResourceNotFound"),
    ("t-none", "feature-sso", {}, "NoActiveSubscription"),
    ("t-archived", "feature-sso", {}, "CustomerIsArchived"),
    ("t-unknown", "feature-sso", {}, "CustomerNotFound"),
]
# What both answers must agree on, besides the reason.
COMPARED = (
    "isGranted",
    "accessDeniedReason",
    "currentUsage",
    "usageLimit",
    "hasUnlimitedUsage",
    "resetPeriod",
    "usagePeriodStart",
    "usagePeriodEnd",
    "validUntil",
)


def _catalog_and_customers(http: httpx.Client) -> None:
    factories.feature(
        http,
        id="feature-region",
        featureType="ENUM",
        meterType="None",
        enumConfiguration=[{"value": v, "displayName": v} for v in ("eu", "us", "apac")],
    )
    factories.feature(http, id="feature-storage")
    factories.plan(
        http,
        id="plan-replica",
        entitlements=[
            {"id": "feature-sso", "type": "FEATURE"},
            {"id": "feature-region", "type": "FEATURE", "enumValues": ["eu", "us"]},
            {"id": "feature-storage", "type": "FEATURE", "usageLimit": 10, "hasSoftLimit": True},
            {
                "id": "feature-active-users",
                "type": "FEATURE",
                "usageLimit": 5,
                "resetPeriod": "MONTH",
            },
            {"id": "feature-api-calls", "type": "FEATURE", "usageLimit": 9, "isGranted": False},
        ],
        publish=True,
    )
    for customer in ("t-plan", "t-none", "t-archived"):
        assert http.post("/api/v1/customers", json={"id": customer}).status_code == 201
    for customer, plan in (("t-plan", "plan-replica"), ("t-archived", "plan-free")):
        provisioned = http.post(
            "/api/v1/subscriptions", json={"customerId": customer, "planId": plan}
        )
        assert provisioned.status_code == 200, provisioned.text
    usages = [
        {"customerId": "t-plan", "featureId": "feature-active-users", "value": 3},
        {"customerId": "t-plan", "featureId": "feature-storage", "value": 12},
    ]
    assert http.post("/api/v1/usage", json={"usages": usages}).status_code == 200
    assert http.post("/api/v1/customers/t-archived/archive").status_code == 200


def _tollgate(http: httpx.Client, customer: str, feature: str, asked: dict[str, Any]) -> Any:
    params = {"featureId": feature, **asked}
    if "requestedValues" in asked:
        params["requestedValues"] = ",".join(asked["requestedValues"])
    answer = http.get(f"/api/v1/customers/{customer}/entitlements/check", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_every_situation_is_decided_as_tollgate_decides_it(pair: Pair) -> None:
    with pair.http() as http:
        _catalog_and_customers(http)
        expected = [_tollgate(http, c, f, asked) for c, f, asked, _ in SITUATIONS]
    assert [e["accessDeniedReason"] for e in expected] == [s[3] for s in SITUATIONS]

    def replica_answers() -> list[dict[str, Any]]:
        return [pair.replica.check(c, f, **asked).json() for c, f, asked, _ in SITUATIONS]

    def agree() -> bool:
        answers = replica_answers()
        return all(
            {k: a.get(k) for k in COMPARED} == {k: e[k] for k in COMPARED}
            for a, e in zip(answers, expected, strict=True)
        )

    try:
        eventually(agree, "the replica's answers equal Tollgate's")
    except AssertionError:
        for situation, answer, wanted in zip(SITUATIONS, replica_answers(), expected, strict=True):
            mine = {k: answer.get(k) for k in COMPARED}
            theirs = {k: wanted[k] for k in COMPARED}
            assert mine == theirs, situation
        raise
    for (_, _, _, reason), answer in zip(SITUATIONS, replica_answers(), strict=True):
        assert answer["hasAccess"] is (reason is None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"featureId": "feature-sso"}, "customerId"),
        ({"customerId": "t-plan"}, "featureId"),
        ({"customerId": "t-plan", "featureId": "f", "requestedUsage": -1}, "requestedUsage"),
        ({"customerId": "t-plan", "featureId": "f", "requestedUsage": "3"}, "requestedUsage"),
        ({"customerId": "t-plan", "featureId": "f", "requestedValues": "eu"}, "requestedValues"),
        ({"customerId": "t-plan", "featureId": "f", "resourceId": 5}, "resourceId"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    pair: Pair, body: dict[str, Any], field: str
) -> None:
    answer = httpx.post(f"{pair.replica.url}/check-access", json=body)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert field in answer.json()["error"]
