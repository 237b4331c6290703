"""`Idempotency-Key` on POSTs that change something: a retry gets the first answer."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import stigg
from sqlalchemy import Engine, text

from tests.support import Clocked, Tenant, make_tenant
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_session_factory, unit_of_work

PROVISION = {"customerId": "acme", "planId": "plan-pro"}


@pytest.fixture
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as raw:
        raw.post("/api/v1/customers", json={"id": "acme"}).raise_for_status()
        yield raw


def _subscriptions(http: httpx.Client) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = http.get(
        "/api/v1/subscriptions", params={"customerId": "acme"}
    ).json()["data"]
    return listed


class TestRetries:
    def test_a_retried_provision_gets_the_first_answer(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "provision-acme-1"}
        first = http.post("/api/v1/subscriptions", json=PROVISION, headers=headers)
        again = http.post("/api/v1/subscriptions", json=PROVISION, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        subscriptions = _subscriptions(http)
        assert len(subscriptions) == 1
        assert subscriptions[0]["status"] == "IN_TRIAL"  # its trial was not spent twice

    def test_without_the_header_a_second_provision_replaces_the_first(
        self, http: httpx.Client
    ) -> None:
        # What the key protects against: two subscriptions, the first one canceled.
        http.post("/api/v1/subscriptions", json=PROVISION).raise_for_status()
        http.post("/api/v1/subscriptions", json=PROVISION).raise_for_status()
        assert len(_subscriptions(http)) == 2

    def test_the_stigg_client_retrying_a_timeout_creates_one_subscription(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        """The client gives up waiting and sends the request again while the first one is
        still running (held up here by a lock): both end as one subscription."""
        holding = threading.Event()

        def hold_the_customer() -> None:
            with unit_of_work(make_session_factory(engine)) as session:
                # A write transaction: SQLite's write lock, PostgreSQL's row locks.
                lock = " FOR UPDATE" if engine.dialect.name == "postgresql" else ""
                session.execute(text(f"SELECT 1 FROM customers{lock}"))
                holding.set()
                time.sleep(2.5)

        holder = threading.Thread(target=hold_the_customer)
        holder.start()
        holding.wait()
        sent: list[httpx.Request] = []
        transport = stigg.DefaultHttpxClient(event_hooks={"request": [sent.append]})
        with stigg.Stigg(
            api_key=demo_tenant.server_key,
            base_url=demo_tenant.base_url,
            max_retries=3,
            http_client=transport,
        ) as client:
            result = client.v1.subscriptions.provision(
                customer_id="acme",
                plan_id="plan-pro",
                timeout=1.0,
                extra_headers={"Idempotency-Key": "client-retry-1"},
            )
        holder.join()
        assert len(sent) >= 2  # it did time out and send the request again
        subscriptions = _subscriptions(http)
        assert [s["id"] for s in subscriptions] == [result.data.id]
        assert subscriptions[0]["status"] == "IN_TRIAL"

    def test_a_usage_report_retried_with_the_header_counts_once(self, http: httpx.Client) -> None:
        http.post("/api/v1/subscriptions", json=PROVISION).raise_for_status()
        body = {"usages": [{"customerId": "acme", "featureId": "feature-active-users", "value": 3}]}
        headers = {"Idempotency-Key": "usage-1"}
        first = http.post("/api/v1/usage", json=body, headers=headers)
        again = http.post("/api/v1/usage", json=body, headers=headers)
        assert again.json() == first.json()
        assert again.json()["data"][0]["currentUsage"] == 3


class TestConflicts:
    def test_the_same_key_with_another_body_is_a_conflict(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "k-1"}
        http.post("/api/v1/subscriptions", json=PROVISION, headers=headers).raise_for_status()
        other = {**PROVISION, "planId": "plan-enterprise"}
        response = http.post("/api/v1/subscriptions", json=other, headers=headers)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert error["field"] == "Idempotency-Key"
        assert "k-1" in error["message"]
        assert [s["planId"] for s in _subscriptions(http)] == ["plan-pro"]

    def test_the_same_key_on_another_route_names_the_first(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "k-2"}
        http.post("/api/v1/subscriptions", json=PROVISION, headers=headers).raise_for_status()
        response = http.post("/api/v1/customers", json={"id": "globex"}, headers=headers)
        assert response.status_code == 409
        assert "POST /api/v1/subscriptions" in response.json()["error"]["message"]
        assert http.get("/api/v1/customers/globex").status_code == 404

    def test_key_order_and_spacing_do_not_make_another_body(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "k-3", "content-type": "application/json"}
        first = http.post(
            "/api/v1/subscriptions",
            content=b'{"customerId": "acme", "planId": "plan-pro"}',
            headers=headers,
        )
        again = http.post(
            "/api/v1/subscriptions",
            content=b'{"planId":"plan-pro","customerId":"acme"}',
            headers=headers,
        )
        assert again.json() == first.json()

    def test_a_refused_request_leaves_its_key_free(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "k-4"}
        wrong = {**PROVISION, "planId": "plan-missing"}
        assert http.post("/api/v1/subscriptions", json=wrong, headers=headers).status_code == 422
        fixed = http.post("/api/v1/subscriptions", json=PROVISION, headers=headers)
        assert fixed.status_code == 200
        assert len(_subscriptions(http)) == 1

    @pytest.mark.parametrize("key", [b"", b"has space", b"x" * 256, "ünïcode".encode()])
    def test_a_malformed_key_is_refused(self, http: httpx.Client, key: bytes) -> None:
        response = http.post(
            "/api/v1/customers", json={"id": "globex"}, headers={b"Idempotency-Key": key}
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "Idempotency-Key"
        assert http.get("/api/v1/customers/globex").status_code == 404


class TestScope:
    def test_keys_belong_to_their_environment(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        headers = {"Idempotency-Key": "shared-key"}
        http.post("/api/v1/customers", json={"id": "one"}, headers=headers).raise_for_status()
        other = make_tenant(engine, demo_tenant.base_url)
        with other.http() as raw:
            response = raw.post("/api/v1/customers", json={"id": "two"}, headers=headers)
            assert response.status_code == 201
            assert raw.get("/api/v1/customers/two").status_code == 200

    def test_a_key_is_forgotten_after_24_hours(self, clocked: Clocked, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "daily"}
        body = {"usages": [{"customerId": "acme", "featureId": "feature-active-users", "value": 1}]}
        http.post("/api/v1/subscriptions", json=PROVISION).raise_for_status()
        assert http.post("/api/v1/usage", json=body, headers=headers).status_code == 200
        clocked.clock.advance(timedelta(hours=24, seconds=1))
        later = http.post("/api/v1/usage", json=body, headers=headers)
        assert "idempotent-replayed" not in later.headers
        assert later.json()["data"][0]["currentUsage"] == 2

    def test_old_keys_are_pruned_by_the_jobs(
        self, engine: Engine, clocked: Clocked, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        headers = {"Idempotency-Key": "to-prune"}
        http.post("/api/v1/customers", json={"id": "p"}, headers=headers).raise_for_status()
        environment_id = _environment_id(engine, demo_tenant)
        count = "SELECT count(*) FROM idempotent_requests WHERE environment_id = :e"
        with engine.connect() as connection:
            assert connection.execute(text(count), {"e": environment_id}).scalar_one() == 1
        clocked.clock.advance(timedelta(hours=25))
        assert clocked.run_jobs()["idempotency.prune"] >= 1
        with engine.connect() as connection:
            assert connection.execute(text(count), {"e": environment_id}).scalar_one() == 0

    def test_reads_sent_as_posts_ignore_the_header(
        self, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        headers = {"Idempotency-Key": "preview-1"}
        preview = {**PROVISION, "planId": "plan-free"}
        first = http.post("/api/v1/subscriptions/preview", json=preview, headers=headers)
        other = http.post("/api/v1/subscriptions/preview", json=PROVISION, headers=headers)
        assert first.status_code == other.status_code == 200
        assert "idempotent-replayed" not in other.headers
        # ... and the key is still free for a request that changes something.
        created = http.post("/api/v1/subscriptions", json=PROVISION, headers=headers)
        assert created.status_code == 200


class TestConcurrency:
    def test_a_request_waits_for_one_in_flight_with_its_key(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        """Another request holds the key, uncommitted; this one waits for it and answers
        what it committed (on PostgreSQL the claim waits on the unique index; on SQLite
        for the write lock)."""
        environment_id = _environment_id(engine, demo_tenant)
        answers: list[httpx.Response] = []
        with unit_of_work(make_session_factory(engine)) as session:
            session.execute(
                text(
                    "INSERT INTO idempotent_requests (environment_id, key, operation, "
                    "fingerprint, created_at) VALUES (:e, 'held', 'POST /api/v1/customers', "
                    "'x', :now)"
                ),
                {"e": environment_id, "now": "2026-01-05 10:00:00"},
            )
            waiting = threading.Thread(
                target=lambda: answers.append(
                    http.post(
                        "/api/v1/customers",
                        json={"id": "late"},
                        headers={"Idempotency-Key": "held"},
                    )
                )
            )
            waiting.start()
            time.sleep(0.5)
            assert not answers  # still waiting for the holder
        waiting.join(timeout=30)
        # The holder's fingerprint differs from this request's: a conflict, and nothing ran.
        assert answers[0].status_code == 409
        assert answers[0].json()["error"]["code"] == "idempotency_key_reused"
        assert http.get("/api/v1/customers/late").status_code == 404

    def test_simultaneous_retries_create_one_customer(self, http: httpx.Client) -> None:
        headers = {"Idempotency-Key": "burst"}
        answers: list[httpx.Response] = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    http.post("/api/v1/customers", json={"id": "burst"}, headers=headers)
                )
            )
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {a.status_code for a in answers} == {201}
        assert len({a.content for a in answers}) == 1
        assert sum("idempotent-replayed" in a.headers for a in answers) == 7


def _environment_id(engine: Engine, tenant: Tenant) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT id FROM environments WHERE name = :n"), {"n": tenant.name}
        ).scalar_one()
    return int(found)


class TestWhichRoutes:
    READ_ONLY_POSTS = frozenset({"/api/v1/subscriptions/preview", "/api/v1/sdk/states"})
    # Stripe's deliveries: applying a payment's outcome twice changes nothing anyway.
    PROVIDER_POSTS = frozenset({"/webhooks/stripe/{integration_id}"})

    def test_every_post_that_changes_something_takes_the_header(self) -> None:
        document = create_app(Settings(database_url="sqlite://")).openapi()
        posts = {
            path: operations["post"]
            for path, operations in document["paths"].items()
            if "post" in operations
        }
        taking = {
            path
            for path, operation in posts.items()
            if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        }
        assert len(posts) > 25
        assert taking == set(posts) - self.READ_ONLY_POSTS - self.PROVIDER_POSTS


class TestLongPaths:
    def test_a_path_longer_than_what_is_kept_is_answered_by_its_route(
        self, http: httpx.Client
    ) -> None:
        """Only the first 1,024 characters of a path are kept (to name it in a conflict);
        a longer one still reaches its route, which answers it."""
        path = f"/api/v1/customers/{'c' * 2000}/archive"
        response = http.post(path, headers={"Idempotency-Key": "long-path"})
        assert response.status_code == 404, response.text
