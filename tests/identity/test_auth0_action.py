"""The Auth0 post-login Action, exactly as `tollgate auth0 action` prints it, run in the
Auth0 harness (tests/identity/auth0_harness.mjs, on `node`) against a live Tollgate whose
clock the tests move.

Each login is one `node` process: the harness builds Auth0's event, runs the Action in a
sandbox with Auth0's globals only, and reports what the Action did (denied, claims,
app_metadata, logs). What Tollgate did is read back from it: customers, subscriptions,
usage, and the events and logins it stored."""

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from tests.identity.conftest import MAU, TEAM_LIMIT, login_body, report_login
from tests.support import Clocked, Tenant, free_port
from tests.support.cli import Cli
from tests.support.servers import handler_server
from tests.support.usage import check
from tollgate.customers.models import Customer
from tollgate.db.engine import make_session_factory
from tollgate.environments import service as environments
from tollgate.identity.action import action_source
from tollgate.identity.models import Auth0Login
from tollgate.usage.models import UsageEvent

HARNESS = Path(__file__).with_name("auth0_harness.mjs")
PENDING = "tollgate_pending_logins"
CLAIM = "https://tollgate.example.com/customer"
UNAVAILABLE = "Sign-in is unavailable right now; please try again shortly."
MAX_LOG = 256
MONTH = timedelta(days=32)


def node() -> str:
    """The `node` binary; without one the Action cannot run (a failure in CI)."""
    found = shutil.which("node")
    if found is None:
        reason = "node is not installed: the Auth0 Action's tests run it in Node"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run them")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def action(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Action as `tollgate auth0 action` prints it, in a file of its own."""
    node()
    path = tmp_path_factory.mktemp("auth0") / "tollgate-post-login.js"
    path.write_text(action_source(), encoding="utf-8")
    return path


