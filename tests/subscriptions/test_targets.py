"""Scheduled updates are stored as the JSON rows have always held, and rows written in that
form are still read and carried out."""

from datetime import UTC, datetime, timedelta
from typing import Any

import stigg
from sqlalchemy import JSON, Engine, column, select, table, update

from tests.support import Clocked
from tests.support.subscriptions import customer, extra, get, subscribe, updates

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)

_subscriptions = table("subscriptions", column("id"), column("ref_id"))
_schedules = table("subscription_schedules", column("subscription_id"), column("target", JSON))
_packages = table("packages", column("id"), column("ref_id"), column("environment_id"))
_versions = table("package_versions", column("id"), column("package_id"))


def _stored_target(engine: Engine, subscription_ref: str) -> Any:
    with engine.connect() as connection:
        return connection.scalar(
            select(_schedules.c.target)
            .join(_subscriptions, _subscriptions.c.id == _schedules.c.subscription_id)
            .where(_subscriptions.c.ref_id == subscription_ref)
        )


def _version_ids(engine: Engine, package_ref: str) -> set[int]:
    with engine.connect() as connection:
        found = connection.scalars(
            select(_versions.c.id)
            .join(_packages, _packages.c.id == _versions.c.package_id)
            .where(_packages.c.ref_id == package_ref)
        )
        return set(found)


def _downgrade_to_pro(client: stigg.Stigg) -> str:
    customer(client)
    enterprise = subscribe(client, plan_id="plan-enterprise")
    client.v1.subscriptions.provision(
        customer_id="acme",
        plan_id="plan-pro",
        billing_period="ANNUALLY",
        addons=[{"id": "addon-extra-seats", "quantity": 1}],
    )
    return enterprise.id


def test_a_scheduled_downgrade_is_stored_with_the_camel_case_keys(
    demo_client: stigg.Stigg, engine: Engine
) -> None:
    subscription_ref = _downgrade_to_pro(demo_client)
    stored = _stored_target(engine, subscription_ref)
    assert set(stored) == {"planVersionId", "addons", "billingPeriod", "currency"}
    assert stored["currency"] == "usd"  # the price terms Pro is billed on from then
    assert stored["planVersionId"] in _version_ids(engine, "plan-pro")
    [addon] = stored["addons"]
    assert addon["addonVersionId"] in _version_ids(engine, "addon-extra-seats")
    assert addon["quantity"] == 1
    assert stored["billingPeriod"] == "ANNUALLY"


def test_a_row_in_the_stored_form_with_nulls_is_read_and_carried_out(
    demo_client: stigg.Stigg, engine: Engine, clocked: Clocked
) -> None:
    subscription_ref = _downgrade_to_pro(demo_client)
    stored = _stored_target(engine, subscription_ref)
    # As a downgrade that keeps the billing period and drops every add-on was written.
    written = {"planVersionId": stored["planVersionId"], "addons": [], "billingPeriod": None}
    with engine.begin() as connection:
        connection.execute(
            update(_schedules)
            .where(
                _schedules.c.subscription_id
                == select(_subscriptions.c.id)
                .where(_subscriptions.c.ref_id == subscription_ref)
                .scalar_subquery()
            )
            .values(target=written)
        )
    assert updates(get(demo_client, subscription_ref)) == [("DOWNGRADE", "plan-pro", PERIOD_END)]
    clocked.clock.set(PERIOD_END + timedelta(seconds=1))
    clocked.run_jobs()
    after = get(demo_client, subscription_ref)
    assert after.plan_id == "plan-pro"
    assert after.addons == []
    assert extra(after, "billingPeriod") == "MONTHLY"
