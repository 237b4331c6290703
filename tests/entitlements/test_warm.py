"""Warm entitlement reads: answered from memory exactly as the routes answer them, and
everything else handed on to the routes untouched."""

from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import Engine

from tests.support import Tenant
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import UsageStore
from tollgate.entitlements.warm import WarmEntitlementReads
from tollgate.environments.cache import KeyCache
from tollgate.environments.service import authenticate
from tollgate.kit.clock import SystemClock

pytestmark = pytest.mark.usefixtures("catalog")
HANDED_ON = 599


class Warm:
    """The warm path over memory filled for customer `acme`, in front of an app that
    answers `HANDED_ON` and counts what reached it."""

    def __init__(self, engine: Engine, tenant: Tenant) -> None:
        sessions = make_session_factory(engine, write=False)
        self.keys = KeyCache()
        self.snapshots = SnapshotStore(sessions, SystemClock())
        with unit_of_work(sessions) as session:
            principal = authenticate(session, raw_key=tenant.server_key)
        self.keys.put(tenant.server_key, principal)
        for resource in (None, "missing-resource"):
            self.snapshots.snapshot(principal.environment_id, "acme", resource)
        self.snapshots.features(principal.environment_id)
        self.usage = UsageStore(sessions, SystemClock())
        self.usage.usage(principal.environment_id, "acme")
        self.handed_on = 0
        self.tenant = tenant
        self.asgi = WarmEntitlementReads(
            self._routes, keys=self.keys, snapshots=self.snapshots, usage=self.usage
        )

    async def _routes(self, scope: Any, receive: Any, send: Any) -> None:
        self.handed_on += 1
        await send({"type": "http.response.start", "status": HANDED_ON, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def get(
        self, path: str, params: dict[str, str], *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://warm") as http:
                sent = {"X-API-KEY": self.tenant.server_key, **(headers or {})}
                return await http.get(path, params=params, headers=sent)

        return anyio.run(call)


@pytest.fixture
def warm(engine: Engine, tenant: Tenant) -> Warm:
    return Warm(engine, tenant)


CHECK = "/api/v1/customers/acme/entitlements/check"
LIST = "/api/v1/customers/acme/entitlements"


class TestAnsweredFromMemory:
    @pytest.mark.parametrize(
        ("path", "params"),
        [
            (CHECK, {"featureId": "feature-seats", "requestedUsage": "25"}),
            (CHECK, {"featureId": "feature-seats", "requestedUsage": "26"}),
            (CHECK, {"featureId": "feature-region", "requestedValues": "eu,apac"}),
            (CHECK, {"featureId": "feature-sso", "explain": "true"}),
            (CHECK, {"featureId": "feature-nope"}),
            (CHECK, {"featureId": "feature-sso", "resourceId": "missing-resource"}),
            (LIST, {}),
            (LIST, {"explain": "true"}),
        ],
    )
    def test_same_answer_as_the_routes(
        self, warm: Warm, http: httpx.Client, path: str, params: dict[str, str]
    ) -> None:
        answered = warm.get(path, params)
        assert answered.status_code == 200, answered.text
        assert answered.headers["content-type"] == "application/json"
        assert warm.handed_on == 0
        assert answered.json() == http.get(path, params=params).json()


class TestHandedOn:
    @pytest.mark.parametrize(
        "params",
        [
            {},  # no featureId: the routes name what is missing
            {"featureId": "feature-seats", "requestedUsage": "many"},
            {"featureId": "feature-seats", "reservationId": "r-1"},
            {"featureId": "feature-sso", "resourceId": "not-cached"},
        ],
    )
    def test_what_the_routes_must_answer(self, warm: Warm, params: dict[str, str]) -> None:
        assert warm.get(CHECK, params).status_code == HANDED_ON

    def test_a_customer_not_in_memory(self, warm: Warm) -> None:
        path = "/api/v1/customers/globex/entitlements/check"
        assert warm.get(path, {"featureId": "feature-sso"}).status_code == HANDED_ON

    def test_a_key_not_in_memory(self, warm: Warm) -> None:
        response = warm.get(CHECK, {"featureId": "feature-sso"}, headers={"X-API-KEY": "unknown"})
        assert response.status_code == HANDED_ON

    def test_an_environment_header(self, warm: Warm) -> None:
        headers = {"X-ENVIRONMENT-ID": "elsewhere"}
        response = warm.get(CHECK, {"featureId": "feature-sso"}, headers=headers)
        assert response.status_code == HANDED_ON

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/customers/acme",
            "/api/v1/customers/acme/entitlements/check/more",
            "/api/v1/customers//entitlements",
            "/api/v1/plans",
        ],
    )
    def test_other_paths(self, warm: Warm, path: str) -> None:
        assert warm.get(path, {"featureId": "feature-sso"}).status_code == HANDED_ON
        assert warm.handed_on == 1
