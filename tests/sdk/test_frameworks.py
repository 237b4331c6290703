"""The SDK's framework helpers gate real FastAPI, Flask and Django apps on a live Tollgate.

Each app is the framework's own (FastAPI served by uvicorn, Flask's test client, Django's
test Client); its gate asks a real `Tollgate` or `AsyncTollgate` pointed at the in-thread
server, whose tenant holds the demo catalog with "acme" on plan-pro (which has feature-sso)
and "globex" on plan-free (no SSO, 3 seats). A granted customer reaches the view; anyone
else gets 403 with a body saying which feature and why, and the view never runs. A FastAPI
gate waiting for the server leaves the app's event loop free for other requests."""

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any

import django
import flask
import httpx
import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.http import HttpRequest, JsonResponse
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import path
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine

from tests.support import Tenant, live_server, make_demo_tenant
from tollgate_sdk import AsyncTollgate, BooleanEntitlement, MeteredEntitlement, Tollgate
from tollgate_sdk.django import feature_required as django_feature_required
from tollgate_sdk.fastapi import require_feature
from tollgate_sdk.flask import feature_required as flask_feature_required

Answer = BooleanEntitlement | MeteredEntitlement
SOURCES = {"server", "cache"}  # a live answer: never a fallback in these tests
# A gate asks the client exactly as any other caller does, stream or no stream; without
# one, closing each test's client is immediate.
LIVE_UPDATES = False


@pytest.fixture(scope="module")
def shop(engine: Engine, base_url: str) -> Tenant:
    """A tenant with the demo catalog, "acme" on plan-pro and "globex" on plan-free; one per
    backend for this module, as no test here changes anything on the server (each test
    has clients, and so caches, of its own)."""
    tenant = make_demo_tenant(engine, base_url)
    with tenant.http() as http:
        for customer, plan in (("acme", "plan-pro"), ("globex", "plan-free")):
            http.post("/api/v1/customers", json={"id": customer}).raise_for_status()
            subscription = {"customerId": customer, "planId": plan}
            http.post("/api/v1/subscriptions", json=subscription).raise_for_status()
    return tenant


@pytest.fixture
def tollgate(shop: Tenant) -> Iterator[Tollgate]:
    with Tollgate(shop.server_key, base_url=shop.base_url, live_updates=LIVE_UPDATES) as client:
        yield client


def assert_denied(error: Any, *, feature: str, reason: str) -> None:
    """A gate's denial body (`detail` in FastAPI, `error` elsewhere): which feature, why."""
    assert error["code"] == "feature_not_granted"
    assert error["featureId"] == feature
    assert error["accessDeniedReason"] == reason
    assert feature in error["message"]


# --- FastAPI ---------------------------------------------------------------------------


@dataclass
class FastAPIShop:
    http: httpx.Client
    calls: Counter[str]  # how often each route's own code ran


