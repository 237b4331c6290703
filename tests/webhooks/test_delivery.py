"""Webhooks delivered to a real receiver: signed, retried, in order, never for a rollback."""

from datetime import timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support import START, Clocked
from tests.support.webhooks import Receiver, endpoint


def provision(http: httpx.Client, customer: str, **fields: str) -> None:
    response = http.post("/api/v1/customers", json={"id": customer, **fields})
    assert response.status_code == 201, response.text


def messages(http: httpx.Client, endpoint_id: str) -> list[dict[str, object]]:
    listed = http.get(f"/api/v1/webhooks/{endpoint_id}/messages")
    assert listed.status_code == 200, listed.text
    data: list[dict[str, object]] = listed.json()["data"]
    return data


class TestSigned:
    def test_a_change_reaches_the_receiver_signed(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        provision(http, "acme", name="Acme", email="ops@acme.test")
        assert clocked.run_jobs()["webhooks.deliver"] == 1
        (request,) = receiver.received
        payload = Webhook(created["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "customer.created"
        assert (payload["id"], payload["name"], payload["email"]) == (
            "acme",
            "Acme",
            "ops@acme.test",
        )
        assert payload["messageId"] == request.headers["webhook-id"]
        assert "stigg-webhooks-secret" not in request.headers

    def test_receivers_written_for_stigg_get_the_secret_header(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver, sendStiggSecret=True)
        provision(http, "acme")
        clocked.run_jobs()
        assert receiver.received[0].headers["stigg-webhooks-secret"] == created["secret"]

    def test_after_a_rotation_both_secrets_verify(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        rotated = http.post(f"/api/v1/webhooks/{created['id']}/rotate-secret").json()["data"]
        assert rotated["secret"] != created["secret"]
        provision(http, "acme")
        clocked.run_jobs()
        (request,) = receiver.received
        for secret in (created["secret"], rotated["secret"]):
            Webhook(secret).verify(request.body, request.headers)

    def test_only_the_events_asked_for(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver, eventTypes=["customer.updated"])
        provision(http, "acme")
        assert http.patch("/api/v1/customers/acme", json={"name": "Acme"}).status_code == 200
        clocked.run_jobs()
        assert [r.payload["type"] for r in receiver.received] == ["customer.updated"]

    def test_a_test_event(self, http: httpx.Client, receiver: Receiver, clocked: Clocked) -> None:
        created = endpoint(http, receiver)
        assert http.post(f"/api/v1/webhooks/{created['id']}/test").status_code == 202
        clocked.run_jobs()
        assert receiver.received[0].payload["type"] == "test"

    def test_messages_page_oldest_first(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        for n in range(5):
            provision(http, f"customer-{n}")
        url = f"/api/v1/webhooks/{created['id']}/messages"
        first = http.get(url, params={"limit": 3}).json()
        rest = http.get(url, params={"limit": 3, "after": first["pagination"]["next"]}).json()
        customers = [m["payload"]["id"] for m in first["data"] + rest["data"]]
        assert customers == [f"customer-{n}" for n in range(5)]
        assert rest["pagination"]["next"] is None
        clocked.run_jobs()
        owed = http.get(url, params={"status": "PENDING"}).json()["data"]
        assert owed == []


class TestRetries:
    def test_failures_back_off_then_succeed(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        answers = iter([500, 503, 200])
        receiver.answer = lambda _request: next(answers)
        provision(http, "acme")
        clocked.run_jobs()
        clocked.run_jobs()  # not due yet: nothing is sent
        assert len(receiver.received) == 1
        clocked.clock.advance(timedelta(seconds=6))
        clocked.run_jobs()
        clocked.clock.advance(timedelta(seconds=36))
        clocked.run_jobs()
        assert len(receiver.received) == 3
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one id
        (message,) = messages(http, created["id"])
        assert (message["status"], message["attempts"]) == ("DELIVERED", 3)
        attempts = http.get(
            f"/api/v1/webhooks/{created['id']}/messages/{message['id']}/attempts"
        ).json()["data"]
        assert [a["statusCode"] for a in attempts] == [500, 503, 200]

    def test_gone_disables_the_endpoint(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        receiver.answer = lambda _request: 410
        provision(http, "acme")
        provision(http, "globex")
        clocked.run_jobs()
        read = http.get(f"/api/v1/webhooks/{created['id']}").json()["data"]
        assert read["isEnabled"] is False
        assert "410" in read["disabledReason"]
        # The two messages went out together (one batch); nothing goes after the 410.
        assert len(receiver.received) == 2
        provision(http, "initech")
        clocked.clock.advance(timedelta(hours=1))
        clocked.run_jobs()
        assert len(receiver.received) == 2

    def test_a_failed_message_can_be_sent_again(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        provision(http, "acme")
        clocked.run_jobs()
        (message,) = messages(http, created["id"])
        again = http.post(f"/api/v1/webhooks/{created['id']}/messages/{message['id']}/redeliver")
        assert again.json()["data"]["redelivered"] == 1
        clocked.run_jobs()
        assert [r.headers["webhook-id"] for r in receiver.received] == [message["id"]] * 2


class TestOrder:
    def test_a_customers_messages_wait_for_an_earlier_one(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver)
        receiver.answer = lambda r: 500 if r.payload.get("name") == "first" else 200
        provision(http, "acme", name="first")
        assert http.patch("/api/v1/customers/acme", json={"name": "second"}).status_code == 200
        provision(http, "globex")
        clocked.run_jobs()
        sent = [(r.payload["id"], r.payload["type"]) for r in receiver.received]
        # Different customers may go at once: no order between them.
        assert sorted(sent) == [("acme", "customer.created"), ("globex", "customer.created")]
        receiver.answer = lambda _request: 200
        # The retry is due a few seconds after the failure, counted from when the drain that
        # failed it ran (a drain's moment moves with real time): on a loaded machine that is
        # later than the clock's start, so step until it is due rather than guess once.
        for _ in range(10):
            clocked.clock.advance(timedelta(seconds=6))
            clocked.run_jobs()
            acme = [r.payload["type"] for r in receiver.received if r.payload["id"] == "acme"]
            if len(acme) >= 3:
                break
        assert acme == ["customer.created", "customer.created", "customer.updated"]


class TestNothingForARollback:
    def test_a_refused_change_owes_nothing(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver)
        provision(http, "acme")
        assert http.post("/api/v1/customers", json={"id": "acme"}).status_code == 409
        clocked.run_jobs()
        assert len(messages(http, created["id"])) == 1
        assert len(receiver.received) == 1


@pytest.mark.usefixtures("demo_tenant")
class TestUsage:
    def test_measurement_reported(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver, eventTypes=["measurement.reported"])
        provision(http, "acme")
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-free"})
        usage = {"customerId": "acme", "featureId": "feature-active-users", "value": 3}
        assert http.post("/api/v1/usage", json={"usages": [usage]}).status_code == 200
        clocked.run_jobs()
        (request,) = receiver.received
        assert (request.payload["currentUsage"], request.payload["currentChange"]) == (3, 3)


class TestSubscriptionEvents:
    def test_a_trial_from_start_to_conversion(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver)
        provision(http, "acme")
        created = http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-pro", "id": "sub-acme"},
        )
        assert created.status_code == 200, created.text
        clocked.clock.advance(timedelta(days=14, minutes=1))
        clocked.run_jobs()
        clocked.run_jobs()
        sent = [r.payload["type"] for r in receiver.received]
        assert sent == [
            "customer.created",
            "subscription.created",
            "subscription.trial_started",
            "entitlements.updated",
            "subscription.trial_converted",  # the same terms: no entitlements.updated
            "invoice.created",  # the first paid period
        ]
        converted = receiver.received[-2].payload
        assert (converted["id"], converted["status"]) == ("sub-acme", "ACTIVE")
        assert converted["plan"]["id"] == "plan-pro"
        assert converted["customer"] == {"id": "acme"}

    def test_cancel(self, http: httpx.Client, receiver: Receiver, clocked: Clocked) -> None:
        provision(http, "acme")
        http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-free", "id": "sub-acme"},
        )
        endpoint(http, receiver, eventTypes=["subscription.canceled", "subscription.created"])
        cancelled = http.post(
            "/api/v1/subscriptions/sub-acme/cancel", json={"cancellationTime": "IMMEDIATE"}
        )
        assert cancelled.status_code == 200, cancelled.text
        clocked.run_jobs()
        sent = [(r.payload["type"], r.payload["id"]) for r in receiver.received]
        assert ("subscription.canceled", "sub-acme") in sent

    @pytest.mark.parametrize("when", ["IMMEDIATE", "END_OF_BILLING_PERIOD"])
    def test_cancel_into_the_downgrade_plan_says_both(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked, when: str
    ) -> None:
        provision(http, "acme")
        http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "id": "sub-acme",
                "trialOverrideConfiguration": {"isTrial": False},
            },
        )
        endpoint(http, receiver, eventTypes=["subscription.canceled", "subscription.created"])
        cancelled = http.post(
            "/api/v1/subscriptions/sub-acme/cancel", json={"cancellationTime": when}
        )
        assert cancelled.status_code == 200, cancelled.text
        clocked.clock.set(START + timedelta(days=32))
        clocked.run_jobs()
        sent = [(r.payload["type"], r.payload["plan"]["id"]) for r in receiver.received]
        assert sent == [
            ("subscription.canceled", "plan-pro"),
            ("subscription.created", "plan-free"),
        ]


class TestPromotionEvents:
    def test_granted_updated_revoked_and_expired(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        provision(http, "acme")
        endpoint(http, receiver, eventTypes=[
            "promotionalEntitlement.granted", "promotionalEntitlement.updated",
            "promotionalEntitlement.revoked", "promotionalEntitlement.expired",
        ])  # fmt: skip

        def grant(feature: str, period: str) -> None:
            body = {"promotionalEntitlements": [{"featureId": feature, "period": period}]}
            granted = http.post("/api/v1/customers/acme/promotional-entitlements", json=body)
            assert granted.status_code in (200, 201), granted.text

        grant("feature-sso", "1 week")
        grant("feature-sso", "1 month")
        revoked = http.delete("/api/v1/customers/acme/promotional-entitlements/feature-sso")
        assert revoked.status_code == 200, revoked.text
        grant("feature-sso", "1 week")
        clocked.clock.advance(timedelta(days=8))
        clocked.run_jobs()
        clocked.run_jobs()
        sent = [r.payload["type"].split(".")[1] for r in receiver.received]
        assert sent == ["granted", "updated", "revoked", "granted", "expired"]
        last = receiver.received[-1].payload
        assert (last["customer"], last["feature"], last["status"]) == (
            {"id": "acme"},
            {"id": "feature-sso"},
            "Expired",
        )


class TestUsageExceeded:
    def test_once_per_period_when_usage_reaches_the_limit(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        provision(http, "acme")
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-free"})
        endpoint(http, receiver, eventTypes=["entitlement.usage_exceeded"])

        def report(value: int, behavior: str = "DELTA") -> None:
            usage = {
                "customerId": "acme",
                "featureId": "feature-active-users",  # plan-free: 100 a month
                "value": value,
                "updateBehavior": behavior,
            }
            assert http.post("/api/v1/usage", json={"usages": [usage]}).status_code == 200

        report(60)
        report(39)
        clocked.run_jobs()
        assert receiver.received == []
        report(1)  # 100: the limit is reached
        report(5)
        report(0, "SET")
        report(120, "SET")  # reached again in the same period: nothing more
        clocked.run_jobs()
        (request,) = receiver.received
        sent = request.payload
        assert (sent["usageLimit"], sent["currentUsage"], sent["thresholdPercentage"]) == (
            100,
            100,
            100,
        )
        assert sent["customer"] == {"id": "acme"}
        assert sent["feature"] == {"id": "feature-active-users"}

    def test_events_that_reach_the_limit(
        self, http: httpx.Client, receiver: Receiver, clocked: Clocked
    ) -> None:
        provision(http, "acme")
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-free"})
        endpoint(http, receiver, eventTypes=["entitlement.usage_exceeded"])
        calls = [  # plan-free: 1,000 API calls a month
            {"customerId": "acme", "eventName": "api_call", "idempotencyKey": f"c{n}"}
            for n in range(1_000)
        ]
        assert http.post("/api/v1/events", json={"events": calls}).status_code == 200
        clocked.run_jobs()
        (request,) = receiver.received
        assert request.payload["feature"] == {"id": "feature-api-calls"}
        assert request.payload["currentUsage"] == 1_000
