"""Invoices charged through Stripe (localstripe) by the collection job: paid once, declined
and retried on the schedule until the product's rules end the subscription, taken up
after a crash without a second charge, settled by Stripe's webhooks."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stigg

from tests.graphql_api.test_graphql import Sdk
from tests.payments.conftest import Connected, with_a_card_stripe_no_longer_has
from tests.support.clocks import START, Clocked
from tests.support.localstripe import (
    DECLINED_AT_CHARGE,
    NEEDS_AUTHENTICATION,
    NOWHERE,
    LocalStripe,
)
from tests.support.proxies import LossyProxy
from tests.support.webhooks import Receiver, endpoint, receiving
from tollgate.payments.collection import LEASE

CONFIRM = r"/v1/payment_intents/[^/]+/confirm"
CREATE = r"/v1/payment_intents"


@pytest.fixture
def tollgate_webhooks(connected: Connected) -> Iterator[Receiver]:
    """Tollgate's own webhooks of the tenant, received."""
    with receiving() as receiver, connected.tenant.http() as http:
        endpoint(http, receiver)
        yield receiver


def with_card(
    client: stigg.Stigg, connected: Connected, localstripe: LocalStripe, number: str
) -> str:
    """Attach a card to acme; acme's id at Stripe."""
    customer = client.v1.customers.payment_method.attach(
        "acme",
        integration_id=connected.integration_id,
        payment_method_id=localstripe.card(number),
        vendor_identifier="STRIPE",
    ).data
    assert customer.billing_id is not None
    return customer.billing_id


def pro(client: stigg.Stigg) -> str:
    provisioned = client.v1.subscriptions.provision(
        customer_id="acme", plan_id="plan-pro", trial_override_configuration={"is_trial": False}
    ).data
    assert provisioned.subscription is not None
    return provisioned.subscription.id


def invoices(client: stigg.Stigg) -> list[Any]:
    return list(client.v1.customers.list_invoices("acme"))


def status(client: stigg.Stigg, subscription_id: str) -> str:
    return client.v1.subscriptions.retrieve(subscription_id).data.status


def succeeded(localstripe: LocalStripe, billing_id: str) -> list[tuple[int, str]]:
    return [
        (charge["amount"], charge["currency"])
        for charge in localstripe.charges(billing_id)
        if charge["status"] == "succeeded"
    ]


def failed_payments(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.payload["payment"] for r in receiver.of_type("invoice.payment_failed")]


