"""`<Paywall>`: the demo catalog's plans with their prices, the billing-period switch, and
the customer's current plan marked, rendered by Stigg's widget against Tollgate."""

from tests.widgets.conftest import Shop, Widget


def cards(widget: Widget) -> dict[str, str]:
    """Each plan card's text, by the plan's name (its first line)."""
    widget.page.get_by_text("Enterprise", exact=True).first.wait_for()
    texts = widget.page.locator(".stigg-plan-offering-container").all_inner_texts()
    return {text.strip().splitlines()[0]: text for text in texts}


def test_a_free_customer_sees_every_plan_priced_and_free_marked_current(
    shop: Shop, open_widget
) -> None:
    shop.customer("free-co", plan="plan-free")
    widget: Widget = open_widget("paywall-free", widget="paywall", customerId="free-co")
    annual = cards(widget)
    widget.shot("annual")
    assert list(annual) == ["Free", "Pro", "Enterprise"]  # lowest tier first
    assert "$0" in annual["Free"]
    assert "Current plan" in annual["Free"]
    # Annual prices are shown per month (490 / 12, 1,990 / 12), billed annually.
    assert "$40.83333" in annual["Pro"]
    assert "billed annually" in annual["Pro"]
    assert "$165.83333" in annual["Enterprise"]
    assert "Upgrade" in annual["Enterprise"]
    assert "Start 14 day trial" in annual["Pro"]
    assert "17% off" in widget.text()

    widget.page.get_by_role("switch").press("Space")  # the Monthly / Annual switch
    widget.page.get_by_text("$49", exact=True).wait_for()
    monthly = cards(widget)
    widget.shot("monthly")
    assert "$49" in monthly["Pro"]
    assert "$199" in monthly["Enterprise"]
    assert "billed annually" not in monthly["Pro"]
    assert "Current plan" in monthly["Free"]
    assert widget.events("billingPeriodChanged") == ["MONTHLY"]

    widget.page.locator(".stigg-plan-offering-container").nth(2).get_by_role("button").click()
    (selected,) = widget.events("planSelected")
    assert selected == {
        "planId": "plan-enterprise",
        "intentionType": "UPGRADE_PLAN",
        "selectedBillingPeriod": "MONTHLY",
    }
    assert widget.errors == []


def test_a_pro_customer_sees_pro_current_and_enterprise_as_an_upgrade(
    shop: Shop, open_widget
) -> None:
    shop.customer("pro-co")
    shop.client.v1.subscriptions.provision(
        customer_id="pro-co",
        plan_id="plan-pro",
        billing_period="MONTHLY",
        trial_override_configuration={"is_trial": False},
    )
    widget: Widget = open_widget("paywall-pro", widget="paywall", customerId="pro-co")
    found = cards(widget)
    widget.shot("current-pro")
    # The period shown first is the subscription's own.
    assert "$49" in found["Pro"]
    assert "Current plan" in found["Pro"]
    assert "Upgrade" in found["Enterprise"]
    assert "Downgrade" in found["Free"]
    assert "Current plan" not in found["Enterprise"] + found["Free"]
    assert widget.errors == []


def test_a_customer_who_had_its_trial_is_not_offered_another(shop: Shop, open_widget) -> None:
    """Tollgate gives a product's default trial once per customer: the paywall says so."""
    shop.customer("tried-co", plan="plan-pro")  # Pro's 14-day trial
    (trial,) = shop.client.v1.subscriptions.list(customer_id="tried-co").data
    shop.client.v1.subscriptions.cancel(trial.id, cancellation_time="IMMEDIATE")  # Free follows
    widget: Widget = open_widget("paywall-tried", widget="paywall", customerId="tried-co")
    found = cards(widget)
    widget.shot("after-trial")
    assert "Current plan" in found["Free"]
    assert "Start" not in found["Pro"]
    assert "Upgrade" in found["Pro"]
    assert widget.errors == []
