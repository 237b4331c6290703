"""Webhook targets: by default only publicly routable hosts, checked when an endpoint is
created or changed, and again at every delivery (so DNS rebinding cannot reach inside).

DNS is played by the test (`Dns`); the receiver is real, on 127.0.0.1."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import ip_address
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import START, Clocked, live_server, make_tenant
from tests.support.webhooks import Receiver
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.kit.clock import ManualClock
from tollgate.webhooks.targets import why_refused

PUBLIC = "93.184.215.14"  # never connected to: a name answers it only while being checked


@dataclass
class Dns:
    """Answers what the test says; any other name does not resolve."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


@dataclass
class Guarded(Clocked):
    dns: Dns


def _serve(engine: Engine, **settings: Any) -> Iterator[Guarded]:
    dns = Dns()
    clock = ManualClock(START)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, run_jobs=False, **settings),
        engine=engine,
        clock=clock,
        resolver=dns,
    )
    with live_server(app) as base_url:
        yield Guarded(app, clock, base_url, dns)


@pytest.fixture(scope="module")
def guarded(engine: Engine) -> Iterator[Guarded]:
    """A Tollgate with the default rule: private targets refused."""
    yield from _serve(engine)


@pytest.fixture(scope="module")
def trusting(engine: Engine) -> Iterator[Guarded]:
    """A Tollgate whose installation allows private targets."""
    yield from _serve(engine, webhooks_allow_private_targets=True)


@pytest.fixture
def guarded_http(engine: Engine, guarded: Guarded) -> Iterator[httpx.Client]:
    guarded.clock.set(START)
    guarded.dns.answers.clear()
    with make_tenant(engine, guarded.base_url).http() as http:
        yield http


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_value", "url")
    message: str = error["message"]
    assert "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS" in message
    return message


def switch_off(http: httpx.Client, endpoint_id: str) -> None:
    """Disable an endpoint, so that other tests' workers (they lease from the whole
    database) do not find what it is still owed."""
    disabled = http.patch(f"/api/v1/webhooks/{endpoint_id}", json={"isEnabled": False})
    assert disabled.status_code == 200, disabled.text


