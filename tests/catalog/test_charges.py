"""Prices on plans and add-ons: written through drafts, read back exactly, checked by rule."""

from typing import Any

import httpx
import pytest
import stigg

from tests.support import factories


@pytest.fixture
def catalog(http: httpx.Client) -> httpx.Client:
    factories.feature(http, id="feature-seats")
    factories.feature(http, id="feature-calls", meterType="INCREMENTAL")
    factories.feature(http, id="feature-sso", featureType="BOOLEAN", meterType="None")
    factories.product(http)
    factories.plan(http, id="plan-pro")
    factories.addon(http, id="addon-seats")
    return http


def flat(monthly: float, annually: float, currency: str = "usd") -> dict[str, Any]:
    return {
        "billingModel": "FLAT_FEE",
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": {"amount": monthly, "currency": currency}},
            {"billingPeriod": "ANNUALLY", "price": {"amount": annually, "currency": currency}},
        ],
    }


def per_seat(monthly: float, annually: float, **fields: Any) -> dict[str, Any]:
    return {
        "billingModel": "PER_UNIT",
        "featureId": "feature-seats",
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": {"amount": monthly}},
            {"billingPeriod": "ANNUALLY", "price": {"amount": annually}},
        ],
        **fields,
    }


def calls_tiered(mode: str) -> dict[str, Any]:
    tiers = [
        {"upTo": 1000, "unitPrice": {"amount": 0}},
        {"upTo": 10000, "unitPrice": {"amount": 0.002}, "flatPrice": {"amount": 5}},
        {"unitPrice": {"amount": 0.0005}},
    ]
    return {
        "billingModel": "USAGE_BASED",
        "featureId": "feature-calls",
        "tiersMode": mode,
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "tiers": tiers},
            {"billingPeriod": "ANNUALLY", "tiers": tiers},
        ],
    }


def set_charges(http: httpx.Client, ref: str, charges: dict[str, Any]) -> httpx.Response:
    segment = "addons" if ref.startswith("addon") else "plans"
    return http.patch(f"/api/v1/{segment}/{ref}", json={"charges": charges})


def refused(http: httpx.Client, charges: dict[str, Any]) -> dict[str, Any]:
    response = set_charges(http, "plan-pro", charges)
    assert response.status_code == 422, response.text
    return dict(response.json()["error"])