def run_action(
    action: Path, event: dict[str, Any], secrets: dict[str, str | None], now: datetime
) -> dict[str, Any]:
    """One login in the harness: what the Action did. Whatever the case, the Action must
    neither throw, nor overrun Auth0's 20 s, nor call an api member Auth0 lacks."""
    payload = {"event": event, "secrets": secrets, "timeLimitMs": 20_000, "now": iso(now)}
    done = subprocess.run(
        [node(), str(HARNESS), str(action)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout)
    assert outcome["threw"] is None, outcome
    assert outcome["timedOut"] is False, outcome
    assert outcome["notFaked"] == [], outcome
    return outcome


@dataclass(frozen=True)
class Auth0:
    """Logins into the tenant, through the Action, at the moment of the test's clock."""

    action: Path
    tenant: Tenant
    clocked: Clocked

    def login(
        self,
        user: str = "auth0|ann",
        *,
        organization: str | None = None,
        app_metadata: dict[str, Any] | None = None,
        transaction: str | None = None,
        **secrets: str | None,
    ) -> dict[str, Any]:
        """`secrets` override the defaults (None removes one): new customers get plan-team
        (3 active users a month)."""
        event: dict[str, Any] = {
            "user": {
                "user_id": user,
                "email": f"{user.split('|')[-1]}@example.com",
                "name": user,
                "app_metadata": app_metadata or {},
            }
        }
        if organization is not None:
            event["organization"] = {
                "id": organization,
                "name": organization.lower(),
                "display_name": organization.upper(),
            }
        if transaction is not None:
            event["transaction"] = {"id": transaction}
        settings: dict[str, str | None] = {
            "TOLLGATE_URL": self.clocked.base_url,
            "TOLLGATE_API_KEY": self.tenant.server_key,
            "TOLLGATE_USER_PLAN": "plan-team",
            "TOLLGATE_ORGANIZATION_PLAN": "plan-team",
            "TOLLGATE_FEATURE": MAU,
            "TOLLGATE_EVENT_NAME": "auth0-login",
            **secrets,
        }
        return run_action(self.action, event, settings, self.clocked.clock.now())


@pytest.fixture
def auth0(action: Path, mau_tenant: Tenant, clocked: Clocked) -> Auth0:
    return Auth0(action, mau_tenant, clocked)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def allowed(outcome: dict[str, Any]) -> bool:
    """Let in, and quietly: Tollgate answered and nothing was worth a log line."""
    return outcome["denied"] is None and outcome["logs"] == []


def used(http: httpx.Client, customer: str) -> float:
    return float(check(http, MAU, customer_id=customer)["currentUsage"])


def exists(http: httpx.Client, customer: str) -> bool:
    found = http.get(f"/api/v1/customers/{customer}")
    assert found.status_code in (200, 404), found.text
    return found.status_code == 200


def plans_of(http: httpx.Client, customer: str) -> list[str]:
    listed = http.get("/api/v1/subscriptions", params={"customerId": customer})
    assert listed.status_code == 200, listed.text
    return [s["planId"] for s in listed.json()["data"]]


def events_of(engine: Engine, tenant: Tenant, customer: str) -> list[datetime]:
    """When the logins Tollgate counted for `customer` happened: one event per counted
    login, none for a retried one."""
    with make_session_factory(engine)() as session:
        environment = environments.get_environment(session, name=tenant.name)
        rows = session.scalars(
            select(UsageEvent.timestamp)
            .join(Customer, Customer.id == UsageEvent.customer_id)
            .where(Customer.environment_id == environment.id, Customer.ref_id == customer)
            .order_by(UsageEvent.timestamp)
        )
        return list(rows)


def recorded_logins(engine: Engine, tenant: Tenant) -> list[str]:
    """The idempotency keys of the logins Tollgate decided."""
    with make_session_factory(engine)() as session:
        environment = environments.get_environment(session, name=tenant.name)
        rows = session.scalars(
            select(Auth0Login.idempotency_key)
            .where(Auth0Login.environment_id == environment.id)
            .order_by(Auth0Login.id)
        )
        return list(rows)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestThePrintedScript:
    def test_the_cli_prints_the_action(self, tmp_path: Path) -> None:
        cli = Cli(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path)
        printed = cli.run("auth0", "action")
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout == action_source()

    def test_it_is_small_self_contained_node(self, action: Path) -> None:
        source = action_source()
        assert len(source.encode()) < 16 * 1024
        assert "require(" not in source
        assert "process." not in source
        checked = subprocess.run(
            [node(), "--check", str(action)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr


class TestUsers:
    """B2C (the default mode): each user is a customer of its own."""

    def test_a_new_user_becomes_a_customer_on_its_plan_and_counts(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        outcome = auth0.login("auth0|ann")
        assert allowed(outcome)
        assert outcome["appMetadataSets"] == []
        assert outcome["appMetadataAfter"] == {}
        assert outcome["claims"] == {"id": {}, "access": {}}
        assert exists(http, "auth0|ann")
        assert plans_of(http, "auth0|ann") == ["plan-team"]
        assert used(http, "auth0|ann") == 1

    def test_a_user_counts_once_a_month(
        self, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        assert allowed(auth0.login("auth0|ann"))
        auth0.clocked.clock.advance(timedelta(hours=3))
        assert allowed(auth0.login("auth0|ann"))  # a new transaction
        assert used(http, "auth0|ann") == 1
        assert len(recorded_logins(engine, mau_tenant)) == 2
        assert len(events_of(engine, mau_tenant, "auth0|ann")) == 2
        assert plans_of(http, "auth0|ann") == ["plan-team"]

    def test_a_new_month_counts_the_user_again(
        self, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        assert allowed(auth0.login("auth0|ann"))
        auth0.clocked.clock.advance(MONTH)
        assert used(http, "auth0|ann") == 0
        assert allowed(auth0.login("auth0|ann"))
        assert used(http, "auth0|ann") == 1
        counted = events_of(engine, mau_tenant, "auth0|ann")
        assert [e.month for e in counted] == [1, 2]

    def test_an_existing_customer_keeps_its_plan(self, auth0: Auth0, http: httpx.Client) -> None:
        created = http.post("/api/v1/customers", json={"id": "auth0|pro", "name": "Pro Co"})
        assert created.status_code == 201, created.text
        subscribed = http.post(
            "/api/v1/subscriptions", json={"customerId": "auth0|pro", "planId": "plan-pro"}
        )
        assert subscribed.status_code == 200, subscribed.text

        assert allowed(auth0.login("auth0|pro"))
        assert plans_of(http, "auth0|pro") == ["plan-pro"]
        assert http.get("/api/v1/customers/auth0|pro").json()["data"]["name"] == "Pro Co"
        usage = check(http, MAU, customer_id="auth0|pro")
        assert (usage["currentUsage"], usage["usageLimit"]) == (1, 1000)

    def test_a_retried_transaction_counts_once(
        self, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        assert allowed(auth0.login("auth0|ann", transaction="tx_retried"))
        assert allowed(auth0.login("auth0|ann", transaction="tx_retried"))
        keys = recorded_logins(engine, mau_tenant)
        assert len(keys) == 1
        assert "tx_retried" in keys[0]
        assert len(events_of(engine, mau_tenant, "auth0|ann")) == 1
        assert used(http, "auth0|ann") == 1
        # Tollgate answered the second with the first answer: sent again, it says so.
        again = report_login(http, login_body("auth0|ann", keys[0]))
        assert again.status_code == 200, again.text
        assert again.json()["data"]["replayed"] is True

    def test_other_applications_are_left_alone(
        self, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        outcome = auth0.login("auth0|ann", TOLLGATE_CLIENT_IDS="client-a, client-b")
        assert allowed(outcome)
        assert outcome["appMetadataSets"] == []
        assert not exists(http, "auth0|ann")
        assert recorded_logins(engine, mau_tenant) == []
        # The application the harness logs into ("test-client-id") is acted on once listed.
        assert allowed(auth0.login("auth0|ann", TOLLGATE_CLIENT_IDS="client-a,test-client-id"))
        assert used(http, "auth0|ann") == 1


class TestOrganizations:
    def test_an_organization_counts_its_users(self, auth0: Auth0, http: httpx.Client) -> None:
        for user in ("auth0|u1", "auth0|u2", "auth0|u3"):
            outcome = auth0.login(
                user, organization="org_acme", TOLLGATE_MODE="B2B", TOLLGATE_CLAIM=CLAIM
            )
            assert allowed(outcome)
            assert outcome["claims"] == {"id": {CLAIM: "org_acme"}, "access": {CLAIM: "org_acme"}}
        assert plans_of(http, "org_acme") == ["plan-team"]  # created and subscribed once
        assert used(http, "org_acme") == 3
        assert not exists(http, "auth0|u1")  # in B2B only organizations are customers

    def test_a_login_outside_an_organization_is_not_b2b_business(
        self, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        outcome = auth0.login("auth0|solo", TOLLGATE_MODE="B2B", TOLLGATE_CLAIM=CLAIM)
        assert allowed(outcome)
        assert outcome["appMetadataSets"] == []
        assert outcome["claims"] == {"id": {}, "access": {}}
        assert not exists(http, "auth0|solo")
        assert recorded_logins(engine, mau_tenant) == []

    def test_both_counts_the_user_and_the_organization(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        outcome = auth0.login(
            "auth0|ann", organization="org_acme", TOLLGATE_MODE="BOTH", TOLLGATE_CLAIM=CLAIM
        )
        assert allowed(outcome)
        assert outcome["claims"]["id"] == {CLAIM: "org_acme"}  # the organization acts
        assert plans_of(http, "auth0|ann") == ["plan-team"]
        assert plans_of(http, "org_acme") == ["plan-team"]
        assert used(http, "auth0|ann") == 1
        assert used(http, "org_acme") == 1


def fill(auth0: Auth0, organization: str, count: int = TEAM_LIMIT, **secrets: Any) -> None:
    """`count` users of `organization` let in and counted (B2B)."""
    for n in range(1, count + 1):
        assert allowed(
            auth0.login(f"auth0|u{n}", organization=organization, TOLLGATE_MODE="B2B", **secrets)
        )


class TestTheLimit:
    def test_a_new_user_past_the_limit_is_denied_until_next_month(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        fill(auth0, "org_team")
        denied = auth0.login("auth0|u4", organization="org_team", TOLLGATE_MODE="B2B")
        assert denied["denied"] == (
            "ORG_TEAM has reached its limit of 3 active users for this period"
        )
        assert len(denied["logs"]) == 1
        assert "auth0|u4 denied for customer org_team (3/3 active users)" in denied["logs"][0]
        assert denied["claims"] == {"id": {}, "access": {}}
        assert denied["appMetadataSets"] == []
        assert used(http, "org_team") == TEAM_LIMIT

        templated = auth0.login(
            "auth0|u4",
            organization="org_team",
            TOLLGATE_MODE="B2B",
            TOLLGATE_DENY_MESSAGE="{customerId} has {usage} of {limit} {feature} ({nothing})",
        )
        assert templated["denied"] == "org_team has 3 of 3 feature-mau ({nothing})"

        assert allowed(auth0.login("auth0|u1", organization="org_team", TOLLGATE_MODE="B2B"))
        assert used(http, "org_team") == TEAM_LIMIT

        auth0.clocked.clock.advance(MONTH)
        assert allowed(auth0.login("auth0|u4", organization="org_team", TOLLGATE_MODE="B2B"))
        assert used(http, "org_team") == 1

    def test_not_enforced_the_limit_lets_everyone_in_and_counts(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        fill(auth0, "org_team", TOLLGATE_ENFORCE="false")
        fourth = auth0.login(
            "auth0|u4", organization="org_team", TOLLGATE_MODE="B2B", TOLLGATE_ENFORCE="false"
        )
        assert allowed(fourth)
        assert used(http, "org_team") == TEAM_LIMIT + 1

    def test_concurrent_new_users_get_the_last_place_once(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        fill(auth0, "org_race", TEAM_LIMIT - 1)
        newcomers = [f"auth0|new{n}" for n in range(6)]
        with ThreadPoolExecutor(len(newcomers)) as pool:
            outcomes = list(
                pool.map(
                    lambda user: auth0.login(user, organization="org_race", TOLLGATE_MODE="B2B"),
                    newcomers,
                )
            )
        assert sum(allowed(o) for o in outcomes) == 1, outcomes
        refused = [o for o in outcomes if not allowed(o)]
        assert all("limit of 3 active users" in (o["denied"] or "") for o in refused), refused
        assert used(http, "org_race") == TEAM_LIMIT

    def test_a_closed_customer_is_denied_without_figures(
        self, auth0: Auth0, http: httpx.Client
    ) -> None:
        """An archived customer's answer measures nothing (`activeUsers` is null)."""
        fill(auth0, "org_closed", 1)
        archived = http.post("/api/v1/customers/org_closed/archive")
        assert archived.status_code == 200, archived.text
        denied = auth0.login(
            "auth0|u1",
            organization="org_closed",
            TOLLGATE_MODE="B2B",
            TOLLGATE_DENY_MESSAGE="{message} [{usage}/{limit}]",
        )
        assert denied["denied"] == ("ORG_CLOSED is closed (its customer record is archived) [/]")
        assert len(denied["logs"]) == 1
        assert "(?/? active users)" in denied["logs"][0]
        # Not enforced, the login passes uncounted, and the claim still names the customer.
        passed = auth0.login(
            "auth0|u1",
            organization="org_closed",
            TOLLGATE_MODE="B2B",
            TOLLGATE_ENFORCE="false",
            TOLLGATE_CLAIM=CLAIM,
        )
        assert allowed(passed)
        assert passed["claims"]["id"] == {CLAIM: "org_closed"}


class Answering500(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error": {"code": "internal_error", "message": "the database is gone"}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def answering_500() -> AbstractContextManager[str]:
    return handler_server(Answering500)


@contextmanager
def never_answering() -> Iterator[str]:
    """A server that accepts connections, reads nothing and answers nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(connection)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


@contextmanager
def failing(kind: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Secrets under which Tollgate gives no answer, and what the log line says of it."""
    if kind == "refused":
        yield {"TOLLGATE_URL": f"http://127.0.0.1:{free_port()}"}, "ECONNREFUSED"
    elif kind == "timeout":
        with never_answering() as url:
            yield {"TOLLGATE_URL": url, "TOLLGATE_TIMEOUT_MS": "300"}, "timeout after 300 ms"
    elif kind == "500":
        with answering_500() as url:
            yield {"TOLLGATE_URL": url}, "HTTP 500 internal_error: the database is gone"
    elif kind == "401":
        yield {"TOLLGATE_API_KEY": "not-a-tollgate-key"}, "HTTP 401"
    else:
        yield {"TOLLGATE_USER_PLAN": "plan-nope"}, "HTTP 422"


FAILURES = ["refused", "timeout", "500", "401", "422"]


class TestWhenTollgateDoesNotAnswer:
    @pytest.mark.parametrize("kind", FAILURES)
    def test_the_login_passes_and_is_counted_once_later(
        self, kind: str, auth0: Auth0, http: httpx.Client, engine: Engine, mau_tenant: Tenant
    ) -> None:
        with failing(kind) as (secrets, says):
            missed = auth0.login("auth0|ann", **secrets)
        assert missed["denied"] is None
        assert missed["durationMs"] < 5_000
        assert len(missed["logs"]) == 1, missed["logs"]
        line = missed["logs"][0]
        assert len(line) <= MAX_LOG
        assert line.startswith("tollgate: login of auth0|ann allowed without counting (")
        assert says in line
        assert line.endswith("; kept for replay")
        pending = missed["appMetadataAfter"][PENDING]
        assert len(pending) == 1
        assert pending[0]["organization"] is None
        assert pending[0]["idempotencyKey"].startswith("auth0:")
        missed_at = moment(pending[0]["loggedInAt"])
        assert timedelta(0) <= missed_at - auth0.clocked.clock.now() < timedelta(seconds=30)
        assert not exists(http, "auth0|ann")

        # Tollgate is back: the user's next login carries the missed one, counted in its
        # own moment, and the pending list is cleared.
        auth0.clocked.clock.advance(timedelta(hours=1))
        back = auth0.login("auth0|ann", app_metadata=missed["appMetadataAfter"])
        assert allowed(back)
        assert back["appMetadataSets"] == [[PENDING, None]]
        assert back["appMetadataAfter"] == {}
        assert used(http, "auth0|ann") == 1
        counted = events_of(engine, mau_tenant, "auth0|ann")
        assert len(counted) == 2
        assert counted[0] == missed_at
        assert timedelta(0) <= counted[1] - auth0.clocked.clock.now() < timedelta(seconds=30)
        assert pending[0]["idempotencyKey"] in recorded_logins(engine, mau_tenant)

        # The same entry replayed again (a stale app_metadata) counts nothing again.
        auth0.clocked.clock.advance(timedelta(hours=1))
        again = auth0.login("auth0|ann", app_metadata=missed["appMetadataAfter"])
        assert allowed(again)
        counted = events_of(engine, mau_tenant, "auth0|ann")
        assert len(counted) == 3
        assert counted.count(missed_at) == 1
        assert used(http, "auth0|ann") == 1

    def test_a_timeout_is_quick(self, auth0: Auth0) -> None:
        with never_answering() as url:
            outcome = auth0.login("auth0|ann", TOLLGATE_URL=url, TOLLGATE_TIMEOUT_MS="300")
        assert outcome["denied"] is None
        assert 290 <= outcome["durationMs"] < 2_000  # Auth0 stops an Action at 20 s

    @pytest.mark.parametrize("kind", ["refused", "500", "422"])
    def test_failing_closed_denies_and_keeps_nothing(
        self, kind: str, auth0: Auth0, http: httpx.Client
    ) -> None:
        with failing(kind) as (secrets, says):
            outcome = auth0.login("auth0|ann", TOLLGATE_FAIL_MODE="closed", **secrets)
        assert outcome["denied"] == UNAVAILABLE
        assert outcome["appMetadataSets"] == []
        assert outcome["appMetadataAfter"] == {}
        assert len(outcome["logs"]) == 1
        assert outcome["logs"][0].startswith("tollgate: login of auth0|ann denied (")
        assert says in outcome["logs"][0]
        assert len(outcome["logs"][0]) <= MAX_LOG
        assert not exists(http, "auth0|ann")


class TestMisconfigured:
    @pytest.mark.parametrize("missing", ["TOLLGATE_URL", "TOLLGATE_API_KEY"])
    def test_a_missing_secret_lets_logins_in_and_says_so(
        self, missing: str, auth0: Auth0, http: httpx.Client
    ) -> None:
        outcome = auth0.login("auth0|ann", **{missing: None})
        assert outcome["denied"] is None
        assert outcome["appMetadataSets"] == []
        assert outcome["logs"] == [
            "tollgate: login of auth0|ann allowed uncounted: "
            "TOLLGATE_URL or TOLLGATE_API_KEY is not set"
        ]
        assert not exists(http, "auth0|ann")
