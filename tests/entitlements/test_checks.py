"""The entitlement read endpoints over HTTP: shapes, parameters, keys, explain."""

from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support import Tenant
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.entitlements.schemas import CheckEnvelope, EntitlementsEnvelope
from tollgate.environments import service as environments
from tollgate.environments.tokens import customer_token


def check(http: httpx.Client, feature: str, **params: Any) -> dict[str, Any]:
    response = http.get(
        "/api/v1/customers/acme/entitlements/check", params={"featureId": feature, **params}
    )
    assert response.status_code == 200, response.text
    CheckEnvelope.model_validate(response.json())
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.usefixtures("catalog")
class TestAnswers:
    def test_boolean_number_and_enum(self, http: httpx.Client) -> None:
        sso = check(http, "feature-sso")
        assert (sso["isGranted"], sso["accessDeniedReason"]) == (True, None)
        assert sso["feature"] == {
            "id": "feature-sso",
            "displayName": "feature-sso",
            "featureStatus": sso["feature"]["featureStatus"],
            "featureType": "BOOLEAN",
        }
        seats = check(http, "feature-seats")
        assert (seats["isGranted"], seats["usageLimit"], seats["currentUsage"]) == (True, 25, 0)
        assert check(http, "feature-seats", requestedUsage=25)["isGranted"] is True
        over = check(http, "feature-seats", requestedUsage=26)
        assert (over["isGranted"], over["accessDeniedReason"]) == (
            False,
            "RequestedUsageExceedingLimit",
        )
        assert check(http, "feature-region", requestedValues="eu,us")["isGranted"] is True
        mismatch = check(http, "feature-region", requestedValues="eu,apac")
        assert mismatch["accessDeniedReason"] == "RequestedValuesMismatch"

    def test_type_mismatch_and_unknown_feature(self, http: httpx.Client) -> None:
        assert check(http, "feature-sso", requestedUsage=1)["accessDeniedReason"] == (
            "FeatureTypeMismatch"
        )
        assert check(http, "feature-seats", requestedValues="eu")["accessDeniedReason"] == (
            "FeatureTypeMismatch"
        )
        assert check(http, "feature-nope")["accessDeniedReason"] == "FeatureNotFound"

    def test_customers_and_resources_that_do_not_exist(self, http: httpx.Client) -> None:
        unknown = http.get(
            "/api/v1/customers/nobody/entitlements/check", params={"featureId": "feature-sso"}
        ).json()["data"]
        assert (unknown["isGranted"], unknown["accessDeniedReason"]) == (
            False,
            "CustomerNotFound",
        )
        resource = check(http, "feature-sso", resourceId="workspace-nope")
        assert resource["accessDeniedReason"] == "CustomerResourceNotFound"

    def test_the_list_holds_every_granted_feature(self, http: httpx.Client) -> None:
        response = http.get("/api/v1/customers/acme/entitlements")
        assert response.status_code == 200, response.text
        EntitlementsEnvelope.model_validate(response.json())
        data = response.json()["data"]
        assert data["accessDeniedReason"] is None
        assert sorted(e["feature"]["id"] for e in data["entitlements"]) == [
            "feature-region",
            "feature-seats",
            "feature-sso",
        ]
        nobody = http.get("/api/v1/customers/nobody/entitlements").json()["data"]
        assert nobody == {"entitlements": [], "accessDeniedReason": "CustomerNotFound"}


@pytest.mark.usefixtures("catalog")
class TestExplain:
    def test_names_the_plan_its_parent_and_the_add_on(self, http: httpx.Client) -> None:
        seats = check(http, "feature-seats", explain="true")
        grants = [
            (g["source"], g["id"], g["quantity"], g["usageLimit"], g["effect"])
            for g in seats["explain"]["grants"]
        ]
        assert grants == [
            ("PLAN", "plan-base", 1, 5, "inherited"),
            ("ADDON", "addon-seats", 2, 10, "adds"),
        ]
        assert all(g["subscriptionId"] == "sub-acme" for g in seats["explain"]["grants"])
        assert "explain" not in check(http, "feature-seats")

    def test_the_more_generous_of_promotion_and_subscription_prevails(
        self, http: httpx.Client
    ) -> None:
        def grant(limit: int) -> None:
            body = {"featureId": "feature-seats", "period": "1 month", "usageLimit": limit}
            granted = http.post(
                "/api/v1/customers/acme/promotional-entitlements",
                json={"promotionalEntitlements": [body]},
            )
            assert granted.status_code == 200, granted.text

        grant(99)
        seats = check(http, "feature-seats", explain="true")
        assert seats["usageLimit"] == 99
        assert [(g["source"], g["effect"]) for g in seats["explain"]["grants"]] == [
            ("PLAN", "outweighed"),
            ("ADDON", "outweighed"),
            ("PROMOTION", "grants"),
        ]
        grant(7)  # replaces the grant of 99, and is less than the subscription's 25
        seats = check(http, "feature-seats", explain="true")
        assert seats["usageLimit"] == 25
        assert [(g["source"], g["effect"]) for g in seats["explain"]["grants"]] == [
            ("PLAN", "inherited"),
            ("ADDON", "adds"),
            ("PROMOTION", "outweighed"),
        ]


@pytest.mark.usefixtures("catalog")
class TestParameters:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({}, "featureId"),
            ({"featureId": "feature-seats", "requestedUsage": "many"}, "requestedUsage"),
            ({"featureId": "feature-seats", "requestedUsage": "-1"}, "requestedUsage"),
            ({"currencyId": "credits"}, "currencyId"),
            ({"featureId": "feature-seats", "reserveAmount": "5"}, "reserveAmount"),
        ],
    )
    def test_bad_parameters_are_refused_by_name(
        self, http: httpx.Client, params: dict[str, str], field: str
    ) -> None:
        response = http.get("/api/v1/customers/acme/entitlements/check", params=params)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == field


@pytest.mark.usefixtures("catalog")
class TestKeys:
    def test_a_client_key_checks_with_a_customer_token(
        self, engine: Engine, tenant: Tenant
    ) -> None:
        with unit_of_work(make_session_factory(engine)) as session:
            secret = environments.get_environment(session, name=tenant.name).signing_secret
        with tenant.http(key=tenant.client_key) as client_http:
            path = "/api/v1/customers/acme/entitlements/check?featureId=feature-sso"
            assert client_http.get(path).status_code == 403  # no token: no customer's data
            client_http.headers["X-CUSTOMER-TOKEN"] = customer_token("acme", secret)
            assert check(client_http, "feature-sso")["isGranted"] is True

    def test_no_key_a_bad_key_and_another_environment(self, tenant: Tenant) -> None:
        path = "/api/v1/customers/acme/entitlements/check?featureId=feature-sso"
        with httpx.Client(base_url=tenant.base_url) as anonymous:
            assert anonymous.get(path).status_code == 401
            assert anonymous.get(path, headers={"X-API-KEY": "nope"}).status_code == 401
        with tenant.http() as http:
            other = http.get(path, headers={"X-ENVIRONMENT-ID": "production"})
            assert other.status_code == 403
            assert http.get(path, headers={"X-ENVIRONMENT-ID": tenant.name}).status_code == 200

    def test_the_stigg_client_reads_the_answer(self, client: stigg.Stigg) -> None:
        data = client.v1.customers.check_entitlement("acme", feature_id="feature-seats").data
        assert data.is_granted is True
        assert data.type == "FEATURE"
        assert getattr(data, "usage_limit", None) == 25
        listed = client.v1.customers.retrieve_entitlements("acme").data
        assert len(listed.entitlements) == 3
