"""Never silently wrong: a replica killed mid-stream loses nothing, one that was away longer
than the source retries repairs itself from the source's API, an endpoint the source
disabled is noticed, and `tollgate replica resync` reads everything again."""

import subprocess
import sys
from typing import Any

import httpx
from sqlalchemy import text

from tests.replica.conftest import Pair, eventually
from tollgate.config import normalize_database_url
from tollgate.db.engine import make_engine


def _plan(pair: Pair, customer_id: str) -> str | None:
    """The plan of the customer's live subscription, as the replica's check sees it."""
    answer = pair.replica.check(customer_id, "feature-sso")
    if answer.json()["accessDeniedReason"] in ("CustomerNotFound", "NoActiveSubscription"):
        return None
    return "plan-pro" if answer.status_code == 200 else "plan-free"


def _provision(http: httpx.Client, customer_id: str, plan: str) -> None:
    assert http.post("/api/v1/customers", json={"id": customer_id}).status_code == 201
    provisioned = http.post(
        "/api/v1/subscriptions",
        json={
            "customerId": customer_id,
            "planId": plan,
            "trialOverrideConfiguration": {"isTrial": False},
        },
    )
    assert provisioned.status_code == 200, provisioned.text


def _users(pair: Pair, customer_id: str) -> Any:
    return pair.replica.check(customer_id, "feature-active-users").json().get("currentUsage")


def _report(http: httpx.Client, customer_id: str, value: int) -> None:
    usage = {"customerId": customer_id, "featureId": "feature-active-users", "value": value}
    assert http.post("/api/v1/usage", json={"usages": [usage]}).status_code == 200


class TestKilledMidStream:
    def test_nothing_is_lost(self, pair: Pair) -> None:
        with pair.http() as http:
            _provision(http, "kill-1", "plan-free")
            _report(http, "kill-1", 2)
            eventually(lambda: _users(pair, "kill-1") == 2, "the first report")
            pair.replica.kill()
            try:
                for _ in range(3):
                    _report(http, "kill-1", 1)
                _provision(http, "kill-2", "plan-free")
            finally:
                pair.replica.start()
        # What was applied before the kill was committed; what was sent while it was down
        # comes again with the source's retries.
        assert _users(pair, "kill-1") in (2, 3, 4, 5)
        eventually(lambda: _users(pair, "kill-1") == 5, "the reports sent while it was down")
        eventually(lambda: _plan(pair, "kill-2") == "plan-free", "the customer made meanwhile")


class TestAwayLongerThanTheRetries:
    def test_messages_the_source_gave_up_on_are_repaired_from_its_api(self, pair: Pair) -> None:
        with pair.http() as http:
            _provision(http, "away-1", "plan-free")
            eventually(lambda: _plan(pair, "away-1") == "plan-free", "the customer")
            pair.replica.stop()
            try:
                _report(http, "away-1", 4)
                _provision(http, "away-2", "plan-free")
                # The source's retries run out (days, here at once): its messages fail.
                _give_up(pair)
            finally:
                pair.replica.start()
        eventually(lambda: _users(pair, "away-1") == 4, "usage repaired by a resync")
        eventually(lambda: _plan(pair, "away-2") == "plan-free", "a customer repaired too")
        # Once repaired, the failed messages are sent again (changing nothing), so that the
        # source's FAILED list empties and the next audit has nothing to repair.
        with pair.http() as http:
            endpoint = _endpoint(http)["id"]
            eventually(
                lambda: (
                    not http.get(
                        f"/api/v1/webhooks/{endpoint}/messages", params={"status": "FAILED"}
                    ).json()["data"]
                ),
                "the failed messages delivered",
            )
        assert _users(pair, "away-1") == 4
        health = httpx.get(f"{pair.replica.url}/healthz").json()
        assert health["source"]["reachable"] is True
        assert health["source"]["repairedCustomers"] >= 2

    def test_an_endpoint_the_source_disabled_is_enabled_and_everything_read_again(
        self, pair: Pair
    ) -> None:
        with pair.http() as http:
            endpoint = _endpoint(http)
            disabled = http.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"isEnabled": False})
            assert disabled.status_code == 200, disabled.text
            # Nothing is sent to a disabled endpoint: only a resync can bring this.
            _provision(http, "disabled-1", "plan-free")
            eventually(lambda: _plan(pair, "disabled-1") == "plan-free", "the resync")
            again = http.get(f"/api/v1/webhooks/{endpoint['id']}").json()["data"]
            assert again["isEnabled"] is True


