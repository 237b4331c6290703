"""Warm entitlement reads, answered before the framework sees them.

When the API key, the customer's snapshot, the environment's features and (for a metered
feature) the customer's usage are all in memory, a check is a few dict lookups and one
`orjson.dumps`; routing it through FastAPI and Starlette (matching, the request object,
dependency and middleware layers) would cost several times that. Anything this path cannot
answer from memory, or that is not plainly valid, goes on to the routes unchanged, which
answer it (errors included) the full way."""

from collections.abc import Iterable
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from tollgate.entitlements.checks import (
    check_answer,
    is_explain,
    list_answer,
    needs_usage,
    parse_check_query,
)
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import NO_USAGE, UsageStore
from tollgate.environments.cache import KeyCache
from tollgate.errors import TollgateError

PREFIX = "/api/v1/customers/"
CHECK = "entitlements/check"
LIST = "entitlements"
_HEADERS = [(b"content-type", b"application/json")]


class WarmEntitlementReads:
    def __init__(
        self, app: ASGIApp, *, keys: KeyCache, snapshots: SnapshotStore, usage: UsageStore
    ) -> None:
        self.app = app
        self._keys = keys
        self._snapshots = snapshots
        self._usage = usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._answer(scope)
            if body is not None:
                headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            return None
        customer_ref, _, action = path[len(PREFIX) :].partition("/")
        if not customer_ref or action not in (CHECK, LIST):
            return None
        environment_id = self._environment(scope["headers"])
        if environment_id is None:
            return None
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            check = parse_check_query(query) if action == CHECK else None
            explain = is_explain(query)
        except TollgateError:
            return None
        resource_ref = check.resource_ref if check else query.get("resourceId") or None
        snapshot = self._snapshots.cached(environment_id, customer_ref, resource_ref)
        features = self._snapshots.cached_features(environment_id)
        if snapshot is None or features is None:
            return None
        usage = self._usage.cached(environment_id, customer_ref)
        if usage is None:
            if check is None or needs_usage(features, check.feature_ref):
                return None
            usage = NO_USAGE  # the answer does not depend on it
        if check is None:
            data = list_answer(snapshot, features, usage, explain=explain)
        else:
            data = check_answer(snapshot, features, check, usage)
        return orjson.dumps({"data": data})

    def _environment(self, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
        raw_key = None
        for name, value in headers:
            if name == b"x-api-key":
                raw_key = raw_key or value.decode("latin-1")
            elif name in (b"x-environment-id", b"x-customer-token", b"x-customer-key"):
                # Rare here; the routes compare the environment with the key's and limit
                # a customer token to its customer.
                return None
        principal = self._keys.peek(raw_key) if raw_key else None
        # A client key without a token is refused by the routes (or let through there, when
        # its environment allows it).
        return principal.environment_id if principal and principal.reads_any_customer else None
