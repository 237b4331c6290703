"""GET /api/v1/subscriptions: filters and cursor pagination, oldest first."""

from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support import START, Clocked, Tenant, make_tenant
from tests.support.subscriptions import customer, error, iso, subscribe


@dataclass(frozen=True)
class Book:
    """Five subscriptions, an hour apart: a free, b pro (trial), c enterprise on ws-1,
    d pro replacing a (so a is CANCELED), e free starting later (NOT_STARTED)."""

    a: str
    b: str
    c: str
    d: str
    e: str


@pytest.fixture
def book(demo_client: stigg.Stigg, clocked: Clocked) -> Book:
    for name in ("acme", "globex", "initech", "umbrella"):
        customer(demo_client, name)
    a = subscribe(demo_client, "acme", plan_id="plan-free").id
    clocked.clock.set(START + timedelta(hours=1))
    b = subscribe(demo_client, "globex", plan_id="plan-pro").id
    clocked.clock.set(START + timedelta(hours=2))
    c = subscribe(demo_client, "initech", plan_id="plan-enterprise", resource_id="ws-1").id
    clocked.clock.set(START + timedelta(hours=3))
    d = subscribe(demo_client, "acme", plan_id="plan-pro").id
    clocked.clock.set(START + timedelta(hours=4))
    e = subscribe(
        demo_client, "umbrella", plan_id="plan-free", start_date=START + timedelta(days=2)
    ).id
    return Book(a, b, c, d, e)


def ids(client: stigg.Stigg, **filters: object) -> list[str]:
    return [s.id for s in client.v1.subscriptions.list(**filters)]  # type: ignore[arg-type]


class TestFilters:
    def test_everything_oldest_first(self, demo_client: stigg.Stigg, book: Book) -> None:
        assert ids(demo_client) == [book.a, book.b, book.c, book.d, book.e]
        statuses = [(s.plan_id, s.status) for s in demo_client.v1.subscriptions.list()]
        assert statuses == [
            ("plan-free", "CANCELED"),
            ("plan-pro", "IN_TRIAL"),
            ("plan-enterprise", "ACTIVE"),
            ("plan-pro", "IN_TRIAL"),
            ("plan-free", "NOT_STARTED"),
        ]

    def test_by_customer_plan_and_resource(self, demo_client: stigg.Stigg, book: Book) -> None:
        assert ids(demo_client, customer_id="acme") == [book.a, book.d]
        assert ids(demo_client, plan_id="plan-pro") == [book.b, book.d]
        assert ids(demo_client, resource_id="ws-1") == [book.c]
        assert ids(demo_client, customer_id="acme", plan_id="plan-pro") == [book.d]
        assert ids(demo_client, customer_id="nobody") == []
        assert ids(demo_client, plan_id="plan-nope") == []

    def test_by_status(self, demo_client: stigg.Stigg, book: Book) -> None:
        assert ids(demo_client, status=["IN_TRIAL"]) == [book.b, book.d]
        assert ids(demo_client, status=["ACTIVE", "NOT_STARTED"]) == [book.c, book.e]
        assert ids(demo_client, status=["CANCELED"]) == [book.a]
        assert ids(demo_client, status=["EXPIRED", "PAYMENT_PENDING"]) == []
        assert ids(demo_client, customer_id="acme", status=["IN_TRIAL"]) == [book.d]

    def test_by_pricing_type(self, demo_client: stigg.Stigg, book: Book) -> None:
        assert ids(demo_client, pricing_type=["FREE"]) == [book.a, book.e]
        assert ids(demo_client, pricing_type=["PAID", "CUSTOM"]) == [book.b, book.c, book.d]
        assert ids(demo_client, pricing_type=["PAID"]) == [book.b, book.c, book.d]
        assert ids(demo_client, pricing_type=["CUSTOM"]) == []  # the demo has no CUSTOM plan

    def test_by_creation_time(self, demo_client: stigg.Stigg, book: Book) -> None:
        window = {"gte": START + timedelta(hours=1), "lt": START + timedelta(hours=3)}
        assert ids(demo_client, created_at=window) == [book.b, book.c]
        assert ids(demo_client, created_at={"gt": START + timedelta(hours=3)}) == [book.e]
        assert ids(demo_client, created_at={"lte": START}) == [book.a]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "ACTIVE,GONE"}, "status"),
            ({"pricingType": "CHEAP"}, "pricingType"),
            ({"createdAt[gt]": "yesterday"}, "createdAt[gt]"),
            ({"createdAt[gt]": "2026-01-01T00:00:00"}, "createdAt[gt]"),
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
        ],
    )
    def test_bad_filters_are_named(
        self, demo_http: httpx.Client, params: dict[str, str], field: str
    ) -> None:
        response = demo_http.get("/api/v1/subscriptions", params=params)
        assert error(response, 422)["field"] == field

    def test_another_environment_sees_none_of_them(
        self, engine: Engine, demo_tenant: Tenant, book: Book
    ) -> None:
        other = make_tenant(engine, demo_tenant.base_url)
        with other.http() as raw:
            assert raw.get("/api/v1/subscriptions").json()["data"] == []
            assert error(raw.get(f"/api/v1/subscriptions/{book.a}"), 404)["code"] == "not_found"


class TestPagination:
    def test_pages_forwards_and_back(self, demo_http: httpx.Client, book: Book) -> None:
        first = demo_http.get("/api/v1/subscriptions", params={"limit": 2}).json()
        assert [s["id"] for s in first["data"]] == [book.a, book.b]
        assert first["pagination"]["prev"] is None
        second = demo_http.get(
            "/api/v1/subscriptions", params={"limit": 2, "after": first["pagination"]["next"]}
        ).json()
        assert [s["id"] for s in second["data"]] == [book.c, book.d]
        third = demo_http.get(
            "/api/v1/subscriptions", params={"limit": 2, "after": second["pagination"]["next"]}
        ).json()
        assert [s["id"] for s in third["data"]] == [book.e]
        assert third["pagination"]["next"] is None
        back = demo_http.get(
            "/api/v1/subscriptions", params={"limit": 2, "before": second["pagination"]["prev"]}
        ).json()
        assert [s["id"] for s in back["data"]] == [book.a, book.b]

    def test_the_stigg_client_walks_every_page(self, demo_client: stigg.Stigg, book: Book) -> None:
        page = demo_client.v1.subscriptions.list(limit=2)
        assert [s.id for s in page.data] == [book.a, book.b]
        assert [s.id for s in page] == [book.a, book.b, book.c, book.d, book.e]

    def test_filters_hold_across_pages(self, demo_client: stigg.Stigg, book: Book) -> None:
        assert ids(demo_client, limit=1, pricing_type=["PAID", "CUSTOM"]) == [
            book.b,
            book.c,
            book.d,
        ]

    def test_a_cursor_not_issued_here_is_refused(self, demo_http: httpx.Client) -> None:
        response = demo_http.get("/api/v1/subscriptions", params={"after": "not-a-cursor"})
        assert error(response, 400)["field"] == "after"

    def test_created_at_bounds_in_query_form(self, demo_http: httpx.Client, book: Book) -> None:
        response = demo_http.get(
            "/api/v1/subscriptions",
            params={"createdAt[gte]": iso(START + timedelta(hours=4))},
        )
        assert [s["id"] for s in response.json()["data"]] == [book.e]