def owed(http: httpx.Client, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's one message, after a `test` event."""
    (message,) = http.get(f"/api/v1/webhooks/{endpoint_id}/messages").json()["data"]
    assert isinstance(message, dict)
    return message


class TestAddresses:
    @pytest.mark.parametrize(
        ("address", "kind"),
        [
            ("127.0.0.1", "loopback"),
            ("127.10.20.30", "loopback"),
            ("::1", "loopback"),
            ("169.254.169.254", "link-local"),  # cloud metadata services
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("fd00::1", "private"),
            ("100.64.0.1", "shared"),
            ("224.0.0.251", "multicast"),
            ("ff02::1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("192.0.2.1", "reserved"),  # documentation
            ("198.18.0.1", "reserved"),  # benchmarking
            ("fec0::1", "reserved"),  # site-local
            ("2001:db8::1", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
            ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
            ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ],
    )
    def test_refused(self, address: str, kind: str) -> None:
        reason = why_refused(ip_address(address))
        assert reason is not None
        assert kind in reason

    @pytest.mark.parametrize(
        "address",
        ["8.8.8.8", PUBLIC, "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
    )
    def test_allowed(self, address: str) -> None:
        assert why_refused(ip_address(address)) is None


class TestCreateAndUpdate:
    @pytest.mark.parametrize(
        ("url", "said"),
        [
            ("http://127.0.0.1:8080/hooks", "host '127.0.0.1' is a loopback address"),
            ("http://[::1]/hooks", "host '::1' is a loopback address"),
            ("http://169.254.169.254/latest/meta-data", "is a link-local address"),
            ("https://10.0.0.5/hooks", "host '10.0.0.5' is a private address"),
            ("http://[::ffff:192.168.0.9]/hooks", "is a private address"),
            ("http://0.0.0.0:9000/", "is an unspecified address"),
        ],
    )
    def test_a_private_address_is_refused(
        self, guarded_http: httpx.Client, url: str, said: str
    ) -> None:
        assert said in refusal(guarded_http.post("/api/v1/webhooks", json={"url": url}))
        assert guarded_http.get("/api/v1/webhooks").json()["data"] == []  # nothing stored

    def test_a_name_is_refused_when_one_of_its_addresses_is_private(
        self, guarded: Guarded, guarded_http: httpx.Client
    ) -> None:
        guarded.dns.answers["hooks.example.test"] = [PUBLIC, "10.20.30.40"]
        refused = guarded_http.post("/api/v1/webhooks", json={"url": "https://hooks.example.test/"})
        said = refusal(refused)
        assert "host 'hooks.example.test' resolves to 10.20.30.40, a private address" in said
        assert guarded.dns.asked == ["hooks.example.test"]

    def test_a_name_that_does_not_resolve_is_refused(self, guarded_http: httpx.Client) -> None:
        refused = guarded_http.post("/api/v1/webhooks", json={"url": "https://nowhere.test/"})
        assert "host 'nowhere.test' does not resolve" in refusal(refused)

    def test_a_public_target_is_accepted(
        self, guarded: Guarded, guarded_http: httpx.Client
    ) -> None:
        guarded.dns.answers["hooks.example.test"] = [PUBLIC, "2606:4700:4700::1111"]
        for url in ("https://hooks.example.test/tollgate", f"http://{PUBLIC}:8443/h"):
            created = guarded_http.post("/api/v1/webhooks", json={"url": url})
            assert created.status_code == 201, created.text

    def test_an_update_to_a_private_address_is_refused(
        self, guarded: Guarded, guarded_http: httpx.Client
    ) -> None:
        guarded.dns.answers["hooks.example.test"] = [PUBLIC]
        created = guarded_http.post("/api/v1/webhooks", json={"url": "https://hooks.example.test/"})
        endpoint = created.json()["data"]["id"]
        guarded.dns.answers["intranet.example.test"] = ["192.168.7.7"]
        for url in ("http://intranet.example.test/", "http://127.0.0.1:9/"):
            changed = guarded_http.patch(f"/api/v1/webhooks/{endpoint}", json={"url": url})
            refusal(changed)
        read = guarded_http.get(f"/api/v1/webhooks/{endpoint}").json()["data"]
        assert read["url"] == "https://hooks.example.test/"  # unchanged

    def test_an_installation_may_allow_private_targets(
        self, trusting: Guarded, engine: Engine
    ) -> None:
        trusting.dns.asked.clear()
        with make_tenant(engine, trusting.base_url).http() as http:
            for url in ("http://127.0.0.1:9/hooks", "http://nowhere.test/hooks"):
                created = http.post("/api/v1/webhooks", json={"url": url})
                assert created.status_code == 201, created.text
        assert trusting.dns.asked == []  # nothing is checked


class TestDelivery:
    def test_a_name_rebound_to_a_private_address_is_not_sent_to(
        self, guarded: Guarded, guarded_http: httpx.Client, receiver: Receiver
    ) -> None:
        # Public when the endpoint is created; 127.0.0.1 (the receiver) when it is sent to.
        port = httpx.URL(receiver.url).port
        guarded.dns.answers["hooks.example.test"] = [PUBLIC]
        created = guarded_http.post(
            "/api/v1/webhooks", json={"url": f"http://hooks.example.test:{port}/hooks"}
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()["data"]["id"]
        assert guarded_http.post(f"/api/v1/webhooks/{endpoint}/test").status_code == 202
        guarded.dns.answers["hooks.example.test"] = ["127.0.0.1"]

        assert guarded.run_jobs()["webhooks.deliver"] == 0
        message = owed(guarded_http, endpoint)
        assert receiver.received == []
        assert (message["status"], message["attempts"]) == ("PENDING", 1)
        assert message["lastError"] == (
            "not sent: host 'hooks.example.test' resolves to 127.0.0.1, a loopback address"
        )
        # A failed attempt like any other: retried on the usual schedule, checked again.
        guarded.clock.advance(timedelta(seconds=7))
        guarded.run_jobs()
        assert owed(guarded_http, endpoint)["attempts"] == 2
        assert receiver.received == []
        switch_off(guarded_http, endpoint)

    def test_an_endpoint_created_before_the_rule_is_not_sent_to(
        self, guarded: Guarded, engine: Engine, receiver: Receiver, trusting: Guarded
    ) -> None:
        tenant = make_tenant(engine, trusting.base_url)
        with tenant.http() as http:
            created = http.post("/api/v1/webhooks", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            endpoint = created.json()["data"]["id"]
            assert http.post(f"/api/v1/webhooks/{endpoint}/test").status_code == 202
            guarded.clock.set(START)
            guarded.run_jobs()  # the installation that refuses private targets
            message = owed(http, endpoint)
            switch_off(http, endpoint)
        assert receiver.received == []
        assert message["lastError"] == "not sent: host '127.0.0.1' is a loopback address"

    def test_the_connection_goes_to_the_address_that_was_checked(
        self, trusting: Guarded, engine: Engine, receiver: Receiver
    ) -> None:
        # `receiver.test` exists only in the test's DNS: reaching the receiver shows that
        # the connection went to the address the rules resolved, with the name kept in Host.
        port = httpx.URL(receiver.url).port
        trusting.dns.answers["receiver.test"] = ["127.0.0.1"]
        with make_tenant(engine, trusting.base_url).http() as http:
            url = f"http://receiver.test:{port}/hooks"
            endpoint = http.post("/api/v1/webhooks", json={"url": url}).json()["data"]["id"]
            assert http.post(f"/api/v1/webhooks/{endpoint}/test").status_code == 202
            trusting.clock.set(START)
            assert trusting.run_jobs()["webhooks.deliver"] == 1
        (request,) = receiver.received
        assert request.headers["host"] == f"receiver.test:{port}"
        assert "receiver.test" in trusting.dns.asked
