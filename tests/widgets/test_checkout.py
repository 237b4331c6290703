"""`<Checkout>` with Stripe as the environment's provider (localstripe): a card on file pays
for an upgrade at once, a new card is collected with Stripe Elements (the Stripe.js double),
a declined card changes nothing, and a move to the free plan waits for the period's end."""

from typing import Any

import pytest

from tests.support.localstripe import DECLINED_AT_CHARGE, GOOD_CARD
from tests.widgets.conftest import Shop, Widget


@pytest.fixture
def shop_without_trials(shop: Shop) -> Shop:
    """The demo catalog with Pro's 14-day trial taken off, so that checking out charges."""
    shop.client.v1.plans.create_draft("plan-pro")
    shop.client.v1.plans.update("plan-pro", default_trial_config=None)
    shop.client.v1.plans.publish("plan-pro", migration_type="NEW_CUSTOMERS")
    return shop


def check_out(widget: Widget, final: str) -> dict[str, Any]:
    """Go through the steps, press the final button (`final` is its text) and wait for
    the widget's completion callback."""
    button = widget.page.locator("button.stigg-checkout-summary-cta-button")
    button.wait_for()
    for step in range(4):
        widget.page.wait_for_function(
            "b => !b.disabled && !/No changes/.test(b.innerText)",
            arg=button.element_handle(),
        )
        if button.inner_text().strip() == final:
            break
        button.click()
        widget.shot(f"step-{step + 2}")
    else:
        raise AssertionError(f"no {final!r} button; the last one said {button.inner_text()!r}")
    widget.shot("before-confirm")
    button.click()
    widget.page.wait_for_function("window.tollgate.events.some(e => e.name == 'checkoutCompleted')")
    widget.shot("completed")
    (completed,) = widget.events("checkoutCompleted")
    return completed  # type: ignore[no-any-return]


def invoices_of(shop: Shop, customer: str) -> list[dict[str, Any]]:
    with shop.tenant.http() as http:
        found = http.get(f"/api/v1/customers/{customer}/invoices")
    assert found.status_code == 200, found.text
    data: list[dict[str, Any]] = found.json()["data"]
    return data


def granted(shop: Shop, customer: str, feature: str) -> bool:
    with shop.tenant.http() as http:
        check = http.get(
            f"/api/v1/customers/{customer}/entitlements/check", params={"featureId": feature}
        )
    assert check.status_code == 200, check.text
    return bool(check.json()["data"]["isGranted"])


def plans_of(shop: Shop, customer: str) -> list[tuple[str, str]]:
    return [
        (s.plan_id, s.status)
        for s in shop.client.v1.subscriptions.list(customer_id=customer).data
        if s.status in ("ACTIVE", "IN_TRIAL")
    ]


def test_a_card_on_file_pays_for_free_to_pro(shop_without_trials: Shop, open_widget) -> None:
    shop = shop_without_trials
    shop.customer("acme", plan="plan-free")
    shop.card_on_file("acme", GOOD_CARD)
    assert not granted(shop, "acme", "feature-sso")
    widget: Widget = open_widget(
        "checkout-card-on-file",
        widget="checkout",
        customerId="acme",
        planId="plan-pro",
        billingPeriod="MONTHLY",
    )
    widget.page.get_by_text("Pro", exact=True).first.wait_for()
    widget.shot("step-1")
    assert check_out(widget, "Subscribe") == {"success": True}
    assert plans_of(shop, "acme") == [("plan-pro", "ACTIVE")]
    assert granted(shop, "acme", "feature-sso")
    (invoice,) = [i for i in invoices_of(shop, "acme") if i["total"] > 0]
    assert (invoice["state"], invoice["total"], invoice["paidDate"] is not None) == (
        "PAID",
        49,
        True,
    )
    customer = shop.client.v1.customers.retrieve("acme").data
    assert customer.billing_id is not None
    (charge,) = shop.stripe.charges(customer.billing_id)
    assert (charge["amount"], charge["captured"], charge["status"]) == (4900, True, "succeeded")
    assert widget.errors == []


