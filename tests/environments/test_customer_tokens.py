"""Customer tokens: a client key plus `X-CUSTOMER-TOKEN` reads one customer's data only."""
# ruff: noqa: F811 (pytest fixtures imported, then named as parameters)

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from tests.e2e.conftest import clocked, demo_tenant  # noqa: F401
from tests.environments.test_keys import Cli, cli  # noqa: F401
from tests.support import Tenant
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.tokens import customer_token, verified_customer
from tollgate.errors import AuthenticationFailed


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
        for path in (
            "/api/v1/customers/globex",
            "/api/v1/customers/globex/entitlements",
            "/api/v1/customers/globex/entitlements/check?featureId=feature-seats",
            "/api/v1/customers/globex/promotional-entitlements",
            "/api/v1/customers/globex/resources",
            "/api/v1/usage/globex/history/feature-api-calls?startDate=2026-01-01T00:00:00Z",
            "/api/v1/subscriptions?customerId=globex",
            "/api/v1/subscriptions",
            "/api/v1/customers",
        ):
            response = as_acme.get(path)
            assert response.status_code == 403, path
            assert "acme" in response.json()["error"]["message"], path

    def test_a_warm_answer_does_not_leak_another_customer(
        self,
        demo_tenant: Tenant,
        as_acme: httpx.Client,
    ) -> None:
        check = "/api/v1/customers/globex/entitlements/check?featureId=feature-seats"
        with demo_tenant.http(key=demo_tenant.client_key) as plain:
            for _ in range(3):  # the answer is now served from memory
                assert plain.get(check).status_code == 200
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
