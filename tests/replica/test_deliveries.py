"""Deliveries that must change nothing (forged, stale, repeated, out of order, malformed),
and the hosted platform's payloads, sent straight to a running replica."""

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.replica.conftest import STIGG_SECRET, Pair

CUSTOMER = """query ($id: ID!) {
  customer(id: $id) { id name email isArchived subscriptions { id status planId planName } }
}"""


def _at(seconds_ago: float = 0) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return moment.isoformat().replace("+00:00", "Z")


def _customer_event(
    customer_id: str, name: str, *, at: str, kind: str = "created"
) -> dict[str, Any]:
    return {
        "type": f"customer.{kind}",
        "messageId": f"msg_{secrets.token_hex(8)}",
        "timestamp": at,
        "id": customer_id,
        "name": name,
        "email": f"{customer_id}@example.test",
        "metadata": {},
    }


def _name(pair: Pair, customer_id: str) -> str | None:
    found = pair.replica.graphql(CUSTOMER, id=customer_id)["customer"]
    return found["name"] if found else None


class TestForged:
    def test_a_wrong_signature_a_stale_one_and_none_are_refused(self, pair: Pair) -> None:
        event = _customer_event("forged-1", "Forged", at=_at())
        wrong = pair.replica.deliver(
            event, secret="whsec_" + "c29tZW9uZS1lbHNlcy1zZWNyZXQtMzItYnl0ZXM="
        )
        assert wrong.status_code == 401
        assert wrong.json()["field"] == "webhook-signature"
        stale = pair.replica.deliver(event, at=int(time.time()) - 600)
        assert stale.status_code == 401
        unsigned = httpx.post(f"{pair.replica.url}/webhook", json=event)
        assert unsigned.status_code == 401
        wrong_shared = httpx.post(
            f"{pair.replica.url}/webhook", json=event, headers={"stigg-webhooks-secret": "guess"}
        )
        assert wrong_shared.status_code == 401
        assert _name(pair, "forged-1") is None


class TestRepeatedAndReordered:
    def test_a_second_delivery_of_a_message_changes_nothing(self, pair: Pair) -> None:
        first = _customer_event("dup-1", "First", at=_at(5))
        assert pair.replica.deliver(first).json() == {"applied": "applied"}
        later = _customer_event("dup-1", "Later", at=_at(1), kind="updated")
        assert pair.replica.deliver(later).json() == {"applied": "applied"}
        # The first message again, as a retry after a lost answer would send it.
        again = pair.replica.deliver(first)
        assert (again.status_code, again.json()) == (200, {"applied": "duplicate"})
        assert _name(pair, "dup-1") == "Later"

    def test_an_older_event_than_what_is_stored_changes_nothing(self, pair: Pair) -> None:
        newer = _customer_event("order-1", "Newer", at=_at(1))
        older = _customer_event("order-1", "Older", at=_at(60), kind="updated")
        assert pair.replica.deliver(newer).json() == {"applied": "applied"}
        assert pair.replica.deliver(older).json() == {"applied": "stale"}
        assert _name(pair, "order-1") == "Newer"

    def test_a_subscription_before_its_customer(self, pair: Pair) -> None:
        subscription = {
            "type": "subscription.created",
            "messageId": f"msg_{secrets.token_hex(8)}",
            "timestamp": _at(2),
            "id": "sub-early",
            "status": "ACTIVE",
            "startDate": _at(3600),
            "customer": {"id": "early-1"},
            "plan": {"id": "plan-x", "name": "X"},
            "addons": [],
        }
        assert pair.replica.deliver(subscription).json() == {"applied": "applied"}
        # Known only from the subscription: not a customer yet.
        denied = pair.replica.check("early-1", "feature-sso")
        assert denied.json()["accessDeniedReason"] == "CustomerNotFound"
        assert (
            pair.replica.deliver(_customer_event("early-1", "Early", at=_at(1))).status_code == 200
        )
        found = pair.replica.graphql(CUSTOMER, id="early-1")["customer"]
        assert found["name"] == "Early"
        assert [s["id"] for s in found["subscriptions"]] == ["sub-early"]

    def test_a_body_past_one_mebibyte_is_refused(self, pair: Pair) -> None:
        event = _customer_event("big-1", "x" * (1 << 21), at=_at())
        refused = pair.replica.deliver(event)
        assert (refused.status_code, refused.json()["field"]) == (413, "body")
        huge_check = httpx.post(
            f"{pair.replica.url}/check-access", content=b"{" + b" " * (1 << 21) + b"}"
        )
        assert huge_check.status_code == 413
        assert _name(pair, "big-1") is None

    def test_a_malformed_payload_is_refused_naming_the_field(self, pair: Pair) -> None:
        event = _customer_event("bad-1", "Bad", at=_at())
        del event["id"]
        refused = pair.replica.deliver(event)
        assert refused.status_code == 400
        assert refused.json()["field"] == "id"
        measurement = {
            "type": "measurement.reported",
            "messageId": f"msg_{secrets.token_hex(8)}",
            "timestamp": _at(),
            "customer": {"id": "bad-1"},
            "feature": {"id": "feature-x"},
        }
        refused = pair.replica.deliver(measurement)
        assert (refused.status_code, refused.json()["field"]) == (400, "currentUsage")
        assert _name(pair, "bad-1") is None


