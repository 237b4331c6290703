"""What the replica serves besides checks: GraphQL (filters, pages, read-only), GraphiQL,
/healthz, and checks that go on from its own database while the source is down."""

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.replica.conftest import Pair, eventually

PAGE = """
query ($first: Int, $after: String, $filter: CustomerFilter) {
  customers(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id email } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def _provision(http: httpx.Client, customer_id: str, email: str) -> None:
    made = http.post("/api/v1/customers", json={"id": customer_id, "email": email})
    assert made.status_code == 201, made.text
    subscribed = http.post(
        "/api/v1/subscriptions", json={"customerId": customer_id, "planId": "plan-free"}
    )
    assert subscribed.status_code == 200, subscribed.text


class TestGraphQL:
    def test_pages_and_filters(self, pair: Pair) -> None:
        tag = secrets.token_hex(3)
        ids = [f"page-{tag}-{n}" for n in range(5)]
        with pair.http() as http:
            for n, customer_id in enumerate(ids):
                _provision(http, customer_id, f"{n % 2}-{tag}@example.test")
        filtered = {"id": ids}
        eventually(
            lambda: (
                len(pair.replica.graphql(PAGE, first=10, filter=filtered)["customers"]["edges"])
                == 5
            ),
            "every customer in the replica",
        )
        seen: list[str] = []
        after = None
        while True:
            page = pair.replica.graphql(PAGE, first=2, after=after, filter=filtered)["customers"]
            seen += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == sorted(ids)
        by_email = pair.replica.graphql(PAGE, filter={"email": f"1-{tag}@example.test"})
        assert [e["node"]["id"] for e in by_email["customers"]["edges"]] == [ids[1], ids[3]]

    def test_it_is_read_only_and_refuses_huge_pages(self, pair: Pair) -> None:
        mutation = httpx.post(
            f"{pair.replica.url}/graphql",
            json={"query": 'mutation { deleteCustomer(id: "x") }'},
        )
        assert "errors" in mutation.json()
        huge = httpx.post(
            f"{pair.replica.url}/graphql", json={"query": PAGE, "variables": {"first": 10_000}}
        )
        assert "first must be between 1 and 500" in huge.text

    def test_graphiql_is_served(self, pair: Pair) -> None:
        page = httpx.get(f"{pair.replica.url}/graphiql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()


class TestHealth:
    def test_it_says_how_far_behind_it_is(self, pair: Pair) -> None:
        with pair.http() as http:
            _provision(http, f"health-{secrets.token_hex(3)}", "h@example.test")

        def fresh() -> Any:
            health = httpx.get(f"{pair.replica.url}/healthz").json()
            return health if health["lastReceivedAt"] and health["source"]["reachable"] else None

        health = eventually(fresh, "a delivery and an audit")
        assert health["status"] == "ok"
        assert 0 <= health["lagSeconds"] < 60
        assert health["source"]["pendingMessages"] is not None
        received = datetime.fromisoformat(str(health["lastReceivedAt"]))
        assert received <= datetime.now(UTC)
