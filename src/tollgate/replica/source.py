"""The source's REST API, as the replica uses it: to register its endpoint, to read
everything again (resync), and to ask what the source gave up delivering to it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tollgate.replica.events import WANTED_EVENTS

STATES_PER_REQUEST = 200  # what `POST /api/v1/sdk/states` takes at once
PAGE_SIZE = 100


class SourceError(RuntimeError):
    """The source answered something else than expected (or could not be reached)."""


class Source:
    def __init__(self, base_url: str, api_key: str) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"X-API-KEY": api_key}, timeout=30
        )

    def close(self) -> None:
        self._http.close()

    def _call(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """The answer, or SourceError for a failed request or a 4xx/5xx (but a 404 where
        `missing_ok`: the caller reads it as "not there")."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise SourceError(f"{method} {path}: {error}") from error
        if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
            raise SourceError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response

    def now(self) -> datetime:
        """The source's clock, to the second below (from a `Date` header): what a resync
        stamps its rows with, so that any change the resync could not have seen is newer."""
        response = self._call("GET", "/healthz")
        stated = response.headers.get("date")
        moment = parsedate_to_datetime(stated) if stated else datetime.now(UTC)
        return moment.astimezone(UTC) - timedelta(seconds=1)

    def register(self, url: str) -> dict[str, Any]:
        """A webhook endpoint at the source for `url`, listening to what the replica keeps;
        the answer carries its id and signing secret."""
        body = {"url": url, "eventTypes": WANTED_EVENTS, "description": "tollgate replica"}
        data: dict[str, Any] = self._call("POST", "/api/v1/webhooks", json=body).json()["data"]
        return data

    def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", f"/api/v1/webhooks/{endpoint_id}").json()["data"]
        return data

    def enable(self, endpoint_id: str) -> None:
        self._call("PATCH", f"/api/v1/webhooks/{endpoint_id}", json={"isEnabled": True})

    def redeliver_failed(self, endpoint_id: str, *, since: str) -> None:
        """Have the source send again the endpoint's messages that failed, created since."""
        self._call(
            "POST", f"/api/v1/webhooks/{endpoint_id}/redeliver-failed", params={"since": since}
        )

    def messages(self, endpoint_id: str, status: str) -> Iterator[dict[str, Any]]:
        """The endpoint's messages in one status, oldest first."""
        yield from self._pages(f"/api/v1/webhooks/{endpoint_id}/messages", {"status": status})

    def customers(self) -> Iterator[dict[str, Any]]:
        yield from self._pages("/api/v1/customers", {})

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/api/v1/customers/{customer_id}", missing_ok=True)
        if response.status_code == 404:
            return None
        data: dict[str, Any] = response.json()["data"]
        return data

    def subscriptions(self, customer_id: str | None = None) -> Iterator[dict[str, Any]]:
        params = {"customerId": customer_id} if customer_id else {}
        yield from self._pages("/api/v1/subscriptions", params)

    def features(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call(
            "GET", "/api/v1/sdk/features", params={"fresh": "true"}
        ).json()["data"]
        return data

    def states(self, scopes: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        """Each (customer, resource)'s entitlements with their terms and usage, read from
        the source's database (not its memory)."""
        states: list[dict[str, Any]] = []
        for start in range(0, len(scopes), STATES_PER_REQUEST):
            batch = scopes[start : start + STATES_PER_REQUEST]
            body = {
                "customers": [{"customerId": c, "resourceId": r, "fresh": True} for c, r in batch],
                "freshUsage": True,
            }
            states += self._call("POST", "/api/v1/sdk/states", json=body).json()["data"]
        return states

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            query = {**params, "limit": str(PAGE_SIZE), **({"after": after} if after else {})}
            page = self._call("GET", path, params=query).json()
            yield from page["data"]
            after = (page.get("pagination") or {}).get("next")
            if not after or not page["data"]:
                return
