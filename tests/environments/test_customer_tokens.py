"""Customer tokens: a client key plus `X-CUSTOMER-TOKEN` reads one customer's data only."""

import logging
from collections.abc import Iterator

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support import Tenant, live_server
from tests.support.cli import Cli
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.tokens import customer_token, verified_customer
from tollgate.errors import AuthenticationFailed

GLOBEX_READS = (
    "/api/v1/customers/globex",
    "/api/v1/customers/globex/entitlements",
    "/api/v1/customers/globex/entitlements/check?featureId=feature-seats",
    "/api/v1/customers/globex/promotional-entitlements",
    "/api/v1/customers/globex/resources",
    "/api/v1/usage/globex/history/feature-api-calls?startDate=2026-01-01T00:00:00Z",
    "/api/v1/subscriptions?customerId=globex",
    "/api/v1/sdk/customers/globex/state",
)
"""Every read of one customer's data (globex's), for the token rules."""


@pytest.fixture
def secret(engine: Engine, demo_tenant: Tenant) -> str:
    with unit_of_work(make_session_factory(engine)) as session:
        found = environments.get_environment(session, name=demo_tenant.name).signing_secret
    with demo_tenant.http() as http:
        for customer in ("acme", "globex"):
            http.post("/api/v1/customers", json={"id": customer}).raise_for_status()
            http.post(
                "/api/v1/subscriptions", json={"customerId": customer, "planId": "plan-free"}
            ).raise_for_status()
    return found


@pytest.fixture
def as_acme(demo_tenant: Tenant, secret: str) -> Iterator[httpx.Client]:
    with demo_tenant.http(key=demo_tenant.client_key) as http:
        http.headers["X-CUSTOMER-TOKEN"] = customer_token("acme", secret)
        yield http


class TestCustomerTokens:
    def test_the_token_format(self) -> None:
        token = customer_token("acme", "s3cret")
        assert token.startswith("HMAC-SHA256 acme:")
        assert len(token.rpartition(":")[2]) == 64
        assert verified_customer(token, "s3cret") == "acme"
        with pytest.raises(AuthenticationFailed, match="signing secret"):
            verified_customer(token, "another")

    def test_reads_its_own_customer(self, as_acme: httpx.Client) -> None:
        for path in (
            "/api/v1/customers/acme",
            "/api/v1/customers/acme/entitlements",
            "/api/v1/customers/acme/entitlements/check?featureId=feature-seats",
            "/api/v1/customers/acme/promotional-entitlements",
            "/api/v1/customers/acme/resources",
            "/api/v1/subscriptions?customerId=acme",
            "/api/v1/features",  # the catalog is nobody's secret
        ):
            assert as_acme.get(path).status_code == 200, path

    def test_cannot_read_another_customer(self, as_acme: httpx.Client) -> None:
        for path in (*GLOBEX_READS, "/api/v1/subscriptions", "/api/v1/customers"):
            response = as_acme.get(path)
            assert response.status_code == 403, path
            assert "acme" in response.json()["error"]["message"], path

    def test_a_warm_answer_does_not_leak_another_customer(
        self,
        demo_tenant: Tenant,
        as_acme: httpx.Client,
    ) -> None:
        check = "/api/v1/customers/globex/entitlements/check?featureId=feature-seats"
        with demo_tenant.http() as server:
            for _ in range(3):  # the answer is now served from memory
                assert server.get(check).status_code == 200
        assert as_acme.get(check).status_code == 403

    def test_another_customers_subscription(
        self,
        demo_tenant: Tenant,
        as_acme: httpx.Client,
    ) -> None:
        with demo_tenant.http() as http:
            listed = http.get("/api/v1/subscriptions", params={"customerId": "globex"}).json()
        globex_subscription = listed["data"][0]["id"]
        assert as_acme.get(f"/api/v1/subscriptions/{globex_subscription}").status_code == 403

    def test_a_forged_or_malformed_token_is_unauthenticated(
        self,
        demo_tenant: Tenant,
        secret: str,
    ) -> None:
        forged = customer_token("globex", "not-the-secret")
        with demo_tenant.http(key=demo_tenant.client_key) as http:
            for token in (forged, "acme", "HMAC-SHA256 nocolon"):
                response = http.get("/api/v1/customers/globex", headers={"X-CUSTOMER-TOKEN": token})
                assert response.status_code == 401, token
                assert "X-CUSTOMER-TOKEN" in response.json()["error"]["message"]


@pytest.fixture
def client_key(demo_tenant: Tenant, secret: str) -> Iterator[httpx.Client]:
    """The environment's client key, with no customer token."""
    with demo_tenant.http(key=demo_tenant.client_key) as http:
        yield http


def _warm(demo_tenant: Tenant) -> None:
    """Put globex's entitlements in the server's memory, where the fast path answers."""
    with demo_tenant.http() as server:
        for path in GLOBEX_READS[1:3]:
            for _ in range(3):
                assert server.get(path).status_code == 200


