"""Two `tollgate serve` processes on one PostgreSQL agree right after every change.

Each process answers checks from its own memory; a change made through one reaches the
other through PostgreSQL NOTIFY. The test reads through B, so B holds a snapshot, then
changes through A and reads through B again at once. Agreement is awaited with a short
deadline (delivery is asynchronous, milliseconds in practice) and the worst wait is
reported, so a regression to "stale until restart" fails loudly."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stigg

from tests.support import postgres_schema, require_postgres, serving, url_in_schema

AGREEMENT_DEADLINE_SECONDS = 5.0


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[stigg.Stigg, stigg.Stigg]]:
    url = require_postgres()
    with postgres_schema(url) as schema:
        database_url = url_in_schema(url, schema)
        with (
            serving(database_url, tmp_path / "a.log") as (url_a, keys, _),
            serving(database_url, tmp_path / "b.log") as (url_b, keys_b, _),
        ):
            assert keys_b == keys
            with (
                stigg.Stigg(api_key=keys["server"], base_url=url_a, max_retries=0) as a,
                stigg.Stigg(api_key=keys["server"], base_url=url_b, max_retries=0) as b,
            ):
                yield a, b


class Observer:
    def __init__(self, client: stigg.Stigg) -> None:
        self.client = client
        self.worst_wait = 0.0
        self.most_attempts = 0

    def check(self, feature: str) -> tuple[bool, str | None, Any]:
        data = self.client.v1.customers.check_entitlement("acme", feature_id=feature).data
        return data.is_granted, data.access_denied_reason, getattr(data, "usage_limit", None)

    def agrees(self, feature: str, expected: tuple[bool, str | None, Any]) -> None:
        started = time.monotonic()
        attempts = 1
        while (seen := self.check(feature)) != expected:
            attempts += 1
            waited = time.monotonic() - started
            assert waited < AGREEMENT_DEADLINE_SECONDS, f"B still says {seen}, not {expected}"
            time.sleep(0.005)
        self.worst_wait = max(self.worst_wait, time.monotonic() - started)
        self.most_attempts = max(self.most_attempts, attempts)


class TestTwoProcessesAgree:
    def test_every_change_through_a_is_seen_by_b(
        self, two_servers: tuple[stigg.Stigg, stigg.Stigg]
    ) -> None:
        a, b_client = two_servers
        b = Observer(b_client)
        steps: list[tuple[str, Callable[[], object], str, tuple[bool, str | None, Any]]] = [
            (
                "provision customer",
                lambda: a.v1.customers.provision(id="acme", name="Acme"),
                "feature-sso",
                (False, "NoActiveSubscription", None),
            ),
            (
                "subscribe to pro",
                lambda: a.v1.subscriptions.provision(
                    customer_id="acme", plan_id="plan-pro", id="sub-acme"
                ),
                "feature-sso",
                (True, None, None),
            ),
            (
                "add two seat packs",
                lambda: a.v1.subscriptions.update(
                    "sub-acme", addons=[{"id": "addon-extra-seats", "quantity": 2}]
                ),
                "feature-seats",
                (True, None, 40),
            ),
            (
                "grant a promotion",
                lambda: a.v1.customers.promotional_entitlements.create(
                    "acme",
                    promotional_entitlements=[_promotion("feature-seats", usage_limit=100)],
                ),
                "feature-seats",
                (True, None, 100),
            ),
            (
                "revoke it",
                lambda: a.v1.customers.promotional_entitlements.revoke("feature-seats", id="acme"),
                "feature-seats",
                (True, None, 40),
            ),
            (
                "cancel now: the downgrade plan starts",
                lambda: a.v1.subscriptions.cancel("sub-acme", cancellation_time="IMMEDIATE"),
                "feature-seats",
                (True, None, 3),
            ),
            (
                "archive the customer",
                lambda: a.v1.customers.archive("acme"),
                "feature-seats",
                (False, "CustomerIsArchived", None),
            ),
        ]
        for _name, change, feature, expected in steps:
            b.check(feature)  # B now holds a snapshot of the state before the change
            change()
            b.agrees(feature, expected)
        print(
            f"process B agreed within {b.worst_wait * 1000:.1f} ms "
            f"and {b.most_attempts} read(s) of each change"
        )

    def test_a_publish_for_all_customers_reaches_the_other_process(
        self, two_servers: tuple[stigg.Stigg, stigg.Stigg]
    ) -> None:
        a, b_client = two_servers
        b = Observer(b_client)
        a.v1.customers.provision(id="acme")
        a.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        b.agrees("feature-seats", (True, None, 3))
        a.v1.plans.create_draft("plan-free")
        a.v1.plans.entitlements.update(
            "feature-seats", plan_id="plan-free", type="FEATURE", usage_limit=5
        )
        a.v1.plans.publish("plan-free", migration_type="ALL_CUSTOMERS")
        b.agrees("feature-seats", (True, None, 5))

    def test_usage_counted_through_a_is_seen_by_b(
        self, two_servers: tuple[stigg.Stigg, stigg.Stigg]
    ) -> None:
        a, b = two_servers
        a.v1.customers.provision(id="acme")
        a.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")

        def usage_seen_by_b(feature: str) -> float | None:
            data = b.v1.customers.check_entitlement("acme", feature_id=feature).data
            return data.current_usage

        for value, total in ((3, 3), (7, 10)):
            usage_seen_by_b("feature-active-users")  # B holds the usage before the report
            a.v2.usage.report(
                usages=[
                    {"customer_id": "acme", "feature_id": "feature-active-users", "value": value}
                ]
            )
            _eventually(usage_seen_by_b, "feature-active-users", total)
        usage_seen_by_b("feature-api-calls")
        a.v1.events.report(
            events=[{"customer_id": "acme", "event_name": "api_call", "idempotency_key": "e1"}]
        )
        _eventually(usage_seen_by_b, "feature-api-calls", 1)


def _eventually(read: Callable[[str], float | None], feature: str, expected: float) -> None:
    deadline = time.monotonic() + AGREEMENT_DEADLINE_SECONDS
    while read(feature) != expected:
        assert time.monotonic() < deadline, "process B never saw the usage counted through A"
        time.sleep(0.005)


def _promotion(feature: str, *, usage_limit: int) -> Any:
    return {
        "feature_id": feature,
        "period": "1 month",
        "usage_limit": usage_limit,
        "custom_end_date": None,
        "enum_values": None,
        "has_soft_limit": None,
        "has_unlimited_usage": None,
        "is_visible": None,
        "monthly_reset_period_configuration": None,
        "reset_period": None,
        "weekly_reset_period_configuration": None,
        "yearly_reset_period_configuration": None,
    }
