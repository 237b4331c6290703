"""`GET /api/v1/sdk/stream` as any Server-Sent Events client sees it, and the change log
that lets it resume.

Proves that a stream opens with `retry` and `ready` (carrying the position), then names
each customer, usage and catalog change of its own environment as it commits; that a
client reconnecting with `Last-Event-ID` receives what it missed before `ready`, or `reset`
when the log no longer holds it or never did (an id beyond its newest entry); that a
malformed `Last-Event-ID` and a client key are refused; that pruning drops entries older
than an hour but never the newest; and that the state read after an event with its
`minVersion` (and `freshUsage`) is the state after that change, even from a server process
that has not heard of the change yet."""

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, insert, select

from tests.support import Tenant, make_demo_tenant, make_tenant
from tollgate.customers.models import Customer
from tollgate.db import changelog
from tollgate.db.changelog import ChangeLogEntry
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.environments import service as environments
from tollgate.environments.models import KeyKind
from tollgate.environments.tokens import customer_token as server_customer_token
from tollgate.kit.amounts import to_units
from tollgate.kit.clock import SystemClock
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import SubscriptionProvision
from tollgate.usage import reports

PATH = "/api/v1/sdk/stream"
SSO = "feature-sso"
USERS = "feature-active-users"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    id: int | None
    data: dict[str, Any]


