"""Bounded input over real HTTP: the key before the body, body limits answered early,
bounded free-form fields, dates within range, JSON numbers only."""

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import Tenant, make_demo_tenant
from tollgate.http.types import MAX_BATCH_BODY_BYTES

MIB = 1024 * 1024
USERS = "feature-active-users"


@pytest.fixture
def demo(engine: Engine, base_url: str) -> Tenant:
    return make_demo_tenant(engine, base_url)


@pytest.fixture
def http(demo: Tenant) -> Iterator[httpx.Client]:
    with demo.http() as raw:
        for customer in ("acme", "globex"):
            raw.post("/api/v1/customers", json={"id": customer}).raise_for_status()
            raw.post(
                "/api/v1/subscriptions", json={"customerId": customer, "planId": "plan-pro"}
            ).raise_for_status()
        yield raw


def _answer_to_a_huge_body(base_url: str, path: str, headers: dict[str, str]) -> bytes:
    """Announce a 64 MiB body, send 1 KiB of it, and read what the server answers: a server
    that waits for the whole body before answering never does (the read times out)."""
    address = urlsplit(base_url)
    head = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {64 * MIB}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"{" + b" " * 1023)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


class TestTheKeyComesFirst:
    def test_an_anonymous_huge_body_is_refused_before_it_is_read(self, base_url: str) -> None:
        answer = _answer_to_a_huge_body(base_url, "/api/v1/customers", {})
        assert answer.startswith(b"HTTP/1.1 401")
        assert b'"unauthenticated"' in answer

    def test_an_unknown_key_is_refused_before_the_body_is_read(self, base_url: str) -> None:
        answer = _answer_to_a_huge_body(
            base_url, "/api/v1/usage", {"X-API-KEY": "tg_server_not-a-key"}
        )
        assert answer.startswith(b"HTTP/1.1 401")

    def test_a_known_key_gets_413_before_the_body_is_read(self, demo: Tenant) -> None:
        for path in ("/api/v1/customers", "/api/v1/usage"):
            answer = _answer_to_a_huge_body(demo.base_url, path, {"X-API-KEY": demo.server_key})
            assert answer.startswith(b"HTTP/1.1 413"), path
            body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
            assert body["error"]["code"] == "too_large"
            assert "bytes" in body["error"]["message"]