class TestClientKeysWithoutAToken:
    """A client key ships inside browsers and apps: without a customer token it reads the
    catalog and nothing of any customer."""

    def test_never_lists_customers_or_subscriptions(self, client_key: httpx.Client) -> None:
        for path in ("/api/v1/customers", "/api/v1/subscriptions"):
            response = client_key.get(path)
            assert response.status_code == 403, path
            assert "server key" in response.json()["error"]["message"], path
            assert "globex" not in response.text

    def test_reads_no_customer(self, demo_tenant: Tenant, client_key: httpx.Client) -> None:
        _warm(demo_tenant)
        for path in GLOBEX_READS:
            response = client_key.get(path)
            assert response.status_code == 403, path
            error = response.json()["error"]
            assert error["field"] == "X-CUSTOMER-TOKEN", path
            assert "customer token" in error["message"], path
        states = client_key.post("/api/v1/sdk/states", json={"customers": [{"customerId": "acme"}]})
        assert states.status_code == 403
        preview = client_key.post(
            "/api/v1/subscriptions/preview", json={"customerId": "acme", "planId": "plan-pro"}
        )
        assert preview.status_code == 403

    def test_learns_nothing_of_which_subscription_ids_exist(
        self, demo_tenant: Tenant, client_key: httpx.Client
    ) -> None:
        with demo_tenant.http() as http:
            listed = http.get("/api/v1/subscriptions", params={"customerId": "globex"}).json()
        real = listed["data"][0]["id"]
        for subscription in (real, "no-such-subscription"):
            assert client_key.get(f"/api/v1/subscriptions/{subscription}").status_code == 403

    def test_still_reads_the_catalog(self, client_key: httpx.Client) -> None:
        for path in ("/api/v1/features", "/api/v1/plans", "/api/v1/plans/plan-pro"):
            assert client_key.get(path).status_code == 200, path

    def test_the_stigg_client_with_a_client_key_is_refused(self, demo_tenant: Tenant) -> None:
        with stigg.Stigg(
            api_key=demo_tenant.client_key, base_url=demo_tenant.base_url, max_retries=0
        ) as sdk:
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.customers.list()
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.customers.retrieve("globex")
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.subscriptions.list()


class TestTokensMadeOptional:
    """For development, an environment may let its client keys read any customer without a
    token; they still never list customers or everyone's subscriptions."""

    @pytest.fixture
    def relaxed(self, engine: Engine, demo_tenant: Tenant, secret: str) -> None:
        with unit_of_work(make_session_factory(engine)) as session:
            environments.set_customer_token_optional(session, name=demo_tenant.name, optional=True)

    def test_customers_are_read_without_a_token(
        self, relaxed: None, demo_tenant: Tenant, client_key: httpx.Client
    ) -> None:
        _warm(demo_tenant)
        for path in GLOBEX_READS:
            assert client_key.get(path).status_code == 200, path
        for path in ("/api/v1/customers", "/api/v1/subscriptions"):
            assert client_key.get(path).status_code == 403, path

    def test_a_token_still_limits_the_key_to_its_customer(
        self, relaxed: None, as_acme: httpx.Client
    ) -> None:
        assert as_acme.get("/api/v1/customers/acme").status_code == 200
        assert as_acme.get("/api/v1/customers/globex").status_code == 403

    def test_required_again_takes_effect_at_once(
        self, engine: Engine, relaxed: None, demo_tenant: Tenant, client_key: httpx.Client
    ) -> None:
        assert client_key.get("/api/v1/customers/globex").status_code == 200
        with unit_of_work(make_session_factory(engine)) as session:
            environments.set_customer_token_optional(session, name=demo_tenant.name, optional=False)
        assert client_key.get("/api/v1/customers/globex").status_code == 403

    def test_the_server_says_so_when_it_starts(
        self, engine: Engine, relaxed: None, demo_tenant: Tenant, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False), run_jobs=False
        )
        with (
            caplog.at_level(logging.WARNING, logger="tollgate"),
            live_server(create_app(settings, engine=engine)),
        ):
            pass
        warned = [r for r in caplog.records if getattr(r, "environment", None) == demo_tenant.name]
        assert warned
        assert "without a customer token" in warned[0].getMessage()


class TestCustomerTokensCli:
    def test_shows_and_sets_the_setting(self, cli: Cli) -> None:
        cli.create_key("dev", "client")
        shown = cli.run("keys", "customer-tokens", "--environment", "dev")
        assert shown.returncode == 0, shown.stderr
        assert "required" in shown.stderr
        relaxed = cli.run("keys", "customer-tokens", "--environment", "dev", "--optional")
        assert relaxed.returncode == 0, relaxed.stderr
        assert "optional" in relaxed.stderr
        assert "optional" in cli.run("keys", "customer-tokens", "--environment", "dev").stderr
        back = cli.run("keys", "customer-tokens", "--environment", "dev", "--required")
        assert "required" in back.stderr
        missing = cli.run("keys", "customer-tokens", "--environment", "nope", "--optional")
        assert missing.returncode != 0
        assert "nope" in missing.stderr


class TestSigningSecretCli:
    def test_shows_and_rotates(self, cli: Cli) -> None:
        cli.create_key("dev", "client")
        shown = cli.run("keys", "signing-secret", "--environment", "dev")
        assert shown.returncode == 0, shown.stderr
        secret = shown.stdout.strip().splitlines()[-1]
        assert len(secret) == 64
        rotated = cli.run("keys", "signing-secret", "--environment", "dev", "--rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "rotated" in rotated.stderr
        new_secret = rotated.stdout.strip().splitlines()[-1]
        assert new_secret != secret
        with pytest.raises(AuthenticationFailed):
            verified_customer(customer_token("acme", secret), new_secret)
        missing = cli.run("keys", "signing-secret", "--environment", "nope")
        assert missing.returncode != 0
        assert "nope" in missing.stderr