def fastapi_app(client: Tollgate | AsyncTollgate, calls: Counter[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # The async client's connections belong to this app's event loop: close them on it.
        if isinstance(client, AsyncTollgate):
            await client.aclose()

    async def org_of(request: Request) -> str | None:
        return request.headers.get("x-org")

    sso = require_feature(
        client, "feature-sso", customer_id=lambda request: request.headers.get("x-org")
    )
    sso_async_org = require_feature(client, "feature-sso", customer_id=org_of)
    five_seats = require_feature(
        client,
        "feature-seats",
        customer_id=lambda request: request.headers.get("x-org"),
        requested_usage=5,
    )
    app = FastAPI(lifespan=lifespan)

    @app.get("/sso")
    def sso_settings(answer: Annotated[Answer, Depends(sso)]) -> dict[str, Any]:
        calls["/sso"] += 1
        return {"hasAccess": answer.has_access, "source": answer.source.value}

    @app.get("/sso-async-org")
    async def sso_settings_async(answer: Annotated[Answer, Depends(sso_async_org)]) -> bool:
        calls["/sso-async-org"] += 1
        return answer.has_access

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    @app.post("/seats")
    def invite_five(answer: Annotated[Answer, Depends(five_seats)]) -> dict[str, Any]:
        calls["/seats"] += 1
        assert isinstance(answer, MeteredEntitlement)
        return {"limit": answer.usage_limit, "requested": answer.requested_usage}

    return app


@contextmanager
def serving(client: Tollgate | AsyncTollgate) -> Iterator[FastAPIShop]:
    """A FastAPI app gated by `client`, served by uvicorn; the client is closed afterwards
    (an async one by the app's shutdown)."""
    calls: Counter[str] = Counter()
    try:
        with (
            live_server(fastapi_app(client, calls)) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            yield FastAPIShop(http, calls)
    finally:
        if isinstance(client, Tollgate):
            client.close()


@pytest.fixture(params=["Tollgate", "AsyncTollgate"])
def fastapi_shop(request: pytest.FixtureRequest, shop: Tenant) -> Iterator[FastAPIShop]:
    """The FastAPI app, gated by a sync or an async client."""
    kind = Tollgate if request.param == "Tollgate" else AsyncTollgate
    with serving(kind(shop.server_key, base_url=shop.base_url, live_updates=LIVE_UPDATES)) as app:
        yield app


class TestFastAPIRequireFeature:
    def test_a_customer_granted_the_feature_reaches_the_route(
        self, fastapi_shop: FastAPIShop
    ) -> None:
        first = fastapi_shop.http.get("/sso", headers={"x-org": "acme"})
        assert first.status_code == 200, first.text
        assert first.json() == {"hasAccess": True, "source": "server"}
        again = fastapi_shop.http.get("/sso", headers={"x-org": "acme"})
        assert again.json() == {"hasAccess": True, "source": "cache"}
        assert fastapi_shop.calls["/sso"] == 2

    def test_a_customer_whose_plan_lacks_the_feature_gets_403_naming_it(
        self, fastapi_shop: FastAPIShop
    ) -> None:
        response = fastapi_shop.http.get("/sso", headers={"x-org": "globex"})
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert_denied(detail, feature="feature-sso", reason="NoFeatureEntitlementInSubscription")
        assert detail["source"] in SOURCES
        assert fastapi_shop.calls["/sso"] == 0

    def test_a_request_without_a_customer_gets_403_customer_not_found(
        self, fastapi_shop: FastAPIShop
    ) -> None:
        response = fastapi_shop.http.get("/sso")
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert_denied(detail, feature="feature-sso", reason="CustomerNotFound")
        assert detail["source"] is None  # nothing was asked: there was no one to ask about
        assert fastapi_shop.calls["/sso"] == 0

    def test_a_customer_tollgate_does_not_know_gets_403_customer_not_found(
        self, fastapi_shop: FastAPIShop
    ) -> None:
        response = fastapi_shop.http.get("/sso", headers={"x-org": "initech"})
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert_denied(detail, feature="feature-sso", reason="CustomerNotFound")
        assert detail["source"] in SOURCES
        assert fastapi_shop.calls["/sso"] == 0


class TestFastAPIAsyncCustomerId:
    def test_an_async_callable_names_the_customer(self, fastapi_shop: FastAPIShop) -> None:
        granted = fastapi_shop.http.get("/sso-async-org", headers={"x-org": "acme"})
        assert granted.status_code == 200, granted.text
        assert granted.json() is True
        denied = fastapi_shop.http.get("/sso-async-org", headers={"x-org": "globex"})
        assert denied.status_code == 403
        assert_denied(
            denied.json()["detail"],
            feature="feature-sso",
            reason="NoFeatureEntitlementInSubscription",
        )
        assert fastapi_shop.calls["/sso-async-org"] == 1


class TestFastAPIMeteredGate:
    def test_requested_usage_beyond_the_plan_limit_is_refused(
        self, fastapi_shop: FastAPIShop
    ) -> None:
        denied = fastapi_shop.http.post("/seats", headers={"x-org": "globex"})
        assert denied.status_code == 403
        assert_denied(
            denied.json()["detail"],
            feature="feature-seats",
            reason="RequestedUsageExceedingLimit",
        )
        assert fastapi_shop.calls["/seats"] == 0

        granted = fastapi_shop.http.post("/seats", headers={"x-org": "acme"})
        assert granted.status_code == 200, granted.text
        assert granted.json() == {"limit": 20, "requested": 5}
        assert fastapi_shop.calls["/seats"] == 1


HOLD_SECONDS = 20  # a held load goes on by itself after this, should a test not release it


class HeldLoads(httpx.BaseTransport):
    """A real transport that holds every customer-state load until `release` is set, so a
    test can act while a gate waits for the server."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.loading = threading.Event()
        self.release = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/state"):
            self.loading.set()
            self.release.wait(HOLD_SECONDS)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncHeldLoads(httpx.AsyncBaseTransport):
    """`HeldLoads` for an `AsyncTollgate`'s loads (waiting off the event loop)."""

    def __init__(self, held: HeldLoads) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._held = held

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/state"):
            self._held.loading.set()
            await asyncio.to_thread(self._held.release.wait, HOLD_SECONDS)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class HeldShop:
    app: FastAPIShop
    held: HeldLoads


@pytest.fixture(params=["Tollgate", "AsyncTollgate"])
def held_shop(request: pytest.FixtureRequest, shop: Tenant) -> Iterator[HeldShop]:
    """The FastAPI app, whose gate's client loads customers only when the test says so."""
    held = HeldLoads()
    client: Tollgate | AsyncTollgate
    if request.param == "Tollgate":
        client = Tollgate(
            shop.server_key, base_url=shop.base_url, live_updates=LIVE_UPDATES, transport=held
        )
    else:
        client = AsyncTollgate(
            shop.server_key,
            base_url=shop.base_url,
            live_updates=LIVE_UPDATES,
            async_transport=AsyncHeldLoads(held),
        )
    try:
        with serving(client) as app:
            yield HeldShop(app, held)
    finally:
        held.release.set()


class TestFastAPIGateLeavesTheEventLoopFree:
    def test_the_app_serves_other_requests_while_a_gate_loads_a_customer(
        self, held_shop: HeldShop
    ) -> None:
        http, held = held_shop.app.http, held_shop.held
        with ThreadPoolExecutor(max_workers=1) as pool:
            gated = pool.submit(http.get, "/sso", headers={"x-org": "acme"})
            try:
                assert held.loading.wait(10), "the gate never asked the server"
                # Generous: a free event loop answers this in milliseconds.
                ping: httpx.Response | None = http.get("/ping", timeout=5)
            except httpx.TimeoutException:
                ping = None
            finally:
                held.release.set()
            assert ping is not None, "the app answered nothing while the gate waited"
            assert ping.json() == "pong"
            assert gated.result().status_code == 200


# --- Flask -----------------------------------------------------------------------------


@dataclass
class FlaskShop:
    app: flask.Flask
    calls: Counter[str]


@pytest.fixture
def flask_shop(tollgate: Tollgate) -> FlaskShop:
    calls: Counter[str] = Counter()
    app = flask.Flask(__name__)
    app.testing = True  # a view's exception fails the test instead of becoming a 500

    def org() -> str | None:
        return flask.request.headers.get("X-Org")

    @app.get("/sso")
    @flask_feature_required(tollgate, "feature-sso", customer_id=org)
    def sso_settings() -> dict[str, bool]:
        calls["/sso"] += 1
        return {"sso": True}

    @app.post("/seats")
    @flask_feature_required(tollgate, "feature-seats", customer_id=org, requested_usage=5)
    def invite_five() -> dict[str, bool]:
        calls["/seats"] += 1
        return {"invited": True}

    return FlaskShop(app, calls)


class TestFlaskFeatureRequired:
    def test_only_a_granted_customer_reaches_the_view(self, flask_shop: FlaskShop) -> None:
        http = flask_shop.app.test_client()

        granted = http.get("/sso", headers={"X-Org": "acme"})
        assert granted.status_code == 200
        assert granted.get_json() == {"sso": True}

        denied = http.get("/sso", headers={"X-Org": "globex"})
        assert denied.status_code == 403
        body = denied.get_json()
        assert_denied(
            body["error"], feature="feature-sso", reason="NoFeatureEntitlementInSubscription"
        )
        assert body["error"]["source"] in SOURCES

        anonymous = http.get("/sso")
        assert anonymous.status_code == 403
        assert_denied(
            anonymous.get_json()["error"], feature="feature-sso", reason="CustomerNotFound"
        )

        assert flask_shop.calls["/sso"] == 1

    def test_requested_usage_beyond_the_plan_limit_is_refused(self, flask_shop: FlaskShop) -> None:
        http = flask_shop.app.test_client()
        denied = http.post("/seats", headers={"X-Org": "globex"})
        assert denied.status_code == 403
        assert_denied(
            denied.get_json()["error"],
            feature="feature-seats",
            reason="RequestedUsageExceedingLimit",
        )
        assert http.post("/seats", headers={"X-Org": "acme"}).status_code == 200
        assert flask_shop.calls["/seats"] == 1


# --- Django ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_ready() -> None:
    """Django configured once per process. No logging configuration (LOGGING_CONFIG=None):
    Django's own would replace handlers and capture warnings for every later test."""
    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            SECRET_KEY="tollgate-sdk-framework-tests",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            LOGGING_CONFIG=None,
            USE_TZ=True,
        )
    if not django_apps.ready:
        django.setup()


# Only so that ROOT_URLCONF names a real URL module; each test routes to its own views.
urlpatterns: list[Any] = []


@dataclass
class DjangoShop:
    http: DjangoClient
    calls: Counter[str]


@pytest.fixture
def django_shop(django_ready: None, tollgate: Tollgate) -> Iterator[DjangoShop]:
    calls: Counter[str] = Counter()

    def org(request: HttpRequest) -> str | None:
        found: str | None = request.headers.get("X-Org")
        return found

    @django_feature_required(tollgate, "feature-sso", customer_id=org)
    def sso_settings(request: HttpRequest) -> JsonResponse:
        calls["/sso"] += 1
        return JsonResponse({"sso": True})

    @django_feature_required(tollgate, "feature-seats", customer_id=org, requested_usage=5)
    def invite_five(request: HttpRequest) -> JsonResponse:
        calls["/seats"] += 1
        return JsonResponse({"invited": True})

    @django_feature_required(tollgate, "feature-sso", customer_id=org)
    async def sso_settings_async(request: HttpRequest) -> JsonResponse:
        calls["/async-sso"] += 1
        return JsonResponse({"sso": True})

    urls = ModuleType("urls")  # a URLconf module of this test's own
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("sso", sso_settings),
        path("seats", invite_five),
        path("async-sso", sso_settings_async),
    ]
    # Whoever configured Django first, these requests see this app's URLs and hosts.
    with override_settings(ROOT_URLCONF=urls, ALLOWED_HOSTS=["testserver"], MIDDLEWARE=[]):
        yield DjangoShop(DjangoClient(), calls)


class TestDjangoFeatureRequired:
    def test_only_a_granted_customer_reaches_the_view(self, django_shop: DjangoShop) -> None:
        http = django_shop.http

        granted = http.get("/sso", headers={"X-Org": "acme"})
        assert granted.status_code == 200
        assert granted.json() == {"sso": True}

        denied = http.get("/sso", headers={"X-Org": "globex"})
        assert denied.status_code == 403
        assert denied["Content-Type"] == "application/json"
        body = denied.json()
        assert_denied(
            body["error"], feature="feature-sso", reason="NoFeatureEntitlementInSubscription"
        )
        assert body["error"]["source"] in SOURCES

        anonymous = http.get("/sso")
        assert anonymous.status_code == 403
        assert_denied(anonymous.json()["error"], feature="feature-sso", reason="CustomerNotFound")

        assert django_shop.calls["/sso"] == 1

    def test_an_async_view_is_gated_too(self, django_shop: DjangoShop) -> None:
        http = django_shop.http
        granted = http.get("/async-sso", headers={"X-Org": "acme"})
        assert (granted.status_code, granted.json()) == (200, {"sso": True})
        denied = http.get("/async-sso", headers={"X-Org": "globex"})
        assert denied.status_code == 403
        assert_denied(
            denied.json()["error"],
            feature="feature-sso",
            reason="NoFeatureEntitlementInSubscription",
        )
        assert django_shop.calls["/async-sso"] == 1

    def test_requested_usage_beyond_the_plan_limit_is_refused(
        self, django_shop: DjangoShop
    ) -> None:
        http = django_shop.http
        denied = http.post("/seats", headers={"X-Org": "globex"})
        assert denied.status_code == 403
        assert_denied(
            denied.json()["error"],
            feature="feature-seats",
            reason="RequestedUsageExceedingLimit",
        )
        assert http.post("/seats", headers={"X-Org": "acme"}).status_code == 200
        assert django_shop.calls["/seats"] == 1
