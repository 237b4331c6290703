"""`invoice.created` and `invoice.paid`, owed in the transaction that issued or settled."""

import httpx
import stigg

from tests.support.clocks import Clocked
from tests.support.subscriptions import customer
from tests.support.webhooks import Receiver, endpoint


def test_an_invoice_is_announced_when_issued_and_when_paid(
    http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
) -> None:
    endpoint(http, receiver, eventTypes=["invoice.created", "invoice.paid"])
    customer(demo_client)
    provisioned = demo_client.v1.subscriptions.provision(
        customer_id="acme",
        plan_id="plan-pro",
        trial_override_configuration={"is_trial": False},
    ).data
    assert provisioned.subscription is not None
    demo_client.v1.subscriptions.invoice.mark_as_paid(provisioned.subscription.id)
    clocked.run_jobs()
    [created] = receiver.of_type("invoice.created")
    [paid] = receiver.of_type("invoice.paid")
    assert created.payload["id"] == paid.payload["id"]
    assert (created.payload["state"], created.payload["total"], created.payload["currency"]) == (
        "OPEN",
        49,
        "usd",
    )
    assert created.payload["customer"] == {"id": "acme"}
    assert created.payload["subscription"] == {"id": provisioned.subscription.id}
    assert created.payload["billingReason"] == "SUBSCRIPTION_CREATION"
    assert (paid.payload["state"], paid.payload["amountDue"]) == ("PAID", 0)
