"""The edge files, CORS and the SDKs' customer-token header, against a live Tollgate on
SQLite and PostgreSQL (the JavaScript SDKs' own runs are in tests/js)."""

from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support.cli import Cli
from tests.support.tenants import Tenant
from tests.support.usage import report, usage
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.origins import is_allowed, normalized_origin
from tollgate.environments.tokens import customer_token
from tollgate.errors import InvalidValue

ENTITLEMENTS = "/v1/c/acme/entitlements.json"
BROWSER = "http://localhost:5173"


def secret_of(engine: Engine, tenant: Tenant) -> str:
    with unit_of_work(make_session_factory(engine)) as session:
        return environments.get_environment(session, name=tenant.name).signing_secret


def allow_origins(engine: Engine, tenant: Tenant, *origins: str) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        environments.set_allowed_origins(session, name=tenant.name, add=list(origins), remove=[])


@pytest.fixture
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as raw:
        yield raw


@pytest.fixture
def acme(demo_client: stigg.Stigg, http: httpx.Client) -> None:
    """A Pro customer (sso, 20 seats, 100,000 API calls a month) with 7 seats taken."""
    demo_client.v1.customers.provision(id="acme")
    demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
    assert report(http, usage("feature-seats", 7)).status_code == 200


def entitlements(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    listed = response.json()["data"]["entitlements"]
    return {e["feature"]["refId"]: e for e in listed}


@pytest.mark.usefixtures("acme")
class TestEntitlementsFile:
    def test_it_holds_what_the_customer_has_in_the_graphql_shape(self, http: httpx.Client) -> None:
        held = entitlements(http.get(ENTITLEMENTS))
        assert set(held) == {
            "feature-sso",
            "feature-seats",
            "feature-api-calls",
            "feature-active-users",
        }
        assert held["feature-seats"]["currentUsage"] == 7
        assert held["feature-seats"]["usageLimit"] == 20
        assert held["feature-seats"]["resetPeriod"] is None
        calls = held["feature-api-calls"]
        assert calls["__typename"] == "Entitlement"
        assert calls["usageLimit"] == 100_000
        assert calls["currentUsage"] == 0
        assert calls["resetPeriod"] == "MONTH"
        assert calls["nextResetDate"] == calls["usagePeriodEnd"] is not None
        assert calls["feature"] | {"description": None} == {
            "__typename": "EntitlementFeature",
            "id": "feature-api-calls",
            "refId": "feature-api-calls",
            "displayName": "API calls",
            "description": None,
            "featureType": "NUMBER",
            "meterType": "Incremental",
            "featureUnits": "call",
            "featureUnitsPlural": "calls",
            "featureStatus": "ACTIVE",
            "unitTransformation": None,
            "additionalMetaData": None,
        }
        assert held["feature-sso"]["feature"]["meterType"] == "None"
        assert held["feature-seats"]["feature"]["meterType"] == "Fluctuating"

    def test_it_follows_a_plan_change(self, http: httpx.Client, demo_client: stigg.Stigg) -> None:
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-enterprise")
        held = entitlements(http.get(ENTITLEMENTS))
        assert (
            held["feature-seats"]["hasUnlimitedUsage"] or held["feature-seats"]["usageLimit"] != 20
        )

    def test_unknown_and_archived_customers_have_empty_lists(
        self, http: httpx.Client, demo_client: stigg.Stigg
    ) -> None:
        assert entitlements(http.get("/v1/c/nobody/entitlements.json")) == {}
        demo_client.v1.customers.archive("acme")
        assert entitlements(http.get(ENTITLEMENTS)) == {}

    def test_a_resource_without_subscriptions_has_an_empty_list(self, http: httpx.Client) -> None:
        assert entitlements(http.get(ENTITLEMENTS, params={"resourceId": "site-1"})) == {}


@pytest.mark.usefixtures("acme")
class TestKeysAndTokens:
    def test_a_bad_key_is_401_on_every_edge_file(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http(key="tg_server_nope") as bad:
            for path in (
                "/v1/config/client-sdk-configuration.json",
                "/v1/config/server-sdk-configuration.json",
                ENTITLEMENTS,
            ):
                assert bad.get(path).status_code == 401

    def test_the_configuration_files(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http(key=demo_tenant.client_key) as client:
            for name in ("client", "server"):
                answer = client.get(f"/v1/config/{name}-sdk-configuration.json")
                assert answer.json() == {
                    "data": {
                        "sdkConfiguration": {
                            "__typename": "SdkConfiguration",
                            "sentryDsn": None,
                            "isWidgetWatermarkEnabled": False,
                        }
                    }
                }

    @pytest.mark.parametrize("header", ["X-CUSTOMER-KEY", "X-CUSTOMER-TOKEN"])
    def test_a_customer_token_reads_its_own_customer_only(
        self, engine: Engine, demo_tenant: Tenant, header: str
    ) -> None:
        token = customer_token("acme", secret_of(engine, demo_tenant))
        with demo_tenant.http(key=demo_tenant.client_key) as client:
            assert client.get(ENTITLEMENTS).status_code == 403  # a client key needs a token
            client.headers[header] = token
            assert "feature-sso" in entitlements(client.get(ENTITLEMENTS))
            other = client.get("/v1/c/globex/entitlements.json")
            assert other.status_code == 403
            assert "'acme', not 'globex'" in other.json()["error"]["message"]
            # The REST API takes the SDKs' header too.
            check = client.get(
                "/api/v1/customers/acme/entitlements/check", params={"featureId": "feature-sso"}
            )
            assert check.json()["data"]["isGranted"] is True
            assert client.get("/api/v1/customers/globex").status_code == 403

    def test_two_different_tokens_are_refused(self, engine: Engine, demo_tenant: Tenant) -> None:
        secret = secret_of(engine, demo_tenant)
        headers = {
            "X-CUSTOMER-KEY": customer_token("acme", secret),
            "X-CUSTOMER-TOKEN": customer_token("globex", secret),
        }
        with demo_tenant.http(key=demo_tenant.client_key) as client:
            answer = client.get(ENTITLEMENTS, headers=headers)
        assert answer.status_code == 401
        assert "different customer tokens" in answer.json()["error"]["message"]


class TestCors:
    PREFLIGHT: ClassVar[dict[str, str]] = {
        "Origin": BROWSER,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "apollographql-client-name,apollographql-client-version,"
        "content-type,source,x-api-key,x-customer-key,x-graphql-operation-name",
    }

    @pytest.mark.parametrize("path", ["/graphql", ENTITLEMENTS])
    def test_preflights_on_sdk_paths_are_answered(self, http: httpx.Client, path: str) -> None:
        answer = http.options(path, headers=self.PREFLIGHT)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] in ("*", BROWSER)
        allowed = answer.headers["access-control-allow-headers"].lower()
        for header in self.PREFLIGHT["Access-Control-Request-Headers"].split(","):
            assert header in allowed
        assert "POST" in answer.headers["access-control-allow-methods"]

    def test_the_rest_api_gets_no_cors(self, http: httpx.Client) -> None:
        answer = http.options("/api/v1/customers", headers=self.PREFLIGHT)
        assert "access-control-allow-origin" not in answer.headers
        listed = http.get("/api/v1/customers", headers={"Origin": BROWSER})
        assert "access-control-allow-origin" not in listed.headers

    @pytest.mark.usefixtures("acme")
    def test_an_origin_its_environment_does_not_allow_is_refused(self, http: httpx.Client) -> None:
        refused = http.get(ENTITLEMENTS, headers={"Origin": BROWSER})
        assert refused.status_code == 403
        assert refused.headers["access-control-allow-origin"]  # the page may read why
        assert f"--add {BROWSER}" in refused.json()["error"]["message"]
        # Without an Origin it is not a browser: the Node SDK and backends pass.
        assert http.get(ENTITLEMENTS).status_code == 200

    @pytest.mark.usefixtures("acme")
    def test_an_origin_its_environment_allows_is_served(
        self, engine: Engine, demo_tenant: Tenant
    ) -> None:
        # Before the client key's first use: a server caches what it learnt of a key.
        allow_origins(engine, demo_tenant, "http://localhost:*")
        token = customer_token("acme", secret_of(engine, demo_tenant))
        headers = {"X-CUSTOMER-KEY": token, "Origin": BROWSER}
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            served = browser.get(ENTITLEMENTS, headers=headers)
            assert served.status_code == 200
            assert served.headers["access-control-allow-origin"] in ("*", BROWSER)
            elsewhere = browser.get(
                ENTITLEMENTS, headers={**headers, "Origin": "https://evil.example"}
            )
            assert elsewhere.status_code == 403


class TestOrigins:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("https://App.Example.com/", "https://app.example.com"),
            ("http://localhost:*", "http://localhost:*"),
            ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
        ],
    )
    def test_origins_are_stored_normalised(self, given: str, stored: str) -> None:
        assert normalized_origin(given) == stored

    @pytest.mark.parametrize(
        "given",
        [
            "app.example.com",
            "ftp://x.example",
            "https://x.example/path",
            "https://x.example:abc",
            "https://x.example:80:*",
            "https://",
        ],
    )
    def test_what_is_not_an_origin_is_refused(self, given: str) -> None:
        with pytest.raises(InvalidValue, match="is not an origin"):
            normalized_origin(given)

    def test_any_port_matches_ports_of_that_host_only(self) -> None:
        allowed = ("http://localhost:*", "https://app.example.com")
        assert is_allowed("http://localhost:3000", allowed)
        assert is_allowed("https://app.example.com", allowed)
        assert not is_allowed("http://localhost", allowed)
        assert not is_allowed("https://localhost:3000", allowed)
        assert not is_allowed("https://app.example.com:8443", allowed)

    def test_the_cli_adds_lists_and_removes_origins(self, cli: Cli) -> None:
        cli.run("keys", "create", "--environment", "web", "--kind", "client")
        added = cli.run(
            "keys",
            "origins",
            "--environment",
            "web",
            "--add",
            "https://a.example",
            "--add",
            "http://localhost:*",
        )
        assert "https://a.example, http://localhost:*" in added.stderr
        removed = cli.run(
            "keys", "origins", "--environment", "web", "--remove", "https://a.example"
        )
        assert "http://localhost:*" in removed.stderr
        assert "a.example" not in removed.stderr
        bad = cli.run("keys", "origins", "--environment", "web", "--add", "a.example")
        assert bad.returncode != 0
        assert "is not an origin" in bad.stderr