class TestCharged:
    def test_an_invoice_is_charged_once_and_paid(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        subscription_id = pro(paying)
        assert clocked.run_jobs()["payments.collect"] == 1
        [invoice] = invoices(paying)
        assert (invoice.state, invoice.total, invoice.paid_date) == ("PAID", 49, START)
        clocked.run_jobs()
        clocked.run_jobs()
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]
        [intent] = localstripe.payment_intents(billing_id)
        assert intent["metadata"]["tollgate_invoice"] == invoice.invoice_id
        read = paying.v1.subscriptions.retrieve(subscription_id).data
        assert (read.status, read.payment_collection) == ("ACTIVE", "NOT_REQUIRED")
        assert read.latest_invoice is not None
        assert (read.latest_invoice.billing_id, read.latest_invoice.status) == (
            invoice.invoice_id,
            "PAID",
        )
        assert len(tollgate_webhooks.of_type("invoice.paid")) == 1

    def test_each_renewal_is_charged_in_turn(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        pro(paying)
        clocked.run_jobs()
        for month in (1, 2):
            clocked.clock.set(START + timedelta(days=31 * month))
            clocked.run_jobs()
        assert [i.state for i in invoices(paying)] == ["PAID", "PAID", "PAID"]
        assert succeeded(localstripe, billing_id) == [(4900, "usd")] * 3

    @pytest.mark.parametrize("method", ["INVOICE", "NONE"])
    def test_a_subscription_paid_otherwise_is_never_charged(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
        method: str,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        provisioned = paying.v1.subscriptions.provision(
            customer_id="acme",
            plan_id="plan-pro",
            trial_override_configuration={"is_trial": False},
            payment_collection_method=method,  # type: ignore[arg-type]
        ).data
        assert provisioned.subscription is not None
        assert clocked.run_jobs()["payments.collect"] == 0
        assert [i.state for i in invoices(paying)] == ["OPEN"]
        assert localstripe.charges(billing_id) == []
        read = paying.v1.subscriptions.retrieve(provisioned.subscription.id).data
        assert (read.payment_collection_method, read.payment_collection) == (
            method,
            "NOT_REQUIRED",
        )
        paying.v1.subscriptions.invoice.mark_as_paid(provisioned.subscription.id)
        assert [i.state for i in invoices(paying)] == ["PAID"]

    def test_invoices_issued_before_stripe_was_connected_stay_manual(
        self,
        demo_client: stigg.Stigg,
        demo_tenant: Any,
        connected: Connected,
        engine: Any,
        clocked: Clocked,
    ) -> None:
        demo_client.v1.customers.provision(id="acme")
        # `connected` dates the connection at START; an invoice issued earlier stays as it is.
        clocked.clock.set(START - timedelta(hours=1))
        pro(demo_client)
        clocked.clock.set(START)
        assert clocked.run_jobs()["payments.collect"] == 0
        assert [i.state for i in invoices(demo_client)] == ["OPEN"]


class TestDeclined:
    def test_retried_on_the_schedule_then_the_product_decides(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, DECLINED_AT_CHARGE)
        subscription_id = pro(paying)
        clocked.run_jobs()
        pending = paying.v1.subscriptions.retrieve(subscription_id).data
        assert (pending.status, pending.payment_collection) == ("PAYMENT_PENDING", "FAILED")
        assert pending.latest_invoice is not None
        assert (pending.latest_invoice.status, pending.latest_invoice.amount_due) == ("OPEN", 49)
        assert paying.v1.customers.check_entitlement(
            "acme", feature_id="feature-sso"
        ).data.is_granted  # access is kept while the payment is retried
        [first] = failed_payments(tollgate_webhooks)
        assert (first["attempt"], first["failureCode"], first["nextAttemptAt"]) == (
            1,
            "card_declined",
            (START + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        )
        # Nothing more until the next retry is due: 1, then 3, then 5 days later.
        clocked.clock.set(START + timedelta(hours=23))
        assert clocked.run_jobs()["payments.collect"] == 0
        for day in (1, 4):
            clocked.clock.set(START + timedelta(days=day))
            assert clocked.run_jobs()["payments.collect"] == 1
            assert status(paying, subscription_id) == "PAYMENT_PENDING"
        clocked.clock.set(START + timedelta(days=9))
        clocked.run_jobs()
        attempts = failed_payments(tollgate_webhooks)
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
        assert attempts[-1]["nextAttemptAt"] is None
        told = [r.payload for r in tollgate_webhooks.of_type("subscription.payment_failed")]
        assert [(t["id"], t["status"], t["payment"]["attempt"]) for t in told] == [
            (subscription_id, "PAYMENT_PENDING", n) for n in (1, 2, 3, 4)
        ]
        assert told[0]["invoice"] == {"id": invoices(paying)[0].invoice_id}
        [invoice] = invoices(paying)
        assert invoice.state == "CANCELED"
        ended = paying.v1.subscriptions.retrieve(subscription_id).data
        assert (ended.status, ended.cancel_reason) == ("CANCELED", "PENDING_PAYMENT_EXPIRED")
        # The demo product's rule: its free plan follows.
        live = [s for s in paying.v1.subscriptions.list(customer_id="acme") if s.status == "ACTIVE"]
        assert [s.plan_id for s in live] == ["plan-free"]
        assert succeeded(localstripe, billing_id) == []
        assert len(localstripe.charges(billing_id)) == 4
        assert tollgate_webhooks.of_type("invoice.canceled")
        assert tollgate_webhooks.of_type("subscription.canceled")

    def test_a_new_card_is_tried_at_once_and_the_subscription_is_active_again(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
    ) -> None:
        with_card(paying, connected, localstripe, DECLINED_AT_CHARGE)
        subscription_id = pro(paying)
        clocked.run_jobs()
        assert status(paying, subscription_id) == "PAYMENT_PENDING"
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        assert clocked.run_jobs()["payments.collect"] == 1
        assert [i.state for i in invoices(paying)] == ["PAID"]
        assert status(paying, subscription_id) == "ACTIVE"
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]

    def test_a_customer_without_a_card_fails_its_attempts_without_asking_stripe(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
        stripe_api: LossyProxy,
    ) -> None:
        subscription_id = pro(paying)
        clocked.run_jobs()
        [failure] = failed_payments(tollgate_webhooks)
        assert failure["failureCode"] == "no_payment_method"
        assert "payment-method" in failure["failureMessage"]
        assert status(paying, subscription_id) == "PAYMENT_PENDING"

    def test_a_payment_stripe_refuses_for_good_is_a_failed_attempt(
        self,
        demo_client: stigg.Stigg,
        connected: Connected,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
    ) -> None:
        with_a_card_stripe_no_longer_has(demo_client)
        subscription_id = pro(demo_client)
        clocked.run_jobs()
        [failure] = failed_payments(tollgate_webhooks)
        assert failure["failureCode"] == "provider_refused"
        assert "Stripe refused creating a payment" in failure["failureMessage"]
        assert status(demo_client, subscription_id) == "PAYMENT_PENDING"


class TestCrashes:
    """The provider acts, but its answer is lost (the job crashed, or the network did)."""

    def test_a_lost_confirmation_is_taken_up_after_the_lease_and_charges_once(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        stripe_api: LossyProxy,
        clocked: Clocked,
    ) -> None:
        localstripe.send_webhooks_to(NOWHERE)  # only the job can find out
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        pro(paying)
        stripe_api.lose_next_answer("POST", CONFIRM)
        clocked.run_jobs()
        assert len(stripe_api.lost) == 1
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]  # Stripe charged
        assert [i.state for i in invoices(paying)] == ["OPEN"]  # Tollgate does not know yet
        clocked.run_jobs()  # leased: nobody touches it
        clocked.clock.set(START + LEASE)
        clocked.run_jobs()
        assert [i.state for i in invoices(paying)] == ["PAID"]
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]
        assert len(localstripe.payment_intents(billing_id)) == 1

    def test_a_lost_creation_leaves_a_payment_that_never_charges(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        stripe_api: LossyProxy,
        clocked: Clocked,
    ) -> None:
        localstripe.send_webhooks_to(NOWHERE)
        billing_id = with_card(paying, connected, localstripe, "4242424242424242")
        pro(paying)
        stripe_api.lose_next_answer("POST", CREATE)
        clocked.run_jobs()
        clocked.clock.set(START + LEASE)
        clocked.run_jobs()
        assert [i.state for i in invoices(paying)] == ["PAID"]
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]
        statuses = sorted(i["status"] for i in localstripe.payment_intents(billing_id))
        assert statuses == ["requires_confirmation", "succeeded"]

    def test_stripes_webhook_settles_a_payment_whose_answer_was_lost(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        stripe_api: LossyProxy,
        clocked: Clocked,
    ) -> None:
        with_card(paying, connected, localstripe, "4242424242424242")
        pro(paying)
        stripe_api.lose_next_answer("POST", CONFIRM)
        clocked.run_jobs()
        assert eventually(lambda: [i.state for i in invoices(paying)] == ["PAID"])


