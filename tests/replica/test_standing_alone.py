"""A replica behind an access token, and one whose source went away: it keeps answering
from its own database, and says the source is unreachable."""

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.replica.conftest import Pair, ReplicaProcess, eventually
from tests.support.databases import postgres_schema, require_postgres, url_in_schema

TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def guarded(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaProcess]:
    """A second replica of the same source, requiring a bearer token."""
    folder = tmp_path_factory.mktemp("guarded")
    if pair.backend == "sqlite":
        replica = ReplicaProcess(
            pair.source, f"sqlite:///{folder / 'guarded.db'}", folder / "guarded.log"
        )
        replica.extra = ("--access-token", TOKEN)
        replica.start()
        yield replica
        replica.stop()
        return
    server = require_postgres()
    with postgres_schema(server) as schema:
        replica = ReplicaProcess(pair.source, url_in_schema(server, schema), folder / "guarded.log")
        replica.extra = ("--access-token", TOKEN)
        replica.start()
        yield replica
        replica.stop()


class TestAccessToken:
    def test_checks_and_queries_need_it(self, pair: Pair, guarded: ReplicaProcess) -> None:
        with pair.http() as http:
            assert http.post("/api/v1/customers", json={"id": "guarded-1"}).status_code == 201
        body = {"customerId": "guarded-1", "featureId": "feature-sso"}
        refused = httpx.post(f"{guarded.url}/check-access", json=body)
        assert (refused.status_code, refused.json()["field"]) == (401, "authorization")
        wrong = httpx.post(
            f"{guarded.url}/check-access", json=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        query = {"query": '{ customer(id: "guarded-1") { id } }'}
        assert httpx.post(f"{guarded.url}/graphql", json=query).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}

        def answered() -> bool:
            found = httpx.post(f"{guarded.url}/graphql", json=query, headers=bearer).json()
            customer: dict[str, str] | None = found["data"]["customer"]
            return customer == {"id": "guarded-1"}

        eventually(answered, "the customer, read with the token")
        allowed = httpx.post(f"{guarded.url}/check-access", json=body, headers=bearer)
        assert allowed.json()["accessDeniedReason"] == "NoActiveSubscription"


class TestSourceDown:
    def test_checks_go_on_from_the_replicas_own_database(self, pair: Pair) -> None:
        with pair.http() as http:
            assert http.post("/api/v1/customers", json={"id": "alone-1"}).status_code == 201
            subscribed = http.post(
                "/api/v1/subscriptions", json={"customerId": "alone-1", "planId": "plan-pro"}
            )
            assert subscribed.status_code == 200, subscribed.text
        eventually(
            lambda: pair.replica.check("alone-1", "feature-sso").status_code == 200,
            "the subscription in the replica",
        )
        pair.source.process.terminate()
        pair.source.process.wait(timeout=20)
        assert pair.replica.check("alone-1", "feature-sso").status_code == 200
        denied = pair.replica.check("alone-1", "feature-seats", requestedUsage=100)
        assert denied.json()["accessDeniedReason"] == "RequestedUsageExceedingLimit"

        def unreachable() -> bool:
            source = httpx.get(f"{pair.replica.url}/healthz").json()["source"]
            return source["reachable"] is False and bool(source["error"])

        eventually(unreachable, "/healthz saying the source is unreachable")
        # Still answering after the audit failed.
        assert pair.replica.check("alone-1", "feature-sso").status_code == 200
