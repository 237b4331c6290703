"""Receiving Tollgate's webhooks in your own app: `WebhookReceiver(secret).verify(...)`.

    from tollgate_sdk import WebhookReceiver, WebhookRejected

    receiver = WebhookReceiver(os.environ["TOLLGATE_WEBHOOK_SECRET"])

    @app.post("/hooks/tollgate")
    async def tollgate_hook(request: Request) -> Response:
        try:
            event = receiver.verify(await request.body(), request.headers)
        except WebhookRejected as rejected:
            return Response(str(rejected), status_code=400)
        ...  # event["type"], event["id"], ...
        return Response(status_code=204)

It checks the Standard Webhooks signature (any of the secrets you give, so a rotation
breaks nothing), that the timestamp is within `tolerance` of your clock, and that a
`webhook-id` is accepted once within that window: a replayed request is refused.

The Standard Webhooks scheme is a few lines of the standard library, written out here so
that the SDK needs nothing beyond `httpx`."""

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

_SECRET_PREFIX = "whsec_"


class WebhookRejected(Exception):
    """The request is not a genuine, fresh, first delivery from Tollgate."""


class WebhookReplayed(WebhookRejected):
    """A delivery whose `webhook-id` was already accepted."""


class WebhookReceiver:
    def __init__(
        self,
        secrets: str | list[str],
        *,
        tolerance: timedelta = timedelta(minutes=5),
        remember: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        listed = [secrets] if isinstance(secrets, str) else secrets
        self._keys = [_key(secret) for secret in listed]
        self._tolerance = tolerance.total_seconds()
        self._clock = clock
        self._remember = remember
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The event, once its signature, age and uniqueness are checked. Anything else,
        a body that is not a UTF-8 JSON object included, raises WebhookRejected."""
        lowered = {name.lower(): value for name, value in headers.items()}
        message_id = lowered.get("webhook-id")
        stamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not message_id or not stamp or not signatures:
            raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            sent_at = int(stamp)
        except ValueError:
            raise WebhookRejected("webhook-timestamp is not a number") from None
        if abs(self._clock() - sent_at) > self._tolerance:
            raise WebhookRejected("webhook-timestamp is too far from this clock")
        given = [part.split(",", 1)[-1] for part in signatures.split()]
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise WebhookRejected("the body is not UTF-8") from None
        expected = [_signature(key, message_id, sent_at, body) for key in self._keys]
        if not any(hmac.compare_digest(e, g) for e in expected for g in given):
            raise WebhookRejected("no signature matches these secrets")
        event = _event(text)
        self._accept_once(message_id)
        return event

    def _accept_once(self, message_id: str) -> None:
        now = self._clock()
        with self._lock:
            # A captured request replayed later fails the tolerance, so ids are kept only
            # that long. (Tollgate's own retries, hours apart, carry the same id with a new
            # timestamp: an app that must never act twice stores the ids it processed.)
            while self._seen and next(iter(self._seen.values())) < now - 2 * self._tolerance:
                self._seen.popitem(last=False)
            if message_id in self._seen:
                raise WebhookReplayed(f"webhook-id {message_id} was already accepted")
            self._seen[message_id] = now
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)


def _key(secret: str) -> bytes:
    """The HMAC key a secret stands for: the base64 after `whsec_` (padding optional)."""
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except binascii.Error:
        raise ValueError("a webhook secret is base64 after `whsec_`") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _signature(key: bytes, message_id: str, sent_at: int, body: bytes) -> str:
    """The `v1` signature, without its `v1,` prefix: base64 of HMAC-SHA256 over
    `<webhook-id>.<webhook-timestamp>.<body>`."""
    signed = f"{message_id}.{sent_at}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _event(text: str) -> dict[str, Any]:
    """The body as an event: a JSON object."""
    try:
        event = json.loads(text)
    except ValueError:
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRejected("the body is not a JSON object")
    return event
