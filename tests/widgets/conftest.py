"""Stigg's own React widgets (`@stigg/react-sdk`, pinned in tests/js/package-lock.json) in
Debian's chromium, driven by Playwright, against a live Tollgate on each database.

The test page (tests/js/widgets/page.jsx) is bundled with esbuild once per test worker and
served from another origin than Tollgate's, as a customer's app would be: every call is
cross-origin. The browser reaches nothing outside 127.0.0.1: `js.stripe.com` is answered
with a Stripe.js double talking to localstripe (tests/widgets/fake_stripe.js), every other
outside request (fonts) is refused. Screenshots of every step go to build/widgets/ (not
committed), to compare by eye when a widget's look changes."""

import functools
import http.server
import json
import os
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stigg
from playwright.sync_api import Browser, Page, Playwright, Response, Route, sync_playwright
from sqlalchemy import Engine

from tests.graphql_api.documents import need_node
from tests.graphql_api.test_edge import allow_origins
from tests.support.localstripe import SECRET_KEY, WEBHOOK_SECRET, LocalStripe
from tests.support.servers import handler_server
from tests.support.tenants import Tenant, make_demo_tenant, signing_secret
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments.tokens import customer_token
from tollgate.payments import providers

ROOT = Path(__file__).parents[2]
JS = ROOT / "tests" / "js"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "build" / "widgets"
PUBLISHABLE_KEY = "pk_test_tollgate"
# As a page's test waits for a widget: long enough for a loaded machine, short enough to fail.
WAIT_MS = 20_000


