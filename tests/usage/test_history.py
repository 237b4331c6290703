"""Usage history as the `stigg` client reads it."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import stigg

from tests.support import START, Clocked
from tests.support.usage import check, report, usage

pytestmark = pytest.mark.usefixtures("acme")
USERS = "feature-active-users"


def history(http: httpx.Client, feature: str = USERS, **params: Any) -> dict[str, Any]:
    params.setdefault("startDate", (START - timedelta(days=1)).isoformat())
    response = http.get(f"/api/v1/usage/acme/history/{feature}", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


class TestHistory:
    def test_points_follow_the_reports_and_restart_each_period(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        report(http, usage(USERS, 5))
        clocked.clock.advance(timedelta(hours=1))
        report(http, usage(USERS, 2))
        period_end = datetime.fromisoformat(check(http, USERS)["usagePeriodEnd"])
        clocked.clock.set(period_end + timedelta(hours=1))
        report(http, usage(USERS, 4))
        (series,) = history(http)["series"]
        assert [(p["value"], p["isResetPoint"]) for p in series["points"]] == [
            (5, False),
            (7, False),
            (4, True),
        ]
        markers = history(http)["markers"]
        assert [m["type"] for m in markers] == ["PERIODIC_RESET"]
        assert datetime.fromisoformat(markers[0]["timestamp"]) == period_end

    def test_grouped_by_a_dimension(self, http: httpx.Client) -> None:
        report(
            http,
            usage(USERS, 1, dimensions={"app": "web"}),
            usage(USERS, 2, dimensions={"app": "cli"}),
            usage(USERS, 3, dimensions={"app": "web"}),
        )
        series = history(http, groupBy="app")["series"]
        by_tag = {s["tags"][0]["value"]: [p["value"] for p in s["points"]] for s in series}
        assert by_tag == {"cli": [2], "web": [1, 4]}

    def test_event_metered_features_replay_their_events(self, http: httpx.Client) -> None:
        events = [
            {"customerId": "acme", "eventName": "api_call", "idempotencyKey": f"e{i}"}
            for i in range(3)
        ]
        assert http.post("/api/v1/events", json={"events": events}).status_code == 200
        (series,) = history(http, "feature-api-calls")["series"]
        assert [p["value"] for p in series["points"]] == [1, 2, 3]

    def test_the_stigg_client(self, http: httpx.Client, demo_client: stigg.Stigg) -> None:
        report(http, usage(USERS, 5))
        found = demo_client.v1.usage.history(
            USERS, customer_id="acme", start_date=START - timedelta(days=1)
        )
        assert [p.value for p in found.data.series[0].points] == [5]

    def test_unknown_feature(self, http: httpx.Client) -> None:
        response = http.get(
            "/api/v1/usage/acme/history/feature-nope",
            params={"startDate": (START - timedelta(days=1)).isoformat()},
        )
        assert response.status_code == 404