class TestBodyLimits:
    def test_a_body_over_the_default_limit_is_refused(self, http: httpx.Client) -> None:
        big = {"id": "big", "name": "x" * (3 * MIB)}
        response = http.post("/api/v1/customers", json=big)
        assert response.status_code == 413
        assert http.get("/api/v1/customers/big").status_code == 404

    def test_a_streamed_body_without_a_length_is_cut_at_the_limit(self, http: httpx.Client) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"id": "streamed", "name": "'
            for _ in range(40):
                yield b"x" * 100_000
            yield b'"}'

        response = http.post(
            "/api/v1/customers", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert http.get("/api/v1/customers/streamed").status_code == 404

    def test_the_largest_usage_batch_fits(self, http: httpx.Client) -> None:
        dimensions = {f"{i:02d}" + "k" * 62: "v" * 255 for i in range(20)}
        usages = [
            {
                "customerId": "acme",
                "featureId": USERS,
                "value": 1,
                "dimensions": dimensions,
                "idempotencyKey": f"{i:06d}" + "i" * 249,
                "resourceId": None,
            }
            for i in range(1000)
        ]
        body = json.dumps({"usages": usages}).encode()
        assert 2 * MIB < len(body) < MAX_BATCH_BODY_BYTES
        response = http.post(
            "/api/v1/usage", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text[:300]
        assert response.json()["data"][-1]["currentUsage"] == 1000

    def test_a_batch_over_its_limit_is_refused(self, http: httpx.Client) -> None:
        padding = "x" * 255
        events = [
            {"customerId": "acme", "eventName": padding, "idempotencyKey": f"{i}{padding}"[:255]}
            for i in range(MAX_BATCH_BODY_BYTES // 500)
        ]
        response = http.post("/api/v1/events", json={"events": events})
        assert response.status_code == 413


class TestBoundedFields:
    @pytest.mark.parametrize(
        ("metadata", "why"),
        [
            ({f"k{i}": "v" for i in range(101)}, "100"),
            ({"k" * 101: "v"}, "100"),
            ({"k": "v" * 501}, "500"),
            ({f"k{i}": "v" * 499 for i in range(20)}, "8,192"),
        ],
    )
    def test_metadata(self, http: httpx.Client, metadata: dict[str, str], why: str) -> None:
        response = http.patch("/api/v1/customers/acme", json={"metadata": metadata})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["field"].startswith("metadata"), error
        assert why in error["message"]
        assert http.get("/api/v1/customers/acme").json()["data"]["metadata"] == {}

    @pytest.mark.parametrize(
        "dimensions",
        [{f"d{i}": "v" for i in range(21)}, {"d" * 65: "v"}, {"d": "v" * 256}],
    )
    def test_dimensions(self, http: httpx.Client, dimensions: dict[str, str]) -> None:
        usage = {"customerId": "acme", "featureId": USERS, "value": 1, "dimensions": dimensions}
        response = http.post("/api/v1/usage", json={"usages": [usage]})
        assert response.status_code == 422
        assert response.json()["error"]["field"].startswith("usages.0.dimensions")
        event = {"customerId": "acme", "eventName": "e", "idempotencyKey": "k"}
        response = http.post(
            "/api/v1/events", json={"events": [{**event, "dimensions": dimensions}]}
        )
        assert response.status_code == 422

    def test_descriptions_and_stored_json(self, http: httpx.Client) -> None:
        feature = {"id": "f", "displayName": "F", "featureType": "BOOLEAN"}
        response = http.post("/api/v1/features", json={**feature, "description": "d" * 1001})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "description"
        passthrough = {"blob": "x" * 9000}
        response = http.patch("/api/v1/customers/acme", json={"passthrough": passthrough})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "passthrough"


class TestDateRanges:
    @pytest.mark.parametrize(
        "moment",
        ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"],
    )
    def test_usage_dates(self, http: httpx.Client, moment: str) -> None:
        usage = {"customerId": "acme", "featureId": USERS, "value": 1, "createdAt": moment}
        response = http.post("/api/v1/usage", json={"usages": [usage]})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "usages.0.createdAt"
        event = {"customerId": "acme", "eventName": "api_call", "idempotencyKey": moment}
        response = http.post("/api/v1/events", json={"events": [{**event, "timestamp": moment}]})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "events.0.timestamp"
        # Nothing was stored, and the customer's history still reads.
        history = http.get(
            f"/api/v1/usage/acme/history/{USERS}", params={"startDate": "2026-01-01T00:00:00Z"}
        )
        assert history.status_code == 200
        assert all(
            point["value"] == 0
            for series in history.json()["data"]["series"]
            for point in series["points"]
        )

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/v1/subscriptions", {"startDate": "0001-01-01T00:00:00Z"}, "startDate"),
            (
                "/api/v1/subscriptions",
                {"cancellationDate": "9999-12-31T23:59:59Z"},
                "cancellationDate",
            ),
            (
                "/api/v1/customers/acme/promotional-entitlements",
                {
                    "promotionalEntitlements": [
                        {
                            "featureId": USERS,
                            "period": "custom",
                            "customEndDate": "9999-12-31T23:59:59Z",
                        }
                    ]
                },
                "promotionalEntitlements.0.customEndDate",
            ),
        ],
    )
    def test_body_dates(
        self, http: httpx.Client, path: str, body: dict[str, object], field: str
    ) -> None:
        if path == "/api/v1/subscriptions":
            body = {"customerId": "globex", "planId": "plan-free", **body}
        response = http.post(path, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    @pytest.mark.parametrize(
        ("path", "params", "field"),
        [
            (
                f"/api/v1/usage/acme/history/{USERS}",
                {"startDate": "0001-01-01T00:00:00"},
                "startDate",
            ),
            (
                f"/api/v1/usage/acme/history/{USERS}",
                {"startDate": "2026-01-01T00:00:00Z", "endDate": "9999-12-31T23:59:59-23:00"},
                "endDate",
            ),
            (
                "/api/v1/customers",
                {"createdAt[gte]": "0001-01-01T00:00:00+01:00"},
                "createdAt[gte]",
            ),
            ("/api/v1/subscriptions", {"createdAt[lt]": "9999-12-31T23:59:59Z"}, "createdAt[lt]"),
        ],
    )
    def test_query_dates(
        self, http: httpx.Client, path: str, params: dict[str, str], field: str
    ) -> None:
        response = http.get(path, params=params)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field


class TestJsonNumbers:
    @pytest.mark.parametrize("value", [True, "5", "1e3", None, [1]])
    def test_a_usage_value_must_be_a_json_number(self, http: httpx.Client, value: object) -> None:
        usage = {"customerId": "acme", "featureId": USERS, "value": value}
        response = http.post("/api/v1/usage", json={"usages": [usage]})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "usages.0.value"
        check = http.get(
            "/api/v1/customers/acme/entitlements/check", params={"featureId": USERS}
        ).json()["data"]
        assert check["currentUsage"] == 0

    def test_numbers_elsewhere_must_be_json_numbers_too(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/addons",
            json={"id": "a", "displayName": "A", "productId": "product-saas", "maxQuantity": "3"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "maxQuantity"
        response = http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "globex",
                "planId": "plan-pro",
                "addons": [{"id": "addon-extra-seats", "quantity": True}],
            },
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "addons.0.quantity"