@pytest.mark.usefixtures("catalog")
class TestReadBack:
    def test_every_model_reads_back_exactly_through_the_client(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        # The client's typed dicts pass camelCase keys through as they are.
        pricing: Any = {
            "pricing_type": "PAID",
            "pricing_models": [
                flat(19.99, 199.9),
                per_seat(4.5, 45, minUnitQuantity=1, maxUnitQuantity=100),
                calls_tiered("GRADUATED"),
            ],
            "overage_billing_period": "MONTHLY",
        }
        client.v1.plans.update("plan-pro", charges=pricing)
        charges = list(client.v1.plans.list_charges("plan-pro"))
        assert [(c.billing_model, c.billing_period) for c in charges] == [
            ("FLAT_FEE", "MONTHLY"),
            ("FLAT_FEE", "ANNUALLY"),
            ("PER_UNIT", "MONTHLY"),
            ("PER_UNIT", "ANNUALLY"),
            ("USAGE_BASED", "MONTHLY"),
            ("USAGE_BASED", "ANNUALLY"),
        ]
        assert charges[0].price is not None
        assert (charges[0].price.amount, charges[0].price.currency) == (19.99, "usd")
        assert charges[1].price is not None
        assert charges[1].price.amount == 199.9
        assert charges[2].feature_id == "feature-seats"
        assert (charges[2].min_unit_quantity, charges[2].max_unit_quantity) == (1, 100)
        assert charges[4].tiers_mode == "GRADUATED"
        assert charges[4].tiers is not None
        assert [t.up_to for t in charges[4].tiers] == [1000, 10000, None]
        unit_prices = [t.unit_price.amount for t in charges[4].tiers if t.unit_price]
        assert unit_prices == [0, 0.002, 0.0005]
        assert all(c.billing_cadence == "RECURRING" for c in charges)
        assert len({c.id for c in charges}) == 6
        # The raw JSON carries the amounts as written, as numbers.
        raw = http.get("/api/v1/plans/plan-pro/charges").json()["data"]
        assert raw[0]["price"] == {"amount": 19.99, "currency": "usd"}
        assert raw[4]["tiers"][2]["unitPrice"] == {"amount": 0.0005, "currency": "usd"}

    def test_prices_survive_publish_and_the_next_draft(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        assert (
            set_charges(
                http, "plan-pro", {"pricingType": "PAID", "pricingModels": [flat(10, 100)]}
            ).status_code
            == 200
        )
        client.v1.plans.publish("plan-pro", migration_type="NEW_CUSTOMERS")
        client.v1.plans.create_draft("plan-pro")
        assert [c.price.amount for c in client.v1.plans.list_charges("plan-pro") if c.price] == [
            10,
            100,
        ]
        # A draft's charges are a full replace; the published version keeps its prices.
        set_charges(http, "plan-pro", {"pricingType": "PAID", "pricingModels": [flat(12, 120)]})
        assert [c.price.amount for c in client.v1.plans.list_charges("plan-pro") if c.price] == [
            12,
            120,
        ]
        client.v1.plans.remove_draft("plan-pro")
        assert [c.price.amount for c in client.v1.plans.list_charges("plan-pro") if c.price] == [
            10,
            100,
        ]

    def test_a_published_version_takes_prices_only_through_a_draft(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        client.v1.plans.publish("plan-pro", migration_type="NEW_CUSTOMERS")
        response = set_charges(
            http, "plan-pro", {"pricingType": "PAID", "pricingModels": [flat(1, 10)]}
        )
        assert response.status_code == 409, response.text

    def test_zero_and_three_decimal_currencies(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        both = [flat(1980, 19800, "jpy")]
        assert (
            set_charges(
                http, "plan-pro", {"pricingType": "PAID", "pricingModels": both}
            ).status_code
            == 200
        )
        assert [c.price.amount for c in client.v1.plans.list_charges("plan-pro") if c.price] == [
            1980,
            19800,
        ]
        kwd = [flat(5.125, 51.25, "KWD")]
        assert (
            set_charges(http, "plan-pro", {"pricingType": "PAID", "pricingModels": kwd}).status_code
            == 200
        )
        rows = http.get("/api/v1/plans/plan-pro/charges").json()["data"]
        assert [row["price"] for row in rows] == [
            {"amount": 5.125, "currency": "kwd"},
            {"amount": 51.25, "currency": "kwd"},
        ]

    def test_addons_carry_prices_and_overage_prices_list_apart(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        assert (
            set_charges(
                http, "addon-seats", {"pricingType": "PAID", "pricingModels": [flat(5, 50)]}
            ).status_code
            == 200
        )
        assert [c.billing_model for c in client.v1.addons.list_charges("addon-seats")] == [
            "FLAT_FEE",
            "FLAT_FEE",
        ]
        overage = {
            "featureId": "feature-calls",
            "pricePeriods": [
                {"billingPeriod": "MONTHLY", "price": {"amount": 0.01}},
                {"billingPeriod": "ANNUALLY", "price": {"amount": 0.01}},
            ],
        }
        response = set_charges(
            http,
            "plan-pro",
            {
                "pricingType": "PAID",
                "pricingModels": [flat(10, 100)],
                "overagePricingModels": [overage],
            },
        )
        assert response.status_code == 200, response.text
        extra = list(client.v1.plans.list_overage_charges("plan-pro"))
        assert [(c.billing_model, c.feature_id) for c in extra] == [
            ("USAGE_BASED", "feature-calls"),
            ("USAGE_BASED", "feature-calls"),
        ]
        assert extra[0].price is not None
        assert extra[0].price.amount == 0.01
        assert len(list(client.v1.plans.list_charges("plan-pro"))) == 2


@pytest.mark.usefixtures("catalog")
class TestRules:
    def test_a_flat_fee_finer_than_the_currency_is_refused_by_field(
        self, http: httpx.Client
    ) -> None:
        error = refused(http, {"pricingType": "PAID", "pricingModels": [flat(10.5, 100, "jpy")]})
        assert error["field"] == "charges.pricingModels.0.pricePeriods.0.price.amount"
        assert "0 decimal places" in error["message"]
        error = refused(http, {"pricingType": "PAID", "pricingModels": [flat(10.001, 100)]})
        assert "2 decimal places" in error["message"]

    def test_unit_prices_may_be_finer_than_a_cent(self, http: httpx.Client) -> None:
        charges = {"pricingType": "PAID", "pricingModels": [per_seat(0.0001, 0.001)]}
        assert set_charges(http, "plan-pro", charges).status_code == 200
        too_fine = {"pricingType": "PAID", "pricingModels": [per_seat(0.0000000000001, 1)]}
        assert "12 decimal places" in refused(http, too_fine)["message"]

    def test_free_plans_have_no_prices(self, http: httpx.Client) -> None:
        error = refused(http, {"pricingType": "FREE", "pricingModels": [flat(1, 10)]})
        assert error["field"] == "charges.pricingType"
        assert (
            set_charges(http, "plan-pro", {"pricingType": "FREE"}).json()["data"]["pricingType"]
            == "FREE"
        )

    def test_every_model_prices_the_same_periods_and_currencies(self, http: httpx.Client) -> None:
        monthly_only = per_seat(4, 40)
        monthly_only["pricePeriods"] = monthly_only["pricePeriods"][:1]
        error = refused(http, {"pricingType": "PAID", "pricingModels": [flat(1, 10), monthly_only]})
        assert error["field"] == "charges.pricingModels.1.pricePeriods"
        assert "ANNUALLY" in error["message"]
        euros = {"pricingType": "PAID", "pricingModels": [flat(1, 10), flat(1, 10, "eur")]}
        assert "USD" in refused(http, euros)["message"] or "EUR" in refused(http, euros)["message"]

    @pytest.mark.parametrize(
        ("model", "field"),
        [
            ({**per_seat(1, 10), "featureId": "feature-sso"}, "charges.pricingModels.0.featureId"),
            (
                {**per_seat(1, 10), "featureId": "feature-nope"},
                "charges.pricingModels.0.featureId",
            ),
            ({**per_seat(1, 10), "featureId": None}, "charges.pricingModels.0.featureId"),
            (
                {**calls_tiered("VOLUME"), "featureId": "feature-sso"},
                "charges.pricingModels.0.featureId",
            ),
            (
                {**calls_tiered("VOLUME"), "tiersMode": None},
                "charges.pricingModels.0.pricePeriods.0.tiers",
            ),
            ({**flat(1, 10), "featureId": "feature-seats"}, "charges.pricingModels.0.featureId"),
            (
                {**flat(1, 10), "billingModel": "CREDIT_BASED"},
                "charges.pricingModels.0.billingModel",
            ),
            (
                {**calls_tiered("VOLUME"), "billingCadence": "ONE_OFF"},
                "charges.pricingModels.0.billingCadence",
            ),
            (
                per_seat(1, 10, minUnitQuantity=5, maxUnitQuantity=2),
                "charges.pricingModels.0.maxUnitQuantity",
            ),
        ],
    )
    def test_model_rules_name_the_field(
        self, http: httpx.Client, model: dict[str, Any], field: str
    ) -> None:
        assert refused(http, {"pricingType": "PAID", "pricingModels": [model]})["field"] == field

    def test_tiers_ascend_and_end_unbounded(self, http: httpx.Client) -> None:
        model = calls_tiered("VOLUME")
        for period in model["pricePeriods"]:
            period["tiers"] = [
                {"upTo": 100, "unitPrice": {"amount": 1}},
                {"upTo": 50, "unitPrice": {"amount": 1}},
            ]
        error = refused(http, {"pricingType": "PAID", "pricingModels": [model]})
        assert error["field"] == "charges.pricingModels.0.pricePeriods.0.tiers.1.upTo"

    def test_amounts_must_be_json_numbers_and_currencies_known(self, http: httpx.Client) -> None:
        text_amount = flat(1, 10)
        text_amount["pricePeriods"][0]["price"]["amount"] = "10"
        response = set_charges(
            http, "plan-pro", {"pricingType": "PAID", "pricingModels": [text_amount]}
        )
        assert response.status_code == 422
        response = set_charges(
            http, "plan-pro", {"pricingType": "PAID", "pricingModels": [flat(1, 10, "xyz")]}
        )
        assert response.status_code == 422
        assert "xyz" in response.text

    def test_a_refused_write_keeps_the_stored_prices(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        set_charges(http, "plan-pro", {"pricingType": "PAID", "pricingModels": [flat(10, 100)]})
        refused(http, {"pricingType": "PAID", "pricingModels": [flat(10.001, 100)]})
        assert [c.price.amount for c in client.v1.plans.list_charges("plan-pro") if c.price] == [
            10,
            100,
        ]


@pytest.mark.usefixtures("catalog")
def test_the_readmes_example_in_the_clients_own_spelling(client: stigg.Stigg) -> None:
    client.v1.plans.update(
        "plan-pro",
        charges={
            "pricing_type": "PAID",
            "pricing_models": [
                {
                    "billing_model": "FLAT_FEE",
                    "price_periods": [
                        {"billing_period": "MONTHLY", "price": {"amount": 49, "currency": "usd"}},
                        {"billing_period": "ANNUALLY", "price": {"amount": 490, "currency": "usd"}},
                    ],
                },
                {
                    "billing_model": "PER_UNIT",
                    "feature_id": "feature-seats",
                    "min_unit_quantity": 1,
                    "price_periods": [
                        {"billing_period": "MONTHLY", "price": {"amount": 8}},
                        {"billing_period": "ANNUALLY", "price": {"amount": 80}},
                    ],
                },
            ],
            "overage_pricing_models": [
                {
                    "feature_id": "feature-calls",
                    "price_periods": [
                        {"billing_period": "MONTHLY", "price": {"amount": 0.1}},
                        {"billing_period": "ANNUALLY", "price": {"amount": 0.1}},
                    ],
                }
            ],
        },
    )
    client.v1.plans.publish("plan-pro", migration_type="NEW_CUSTOMERS")
    charges = client.v1.plans.list_charges("plan-pro")
    assert [(c.billing_model, c.price.amount if c.price else None) for c in charges] == [
        ("FLAT_FEE", 49),
        ("FLAT_FEE", 490),
        ("PER_UNIT", 8),
        ("PER_UNIT", 80),
    ]
    assert len(list(client.v1.plans.list_overage_charges("plan-pro"))) == 2
