"""Fields that would change money if ignored are refused by name (422, not_implemented),
and nothing is changed by the refused request."""

from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support import Tenant
from tests.support.subscriptions import customer, error, get, subscribe
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.tokens import customer_token

COUPON = {"promotionCode": "HALF"}
BUDGET = {"limit": 100, "hasSoftLimit": False}
ENTITLEMENTS = [{"type": "FEATURE", "id": "feature-seats", "usageLimit": 99}]
PRICES = [{"featureId": "feature-seats", "price": {"amount": 1, "currency": "usd"}}]
MINIMUM = {"minimum": {"amount": 10, "currency": "usd"}}

PROVISION = [
    ("appliedCoupon.promotionCode", COUPON),
    ("budget", BUDGET),
    ("entitlements", ENTITLEMENTS),
    ("priceOverrides", PRICES),
    ("minimumSpend", MINIMUM),
    ("payingCustomerId", "globex"),
    ("awaitPaymentConfirmation", True),
    ("checkoutOptions", {"successUrl": "https://x.test/ok", "cancelUrl": "https://x.test/no"}),
]
UPDATE = [
    ("appliedCoupon.promotionCode", COUPON),
    ("budget", BUDGET),
    ("charges.0.type", [{"id": "feature-seats", "type": "CREDIT", "quantity": 1}]),
    ("entitlements", ENTITLEMENTS),
    ("priceOverrides", PRICES),
    ("minimumSpend", MINIMUM),
    ("awaitPaymentConfirmation", True),
    ("promotionCode", "HALF"),
]
PREVIEW = [
    ("appliedCoupon.promotionCode", COUPON),
    ("payingCustomerId", "globex"),
    ("billableFeatures", [{"featureId": "feature-seats", "quantity": 2}]),
]


def _refused(response: httpx.Response, field: str) -> None:
    problem = error(response, 422)
    assert (problem["code"], problem["field"]) == ("not_implemented", field)
    assert field in problem["message"]


class TestProvision:
    @pytest.mark.parametrize(("field", "value"), PROVISION)
    def test_refused_by_name(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, field: str, value: Any
    ) -> None:
        customer(demo_client, "acme")
        customer(demo_client, "globex")
        body = {"customerId": "acme", "planId": "plan-pro", field.split(".")[0]: value}
        _refused(demo_http.post("/api/v1/subscriptions", json=body), field)
        assert demo_client.v1.subscriptions.list(customer_id="acme").data == []

    def test_not_awaiting_payment_is_fine(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free", await_payment_confirmation=False
        ).data
        assert provisioned.status == "SUCCESS"

    def test_the_stigg_client_raises_its_422(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        with pytest.raises(stigg.UnprocessableEntityError) as raised:
            demo_client.v1.subscriptions.provision(
                customer_id="acme", plan_id="plan-pro", unit_quantity=2
            )
        assert raised.value.status_code == 422


class TestUpdate:
    @pytest.mark.parametrize(("field", "value"), UPDATE)
    def test_refused_by_name(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, field: str, value: Any
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro", metadata={"a": "1"})
        body = {"metadata": {"b": "2"}, field.split(".")[0]: value}
        _refused(demo_http.patch(f"/api/v1/subscriptions/{subscription.id}", json=body), field)
        assert get(demo_client, subscription.id).metadata == {"a": "1"}


class TestPreview:
    @pytest.mark.parametrize(("field", "value"), PREVIEW)
    def test_refused_by_name(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, field: str, value: Any
    ) -> None:
        customer(demo_client, "acme")
        customer(demo_client, "globex")
        body = {"customerId": "acme", "planId": "plan-pro", field.split(".")[0]: value}
        _refused(demo_http.post("/api/v1/subscriptions/preview", json=body), field)


class TestKeys:
    def test_a_client_key_cannot_change_subscriptions(
        self, engine: Engine, demo_client: stigg.Stigg, demo_tenant: Tenant
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free")
        with demo_tenant.http(key=demo_tenant.client_key) as raw:
            path = f"/api/v1/subscriptions/{subscription.id}"
            for response in (
                raw.post(
                    "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-pro"}
                ),
                raw.patch(path, json={"metadata": {}}),
                raw.post(f"{path}/cancel", json={}),
                raw.post(f"{path}/migrate", json={}),
                raw.delete(f"{path}/future-update/schedule"),
            ):
                assert error(response, 403)["code"] == "permission_denied"
            assert raw.get(path).status_code == 403  # reads need the customer's token
            with unit_of_work(make_session_factory(engine)) as session:
                secret = environments.get_environment(session, name=demo_tenant.name)
                raw.headers["X-CUSTOMER-TOKEN"] = customer_token("acme", secret.signing_secret)
            assert raw.get(path).status_code == 200

    def test_no_key_is_unauthenticated(self, demo_tenant: Tenant) -> None:
        with httpx.Client(base_url=demo_tenant.base_url) as raw:
            assert error(raw.get("/api/v1/subscriptions"), 401)["code"] == "unauthenticated"
