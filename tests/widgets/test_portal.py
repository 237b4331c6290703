"""`<CustomerPortal>`: the customer's plan, its usage against the limits as reported through
the API, the next bill and the payment details; and nothing of a customer for a page
holding another customer's token, or none."""

from datetime import datetime

import pytest

from tests.support.localstripe import GOOD_CARD
from tests.widgets.conftest import Shop, Widget


def _day(moment: datetime) -> str:
    """As the portal writes a date: "Jan 5th, 2027"."""
    day = moment.day
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{moment:%b} {day}{suffix}, {moment.year}"


@pytest.fixture
def acme(shop: Shop) -> Shop:
    """Acme on Pro, paid monthly (no trial), with a card on file, and usage of three
    features (API calls counted from events)."""
    shop.customer("acme", name="Acme Inc", email="billing@acme.test")
    shop.card_on_file("acme", GOOD_CARD)
    shop.client.v1.subscriptions.provision(
        customer_id="acme",
        plan_id="plan-pro",
        billing_period="MONTHLY",
        trial_override_configuration={"is_trial": False},
    )
    with shop.tenant.http() as http:
        reported = http.post(
            "/api/v1/usage",
            json={
                "usages": [
                    {"customerId": "acme", "featureId": "feature-active-users", "value": 42},
                    {"customerId": "acme", "featureId": "feature-seats", "value": 7},
                ]
            },
        )
        assert reported.status_code == 200, reported.text
        calls = [
            {"customerId": "acme", "eventName": "api_call", "idempotencyKey": f"call-{n}"}
            for n in range(12)
        ]
        counted = http.post("/api/v1/events", json={"events": calls})
        assert counted.status_code == 200, counted.text
    return shop


def test_the_portal_shows_plan_usage_next_bill_and_card(acme: Shop, open_widget) -> None:
    with acme.tenant.http() as http:
        preview = http.post(
            "/api/v1/subscriptions/preview",
            json={"customerId": "acme", "planId": "plan-pro", "billingPeriod": "MONTHLY"},
        ).json()["data"]
    (subscription,) = acme.client.v1.subscriptions.list(customer_id="acme").data
    assert subscription.current_billing_period_end is not None
    widget: Widget = open_widget("portal-pro", widget="portal", customerId="acme")
    widget.page.get_by_text("Next estimated bill").wait_for()
    widget.page.get_by_text("42 / 1,000 (4%)").wait_for()
    widget.shot("pro")
    text = widget.text()
    assert "Pro plan" in text
    # The next bill is what the preview says the renewal charges, on the period's end.
    assert preview["recurringInvoice"]["total"] == 49
    assert "$49" in text
    assert f"Billed monthly on {_day(subscription.current_billing_period_end)}" in text
    for usage in ("42 / 1,000 (4%)", "12 / 100,000 (0%)", "7 / 20 (35%)"):
        assert usage in text
    assert "Billed to" in text
    assert "Acme Inc" in text
    assert "billing@acme.test" in text
    assert "4242" in text  # the card on file
    assert widget.errors == []


@pytest.mark.parametrize("token_for", ["globex", None])
def test_a_page_without_acmes_token_gets_nothing_of_acme(
    acme: Shop, open_widget, token_for: str | None
) -> None:
    acme.customer("globex", plan="plan-free", email="it@globex.test")
    widget: Widget = open_widget(
        f"portal-token-for-{token_for}", widget="portal", customerId="acme", token_for=token_for
    )
    widget.page.wait_for_load_state("networkidle")
    widget.shot("refused")
    answers = widget.answers()
    assert answers, "the page asked Tollgate nothing"
    for what, status, body in answers:
        for secret in ("billing@acme.test", "Acme Inc", "4242", "Pro"):
            assert secret not in body, f"{what} ({status}) gave away {secret!r}: {body[:200]}"
    refused = [status for what, status, _ in answers if "entitlements.json" in what]
    assert refused
    assert all(status in (401, 403) for status in refused)
    assert "Acme" not in widget.text()
