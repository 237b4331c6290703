"""The receiver helper against real deliveries."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support import Clocked
from tests.support.webhooks import Receiver, endpoint
from tollgate_sdk import WebhookReceiver, WebhookRejected, WebhookReplayed


@pytest.fixture
def delivered(
    http: httpx.Client, receiver: Receiver, clocked: Clocked
) -> tuple[str, bytes, dict[str, str]]:
    created = endpoint(http, receiver)
    assert http.post("/api/v1/customers", json={"id": "acme"}).status_code == 201
    clocked.run_jobs()
    (request,) = receiver.received
    return created["secret"], request.body, request.headers


class TestReceiver:
    def test_accepts_a_delivery_once(self, delivered: tuple[str, bytes, dict[str, str]]) -> None:
        secret, body, headers = delivered
        receiver = WebhookReceiver(secret)
        assert receiver.verify(body, headers)["type"] == "customer.created"
        with pytest.raises(WebhookReplayed):
            receiver.verify(body, headers)

    def test_refuses_a_wrong_secret_or_a_changed_body(
        self, delivered: tuple[str, bytes, dict[str, str]]
    ) -> None:
        secret, body, headers = delivered
        with pytest.raises(WebhookRejected, match="signature"):
            WebhookReceiver("whsec_" + "A" * 43 + "=").verify(body, headers)
        with pytest.raises(WebhookRejected, match="signature"):
            WebhookReceiver(secret).verify(body.replace(b"acme", b"evil"), headers)

    def test_any_of_several_secrets(self, delivered: tuple[str, bytes, dict[str, str]]) -> None:
        secret, body, headers = delivered
        other = "whsec_" + "B" * 43 + "="
        assert WebhookReceiver([other, secret]).verify(body, headers)["id"] == "acme"

    def test_refuses_an_old_timestamp(self, delivered: tuple[str, bytes, dict[str, str]]) -> None:
        secret, body, headers = delivered
        sent = int(headers["webhook-timestamp"])
        late = WebhookReceiver(secret, clock=lambda: sent + 301.0)
        with pytest.raises(WebhookRejected, match="too far"):
            late.verify(body, headers)
        patient = WebhookReceiver(secret, tolerance=timedelta(hours=1), clock=lambda: sent + 301.0)
        assert patient.verify(body, headers)["id"] == "acme"

    def test_refuses_missing_headers(self, delivered: tuple[str, bytes, dict[str, str]]) -> None:
        secret, body, _ = delivered
        with pytest.raises(WebhookRejected, match="missing"):
            WebhookReceiver(secret).verify(body, {})

    def test_refuses_a_body_that_is_not_utf8(
        self, delivered: tuple[str, bytes, dict[str, str]]
    ) -> None:
        secret, _, headers = delivered
        with pytest.raises(WebhookRejected, match="not UTF-8"):
            WebhookReceiver(secret).verify(b'{"type": "\xff\xfe"}', headers)

    @pytest.mark.parametrize("body", ["[1, 2]", '"customer.created"', "{not json"])
    def test_refuses_a_signed_body_that_is_not_a_json_object(
        self, delivered: tuple[str, bytes, dict[str, str]], body: str
    ) -> None:
        secret, _, headers = delivered
        signed_at = datetime.now(UTC)
        signature = Webhook(secret).sign(headers["webhook-id"], signed_at, body)
        signed = {**headers, "webhook-signature": signature}
        signed["webhook-timestamp"] = str(int(signed_at.timestamp()))
        receiver = WebhookReceiver(secret)
        with pytest.raises(WebhookRejected, match="JSON"):
            receiver.verify(body.encode(), signed)
        # Refused, it was not taken as accepted: the genuine delivery still is.
        assert receiver.verify(*delivered[1:])["type"] == "customer.created"
