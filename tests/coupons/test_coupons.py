"""Coupons through the official client: created, listed, renamed and archived; amounts
exact in each currency's minor units."""

from typing import Any

import httpx
import pytest
import stigg

from tests.support import Tenant


def create(client: stigg.Stigg, id: str, **terms: Any) -> Any:
    fields: dict[str, Any] = {
        "amounts_off": None,
        "percent_off": None,
        "description": None,
        "duration_in_months": None,
        "metadata": None,
        **terms,
    }
    return client.v1.coupons.create(id=id, name=id.title(), **fields).data


class TestCreate:
    def test_a_percentage_for_some_months(self, client: stigg.Stigg) -> None:
        coupon = create(client, "half", percent_off=50, duration_in_months=3)
        assert (coupon.type, coupon.percent_off, coupon.duration_in_months) == (
            "PERCENTAGE",
            50,
            3,
        )
        assert (coupon.status, coupon.source, coupon.amounts_off) == ("ACTIVE", "STIGG", None)

    def test_fixed_amounts_in_currencies_of_every_precision_for_ever(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        amounts = [
            {"amount": 5.5, "currency": "usd"},
            {"amount": 500, "currency": "jpy"},
            {"amount": 1.125, "currency": "kwd"},
        ]
        coupon = create(client, "welcome", amounts_off=amounts)
        assert coupon.type == "FIXED"
        assert coupon.duration_in_months is None
        raw = http.get("/api/v1/coupons/welcome").json()["data"]
        assert raw["amountsOff"] == amounts

    def test_a_percentage_keeps_its_12_decimal_places(self, http: httpx.Client) -> None:
        third = {"id": "third", "name": "A third", "percentOff": 33.333333333333}
        created = http.post("/api/v1/coupons", json=third)
        assert created.status_code == 201, created.text
        assert http.get("/api/v1/coupons/third").json()["data"]["percentOff"] == 33.333333333333

    @pytest.mark.parametrize(
        ("terms", "field"),
        [
            ({}, "percentOff"),
            ({"percentOff": 10, "amountsOff": [{"amount": 1, "currency": "usd"}]}, "percentOff"),
            ({"percentOff": 120}, "percentOff"),
            ({"percentOff": 0}, "percentOff"),
            ({"percentOff": 12.1234567890123}, "percentOff"),
            ({"amountsOff": [{"amount": 10.5, "currency": "jpy"}]}, "amountsOff.0.amount"),
            ({"amountsOff": [{"amount": 0, "currency": "usd"}]}, "amountsOff.0.amount"),
            (
                {
                    "amountsOff": [
                        {"amount": 1, "currency": "usd"},
                        {"amount": 2, "currency": "USD"},
                    ]
                },
                "amountsOff.1",
            ),
            ({"percentOff": 10, "durationInMonths": 0}, "durationInMonths"),
        ],
    )
    def test_wrong_terms_are_refused_by_field(
        self, http: httpx.Client, terms: dict[str, Any], field: str
    ) -> None:
        response = http.post("/api/v1/coupons", json={"id": "c", "name": "C", **terms})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert http.get("/api/v1/coupons").json()["data"] == []

    def test_a_duplicate_id_is_a_conflict(self, client: stigg.Stigg) -> None:
        create(client, "half", percent_off=50)
        with pytest.raises(stigg.ConflictError):
            create(client, "half", percent_off=40)


class TestLifecycle:
    def test_list_filter_rename_archive(self, client: stigg.Stigg) -> None:
        create(client, "half", percent_off=50)
        create(client, "five", amounts_off=[{"amount": 5, "currency": "usd"}])
        create(client, "tenth", percent_off=10)
        assert [c.id for c in client.v1.coupons.list()] == ["half", "five", "tenth"]
        assert [c.id for c in client.v1.coupons.list(type="FIXED")] == ["five"]
        assert [c.id for c in client.v1.coupons.list(id="tenth")] == ["tenth"]
        page = client.v1.coupons.list(limit=2)
        assert [c.id for c in page.data] == ["half", "five"]
        assert [c.id for c in page] == ["half", "five", "tenth"]
        renamed = client.v1.coupons.update_coupon("half", name="Half off", description="50%")
        assert (renamed.data.name, renamed.data.description, renamed.data.percent_off) == (
            "Half off",
            "50%",
            50,
        )
        archived = client.v1.coupons.archive_coupon("five").data
        assert archived.status == "ARCHIVED"
        assert client.v1.coupons.retrieve("five").data.status == "ARCHIVED"
        assert [c.id for c in client.v1.coupons.list(status=["ACTIVE"])] == ["half", "tenth"]
        with pytest.raises(stigg.NotFoundError):
            client.v1.coupons.retrieve("nope")

    def test_a_client_key_reads_but_never_writes(self, client: stigg.Stigg, tenant: Tenant) -> None:
        create(client, "half", percent_off=50)
        with tenant.http(key=tenant.client_key) as browser:
            assert browser.get("/api/v1/coupons/half").status_code == 200
            refused = browser.post(
                "/api/v1/coupons", json={"id": "x", "name": "X", "percentOff": 5}
            )
            assert refused.status_code == 403
            assert browser.post("/api/v1/coupons/half/archive").status_code == 403
