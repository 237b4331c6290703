"""Payments against localstripe, a stateful fake of Stripe's API started on 127.0.0.1
(never Stripe itself), reached through a proxy that can lose an answer; Stripe's webhooks
come from localstripe, signed, to the clocked Tollgate."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import stigg
from sqlalchemy import Engine

from tests.support import Tenant
from tests.support.clocks import START, Clocked
from tests.support.localstripe import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
)
from tests.support.proxies import LossyProxy, lossy_proxy
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.payments import providers


@pytest.fixture
def stripe_api(localstripe: LocalStripe) -> Iterator[LossyProxy]:
    """The way to Stripe's API Tollgate is given: through a proxy that can lose answers."""
    with lossy_proxy(localstripe.url) as proxy:
        yield proxy


@dataclass(frozen=True)
class Connected:
    tenant: Tenant
    integration_id: str

    @property
    def webhook_url(self) -> str:
        return f"{self.tenant.base_url}/webhooks/stripe/{self.integration_id}"


@pytest.fixture
def connected(
    engine: Engine,
    demo_tenant: Tenant,
    stripe_api: LossyProxy,
    localstripe: LocalStripe,
    clocked: Clocked,
) -> Connected:
    """The demo tenant with Stripe connected (from the clock's start), Stripe's webhooks
    sent to it."""
    with unit_of_work(make_session_factory(engine)) as session:
        provider = providers.connect_stripe(
            session,
            environment=demo_tenant.name,
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            api_base=stripe_api.url,
            now=START,
        )
        found = Connected(demo_tenant, provider.ref_id)
    localstripe.send_webhooks_to(found.webhook_url)
    return found


@pytest.fixture
def paying(demo_client: stigg.Stigg, connected: Connected) -> stigg.Stigg:
    """The demo client, with customer acme holding a good card."""
    demo_client.v1.customers.provision(id="acme", name="Acme", email="it@acme.test")
    return demo_client


def with_a_card_stripe_no_longer_has(client: stigg.Stigg) -> None:
    """Customer acme, provisioned with the ids of a Stripe customer and card that do not
    exist (any more)."""
    client.v1.customers.provision(
        id="acme",
        billing_id="cus_gone",
        default_payment_method={
            "billing_id": "pm_gone",
            "type": "CARD",
            "card_expiry_month": 12,
            "card_expiry_year": 2034,
            "card_last4_digits": "4242",
        },
    )