def test_a_declined_card_changes_nothing_and_the_widget_says_so(
    shop_without_trials: Shop, open_widget
) -> None:
    shop = shop_without_trials
    shop.customer("acme", plan="plan-free")
    shop.card_on_file("acme", DECLINED_AT_CHARGE)
    widget: Widget = open_widget(
        "checkout-declined",
        widget="checkout",
        customerId="acme",
        planId="plan-pro",
        billingPeriod="MONTHLY",
    )
    assert check_out(widget, "Subscribe")["success"] is False
    # Stripe's words, as Tollgate's error carried them to the widget.
    assert "Your card was declined." in widget.text()
    assert plans_of(shop, "acme") == [("plan-free", "ACTIVE")]
    assert not granted(shop, "acme", "feature-sso")
    assert [i for i in invoices_of(shop, "acme") if i["total"] > 0] == []
    customer = shop.client.v1.customers.retrieve("acme").data
    assert customer.billing_id is not None
    assert [c for c in shop.stripe.charges(customer.billing_id) if c["captured"]] == []


def test_a_new_card_is_collected_with_stripe_elements(
    shop_without_trials: Shop, open_widget
) -> None:
    shop = shop_without_trials
    shop.customer("acme", plan="plan-free")
    widget: Widget = open_widget(
        "checkout-new-card",
        widget="checkout",
        customerId="acme",
        planId="plan-pro",
        billingPeriod="MONTHLY",
    )
    button = widget.page.locator("button.stigg-checkout-summary-cta-button")
    while button.inner_text().strip() != "Subscribe":
        widget.page.wait_for_function("b => !b.disabled", arg=button.element_handle())
        button.click()
    # No card on file: the payment step is Stripe's Payment and Address Elements.
    widget.page.get_by_text("Billing address").wait_for()
    for name, value in (("name", "Acme Inc"), ("line1", "1 Main St"), ("postal_code", "94107")):
        widget.page.locator(f"[data-fake-stripe=address] input[name={name}]").fill(value)
    for name, value in (("number", "4242 4242 4242 4242"), ("expiry", "12 / 34"), ("cvc", "123")):
        widget.page.locator(f"[data-fake-stripe=payment] input[name={name}]").fill(value)
    assert check_out(widget, "Subscribe") == {"success": True}
    customer = shop.client.v1.customers.retrieve("acme").data
    card = customer.default_payment_method
    assert card is not None
    assert (card.card_last4_digits, card.card_expiry_year) == ("4242", 2034)
    assert plans_of(shop, "acme") == [("plan-pro", "ACTIVE")]
    assert granted(shop, "acme", "feature-sso")
    (invoice,) = [i for i in invoices_of(shop, "acme") if i["total"] > 0]
    assert (invoice["state"], invoice["total"]) == ("PAID", 49)
    assert widget.errors == []


def test_pro_to_free_waits_for_the_end_of_the_period(
    shop_without_trials: Shop, open_widget
) -> None:
    shop = shop_without_trials
    shop.customer("acme")
    shop.card_on_file("acme", GOOD_CARD)
    shop.subscribe_and_pay("acme", "plan-pro")
    widget: Widget = open_widget(
        "checkout-downgrade-to-free", widget="checkout", customerId="acme", planId="plan-free"
    )
    widget.page.get_by_text("cancel your paid subscription").wait_for()
    assert check_out(widget, "Cancel subscription") == {"success": True}
    # The product's rule: a downgrade waits for the end of the paid period.
    (subscription,) = shop.client.v1.subscriptions.list(customer_id="acme", status=["ACTIVE"]).data
    assert subscription.plan_id == "plan-pro"
    assert granted(shop, "acme", "feature-sso")
    (update,) = subscription.future_updates or []
    assert update.scheduled_execution_time == subscription.current_billing_period_end
    assert widget.errors == []
