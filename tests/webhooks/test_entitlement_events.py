"""`entitlements.updated`: sent when a customer's terms change, and only then."""

from datetime import timedelta
from typing import Any

import httpx
import stigg
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.support import START, Clocked, Tenant
from tests.support.webhooks import Receiver, endpoint
from tollgate.customers import promotions
from tollgate.customers import service as customers
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate, PromotionGrants
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.entitlements.announce import Trigger
from tollgate.entitlements.invalidation import customer_changed
from tollgate.environments import service as environments


def updates(receiver: Receiver, clocked: Clocked) -> list[dict[str, Any]]:
    clocked.run_jobs()
    return [r.payload for r in receiver.of_type("entitlements.updated")]


def customer_id(session: Session, environment_id: int, ref_id: str) -> int:
    return session.execute(
        select(Customer.id).where(
            Customer.environment_id == environment_id, Customer.ref_id == ref_id
        )
    ).scalar_one()


def limits(event: dict[str, Any]) -> dict[str, Any]:
    return {e["feature"]["id"]: e["usageLimit"] for e in event["entitlements"]}


class TestEntitlementsUpdated:
    def test_a_subscription_tells_what_the_customer_may_use(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        demo_client.v1.customers.provision(id="acme")
        assert updates(receiver, clocked) == []  # holding nothing, as before: nothing to say
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        [event] = updates(receiver, clocked)
        assert event["trigger"] == "SUBSCRIPTION_CREATED"
        assert (event["customer"], event["resource"]) == ({"id": "acme"}, None)
        assert limits(event) == {
            "feature-seats": 3,
            "feature-active-users": 100,
            "feature-api-calls": 1_000,
        }
        seats = next(e for e in event["entitlements"] if e["feature"]["id"] == "feature-seats")
        assert seats["isGranted"] is True
        assert event["messageId"] == receiver.received[-1].headers["webhook-id"]

    def test_a_change_that_keeps_the_terms_says_nothing(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver, eventTypes=["entitlements.updated", "subscription.updated"])
        demo_client.v1.customers.provision(id="acme")
        demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free", id="sub-acme"
        )
        assert len(updates(receiver, clocked)) == 1
        changed = http.patch(
            "/api/v1/subscriptions/sub-acme",
            json={"metadata": {"team": "ops"}},
        )
        assert changed.status_code == 200, changed.text
        clocked.clock.advance(timedelta(days=31))  # a renewal: a new usage period, same terms
        assert len(updates(receiver, clocked)) == 1
        assert receiver.received[-1].payload["type"] == "subscription.updated"

    def test_a_publish_that_moves_customers(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        demo_client.v1.customers.provision(id="acme")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        plans = demo_client.v1.plans
        plans.create_draft("plan-free")
        plans.entitlements.update(
            "feature-seats", plan_id="plan-free", type="FEATURE", usage_limit=5
        )
        plans.publish("plan-free", migration_type="NEW_CUSTOMERS")
        assert updates(receiver, clocked) == []  # acme keeps its version
        plans.create_draft("plan-free")
        plans.entitlements.update(
            "feature-seats", plan_id="plan-free", type="FEATURE", usage_limit=7
        )
        plans.publish("plan-free", migration_type="ALL_CUSTOMERS")
        [event] = updates(receiver, clocked)
        assert event["trigger"] == "PLAN_PUBLISHED"
        assert limits(event)["feature-seats"] == 7

    def test_a_promotional_grant_starts_and_ends(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        demo_client.v1.customers.provision(id="acme")
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        granted = http.post(
            "/api/v1/customers/acme/promotional-entitlements",
            json={"promotionalEntitlements": [{"featureId": "feature-sso", "period": "1 week"}]},
        )
        assert granted.status_code in (200, 201), granted.text
        [grant] = updates(receiver, clocked)
        assert grant["trigger"] == "PROMOTIONAL_ENTITLEMENT_CHANGED"
        assert [e["feature"]["id"] for e in grant["entitlements"]] == ["feature-sso"]
        clocked.clock.advance(timedelta(days=8))
        [_, ended] = updates(receiver, clocked)
        assert ended["entitlements"] == []

    def test_nothing_is_owed_when_nobody_listens_to_it(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        created = endpoint(http, receiver, eventTypes=["subscription.created"])
        demo_client.v1.customers.provision(id="acme")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        clocked.run_jobs()
        listed = http.get(f"/api/v1/webhooks/{created['id']}/messages").json()["data"]
        assert [m["eventType"] for m in listed] == ["subscription.created"]

    def test_a_parents_publish_reaches_the_plans_below_it(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        v1 = demo_client.v1
        v1.customers.provision(id="acme")
        v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")  # below plan-free
        v1.customers.provision(id="globex")
        v1.subscriptions.provision(customer_id="globex", plan_id="plan-free")
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        v1.features.create_feature(id="feature-audit", display_name="Audit", feature_type="BOOLEAN")
        v1.plans.create_draft("plan-free")
        v1.plans.entitlements.create(
            "plan-free", entitlements=[{"type": "FEATURE", "id": "feature-audit"}]
        )
        v1.plans.publish("plan-free", migration_type="NEW_CUSTOMERS")
        [event] = updates(receiver, clocked)  # globex keeps its version: nothing for it
        assert (event["customer"], event["trigger"]) == ({"id": "acme"}, "PLAN_PUBLISHED")
        assert "feature-audit" in limits(event)

    def test_a_second_change_in_one_transaction_repeats_nothing(
        self,
        engine: Engine,
        demo_tenant: Tenant,
        http: httpx.Client,
        receiver: Receiver,
        clocked: Clocked,
    ) -> None:
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        grant = PromotionGrants.model_validate(
            {"promotionalEntitlements": [{"featureId": "feature-sso", "period": "1 week"}]}
        )
        with unit_of_work(make_session_factory(engine)) as session:
            environment_id = environments.get_environment(session, name=demo_tenant.name).id
            customers.provision_customer(
                session, environment_id=environment_id, data=CustomerCreate(id="acme"), now=START
            )
            promotions.grant_promotions(
                session, environment_id=environment_id, customer_ref="acme", data=grant, now=START
            )
            # Another change of acme later in the same transaction (as a publish that moves
            # two of its subscriptions does) finds the terms just announced: nothing new.
            # The customer as `lifecycle.refresh` finds it: from the session's identity map.
            customer = session.get_one(Customer, customer_id(session, environment_id, "acme"))
            customer_changed(session, customer, trigger=Trigger.SUBSCRIPTION_CHANGED, now=START)
        assert len(updates(receiver, clocked)) == 1
