"""A login decides from what is committed, not from what this process has heard."""

import httpx
from sqlalchemy import Engine

from tests.identity.conftest import MAU, decided, login_body
from tests.support import Clocked, Tenant
from tollgate.customers import service as customers
from tollgate.customers.schemas import CustomerCreate
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import SubscriptionProvision


def test_a_customer_committed_unannounced_is_decided_from_the_database(
    http: httpx.Client, mau_tenant: Tenant, engine: Engine, clocked: Clocked
) -> None:
    # The server remembers that org_x does not exist...
    check = http.get(
        "/api/v1/customers/org_x/entitlements/check", params={"featureId": MAU}
    ).json()["data"]
    assert check["accessDeniedReason"] == "CustomerNotFound"
    # ...then another writer commits it with a plan, and nobody tells the server (a session
    # without the change feed, as a process whose notification has not arrived yet).
    now = clocked.clock.now()
    with unit_of_work(make_session_factory(engine)) as session:
        environment_id = environments.ensure_environment(session, name=mau_tenant.name).id
        customers.provision_customer(
            session, environment_id=environment_id, data=CustomerCreate(id="org_x"), now=now
        )
        subscriptions.provision_subscription(
            session,
            environment_id=environment_id,
            data=SubscriptionProvision(customer_id="org_x", plan_id="plan-team"),
            now=now,
        )
    stale = http.get("/api/v1/customers/org_x/entitlements/check", params={"featureId": MAU})
    assert stale.json()["data"]["accessDeniedReason"] == "CustomerNotFound"
    answer = decided(http, login_body("auth0|ann", "t1", organization="org_x", mode="B2B"))
    assert answer["decision"] == "ALLOW", answer
    (customer,) = answer["customers"]
    assert (customer["isNew"], customer["activeUsers"]["usage"]) == (False, 1)
