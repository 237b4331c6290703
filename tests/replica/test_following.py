"""Changes made through Tollgate's API (the official client) reach the replica's GraphQL and
`/check-access` answers, through webhooks the replica registered for itself."""

from typing import Any

from tests.replica.conftest import Pair, eventually

CUSTOMER_QUERY = """
query ($id: ID!) {
  customer(id: $id) {
    id name email isArchived
    subscriptions { id status planId planName }
    entitlements { featureId isGranted currentUsage usageLimit accessDeniedReason }
    usage { featureId currentUsage }
  }
}
"""


def _customer(pair: Pair, customer_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = pair.replica.graphql(CUSTOMER_QUERY, id=customer_id)["customer"]
    return found


class TestFollowing:
    def test_a_customer_its_subscription_and_usage_arrive(self, pair: Pair) -> None:
        with pair.client() as client:
            client.v1.customers.provision(id="follow-1", name="Acme", email="ops@acme.test")
            client.v1.subscriptions.provision(customer_id="follow-1", plan_id="plan-free")
            client.v2.usage.report(
                usages=[
                    {"customer_id": "follow-1", "feature_id": "feature-active-users", "value": 7}
                ]
            )

        def arrived() -> dict[str, Any] | None:
            found = _customer(pair, "follow-1")
            counted = {u["featureId"]: u["currentUsage"] for u in (found or {}).get("usage", [])}
            return found if counted.get("feature-active-users") == 7 else None

        found = eventually(arrived, "the customer, its subscription and usage in GraphQL")
        assert (found["name"], found["email"]) == ("Acme", "ops@acme.test")
        assert [s["planId"] for s in found["subscriptions"]] == ["plan-free"]
        assert found["subscriptions"][0]["planName"] == "Free"
        users = next(e for e in found["entitlements"] if e["featureId"] == "feature-active-users")
        assert (users["usageLimit"], users["currentUsage"]) == (100, 7)
        granted = pair.replica.check("follow-1", "feature-active-users", requestedUsage=93)
        assert granted.status_code == 200, granted.text
        assert granted.json()["hasAccess"] is True
        denied = pair.replica.check("follow-1", "feature-active-users", requestedUsage=94)
        assert denied.status_code == 403
        assert denied.json()["accessDeniedReason"] == "RequestedUsageExceedingLimit"
