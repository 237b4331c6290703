"""`entitlements.updated`: sent when a customer's terms change, and only then."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import stigg
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import START, Clocked, Tenant
from tests.support.webhooks import Receiver, endpoint
from tollgate.app import change_feed
from tollgate.customers import promotions
from tollgate.customers import service as customers
from tollgate.customers.feed import Trigger, record_holdings_change
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate, PromotionGrants
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import SubscriptionProvision
from tollgate.webhooks.models import WebhookMessage


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
        with unit_of_work(writing_sessions(engine, clocked)) as session:
            environment_id = environments.get_environment(session, name=demo_tenant.name).id
            customers.provision_customer(
                session, environment_id=environment_id, data=CustomerCreate(id="acme"), now=START
            )
            promotions.grant_promotions(
                session, environment_id=environment_id, customer_ref="acme", data=grant, now=START
            )
            # Another change of acme later in the same transaction (as a publish that moves
            # two of its subscriptions does): acme is announced once, at commit.
            customer = session.get_one(Customer, customer_id(session, environment_id, "acme"))
            record_holdings_change(session, customer, trigger=Trigger.SUBSCRIPTION_CHANGED)
        [event] = updates(receiver, clocked)
        assert event["trigger"] == "SUBSCRIPTION_CHANGED"  # the last change says why

    def test_an_upgrade_is_told_once_in_its_final_terms(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        demo_client.v1.customers.provision(id="acme")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        endpoint(http, receiver, eventTypes=["entitlements.updated"])
        # Ends the free subscription and starts the pro one, in one transaction: never the
        # moment between the two, when acme held nothing.
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        [event] = updates(receiver, clocked)
        assert event["trigger"] == "SUBSCRIPTION_CREATED"
        assert limits(event)["feature-seats"] == 20  # plan-pro's, not nothing


class TestOneRecomputePerCustomer:
    CUSTOMERS = 250
    RESOURCES = 4  # subscriptions per customer, one per resource

    def test_a_publish_moving_1000_subscriptions_recomputes_each_customer_once(
        self,
        engine: Engine,
        demo_tenant: Tenant,
        http: httpx.Client,
        receiver: Receiver,
        clocked: Clocked,
    ) -> None:
        with unit_of_work(writing_sessions(engine, clocked)) as session:
            environment_id = environments.get_environment(session, name=demo_tenant.name).id
            for n in range(self.CUSTOMERS):
                customers.provision_customer(
                    session,
                    environment_id=environment_id,
                    data=CustomerCreate(id=f"c{n}"),
                    now=START,
                )
                for r in range(self.RESOURCES):
                    subscriptions.provision_subscription(
                        session,
                        environment_id=environment_id,
                        data=SubscriptionProvision(
                            customer_id=f"c{n}", plan_id="plan-free", resource_id=f"r{r}"
                        ),
                        now=START,
                    )
        listening = endpoint(http, receiver, eventTypes=["entitlements.updated"])
        assert http.post("/api/v1/plans/plan-free/draft").status_code == 200
        seats = {"type": "FEATURE", "usageLimit": 5}
        changed = http.patch("/api/v1/plans/plan-free/entitlements/feature-seats", json=seats)
        assert changed.status_code == 200, changed.text
        with counting_holdings_reads(engine) as reads:
            published = http.post(
                "/api/v1/plans/plan-free/publish",
                json={"migrationType": "ALL_CUSTOMERS"},
                timeout=180,  # a thousand subscriptions move in this one request
            )
        assert published.status_code == 200, published.text
        # One read of each customer's holdings, for all of its scopes (its own and four
        # resources'), however many of its subscriptions moved.
        assert reads.count == self.CUSTOMERS
        with Session(engine) as session:
            owed = session.scalars(
                select(WebhookMessage.payload["customer"]["id"].as_string()).where(
                    WebhookMessage.environment_id == environment_id,
                    WebhookMessage.event_type == "entitlements.updated",
                )
            ).all()
        # Deleting the endpoint drops what it is owed: workers of other tests lease from
        # every environment.
        assert http.delete(f"/api/v1/webhooks/{listening['id']}").status_code == 204
        assert len(owed) == self.CUSTOMERS * self.RESOURCES  # each resource's terms moved
        assert set(owed) == {f"c{n}" for n in range(self.CUSTOMERS)}


def writing_sessions(engine: Engine, clocked: Clocked) -> sessionmaker[Session]:
    """Sessions as every Tollgate process makes them: the change feed follows their writes."""
    sessions = make_session_factory(engine)
    change_feed(clocked.clock).attach(sessions, engine)
    return sessions


@dataclass
class Reads:
    count: int = 0


@contextmanager
def counting_holdings_reads(engine: Engine) -> Iterator[Reads]:
    """Counts what the database is asked: each load of a customer's holdings reads all its
    resources first (`entitlements.holdings.load_holdings`), by the customer's id."""
    reads = Reads()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM customer_resources" in statement and (
            "WHERE customer_resources.customer_id =" in statement
        ):
            reads.count += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", count)