class TestAnEventBeforeItsCustomer:
    def test_the_customer_is_read_from_the_source(self, pair: Pair) -> None:
        with pair.http() as http:
            pair.replica.stop()
            try:
                _provision(http, "gap-1", "plan-pro")
                # Lost without a trace (not even FAILED): only the next event tells.
                _lose_pending(pair)
            finally:
                pair.replica.start()
            assert _plan(pair, "gap-1") is None
            _report(http, "gap-1", 3)  # measurement.reported, about a customer never seen
        eventually(lambda: _plan(pair, "gap-1") == "plan-pro", "the customer read from the API")
        assert _users(pair, "gap-1") == 3


def _endpoint(http: httpx.Client) -> dict[str, Any]:
    """The endpoint the replica registered at the source."""
    endpoints: list[dict[str, Any]] = [
        e
        for e in http.get("/api/v1/webhooks").json()["data"]
        if e["description"] == "tollgate replica"
    ]
    (endpoint,) = endpoints
    return endpoint


def _lose_pending(pair: Pair) -> None:
    _source_sql(pair, "DELETE FROM webhook_messages WHERE status = 'PENDING'")


def _give_up(pair: Pair) -> None:
    _source_sql(pair, "UPDATE webhook_messages SET status = 'FAILED' WHERE status = 'PENDING'")


def _source_sql(pair: Pair, statement: str) -> None:
    """Act on the source's database directly: what its API cannot do (lose messages, or
    give up on them days early)."""
    engine = make_engine(normalize_database_url(pair.source_database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


class TestResyncCommand:
    def test_it_reads_every_customer_again(self, pair: Pair, tmp_path: Any) -> None:
        with pair.http() as http:
            _provision(http, "resync-1", "plan-pro")
        database = f"sqlite:///{tmp_path / 'fresh.db'}"
        done = subprocess.run(
            [
                *(sys.executable, "-m", "tollgate", "replica", "resync"),
                *("--source", pair.source.url, "--key", pair.source.keys["server"]),
                *("--database-url", database),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "resynced" in done.stderr
        engine = make_engine(database)
        try:
            with engine.connect() as connection:
                plan = connection.execute(
                    text("SELECT plan_id FROM replica_subscriptions WHERE customer_id = 'resync-1'")
                ).scalar_one()
                granted = connection.execute(
                    text(
                        "SELECT count(*) FROM replica_entitlements "
                        "WHERE customer_id = 'resync-1' AND feature_id = 'feature-sso'"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
        assert (plan, granted) == ("plan-pro", 1)

    def test_a_database_of_another_shape_is_refused(self, pair: Pair, tmp_path: Any) -> None:
        database = f"sqlite:///{tmp_path / 'other.db'}"
        engine = make_engine(database)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text("CREATE TABLE replica_facts (name VARCHAR(64) PRIMARY KEY, value JSON)")
                )
                connection.execute(text("INSERT INTO replica_facts VALUES ('schema', '99')"))
        finally:
            engine.dispose()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "tollgate", "replica", "resync"),
                *("--source", pair.source.url, "--key", pair.source.keys["server"]),
                *("--database-url", database),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "has schema 99, this tollgate knows 1" in " ".join(done.stderr.split())

    def test_it_needs_a_source(self, tmp_path: Any) -> None:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tollgate",
                "replica",
                "resync",
                "--database-url",
                f"sqlite:///{tmp_path / 'x.db'}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "--source" in done.stderr
