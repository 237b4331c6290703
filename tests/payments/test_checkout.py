"""The checkout's `applySubscription` at the API level, with Stripe (localstripe): who may
send it, and how its payment holds up when the card asks for more, or an answer is lost.
(tests/widgets drives the same mutation from the widget in a browser.)"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.payments.conftest import Connected
from tests.payments.test_collection import invoices, pro, with_card
from tests.support.clocks import START, Clocked
from tests.support.localstripe import (
    DECLINED_AT_CHARGE,
    GOOD_CARD,
    NEEDS_AUTHENTICATION,
    NOWHERE,
    SECRET_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
)
from tests.support.proxies import LossyProxy
from tests.support.tenants import Tenant, signing_secret
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments.tokens import customer_token
from tollgate.payments import providers
from tollgate.payments.collection import LEASE
from tollgate.payments.models import Payment

APPLY = """mutation($input: ApplySubscriptionInput!) {
  applySubscription(input: $input) {
    subscription { plan { refId } status paymentCollection latestInvoice { status } }
  }
}"""
CAPTURE = r"/v1/payment_intents/[^/]+/capture"
CONFIRM = r"/v1/payment_intents/[^/]+/confirm"
OTHER_GOOD_CARD = "5555555555554444"


def apply(
    connected: Connected | Tenant,
    *,
    key: str | None = None,
    token: str | None = None,
    **input: Any,
) -> dict[str, Any]:
    tenant = connected.tenant if isinstance(connected, Connected) else connected
    headers = {"X-API-KEY": key or tenant.server_key}
    if token is not None:
        headers["X-CUSTOMER-KEY"] = token
    answer = httpx.post(
        f"{tenant.base_url}/graphql",
        headers=headers,
        json={
            "query": APPLY,
            "variables": {"input": {"customerId": "acme", "billingPeriod": "MONTHLY", **input}},
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def captured(localstripe: LocalStripe, billing_id: str) -> list[int]:
    return [
        c["amount"]
        for c in localstripe.charges(billing_id)
        if c["captured"] and c["status"] == "succeeded"
    ]


def plans(client: stigg.Stigg) -> list[tuple[str, str]]:
    return [(s.plan_id, s.status) for s in client.v1.subscriptions.list(customer_id="acme").data]


@pytest.fixture
def on_free(paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe) -> str:
    """Acme on Free with a good card; its id at Stripe."""
    paying.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
    return with_card(paying, connected, localstripe, GOOD_CARD)


def test_a_client_key_checks_out_only_with_the_customers_own_token(
    engine: Engine, paying: stigg.Stigg, connected: Connected, on_free: str
) -> None:
    client_key = connected.tenant.client_key
    secret = signing_secret(engine, connected.tenant)
    refused = [
        apply(connected, key=client_key, planId="plan-enterprise"),
        apply(
            connected,
            key=client_key,
            token=customer_token("globex", secret),
            planId="plan-enterprise",
        ),
    ]
    for answer in refused:
        assert (answer["data"] or {}).get("applySubscription") is None
        assert answer["errors"][0]["extensions"]["code"] == "IdentityForbidden", answer
    assert plans(paying) == [("plan-free", "ACTIVE")]
    done = apply(
        connected, key=client_key, token=customer_token("acme", secret), planId="plan-enterprise"
    )
    assert done["data"]["applySubscription"]["subscription"] == {
        "plan": {"refId": "plan-enterprise"},
        "status": "ACTIVE",
        "paymentCollection": "NOT_REQUIRED",
        "latestInvoice": {"status": "PAID"},
    }


def test_a_card_that_asks_to_authenticate_is_refused_and_its_hold_let_go(
    paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
) -> None:
    paying.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
    billing_id = with_card(paying, connected, localstripe, NEEDS_AUTHENTICATION)
    answer = apply(connected, planId="plan-enterprise")
    assert "authenticate" in answer["errors"][0]["message"]
    assert plans(paying) == [("plan-free", "ACTIVE")]
    assert [i.total for i in invoices(paying)] == []
    (intent,) = localstripe.payment_intents(billing_id)
    assert intent["status"] == "canceled"
    assert captured(localstripe, billing_id) == []


def test_a_lost_capture_is_taken_up_by_the_job_and_charges_once(
    paying: stigg.Stigg,
    connected: Connected,
    localstripe: LocalStripe,
    stripe_api: LossyProxy,
    clocked: Clocked,
    on_free: str,
) -> None:
    localstripe.send_webhooks_to(NOWHERE)  # only the job can find out
    stripe_api.lose_next_answer("POST", CAPTURE)
    answer = apply(connected, planId="plan-enterprise")
    assert stripe_api.lost, "the capture was not sent"
    # The change is made; its payment is not known to have gone through yet.
    assert answer["data"]["applySubscription"]["subscription"]["paymentCollection"] == "PROCESSING"
    assert captured(localstripe, on_free) == [19900]  # Stripe took it
    clocked.run_jobs()  # leased: nobody touches it
    assert [i.state for i in invoices(paying)] == ["OPEN"]
    clocked.clock.set(START + LEASE)
    clocked.run_jobs()
    assert [i.state for i in invoices(paying)] == ["PAID"]
    assert captured(localstripe, on_free) == [19900]
    assert len(localstripe.payment_intents(on_free)) == 1


def test_two_checkouts_at_once_charge_once(
    paying: stigg.Stigg,
    connected: Connected,
    localstripe: LocalStripe,
    stripe_api: LossyProxy,
    on_free: str,
) -> None:
    """A double click: both requests price the change from Free and hold the amount before
    either makes it. The second is made after the first, so it is billed as what it is
    then (Enterprise again: nothing more to pay)."""
    stripe_api.answer_together("POST", CONFIRM, count=2)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: apply(connected, planId="plan-enterprise"), range(2)))
    assert all("errors" not in a for a in answers), answers
    assert captured(localstripe, on_free) == [19900]
    assert sorted(i["status"] for i in localstripe.payment_intents(on_free)) == [
        "canceled",
        "succeeded",
    ]
    live = [p for p, s in plans(paying) if s == "ACTIVE"]
    assert live == ["plan-enterprise"]
    assert [i.state for i in invoices(paying)] == ["PAID", "PAID"]


def default_card(client: stigg.Stigg) -> str | None:
    method = client.v1.customers.retrieve("acme").data.default_payment_method
    return method.card_last4_digits if method else None


def test_a_declined_new_card_leaves_the_card_on_file_as_it_was(
    paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe, on_free: str
) -> None:
    refused = localstripe.card(DECLINED_AT_CHARGE)
    answer = apply(connected, planId="plan-enterprise", paymentMethodId=refused)
    assert "declined" in answer["errors"][0]["message"], answer
    assert plans(paying) == [("plan-free", "ACTIVE")]
    assert default_card(paying) == GOOD_CARD[-4:]
    # A new card that pays becomes the default with the change it paid for.
    other = localstripe.card(OTHER_GOOD_CARD)
    done = apply(connected, planId="plan-enterprise", paymentMethodId=other)
    assert done["data"]["applySubscription"]["subscription"]["plan"] == {"refId": "plan-enterprise"}
    assert default_card(paying) == OTHER_GOOD_CARD[-4:]
    assert captured(localstripe, on_free) == [19900]


def test_a_customer_whose_payment_failed_checks_out_and_owes_both_periods(
    paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe, clocked: Clocked
) -> None:
    """Pro's renewal failed (PAYMENT_PENDING); the customer upgrades with a new card. The
    change is billed with credit for Pro's unused time, as its preview said, and Pro's
    invoice, still due, is charged to the new card at once."""
    billing_id = with_card(paying, connected, localstripe, DECLINED_AT_CHARGE)
    pro(paying)
    clocked.run_jobs()
    assert plans(paying) == [("plan-pro", "PAYMENT_PENDING")]
    preview = paying.v1.subscriptions.preview(customer_id="acme", plan_id="plan-enterprise").data
    answer = apply(connected, planId="plan-enterprise", paymentMethodId=localstripe.card(GOOD_CARD))
    assert "errors" not in answer, answer
    assert preview.immediate_invoice.total == 150
    clocked.run_jobs()
    assert sorted(captured(localstripe, billing_id)) == [4900, 15000]
    assert [i.state for i in invoices(paying)] == ["PAID", "PAID"]


@contextmanager
def commit_answer_lost_for_the_checkouts_change() -> Iterator[list[str]]:
    """The database commits the checkout's change (the transaction that writes its held
    payment down), and the answer to the commit is lost: the server sees an error."""
    lost: list[str] = []

    def note_the_payment(session: Session, _context: Any) -> None:
        for written in session.new:
            if isinstance(written, Payment) and written.idempotency_key.startswith("tg_checkout_"):
                session.info["checkout_payment"] = written.idempotency_key

    def lose_the_answer(session: Session) -> None:
        key = session.info.pop("checkout_payment", None)
        if key is not None and not lost:
            lost.append(key)
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    event.listen(Session, "after_flush", note_the_payment)
    event.listen(Session, "after_commit", lose_the_answer)
    try:
        yield lost
    finally:
        event.remove(Session, "after_flush", note_the_payment)
        event.remove(Session, "after_commit", lose_the_answer)


def test_a_change_whose_commit_answer_is_lost_keeps_its_hold_and_is_charged_once(
    paying: stigg.Stigg,
    connected: Connected,
    localstripe: LocalStripe,
    clocked: Clocked,
    on_free: str,
) -> None:
    localstripe.send_webhooks_to(NOWHERE)  # only the job can find out
    with commit_answer_lost_for_the_checkouts_change() as lost:
        answer = apply(connected, planId="plan-enterprise")
    assert lost, "the change's commit was not reached"
    assert answer["errors"], answer  # the server could not tell it was made...
    assert [p for p, s in plans(paying) if s == "ACTIVE"] == ["plan-enterprise"]  # ...it was
    (intent,) = localstripe.payment_intents(on_free)
    assert intent["status"] == "requires_capture"  # held, not released
    clocked.clock.set(START + LEASE)
    clocked.run_jobs()
    assert [i.state for i in invoices(paying)] == ["PAID"]
    assert captured(localstripe, on_free) == [19900]


def test_a_change_that_costs_nothing_now_holds_nothing(
    paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe, on_free: str
) -> None:
    answer = apply(connected, planId="plan-pro")  # Pro starts with its 14-day trial
    assert answer["data"]["applySubscription"]["subscription"]["status"] == "IN_TRIAL"
    assert localstripe.payment_intents(on_free) == []


def test_a_page_chooses_only_what_the_checkout_widget_sends(
    engine: Engine, paying: stigg.Stigg, connected: Connected, on_free: str
) -> None:
    token = customer_token("acme", signing_secret(engine, connected.tenant))
    for field, value in (
        ("billingId", "cus_someone_else"),
        ("startDate", "2030-01-01T00:00:00Z"),
        ("additionalMetaData", {"seats": "1000"}),
        ("appliedCoupon", {"couponId": "half"}),
        ("trialOverrideConfiguration", {"isTrial": True, "trialEndDate": "2099-01-01T00:00:00Z"}),
        ("paymentCollectionMethod", "NONE"),
        ("scheduleStrategy", "END_OF_BILLING_PERIOD"),
    ):
        answer = apply(
            connected,
            key=connected.tenant.client_key,
            token=token,
            planId="plan-enterprise",
            **{field: value},
        )
        assert field in answer["errors"][0]["message"], answer
    assert plans(paying) == [("plan-free", "ACTIVE")]


def from_browser(engine: Engine, tenant: Tenant, customer: str = "acme") -> dict[str, str]:
    """What a customer's page sends: the client key, and that customer's token."""
    return {
        "key": tenant.client_key,
        "token": customer_token(customer, signing_secret(engine, tenant)),
    }


def test_a_page_changes_the_plan_of_a_resource_it_has_and_makes_none(
    engine: Engine, paying: stigg.Stigg, connected: Connected, on_free: str
) -> None:
    browser = from_browser(engine, connected.tenant)
    refused = apply(connected, planId="plan-free", resourceId="site-2", **browser)
    assert "has no resource 'site-2'" in refused["errors"][0]["message"], refused
    paying.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free", resource_id="site-1")
    done = apply(connected, planId="plan-enterprise", resourceId="site-1", **browser)
    assert "errors" not in done, done
    by_resource = {
        (s.resource_id, s.plan_id)
        for s in paying.v1.subscriptions.list(customer_id="acme")
        if s.status == "ACTIVE"
    }
    assert by_resource == {(None, "plan-free"), ("site-1", "plan-enterprise")}


def test_a_page_cannot_take_a_custom_plan(
    engine: Engine, paying: stigg.Stigg, connected: Connected, on_free: str
) -> None:
    """A custom plan has no price to pay at the checkout: it is arranged with the team."""
    paying.v1.plans.create(
        id="plan-custom", display_name="Custom", product_id="product-saas", pricing_type="CUSTOM"
    )
    paying.v1.plans.publish("plan-custom", migration_type="NEW_CUSTOMERS")
    refused = apply(connected, planId="plan-custom", **from_browser(engine, connected.tenant))
    assert "custom plan" in refused["errors"][0]["message"], refused
    assert plans(paying) == [("plan-free", "ACTIVE")]
    done = apply(connected, planId="plan-custom")  # the team's server may
    assert done["data"]["applySubscription"]["subscription"]["plan"] == {"refId": "plan-custom"}


def test_without_a_provider_a_page_cannot_give_itself_a_paid_plan(
    engine: Engine, demo_client: stigg.Stigg, demo_tenant: Tenant
) -> None:
    demo_client.v1.customers.provision(id="acme")
    demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
    browser = from_browser(engine, demo_tenant)
    refused = apply(demo_tenant, planId="plan-enterprise", **browser)
    assert "takes no payments through a provider" in refused["errors"][0]["message"]
    assert plans(demo_client) == [("plan-free", "ACTIVE")]
    # What costs nothing now may be chosen from a page (a trial), and a server may do it all.
    trial = apply(demo_tenant, planId="plan-pro", **browser)
    assert trial["data"]["applySubscription"]["subscription"]["status"] == "IN_TRIAL"
    done = apply(demo_tenant, planId="plan-enterprise")
    assert done["data"]["applySubscription"]["subscription"]["plan"] == {"refId": "plan-enterprise"}


def test_a_promotion_code_is_refused_rather_than_ignored(
    paying: stigg.Stigg, connected: Connected, on_free: str
) -> None:
    answer = apply(connected, planId="plan-enterprise", promotionCode="HALF")
    assert "promotion codes are not taken yet" in answer["errors"][0]["message"]
    assert plans(paying) == [("plan-free", "ACTIVE")]


STATE = """query($input: CheckoutStateInput!) {
  checkoutState(input: $input) {
    setupSecret plan { refId } billingIntegration { billingIdentifier credentials { publicKey } }
  }
}"""


def checkout_state(
    tenant: Tenant, *, key: str | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"X-API-KEY": key or tenant.server_key}
    if token is not None:
        headers["X-CUSTOMER-KEY"] = token
    answer: dict[str, Any] = httpx.post(
        f"{tenant.base_url}/graphql",
        headers=headers,
        json={"query": STATE, "variables": {"input": {"customerId": "acme", "planId": "plan-pro"}}},
        timeout=30,
    ).json()
    return answer


def connect_with_elements(engine: Engine, tenant: Tenant, api_base: str) -> None:
    """Stripe connected with a publishable key, so the checkout offers Stripe Elements."""
    with unit_of_work(make_session_factory(engine)) as session:
        providers.connect_stripe(
            session,
            environment=tenant.name,
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            publishable_key="pk_test_tollgate",
            api_base=api_base,
            now=START,
        )


def test_the_checkout_state_is_the_customers_own(
    engine: Engine, demo_client: stigg.Stigg, demo_tenant: Tenant, localstripe: LocalStripe
) -> None:
    """It creates a setup intent at Stripe for the customer: not for a client key alone,
    nor for another customer's token."""
    demo_client.v1.customers.provision(id="acme")
    connect_with_elements(engine, demo_tenant, localstripe.url)
    for token in (None, from_browser(engine, demo_tenant, "globex")["token"]):
        refused = checkout_state(demo_tenant, key=demo_tenant.client_key, token=token)
        assert refused["errors"][0]["extensions"]["code"] == "IdentityForbidden", refused
    assert demo_client.v1.customers.retrieve("acme").data.billing_id is None  # Stripe untouched
    mine = checkout_state(demo_tenant, **from_browser(engine, demo_tenant))
    assert mine["data"]["checkoutState"]["setupSecret"].startswith("seti_"), mine


@pytest.mark.parametrize("reachable", [True, False])
def test_the_checkout_state_offers_stripe_elements_while_stripe_answers(
    engine: Engine,
    demo_client: stigg.Stigg,
    demo_tenant: Tenant,
    localstripe: LocalStripe,
    reachable: bool,
) -> None:
    demo_client.v1.customers.provision(id="acme")
    connect_with_elements(engine, demo_tenant, localstripe.url if reachable else NOWHERE)
    answer = checkout_state(demo_tenant)
    assert "errors" not in answer, answer
    state = answer["data"]["checkoutState"]
    assert state["plan"] == {"refId": "plan-pro"}
    if reachable:
        assert state["setupSecret"].startswith("seti_")
        assert state["billingIntegration"] == {
            "billingIdentifier": "STRIPE",
            "credentials": {"publicKey": "pk_test_tollgate"},
        }
    else:  # the checkout still shows, for a card on file
        assert (state["setupSecret"], state["billingIntegration"]) == (None, None)