class TestAuthentication:
    def test_a_payment_the_bank_must_confirm_is_paid_once_the_customer_does(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, NEEDS_AUTHENTICATION)
        subscription_id = pro(paying)
        clocked.run_jobs()
        [waiting] = failed_payments(tollgate_webhooks)
        assert (waiting["status"], waiting["requiresAction"]) == ("REQUIRES_ACTION", True)
        read = paying.v1.subscriptions.retrieve(subscription_id).data
        assert (read.status, read.payment_collection) == ("PAYMENT_PENDING", "ACTION_REQUIRED")
        assert read.latest_invoice is not None
        assert read.latest_invoice.requires_action
        # The secret the customer's browser confirms with, in REST and to the SDKs:
        with connected.tenant.http() as http:
            rest = http.get(f"/api/v1/subscriptions/{subscription_id}").json()["data"]
            secret = rest["latestInvoice"]["paymentSecret"]
            sdk = Sdk(http).data("GetSubscription", {"input": {"subscriptionId": subscription_id}})
        invoice = sdk["getSubscription"]["latestInvoice"]
        assert (invoice["paymentSecret"], invoice["requiresAction"], invoice["status"]) == (
            secret,
            True,
            "OPEN",
        )
        assert sdk["getSubscription"]["paymentCollection"] == "ACTION_REQUIRED"
        localstripe.authenticate(waiting["billingId"], secret)
        assert eventually(lambda: [i.state for i in invoices(paying)] == ["PAID"])
        assert status(paying, subscription_id) == "ACTIVE"
        assert succeeded(localstripe, billing_id) == [(4900, "usd")]

    def test_a_payment_left_waiting_is_canceled_before_the_retry(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, NEEDS_AUTHENTICATION)
        pro(paying)
        clocked.run_jobs()
        with_card(paying, connected, localstripe, "4242424242424242")
        clocked.run_jobs()
        assert [i.state for i in invoices(paying)] == ["PAID"]
        statuses = sorted(i["status"] for i in localstripe.payment_intents(billing_id))
        assert statuses == ["canceled", "succeeded"]

    def test_a_payment_waiting_on_a_voided_invoice_is_canceled(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        clocked: Clocked,
        tollgate_webhooks: Receiver,
    ) -> None:
        billing_id = with_card(paying, connected, localstripe, NEEDS_AUTHENTICATION)
        pro(paying)
        clocked.run_jobs()
        [invoice] = invoices(paying)
        with connected.tenant.http() as http:
            voided = http.post(f"/api/v1/invoices/{invoice.invoice_id}/void")
        assert voided.status_code == 200, voided.text
        clocked.run_jobs()
        [intent] = localstripe.payment_intents(billing_id)
        assert intent["status"] == "canceled"  # authenticating now can charge nothing


class TestStripeWebhooks:
    def test_a_forged_signature_is_refused(self, connected: Connected) -> None:
        body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
        response = httpx.post(
            connected.webhook_url,
            content=body,
            headers={"Stripe-Signature": "t=1,v1=00"},
        )
        assert response.status_code == 400, response.text
        assert "Stripe-Signature" in response.json()["error"]["message"]

    def test_an_unknown_integration_is_a_404(self, connected: Connected) -> None:
        response = httpx.post(
            connected.webhook_url.replace(connected.integration_id, "int_nobody"), content=b"{}"
        )
        assert response.status_code == 404, response.text


def eventually(condition: Any, seconds: float = 15) -> bool:
    """Stripe's webhooks come when they come (localstripe waits a second before sending)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())
