"""localstripe, a stateful fake of Stripe's API from PyPI, started on 127.0.0.1 once per
test worker (never Stripe itself): the payments tests and the widgets' checkout use it."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SECRET_KEY = "sk_test_tollgate"
WEBHOOK_SECRET = "whsec_tollgate_tests"
GOOD_CARD = "4242424242424242"
DECLINED_AT_ATTACH = "4000000000000002"
DECLINED_AT_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002500003155"
NOWHERE = "http://127.0.0.1:9/"  # the discard port: webhooks sent there are lost


@dataclass
class LocalStripe:
    url: str
    http: httpx.Client

    def card(self, number: str = GOOD_CARD) -> str:
        """A card payment method, as Stripe.js would make in the browser."""
        created = self.http.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        assert created.status_code == 200, created.text
        card_id: str = created.json()["id"]
        return card_id

    def charges(self, billing_id: str) -> list[dict[str, Any]]:
        found = self.http.get("/v1/charges", params={"customer": billing_id, "limit": 100})
        assert found.status_code == 200, found.text
        data: list[dict[str, Any]] = found.json()["data"]
        return data

    def payment_intents(self, billing_id: str) -> list[dict[str, Any]]:
        found = self.http.get("/v1/payment_intents", params={"limit": 100})
        assert found.status_code == 200, found.text
        every: list[dict[str, Any]] = found.json()["data"]
        return [intent for intent in every if intent["customer"] == billing_id]

    def send_webhooks_to(self, url: str) -> None:
        """Where Stripe's events go (one endpoint at a time: each test names its own)."""
        set_up = self.http.post(
            "/_config/webhooks/tollgate", data={"url": url, "secret": WEBHOOK_SECRET}
        )
        assert set_up.status_code == 200, set_up.text

    def authenticate(self, payment_intent_id: str, client_secret: str) -> None:
        """The customer passes 3-D Secure for the payment, as Stripe.js would with the
        secret it was given."""
        done = self.http.post(
            f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            data={"client_secret": client_secret, "success": "true"},
        )
        assert done.status_code == 200, done.text


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.payments.localstripe_server"],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    assert port.isdigit(), f"localstripe did not start (exit code {process.poll()})"
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET_KEY}"}) as http:
        yield LocalStripe(url, http)
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()