class TestTheHostedPlatformsPayloads:
    """Shapes as the hosted platform sends them (flat objects, nested ids, its meter type
    names, its shared-secret header)."""

    def _send(self, pair: Pair, payload: dict[str, Any]) -> httpx.Response:
        common = {"messageId": f"msg_{secrets.token_hex(8)}", "environmentId": "env-1"}
        return httpx.post(
            f"{pair.replica.url}/webhook",
            json={**common, **payload},
            headers={"Stigg-Webhooks-Secret": STIGG_SECRET},
        )

    def test_customers_subscriptions_entitlements_and_usage(self, pair: Pair) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        end = start + timedelta(days=30)
        sent: list[dict[str, Any]] = [
            {
                "type": "customer.created",
                "timestamp": _at(5),
                "entityId": "c0ffee",
                "id": "hosted-1",
                "name": "Hosted",
                "email": "ops@hosted.test",
                "billingId": None,
                "metadata": {"tier": "gold"},
            },
            {
                "type": "subscription.created",
                "timestamp": _at(4),
                "entityId": "5ub",
                "id": "sub-hosted-1",
                "status": "ACTIVE",
                "billingPeriod": "MONTHLY",
                "startDate": start.isoformat(),
                "endDate": None,
                "isTrialSubscription": False,
                "customer": {"id": "hosted-1", "name": "Hosted"},
                "resource": None,
                "plan": {"id": "plan-basic", "name": "Basic", "pricingType": "PAID"},
                "addons": [{"id": "addon-more", "name": "More", "quantity": 2}],
            },
            {
                "type": "entitlements.updated",
                "timestamp": _at(3),
                "trigger": "SUBSCRIPTION_CREATED",
                "customer": {"id": "hosted-1"},
                "resource": None,
                "entitlements": [
                    {
                        "feature": {
                            "id": "feature-calls",
                            "name": "Calls",
                            "featureType": "NUMBER",
                            "meterType": "Incremental",
                            "units": "call",
                            "status": "ACTIVE",
                        },
                        "usageLimit": 10,
                        "hasUnlimitedUsage": False,
                        "hasSoftLimit": False,
                        "currentUsage": 2,
                        "resetPeriod": "MONTH",
                        "usagePeriodAnchor": start.isoformat(),
                        "usagePeriodStart": start.isoformat(),
                        "usagePeriodEnd": end.isoformat(),
                    },
                    {
                        "feature": {
                            "id": "feature-flag",
                            "name": "Flag",
                            "featureType": "BOOLEAN",
                            "meterType": "None",
                        },
                    },
                ],
            },
            {
                "type": "measurement.reported",
                "timestamp": _at(2),
                "currentChange": 7,
                "currentUsage": 9,
                "usageLimit": 10,
                "hasUnlimitedUsage": False,
                "resetPeriod": "MONTH",
                "usagePeriodStart": start.isoformat(),
                "usagePeriodEnd": end.isoformat(),
                "feature": {"id": "feature-calls"},
                "customer": {"id": "hosted-1"},
                "resource": None,
            },
        ]
        for payload in sent:
            answer = self._send(pair, payload)
            assert answer.json() == {"applied": "applied"}, answer.text
        found = pair.replica.graphql(CUSTOMER, id="hosted-1")["customer"]
        assert found["email"] == "ops@hosted.test"
        assert found["subscriptions"] == [
            {"id": "sub-hosted-1", "status": "ACTIVE", "planId": "plan-basic", "planName": "Basic"}
        ]
        assert pair.replica.check("hosted-1", "feature-flag").status_code == 200
        one_more = pair.replica.check("hosted-1", "feature-calls", requestedUsage=1)
        assert (one_more.status_code, one_more.json()["currentUsage"]) == (200, 9)
        two_more = pair.replica.check("hosted-1", "feature-calls", requestedUsage=2)
        assert two_more.status_code == 403
        assert two_more.json()["accessDeniedReason"] == "RequestedUsageExceedingLimit"
        deleted = {**sent[0], "type": "customer.deleted", "timestamp": _at(1)}
        assert self._send(pair, deleted).json() == {"applied": "applied"}
        archived = pair.replica.check("hosted-1", "feature-flag")
        assert archived.json()["accessDeniedReason"] == "CustomerIsArchived"