def need_chromium() -> str:
    """Debian's chromium (`make setup` installs it): never a browser Playwright downloads."""
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: run `make setup` (Debian's chromium package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the widgets' tests")
        pytest.skip(reason)
    return CHROMIUM


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def widget_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test page, bundled now from the pinned packages and served on 127.0.0.1."""
    node = need_node()
    need_chromium()
    out = tmp_path_factory.mktemp("widget-page")
    subprocess.run(
        [node, str(JS / "widgets" / "build.mjs"), str(out)],
        check=True,
        cwd=JS,
        timeout=120,
        capture_output=True,
    )
    with handler_server(functools.partial(_Quiet, directory=str(out))) as url:
        yield url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    found = playwright.chromium.launch(
        executable_path=need_chromium(),
        # What this machine's closed network needs: no background calls to Google's hosts.
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    yield found
    found.close()


@dataclass(frozen=True)
class Shop:
    """A tenant with the demo catalog on the real clock (the browser's), its customers'
    tokens, Stripe (localstripe) connected with a publishable key, and the page's origin
    allowed."""

    tenant: Tenant
    client: stigg.Stigg
    secret: str
    site: str
    backend: str
    stripe: LocalStripe
    integration_id: str

    def token(self, customer_id: str) -> str:
        return customer_token(customer_id, self.secret)

    def customer(self, customer_id: str, plan: str | None = None, **fields: Any) -> None:
        self.client.v1.customers.provision(
            id=customer_id,
            name=fields.pop("name", customer_id.title()),
            email=fields.pop("email", f"billing@{customer_id}.test"),
            **fields,
        )
        if plan is not None:
            self.client.v1.subscriptions.provision(customer_id=customer_id, plan_id=plan)

    def subscribe_and_pay(self, customer_id: str, plan: str) -> None:
        """Subscribe monthly and pay at once, as a checkout does (GraphQL, server key)."""
        with self.tenant.http() as http:
            answer = http.post(
                "/graphql",
                json={
                    "query": "mutation($input: ApplySubscriptionInput!) { applySubscription("
                    "input: $input) { subscription { status paymentCollection } } }",
                    "variables": {
                        "input": {
                            "customerId": customer_id,
                            "planId": plan,
                            "billingPeriod": "MONTHLY",
                        }
                    },
                },
            ).json()
        applied = answer["data"]["applySubscription"]["subscription"]
        assert applied == {"status": "ACTIVE", "paymentCollection": "NOT_REQUIRED"}, answer

    def card_on_file(self, customer_id: str, number: str) -> None:
        """Attach a card through Tollgate's payment-method API (as a server would)."""
        with self.tenant.http() as http:
            attached = http.post(
                f"/api/v1/customers/{customer_id}/payment-method",
                json={
                    "integrationId": self.integration_id,
                    "paymentMethodId": self.stripe.card(number),
                    "vendorIdentifier": "STRIPE",
                },
            )
        assert attached.status_code == 200, attached.text


@pytest.fixture
def shop(
    engine: Engine,
    base_url: str,
    widget_site: str,
    localstripe: LocalStripe,
    request: pytest.FixtureRequest,
) -> Iterator[Shop]:
    tenant = make_demo_tenant(engine, base_url)
    allow_origins(engine, tenant, widget_site)
    with unit_of_work(make_session_factory(engine)) as session:
        provider = providers.connect_stripe(
            session,
            environment=tenant.name,
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            publishable_key=PUBLISHABLE_KEY,
            api_base=localstripe.url,
            now=datetime.now(UTC),
        )
        integration_id = provider.ref_id
    localstripe.send_webhooks_to(f"{base_url}/webhooks/stripe/{integration_id}")
    backend = engine.dialect.name
    with stigg.Stigg(api_key=tenant.server_key, base_url=base_url, max_retries=0) as client:
        yield Shop(
            tenant,
            client,
            signing_secret(engine, tenant),
            widget_site,
            backend,
            localstripe,
            integration_id,
        )


class Widget:
    """One widget on the test page, in a browser context of its own."""

    def __init__(self, page: Page, shop: Shop, name: str) -> None:
        self.page = page
        self.shop = shop
        self.name = name
        self.errors: list[str] = []
        self.responses: list[Response] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "response",
            lambda response: (
                self.responses.append(response)
                if response.url.startswith(shop.tenant.base_url)
                else None
            ),
        )

    def answers(self) -> list[tuple[str, int, str]]:
        """What Tollgate answered the page so far: (path and operation, status, body)."""
        found = []
        for response in self.responses:
            request = response.request
            what = response.url.removeprefix(self.shop.tenant.base_url)
            if request.method == "POST":
                what += f" {request.headers.get('x-graphql-operation-name', '')}"
            body = "" if request.method == "OPTIONS" else response.text()
            found.append((what, response.status, body))
        return found

    def events(self, name: str) -> list[Any]:
        found: list[dict[str, Any]] = self.page.evaluate("window.tollgate.events")
        return [event["value"] for event in found if event["name"] == name]

    def text(self) -> str:
        """The page's text, each run of spaces and line breaks made one space."""
        return " ".join(self.page.inner_text("#root").split())

    def shot(self, step: str) -> Path:
        """A screenshot of this step: build/widgets/<database>/<widget>-<step>.png."""
        path = SCREENSHOTS / self.shop.backend / f"{self.name}-{step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_widget(browser: Browser, shop: Shop) -> Iterator[Any]:
    """`open_widget(name, widget=..., customerId=..., token_for=...)`: the test page
    rendering one widget for a customer, with a token signed for `token_for` (the customer
    itself by default; None: no token)."""
    contexts = []
    fake_stripe = (Path(__file__).parent / "fake_stripe.js").read_text()
    fake_stripe = fake_stripe.replace("__LOCALSTRIPE__", shop.stripe.url)

    def outside(route: Route) -> None:
        if route.request.url.startswith("https://js.stripe.com/v3"):
            route.fulfill(status=200, content_type="text/javascript", body=fake_stripe)
        else:
            route.abort()  # fonts and anything else beyond this machine

    def open_(name: str, *, token_for: Any = "customer", **config: Any) -> Widget:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        context.route(re.compile(r"^https://"), outside)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        customer = config.get("customerId")
        signed_for = customer if token_for == "customer" else token_for
        config = {
            "apiKey": shop.tenant.client_key,
            "baseUri": shop.tenant.base_url,
            **config,
            **({"customerToken": shop.token(signed_for)} if signed_for else {}),
        }
        widget = Widget(page, shop, name)
        page.goto(f"{shop.site}/index.html?config={urllib.parse.quote(json.dumps(config))}")
        return widget

    yield open_
    for context in contexts:
        context.close()
