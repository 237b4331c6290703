"""The live socket: graphql-transport-ws on `/graphql`, authenticated from `connection_init`
as the Node SDK does it, pushing what the change log says to every socket of the environment."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stigg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.graphql_api.documents import documents
from tests.support.servers import launch
from tests.support.tenants import Tenant
from tests.support.usage import report, usage

PROTOCOL = "graphql-transport-ws"


def socket_url(tenant: Tenant) -> str:
    return tenant.base_url.replace("http://", "ws://") + "/graphql"


def receive(socket: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=timeout))
    return message


@pytest.fixture
def socket(demo_tenant: Tenant) -> Iterator[ClientConnection]:
    with connect(socket_url(demo_tenant), subprotocols=[PROTOCOL]) as opened:  # type: ignore[list-item]
        init = {"X-API-KEY": demo_tenant.server_key, "source": "NODE_SERVER_SDK"}
        opened.send(json.dumps({"type": "connection_init", "payload": {"headers": init}}))
        assert receive(opened) == {"type": "connection_ack"}
        yield opened


def subscribe(socket: ClientConnection, operation: str, id_: str) -> None:
    document = documents("node-server-sdk")[operation]
    payload = {"operationName": operation, "query": document, "variables": {}}
    socket.send(json.dumps({"id": id_, "type": "subscribe", "payload": payload}))


def next_of(socket: ClientConnection, id_: str) -> dict[str, Any]:
    while True:
        message = receive(socket)
        assert message["type"] != "error", message
        if message.get("id") == id_ and message["type"] == "next":
            assert "errors" not in message["payload"], message["payload"]
            data: dict[str, Any] = message["payload"]["data"]
            return data


def test_a_plan_change_is_pushed_with_the_new_entitlements(
    socket: ClientConnection, demo_client: stigg.Stigg
) -> None:
    demo_client.v1.customers.provision(id="acme")
    subscribe(socket, "OnEntitlementsUpdated", "1")
    socket.ping().wait(5)  # the subscription is open before the change
    demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
    pushed = next_of(socket, "1")["entitlementsUpdated"]
    assert pushed["customerId"] == "acme"
    seats = next(e for e in pushed["entitlements"] if e["feature"]["refId"] == "feature-seats")
    assert seats["usageLimit"] == 20


def test_usage_is_pushed_per_metered_feature(
    socket: ClientConnection, demo_client: stigg.Stigg, demo_tenant: Tenant
) -> None:
    demo_client.v1.customers.provision(id="acme")
    demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
    subscribe(socket, "OnUsageUpdated", "u")
    socket.ping().wait(5)
    with demo_tenant.http() as http:
        assert report(http, usage("feature-seats", 5)).status_code == 200
    seen = {}
    while "feature-seats" not in seen:
        pushed = next_of(socket, "u")["usageUpdated"]
        seen[pushed["usage"]["featureId"]] = pushed["usage"]
    assert seen["feature-seats"]["currentUsage"] == 5
    assert seen["feature-seats"]["customerId"] == "acme"


def test_a_catalog_change_tells_the_sdk_to_drop_its_cache(
    socket: ClientConnection, demo_client: stigg.Stigg
) -> None:
    subscribe(socket, "OnPackagePublished", "p")
    subscribe(socket, "OnCreditBalanceUpdated", "c")  # accepted, and quiet
    socket.ping().wait(5)
    demo_client.v1.features.create_feature(
        id="feature-new", display_name="New", feature_type="BOOLEAN"
    )
    pushed = next_of(socket, "p")["packagePublished"]
    assert pushed["migrationType"] == "ALL_CUSTOMERS"


def test_a_wrong_key_is_refused_so_the_sdk_stops_retrying(demo_tenant: Tenant) -> None:
    with connect(socket_url(demo_tenant), subprotocols=[PROTOCOL]) as opened:  # type: ignore[list-item]
        payload = {"headers": {"X-API-KEY": "tg_server_wrong"}}
        opened.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            opened.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert closed.value.rcvd.reason == "Invalid API key"


def test_a_subscription_before_connection_init_is_refused(demo_tenant: Tenant) -> None:
    with connect(socket_url(demo_tenant), subprotocols=[PROTOCOL]) as opened:  # type: ignore[list-item]
        subscribe(opened, "OnEntitlementsUpdated", "1")
        with pytest.raises(ConnectionClosed) as closed:
            opened.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401  # Unauthorized, as the protocol says


def test_a_change_made_on_another_process_reaches_the_socket(
    database_url: str, tmp_path: Path
) -> None:
    """Two `tollgate serve` processes over one PostgreSQL: the socket is on the first, the
    plan change on the second (NOTIFY and the change log carry it across)."""
    if database_url.startswith("sqlite"):
        pytest.skip("several processes share PostgreSQL; SQLite serves one process")
    first = launch(database_url, tmp_path / "first.log", run_jobs="false")
    second = launch(database_url, tmp_path / "second.log", run_jobs="false")
    try:
        key = first.keys["server"]
        url = first.url.replace("http://", "ws://") + "/graphql"
        with connect(url, subprotocols=[PROTOCOL]) as opened:  # type: ignore[list-item]
            init = {"headers": {"X-API-KEY": key}}
            opened.send(json.dumps({"type": "connection_init", "payload": init}))
            assert receive(opened) == {"type": "connection_ack"}
            subscribe(opened, "OnEntitlementsUpdated", "1")
            opened.ping().wait(5)
            with httpx.Client(base_url=second.url, headers={"X-API-KEY": key}) as http:
                assert http.post("/api/v1/customers", json={"id": "acme"}).status_code == 201
                body = {"customerId": "acme", "planId": "plan-pro"}
                assert http.post("/api/v1/subscriptions", json=body).status_code in (200, 201)
            while True:
                pushed = next_of(opened, "1")["entitlementsUpdated"]
                if pushed["entitlements"]:
                    break
        limits = {e["feature"]["refId"]: e["usageLimit"] for e in pushed["entitlements"]}
        assert pushed["customerId"] == "acme"
        assert limits["feature-seats"] == 20
    finally:
        for served in (first, second):
            served.process.terminate()
            served.process.wait(timeout=20)
