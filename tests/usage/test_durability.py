"""Totals stay exact through a crash: a server killed with SIGKILL while reports stream in
loses nothing acknowledged, and retrying everything unacknowledged counts nothing twice."""

import os
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.support import Served, launch

BATCHES = 40
PER_BATCH = 1_000
CUSTOMERS = ["crash-a", "crash-b", "crash-c", "crash-d"]
FEATURE = "feature-active-users"
KILL_AFTER = 12  # acknowledged batches


def batch(number: int) -> dict[str, Any]:
    return {
        "usages": [
            {
                "customerId": CUSTOMERS[item % len(CUSTOMERS)],
                "featureId": FEATURE,
                "value": 1 + item % 5,
                "idempotencyKey": f"batch-{number}-item-{item}",
            }
            for item in range(PER_BATCH)
        ]
    }


def expected_totals() -> Counter[str]:
    totals: Counter[str] = Counter()
    for number in range(BATCHES):
        for usage in batch(number)["usages"]:
            totals[usage["customerId"]] += usage["value"]
    return totals


def client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, headers={"X-API-KEY": served.keys["server"]})


def stream_until_killed(served: Served) -> dict[int, Any]:
    """Send every batch (four at a time) and SIGKILL the server midway; return the
    answers of the batches that were acknowledged."""
    acknowledged: dict[int, Any] = {}
    lock = threading.Lock()

    def send(number: int) -> None:
        try:
            with client(served) as http:
                response = http.post("/api/v1/usage", json=batch(number), timeout=60)
        except httpx.TransportError:
            return  # the server died with this batch in flight
        assert response.status_code == 200, response.text
        with lock:
            acknowledged[number] = response.json()
            if len(acknowledged) == KILL_AFTER:
                os.kill(served.process.pid, signal.SIGKILL)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(BATCHES)))
    served.process.wait(timeout=20)
    return acknowledged


class TestCrash:
    def test_sigkill_midway_then_retry_the_rest(self, database_url: str, tmp_path: Path) -> None:
        first = launch(database_url, tmp_path / "first.log")
        with client(first) as http:
            for customer in CUSTOMERS:
                assert http.post("/api/v1/customers", json={"id": customer}).status_code == 201
                subscribed = http.post(
                    "/api/v1/subscriptions",
                    json={"customerId": customer, "planId": "plan-enterprise"},
                )
                assert subscribed.status_code == 200, subscribed.text
        acknowledged = stream_until_killed(first)
        assert KILL_AFTER <= len(acknowledged) < BATCHES, "the kill came too late to test"

        second = launch(database_url, tmp_path / "second.log")
        try:
            with client(second) as http:
                for number in range(BATCHES):
                    retried = http.post("/api/v1/usage", json=batch(number), timeout=60)
                    assert retried.status_code == 200, retried.text
                    if number in acknowledged:
                        assert retried.json() == acknowledged[number]  # the original answers
                for customer, total in expected_totals().items():
                    answer = http.get(
                        f"/api/v1/customers/{customer}/entitlements/check",
                        params={"featureId": FEATURE},
                    ).json()["data"]
                    assert answer["currentUsage"] == total, customer
        finally:
            second.process.terminate()
            second.process.wait(timeout=20)