class EventReader:
    """Reads a `text/event-stream` the way the WHATWG rules say, one event at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()
        self.retry: int | None = None

    def next(self) -> Event:
        name, event_id = "message", None
        data: list[str] = []
        for line in self._lines:
            if not line:
                if data:
                    return Event(name, event_id, json.loads("\n".join(data)))
                name = "message"
                continue
            if line.startswith(":"):
                continue  # a keep-alive comment
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "retry":
                self.retry = int(value)
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = int(value)
        raise AssertionError("the stream ended")

    def until(self, name: str) -> list[Event]:
        """Every event up to and including the first named `name`."""
        events = [self.next()]
        while events[-1].name != name:
            events.append(self.next())
        return events


@contextmanager
def stream(tenant: Tenant, *, last_event_id: int | None = None) -> Iterator[EventReader]:
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    # Every event these tests wait for is due at once: a silent stream fails, never hangs.
    timeout = httpx.Timeout(10.0)
    with (
        tenant.http() as http,
        http.stream("GET", PATH, headers=headers, timeout=timeout) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


@pytest.fixture
def demo_tenant(engine: Engine, base_url: str) -> Tenant:
    """A fresh environment with the demo catalog, served by the real-clock server."""
    tenant = make_demo_tenant(engine, base_url)
    return tenant


@pytest.fixture
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = http.post(path, json=body)
    assert response.status_code < 300, response.text


def add_customer(http: httpx.Client, customer_id: str) -> None:
    post(http, "/api/v1/customers", {"id": customer_id})


def customer(name: str, customer_id: str) -> tuple[str, dict[str, Any]]:
    return name, {"customerId": customer_id}


def created(customer_id: str) -> tuple[str, dict[str, Any]]:
    """The event of a customer just provisioned: its entitlements are at version 1."""
    return "customer", {"customerId": customer_id, "version": 1}


def named(events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, event.data) for event in events]


class TestLiveEvents:
    def test_retry_and_ready_then_each_change_as_it_commits(
        self, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with stream(demo_tenant) as reader:
            ready = reader.next()
            assert reader.retry == 1000
            assert (ready.name, ready.data) == ("ready", {})
            assert ready.id is not None

            add_customer(http, "c1")
            created = reader.next()
            post(http, "/api/v1/subscriptions", {"customerId": "c1", "planId": "plan-free"})
            subscribed = reader.next()
            post(
                http,
                "/api/v1/usage",
                {"usages": [{"customerId": "c1", "featureId": "feature-seats", "value": 2}]},
            )
            used = reader.next()
            post(
                http,
                "/api/v1/features",
                {"id": "feature-new", "displayName": "New", "featureType": "BOOLEAN"},
            )
            catalog = reader.next()

        events = [created, subscribed, used, catalog]
        assert named(events) == [
            ("customer", {"customerId": "c1", "version": 1}),  # created
            ("customer", {"customerId": "c1", "version": 2}),  # subscribed
            customer("usage", "c1"),
            ("catalog", {}),
        ]
        ids = [-1 if event.id is None else event.id for event in (ready, *events)]
        assert min(ids) >= 0, f"an event without an id: {ids}"
        assert ids == sorted(set(ids)), f"event ids {ids} do not grow"

    def test_another_environments_changes_are_not_sent(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        other = make_tenant(engine, demo_tenant.base_url)
        with stream(demo_tenant) as reader, other.http() as other_http:
            assert reader.next().name == "ready"
            add_customer(other_http, "theirs")
            add_customer(http, "ours")
            assert named([reader.next()]) == [created("ours")]


class TestLateCommits:
    """PostgreSQL shows a row at commit, not in id order: a change whose id was taken
    before others' but committed after them is neither lost live nor on resuming."""

    def test_a_late_commit_reaches_a_stream_and_a_resumed_one_loses_nothing(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite commits one writer at a time, in id order")
        environment_id = environment_of(engine, demo_tenant)
        add_customer(http, "earlier")  # the log holds what comes before the late id
        # Another stream stays open throughout, so the server keeps following the log.
        with stream(demo_tenant) as other, engine.connect() as late:
            assert other.next().name == "ready"
            with stream(demo_tenant) as first:
                assert first.next().name == "ready"
                pending = late.begin()
                late.execute(
                    insert(ChangeLogEntry).values(
                        environment_id=environment_id,
                        kind="c",
                        customer_ref="late",
                        version=1,
                        created_at=datetime.now(UTC),
                    )
                )
                add_customer(http, "after")  # a higher id, committed first
                after = first.next()
            assert named([after]) == [created("after")]
            assert after.id is not None

            # Resumed from the id it last saw, while the lower id is still uncommitted.
            with stream(demo_tenant, last_event_id=after.id) as resumed:
                before_ready = resumed.until("ready")
                pending.commit()
                arrived = resumed.next()

        # Sent live with an id below the open hole, so resuming from it sends it again.
        assert after.id < id_of(engine, "after")
        assert named(before_ready) == [created("after"), ("ready", {})]
        assert named([arrived]) == [created("late")]


def environment_of(engine: Engine, tenant: Tenant) -> int:
    with unit_of_work(make_session_factory(engine)) as session:
        return environments.get_environment(session, name=tenant.name).id


def id_of(engine: Engine, customer_ref: str) -> int:
    with unit_of_work(make_session_factory(engine)) as session:
        return int(
            session.scalars(
                select(ChangeLogEntry.id).where(ChangeLogEntry.customer_ref == customer_ref)
            ).one()
        )


class TestResume:
    def test_missed_events_come_before_ready(self, demo_tenant: Tenant, http: httpx.Client) -> None:
        with stream(demo_tenant) as reader:
            assert reader.next().name == "ready"
            add_customer(http, "seen")
            seen = reader.next()
        assert seen.id is not None
        add_customer(http, "missed-1")
        add_customer(http, "missed-2")

        with stream(demo_tenant, last_event_id=seen.id) as reader:
            events = reader.until("ready")
            add_customer(http, "live")
            live = reader.next()

        assert named(events) == [
            created("missed-1"),
            created("missed-2"),
            ("ready", {}),
        ]
        ids = [event.id or 0 for event in events]
        assert seen.id < ids[0] < ids[1] <= ids[2], f"ids {ids} after {seen.id}"
        assert named([live]) == [created("live")]

    def test_an_id_older_than_the_log_gets_reset(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with stream(demo_tenant) as reader:
            ready = reader.next()
        assert ready.id is not None
        add_customer(http, "forgotten")
        add_customer(http, "kept")
        with unit_of_work(make_session_factory(engine)) as session:
            newest = changelog.last_id(session)
            # What pruning does once an hour has passed: all but the newest entry go,
            # among them the one this client missed.
            session.execute(delete(ChangeLogEntry).where(ChangeLogEntry.id < newest))

        with stream(demo_tenant, last_event_id=ready.id) as reader:
            events = reader.until("ready")

        assert named(events) == [("reset", {}), ("ready", {})]

    def test_an_id_beyond_the_newest_entry_gets_reset(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        """An id from another database (restored from a backup, or replaced): whatever
        the client read from it, this one's log cannot say what changed since."""
        add_customer(http, "seen-elsewhere")
        with unit_of_work(make_session_factory(engine)) as session:
            newest = changelog.last_id(session)

        with stream(demo_tenant, last_event_id=newest + 1_000_000) as reader:
            events = reader.until("ready")

        assert named(events) == [("reset", {}), ("ready", {})]


class TestRefused:
    @pytest.mark.parametrize(
        "raw",
        [b"abc", "\u00b2".encode("latin-1"), b"9" * 30],
        ids=["letters", "superscript-two", "30-digits"],
    )
    def test_a_last_event_id_that_is_no_event_id(
        self, demo_tenant: Tenant, http: httpx.Client, raw: bytes
    ) -> None:
        """A superscript two (sent as its Latin-1 byte, as HTTP headers are read) is a digit
        to `str.isdigit` but no number to `int`; 30 digits are a number no column holds."""
        response = http.get(PATH, headers={b"last-event-id": raw})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["field"] == "Last-Event-ID"
        assert "Last-Event-ID" in response.json()["error"]["message"]

    def test_a_client_key(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http(key=demo_tenant.client_key) as http:
            response = http.get(PATH)
        assert response.status_code in (401, 403), response.text


class TestRevokedKeys:
    """A stream is only as good as the key that opened it."""

    def test_a_stream_ends_soon_after_its_key_is_revoked(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        # Revoked through a session no server process hears of (as the CLI on SQLite):
        # the periodic check of the streams' keys finds it.
        with stream(demo_tenant) as events:
            events.until("ready")
            with unit_of_work(make_session_factory(engine)) as session:
                environments.revoke_key(
                    session, key_or_prefix=demo_tenant.server_key, now=datetime.now(UTC)
                )
            # Within the stream's 10 s read timeout, it ends (a live one would time out).
            with pytest.raises(AssertionError, match="the stream ended"):
                events.until("never")
        assert http.get(PATH).status_code == 401

    def test_the_cli_revoking_a_key_ends_its_stream(
        self, engine: Engine, demo_tenant: Tenant
    ) -> None:
        with stream(demo_tenant) as events:
            events.until("ready")
            revoked = subprocess.run(
                [sys.executable, "-m", "tollgate", "keys", "revoke", demo_tenant.server_key],
                env={**os.environ, "TOLLGATE_DATABASE_URL": _url(engine)},
                capture_output=True,
                text=True,
                check=False,
            )
            assert revoked.returncode == 0, revoked.stderr
            with pytest.raises(AssertionError, match="the stream ended"):
                events.until("never")

    def test_other_keys_streams_go_on(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with unit_of_work(make_session_factory(engine)) as session:
            other = environments.create_key(
                session, environment_name=demo_tenant.name, kind=KeyKind.SERVER
            ).secret
        survivor = Tenant(demo_tenant.name, other, demo_tenant.client_key, demo_tenant.base_url)
        with stream(survivor) as events, stream(demo_tenant) as doomed:
            events.until("ready")
            doomed.until("ready")
            with unit_of_work(make_session_factory(engine)) as session:
                environments.revoke_key(
                    session, key_or_prefix=demo_tenant.server_key, now=datetime.now(UTC)
                )
            with pytest.raises(AssertionError, match="the stream ended"):
                doomed.until("never")
            with survivor.http() as still_valid:
                post(still_valid, "/api/v1/customers", {"id": "after-revocation"})
            assert events.until("customer")[-1].data["customerId"] == "after-revocation"


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def read_state(http: httpx.Client, customer_id: str, **params: str) -> dict[str, Any]:
    response = http.get(f"/api/v1/sdk/customers/{customer_id}/state", params=params)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()["data"]
    return state


def entitlement(state: dict[str, Any], feature_id: str) -> dict[str, Any] | None:
    return next((e for e in state["entitlements"] if e["featureId"] == feature_id), None)


def has_access(state: dict[str, Any], feature_id: str) -> bool:
    found = entitlement(state, feature_id)
    return found is not None and bool(found["isGranted"])


class TestStates:
    def test_many_states_in_one_request_in_the_order_asked(
        self, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        add_customer(http, "pro")
        post(http, "/api/v1/subscriptions", {"customerId": "pro", "planId": "plan-pro"})
        add_customer(http, "bare")
        asked = [{"customerId": "pro"}, {"customerId": "nobody"}, {"customerId": "bare"}]
        response = http.post("/api/v1/sdk/states", json={"customers": asked, "freshUsage": True})
        assert response.status_code == 200, response.text
        states = response.json()["data"]
        assert [state["customerId"] for state in states] == ["pro", "nobody", "bare"]
        assert [state["accessDeniedReason"] for state in states] == [
            None,
            "CustomerNotFound",
            "NoActiveSubscription",
        ]
        assert has_access(states[0], SSO)
        assert states[0] == read_state(http, "pro")  # the same answer as one at a time

    def test_a_fresh_read_of_each_matches_memory(self, http: httpx.Client) -> None:
        add_customer(http, "pro")
        post(http, "/api/v1/subscriptions", {"customerId": "pro", "planId": "plan-pro"})
        fresh = http.post(
            "/api/v1/sdk/states",
            json={"customers": [{"customerId": "pro", "fresh": True, "minVersion": 2}]},
        )
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["data"] == [read_state(http, "pro")]

    def test_too_many_or_unknown_fields_are_refused(self, http: httpx.Client) -> None:
        too_many = [{"customerId": f"c{n}"} for n in range(201)]
        response = http.post("/api/v1/sdk/states", json={"customers": too_many})
        assert response.status_code == 422, response.text
        odd = http.post("/api/v1/sdk/states", json={"customers": [{"customer": "c1"}]})
        assert odd.status_code == 422, odd.text

    def test_a_customer_token_reads_its_own_customer_only(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        for name in ("acme", "globex"):
            add_customer(http, name)
        with unit_of_work(make_session_factory(engine)) as session:
            secret = environments.get_environment(session, name=demo_tenant.name).signing_secret
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            browser.headers["X-CUSTOMER-TOKEN"] = server_customer_token("acme", secret)
            own = browser.post("/api/v1/sdk/states", json={"customers": [{"customerId": "acme"}]})
            assert own.status_code == 200, own.text
            both = [{"customerId": "acme"}, {"customerId": "globex"}]
            other = browser.post("/api/v1/sdk/states", json={"customers": both})
            assert other.status_code == 403, other.text


class TestStateAfterAnEvent:
    def test_the_events_version_reads_the_change_it_announced(
        self, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        add_customer(http, "c1")
        before = read_state(http, "c1")
        assert (before["hasSubscription"], has_access(before, SSO)) == (False, False)

        with stream(demo_tenant) as reader:
            assert reader.next().name == "ready"
            post(http, "/api/v1/subscriptions", {"customerId": "c1", "planId": "plan-pro"})
            event = reader.next()
        assert (event.name, event.data["customerId"]) == ("customer", "c1")
        version = event.data["version"]
        assert isinstance(version, int), event
        assert version > 1, event  # created at 1; the subscription moved it on

        after = read_state(http, "c1", minVersion=str(version), freshUsage="true")
        assert (after["hasSubscription"], has_access(after, SSO)) == (True, True)
        assert after["accessDeniedReason"] is None

    @pytest.mark.parametrize("raw", ["abc", "-1", "9" * 30])
    def test_a_min_version_that_is_no_version_is_refused(
        self, demo_tenant: Tenant, http: httpx.Client, raw: str
    ) -> None:
        add_customer(http, "c1")
        response = http.get("/api/v1/sdk/customers/c1/state", params={"minVersion": raw})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "minVersion"
        assert "minVersion" in response.json()["error"]["message"]


class TestStateFromAProcessThatHasNotHeard:
    """Another server process learns of a change a moment after it commits (PostgreSQL
    NOTIFY). Writing through Tollgate's own services in a session attached to no change
    feed plays that moment: the served process is not told."""

    def test_min_version_and_fresh_usage_read_past_its_memory(
        self, engine: Engine, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        add_customer(http, "c1")
        post(http, "/api/v1/subscriptions", {"customerId": "c1", "planId": "plan-free"})
        remembered = read_state(http, "c1")  # now in the served process's memory
        assert not has_access(remembered, SSO)
        assert (entitlement(remembered, USERS) or {}).get("currentUsage") == 0

        sessions = make_session_factory(engine)
        now = datetime.now(UTC)
        with unit_of_work(sessions) as session:
            environment_id = environments.get_environment(session, name=demo_tenant.name).id
            reports.report_usage(
                session,
                # Reading sessions, as the server's store has: on SQLite a second writing
                # session would wait for this one's write lock.
                SnapshotStore(make_session_factory(engine, write=False), SystemClock()),
                environment_id=environment_id,
                reports=[reports.UsageReport("c1", USERS, to_units(4))],
                now=now,
            )
        assert read_state(http, "c1") == remembered  # not told: it answers from memory
        counted = entitlement(read_state(http, "c1", freshUsage="true"), USERS)
        assert (counted or {}).get("currentUsage") == 4

        with unit_of_work(sessions) as session:
            data = SubscriptionProvision.model_validate({"customerId": "c1", "planId": "plan-pro"})
            subscriptions.provision_subscription(
                session, environment_id=environment_id, data=data, now=now
            )
        with unit_of_work(sessions) as session:
            version = session.scalars(
                select(Customer.entitlements_version).where(
                    Customer.environment_id == environment_id, Customer.ref_id == "c1"
                )
            ).one()
        assert not has_access(read_state(http, "c1"), SSO)  # not told
        upgraded = read_state(http, "c1", minVersion=str(version))
        assert has_access(upgraded, SSO)


def log_entry(session: Any, *, age: timedelta, environment_id: int) -> int:
    row = session.execute(
        insert(ChangeLogEntry).returning(ChangeLogEntry.id),
        [
            {
                "environment_id": environment_id,
                "kind": "c",
                "customer_ref": "pruned",
                "created_at": datetime.now(UTC) - age,
            }
        ],
    )
    return int(row.scalar_one())


class TestPrune:
    def test_entries_up_to_the_last_old_one_go_recent_ones_stay(self, engine: Engine) -> None:
        sessions = make_session_factory(engine)
        environment_id = 10**9 + secrets.randbelow(10**6)  # no real environment's
        with unit_of_work(sessions) as session:
            old = [
                log_entry(session, age=timedelta(hours=3), environment_id=environment_id),
                log_entry(session, age=timedelta(minutes=61), environment_id=environment_id),
            ]
            recent = [
                log_entry(session, age=timedelta(minutes=59), environment_id=environment_id),
                log_entry(session, age=timedelta(minutes=1), environment_id=environment_id),
            ]

        removed = changelog.prune(sessions, datetime.now(UTC))

        assert entries_of(sessions, environment_id) == set(recent)
        assert removed >= len(old)

    def test_a_prefix_of_ids_goes_and_the_newest_entry_always_stays(self, engine: Engine) -> None:
        """Writers' clocks may differ: an entry stamped old after a recent one still ends
        the prefix, so what is left has no gap a resuming stream could fall into."""
        sessions = make_session_factory(engine)
        environment_id = 10**9 + secrets.randbelow(10**6)
        with unit_of_work(sessions) as session:
            log_entry(session, age=timedelta(minutes=59), environment_id=environment_id)
            log_entry(session, age=timedelta(hours=2), environment_id=environment_id)
            newest = log_entry(session, age=timedelta(hours=2), environment_id=environment_id)

        changelog.prune(sessions, datetime.now(UTC))

        assert entries_of(sessions, environment_id) == {newest}


def entries_of(sessions: Any, environment_id: int) -> set[int]:
    with unit_of_work(sessions) as session:
        return set(
            session.scalars(
                select(ChangeLogEntry.id).where(ChangeLogEntry.environment_id == environment_id)
            )
        )
