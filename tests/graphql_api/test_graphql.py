"""`POST /graphql` with the documents Stigg's SDKs send, against a live Tollgate on SQLite and
PostgreSQL: keys and customer tokens as on the REST API, errors with the platform's codes,
and answers that agree with Tollgate's REST API."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.graphql_api.documents import documents
from tests.graphql_api.test_edge import secret_of
from tests.support.tenants import Tenant
from tollgate.environments.tokens import customer_token


class Sdk:
    """Sends a package's documents by operation name, as Apollo does."""

    def __init__(self, http: httpx.Client, package: str = "node-server-sdk") -> None:
        self.http = http
        self.documents = documents(package)

    def body(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"operationName": name, "query": self.documents[name], "variables": variables or {}}

    def send(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.http.post("/graphql", json=self.body(name, variables))
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def data(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.send(name, variables)
        assert "errors" not in answer, answer["errors"]
        data: dict[str, Any] = answer["data"]
        return data

    def error(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.send(name, variables)
        assert answer.get("errors"), answer
        first: dict[str, Any] = answer["errors"][0]
        return first


@pytest.fixture
def sdk(demo_tenant: Tenant) -> Iterator[Sdk]:
    with demo_tenant.http() as http:
        yield Sdk(http)


def provision(sdk: Sdk, customer: str = "acme", plan: str | None = "plan-pro") -> dict[str, Any]:
    params = {"subscriptionParams": {"planId": plan}} if plan else {}
    found: dict[str, Any] = sdk.data(
        "ProvisionCustomer", {"input": {"customerId": customer, "name": "Acme", **params}}
    )["provisionCustomer"]
    return found


def rest_check(http: httpx.Client, customer: str, feature: str) -> dict[str, Any]:
    answer = http.get(f"/api/v1/customers/{customer}/entitlements/check?featureId={feature}")
    found: dict[str, Any] = answer.json()["data"]
    return found


class TestKeysAndTokens:
    def test_a_bad_key_is_unauthenticated(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http(key="tg_server_nope") as http:
            error = Sdk(http).error("GetSdkConfiguration")
        assert error["extensions"]["code"] == "Unauthenticated"

    def test_a_client_key_writes_nothing(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http(key=demo_tenant.client_key) as http:
            error = Sdk(http).error("ProvisionCustomer", {"input": {"customerId": "x"}})
        assert error["extensions"]["code"] == "IdentityForbidden"
        assert "server API key" in error["message"]

    def test_a_customer_token_reads_its_customer_only(
        self, engine: Engine, demo_tenant: Tenant, sdk: Sdk
    ) -> None:
        provision(sdk, "acme")
        provision(sdk, "globex")
        token = customer_token("acme", secret_of(engine, demo_tenant))
        with demo_tenant.http(key=demo_tenant.client_key) as http:
            browser = Sdk(http)
            without = browser.error("GetEntitlements", {"query": {"customerId": "acme"}})
            assert without["extensions"]["code"] == "IdentityForbidden"
            http.headers["X-CUSTOMER-KEY"] = token
            listed = browser.data("GetEntitlements", {"query": {"customerId": "acme"}})
            assert {e["feature"]["refId"] for e in listed["entitlements"]} >= {"feature-sso"}
            for name, variables in (
                ("GetEntitlements", {"query": {"customerId": "globex"}}),
                ("GetCustomerPortalByRefId", {"input": {"customerId": "globex"}}),
                ("GetPaywall", {"input": {"customerId": "globex"}}),
                ("GetCustomerById", {"input": {"customerId": "globex"}}),
            ):
                error = browser.error(name, variables)
                assert error["extensions"]["code"] == "IdentityForbidden", name
                assert "'acme', not 'globex'" in error["message"]

    def test_a_foreign_origin_is_refused(self, demo_tenant: Tenant) -> None:
        with demo_tenant.http() as http:
            http.headers["Origin"] = "https://evil.example"
            error = Sdk(http).error("GetSdkConfiguration")
        assert error["extensions"]["code"] == "IdentityForbidden"

    def test_a_body_that_is_not_json(self, sdk: Sdk) -> None:
        answer = sdk.http.post("/graphql", content=b"{nope")
        assert answer.status_code == 200
        assert answer.json()["errors"][0]["extensions"]["code"] == "BadUserInput"


class TestCustomers:
    def test_provisioning_subscribes_and_answers_the_entitlements(
        self, sdk: Sdk, demo_client: stigg.Stigg
    ) -> None:
        provisioned = provision(sdk)
        assert provisioned["subscriptionDecisionStrategy"] == "REQUESTED_PLAN"
        assert provisioned["customer"]["id"] == "acme"
        assert provisioned["subscription"]["plan"]["id"] == "plan-pro"
        held = {e["feature"]["refId"] for e in provisioned["entitlements"]}
        assert "feature-sso" in held
        rest = demo_client.v1.customers.retrieve("acme").data
        assert rest.name == "Acme"

    def test_provisioning_again_updates_and_keeps_the_subscription(self, sdk: Sdk) -> None:
        provision(sdk)
        again = sdk.data(
            "ProvisionCustomer",
            {
                "input": {
                    "customerId": "acme",
                    "name": "Acme Inc",
                    "subscriptionParams": {"planId": "plan-free"},
                }
            },
        )["provisionCustomer"]
        assert again["subscriptionDecisionStrategy"] == "SKIPPED_SUBSCRIPTION_CREATION"
        assert again["customer"]["name"] == "Acme Inc"
        live = sdk.data("GetActiveSubscriptionsList", {"input": {"customerId": "acme"}})
        assert [s["plan"]["planId"] for s in live["getActiveSubscriptions"]] == ["plan-pro"]

    def test_provisions_at_once_make_one_customer_with_one_subscription(
        self, demo_tenant: Tenant
    ) -> None:
        """The first logins into a new organization, each provisioning it."""
        variables = {"input": {"customerId": "org", "subscriptionParams": {"planId": "plan-pro"}}}

        def provision_once(_: int) -> dict[str, Any]:
            with demo_tenant.http() as http:
                provisioned: dict[str, Any] = Sdk(http).data("ProvisionCustomer", variables)[
                    "provisionCustomer"
                ]
            return provisioned

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(provision_once, range(6)))
        strategies = [a["subscriptionDecisionStrategy"] for a in answers]
        assert strategies.count("REQUESTED_PLAN") == 1
        with demo_tenant.http() as http:
            live = Sdk(http).data("GetActiveSubscriptionsList", {"input": {"customerId": "org"}})
        assert len(live["getActiveSubscriptions"]) == 1

    def test_errors_name_what_was_not_found(self, sdk: Sdk) -> None:
        unknown = sdk.error("GetCustomerById", {"input": {"customerId": "nobody"}})
        assert unknown["extensions"]["code"] == "CustomerNotFound"
        no_plan = sdk.error(
            "ProvisionCustomer",
            {"input": {"customerId": "acme", "subscriptionParams": {"planId": "plan-nope"}}},
        )
        # As the REST API refuses it (422): the plan is a value of the request.
        assert no_plan["extensions"]["code"] == "BadUserInput"
        assert no_plan["message"] == "plan 'plan-nope' does not exist"
        # Nothing of the refused provision was kept.
        assert sdk.error("GetCustomerById", {"input": {"customerId": "acme"}})

    def test_bad_input_is_bad_user_input(self, sdk: Sdk) -> None:
        error = sdk.error(
            "ProvisionCustomer", {"input": {"customerId": "acme", "email": "not-an-email"}}
        )
        assert error["extensions"]["code"] == "BadUserInput"
        assert "email" in error["message"]

    def test_archive_update_and_import(self, sdk: Sdk, demo_client: stigg.Stigg) -> None:
        provision(sdk)
        updated = sdk.data(
            "UpdateCustomer", {"input": {"customerId": "acme", "email": "a@acme.io"}}
        )
        assert updated["updateCustomer"]["email"] == "a@acme.io"
        sdk.data("ArchiveCustomer", {"input": {"customerId": "acme"}})
        assert demo_client.v1.customers.retrieve("acme").data.archived_at is not None
        sdk.data("UnarchiveCustomer", {"input": {"customerId": "acme"}})
        assert demo_client.v1.customers.retrieve("acme").data.archived_at is None
        sdk.data(
            "ImportCustomerBulk",
            {"input": {"customers": [{"customerId": "imp-1", "name": "One", "email": None}]}},
        )
        assert demo_client.v1.customers.retrieve("imp-1").data.name == "One"

    def test_promotions(self, sdk: Sdk) -> None:
        provision(sdk, plan="plan-free")
        granted = sdk.data(
            "GrantPromotionalEntitlements",
            {
                "input": {
                    "customerId": "acme",
                    "promotionalEntitlements": [
                        {"featureId": "feature-sso", "period": "ONE_MONTH"}
                    ],
                }
            },
        )
        assert granted["grantPromotionalEntitlements"]
        assert rest_check(sdk.http, "acme", "feature-sso")["isGranted"] is True
        sdk.data(
            "RevokePromotionalEntitlement",
            {"input": {"customerId": "acme", "featureId": "feature-sso"}},
        )
        assert rest_check(sdk.http, "acme", "feature-sso")["isGranted"] is False


class TestUsage:
    def test_reported_usage_is_counted_once_per_key(self, sdk: Sdk) -> None:
        provision(sdk)
        report = {"customerId": "acme", "featureId": "feature-seats", "value": 4}
        measured = sdk.data("ReportUsage", {"input": report})["reportUsage"]
        assert measured["currentUsage"] == 4
        assert rest_check(sdk.http, "acme", "feature-seats")["currentUsage"] == 4
        bulk = sdk.data("ReportUsageBulk", {"input": {"usages": [report, report]}})
        assert [m["currentUsage"] for m in bulk["reportUsageBulk"]] == [8, 12]

    def test_events_are_counted_by_their_meters(self, sdk: Sdk) -> None:
        provision(sdk)
        event = {"customerId": "acme", "eventName": "api_call", "idempotencyKey": "e-1"}
        sdk.data(
            "ReportEvent", {"input": {"usageEvents": [event, {**event, "idempotencyKey": "e-2"}]}}
        )
        sdk.data("ReportEvent", {"input": {"usageEvents": [event]}})  # a retry counts nothing
        assert rest_check(sdk.http, "acme", "feature-api-calls")["currentUsage"] == 2

    def test_check_reports_are_accepted_in_batches(self, sdk: Sdk) -> None:
        checked = {
            "entitlementCheckRequested": {
                "customerId": "acme",
                "featureId": "feature-sso",
                "entitlementCheckResult": {"hasAccess": True, "hasUnlimitedUsage": False},
            }
        }
        batch = [sdk.body("ReportEntitlementCheckRequested", checked)] * 3
        answers = sdk.http.post("/graphql", json=batch).json()
        assert [a["data"] for a in answers] == [{"reportEntitlementCheckRequested": "SUCCESS"}] * 3


class TestSubscriptions:
    def test_provision_update_cancel(self, sdk: Sdk) -> None:
        provision(sdk, plan=None)
        result = sdk.data(
            "ProvisionSubscription", {"input": {"customerId": "acme", "planId": "plan-free"}}
        )["provisionSubscription"]
        assert result["status"] == "SUCCESS"
        subscription_id = result["subscription"]["id"]
        assert rest_check(sdk.http, "acme", "feature-seats")["usageLimit"] == 3
        found = sdk.data("GetSubscription", {"input": {"subscriptionId": subscription_id}})
        assert found["getSubscription"]["plan"]["refId"] == "plan-free"
        updated = sdk.data(
            "UpdateSubscription",
            {"input": {"subscriptionId": subscription_id, "additionalMetaData": {"a": "b"}}},
        )
        assert updated["updateSubscription"]["additionalMetaData"] == {"a": "b"}
        sdk.data(
            "CancelSubscription",
            {
                "input": {
                    "subscriptionRefId": subscription_id,
                    "subscriptionCancellationTime": "IMMEDIATE",
                }
            },
        )
        assert rest_check(sdk.http, "acme", "feature-seats")["isGranted"] is False

    def test_every_field_reaches_the_rest_rules_and_none_is_dropped(self, sdk: Sdk) -> None:
        """A coupon, a trial skipped, quantities and what Tollgate does not take yet go
        through REST's validation: a field ignored would charge the wrong amount."""
        provision(sdk, plan=None)
        assert sdk.http.post(
            "/api/v1/coupons", json={"id": "half", "name": "Half", "percentOff": 50}
        ).is_success
        preview = sdk.data(
            "PreviewSubscription",
            {
                "input": {
                    "customerId": "acme",
                    "planId": "plan-enterprise",
                    "appliedCoupon": {"couponId": "half"},
                }
            },
        )["previewSubscription"]
        assert preview["immediateInvoice"]["total"]["amount"] == 99.5
        applied = sdk.data(
            "ApplySubscription",
            {"input": {"customerId": "acme", "planId": "plan-pro", "skipTrial": True}},
        )["applySubscription"]["subscription"]
        assert (applied["plan"]["refId"], applied["status"]) == ("plan-pro", "ACTIVE")
        for field, value, said in (
            ("billableFeatures", [{"featureId": "feature-seats", "quantity": 5}], "feature-seats"),
            ("priceOverrides", [{"baseCharge": True}], "priceOverrides"),
            (
                "subscriptionEntitlements",
                [{"featureId": "feature-sso"}],
                "subscriptionEntitlements",
            ),
            ("billingInformation", {"couponId": "half"}, "billingInformation.couponId"),
            ("addons", [{"addonId": "addon-extra-seats", "quantity": 0}], "quantity"),
        ):
            error = sdk.error(
                "ApplySubscription",
                {"input": {"customerId": "acme", "planId": "plan-enterprise", field: value}},
            )
            assert said in error["message"], (field, error)
        subscription_id = applied["id"]
        error = sdk.error(
            "UpdateSubscription",
            {"input": {"subscriptionId": subscription_id, "unitQuantity": 3}},
        )
        assert "unitQuantity" in error["message"], error

    def test_unknown_subscription(self, sdk: Sdk) -> None:
        error = sdk.error("CancelSubscription", {"input": {"subscriptionRefId": "nope"}})
        assert error["extensions"]["code"] == "SubscriptionNotFound"


class TestPages:
    def test_the_paywall_lists_plans_lowest_first_with_the_current_one(self, sdk: Sdk) -> None:
        provision(sdk, plan="plan-pro")
        paywall = sdk.data("GetPaywall", {"input": {"customerId": "acme"}})["paywall"]
        assert [p["refId"] for p in paywall["plans"]] == [
            "plan-free",
            "plan-pro",
            "plan-enterprise",
        ]
        assert all(p["product"] is not None for p in paywall["plans"])
        # Acme is in Pro's trial: the product's default trial is not given again.
        assert [
            (t["productRefId"], t["planRefId"]) for t in paywall["customer"]["trialedPlans"]
        ] == [("product-saas", "plan-pro")]
        assert [
            (e["productRefId"], e["eligible"]) for e in paywall["customer"]["eligibleForTrial"]
        ] == [("product-saas", False)]
        pro = paywall["plans"][1]
        assert pro["basePlan"]["refId"] == "plan-free"
        assert pro["defaultTrialConfig"]["duration"] == 14
        seats = next(e for e in pro["entitlements"] if e["feature"]["refId"] == "feature-seats")
        assert seats["usageLimit"] == 20
        prices = sorted(
            (p["billingPeriod"], p["billingModel"], p["price"]["amount"], p["price"]["currency"])
            for p in pro["prices"]
        )
        assert prices == [("ANNUALLY", "FLAT_FEE", 490, "USD"), ("MONTHLY", "FLAT_FEE", 49, "USD")]
        assert paywall["plans"][0]["prices"] == []
        assert paywall["customer"]["refId"] == "acme"
        (active,) = paywall["activeSubscriptions"]
        assert active["plan"]["refId"] == "plan-pro"

    def test_the_anonymous_paywall_file(self, sdk: Sdk) -> None:
        answer = sdk.http.get("/v1/paywall.json", params={"fetchAllCountriesPrices": "undefined"})
        paywall = answer.json()["data"]["paywall"]
        assert [p["refId"] for p in paywall["plans"]] == [
            "plan-free",
            "plan-pro",
            "plan-enterprise",
        ]
        assert paywall["customer"] is None
        by_product = sdk.http.get("/v1/p/product-saas/paywall.json").json()["data"]["paywall"]
        assert len(by_product["plans"]) == 3
        assert sdk.http.get("/v1/p/nothing/paywall.json").json()["data"]["paywall"]["plans"] == []

    def test_the_subscriptions_file_is_the_slim_list(self, sdk: Sdk) -> None:
        provision(sdk, plan="plan-pro")
        listed = sdk.http.get("/v1/c/acme/subscriptions.json").json()["data"]
        (slim,) = listed["getActiveSubscriptions"]
        assert slim["plan"]["planId"] == "plan-pro"
        assert slim["customer"] == {"__typename": "Customer", "customerId": "acme"}
        graphql = sdk.data("GetActiveSubscriptionsList", {"input": {"customerId": "acme"}})
        # The file is what the query answers (the documents ask no __typename until Apollo
        # adds it, which the file carries anyway).
        assert graphql["getActiveSubscriptions"][0]["plan"] == {
            "planId": "plan-pro",
            "displayName": "Pro",
        }
        assert slim["plan"] == {"__typename": "Plan", "planId": "plan-pro", "displayName": "Pro"}
        assert sdk.http.get("/v1/c/nobody/subscriptions.json").json()["data"] == {
            "getActiveSubscriptions": []
        }

    def test_the_customer_portal(self, sdk: Sdk) -> None:
        provision(sdk, plan="plan-pro")
        portal = sdk.data("GetCustomerPortalByRefId", {"input": {"customerId": "acme"}})
        found = portal["customerPortal"]
        (subscription,) = found["subscriptions"]
        assert subscription["planName"] == "Pro"
        assert subscription["status"] == "IN_TRIAL"
        assert subscription["trialRemainingDays"] == 14
        (price,) = subscription["prices"]  # the plan's price for the subscription's period
        assert price["billingPeriod"] == "MONTHLY"
        assert price["price"] == {"amount": 49, "currency": "USD"}
        # The trial converts: its first paid month is the next bill.
        assert subscription["totalPrice"]["total"] == {"amount": 49, "currency": "USD"}
        assert subscription["addons"] == []
        assert found["promotionalEntitlements"] == []
        assert {e["feature"]["refId"] for e in found["entitlements"]} >= {"feature-seats"}

    def test_the_portals_next_bill_is_what_a_scheduled_downgrade_makes_it(self, sdk: Sdk) -> None:
        def next_bill() -> Any:
            portal = sdk.data("GetCustomerPortalByRefId", {"input": {"customerId": "acme"}})
            (subscription,) = portal["customerPortal"]["subscriptions"]
            assert subscription["planName"] == "Enterprise"  # until the month ends
            return subscription["totalPrice"] and subscription["totalPrice"]["total"]

        provision(sdk, plan="plan-enterprise")
        assert next_bill() == {"amount": 199, "currency": "USD"}
        for plan, then in (
            ("plan-pro", {"amount": 49, "currency": "USD"}),
            ("plan-free", None),  # nothing to pay from then on
        ):
            sdk.data(
                "ApplySubscription",
                {"input": {"customerId": "acme", "planId": plan, "billingPeriod": "MONTHLY"}},
            )
            assert next_bill() == then, plan

    def test_checkout_preview_and_apply(self, sdk: Sdk) -> None:
        provision(sdk, plan="plan-free")
        state = sdk.data(
            "GetCheckoutState", {"input": {"customerId": "acme", "planId": "plan-pro"}}
        )["checkoutState"]
        assert state["plan"]["refId"] == "plan-pro"
        assert state["activeSubscription"]["plan"]["refId"] == "plan-free"
        preview = sdk.data(
            "PreviewSubscription", {"input": {"customerId": "acme", "planId": "plan-pro"}}
        )["previewSubscription"]
        assert preview["immediateInvoice"]["proration"] is not None
        assert preview["immediateInvoice"]["total"]["currency"] == "USD"
        assert preview["isPlanDowngrade"] is False
        applied = sdk.data(
            "ApplySubscription",
            {"input": {"customerId": "acme", "planId": "plan-pro", "billingPeriod": "MONTHLY"}},
        )["applySubscription"]
        assert applied["subscription"]["plan"]["refId"] == "plan-pro"
        assert rest_check(sdk.http, "acme", "feature-sso")["isGranted"] is True

    def test_estimates_are_zero_over_the_right_period(self, sdk: Sdk) -> None:
        subscription = provision(sdk, plan="plan-free")["subscription"]
        new = sdk.data(
            "EstimateSubscription", {"input": {"customerId": "acme", "planId": "plan-pro"}}
        )["estimateSubscription"]
        assert new["total"] == {"amount": 0, "currency": "USD"}
        assert new["billingPeriodRange"]["start"] is not None
        update = sdk.data(
            "EstimateSubscriptionUpdate", {"input": {"subscriptionId": subscription["id"]}}
        )["estimateSubscriptionUpdate"]
        assert update["billingPeriodRange"]["end"] == subscription["currentBillingPeriodEnd"]

    def test_products_coupons_and_history(self, sdk: Sdk) -> None:
        provision(sdk)
        products = sdk.data("GetProducts")["products"]["edges"]
        assert [edge["node"]["refId"] for edge in products] == ["product-saas"]
        assert sdk.data("GetCoupons")["coupons"]["edges"] == []
        for coupon in (
            {"id": "half", "name": "Half", "percentOff": 50, "durationInMonths": 3},
            {"id": "five", "name": "Five", "amountsOff": [{"amount": 5.5, "currency": "usd"}]},
        ):
            assert sdk.http.post("/api/v1/coupons", json=coupon).status_code == 201
        assert sdk.http.post("/api/v1/coupons/five/archive").status_code == 200
        [edge] = sdk.data("GetCoupons")["coupons"]["edges"]
        assert (edge["node"]["refId"], edge["node"]["percentOff"], edge["node"]["type"]) == (
            "half",
            50,
            "PERCENTAGE",
        )
        sdk.data(
            "ReportUsage",
            {"input": {"customerId": "acme", "featureId": "feature-seats", "value": 2}},
        )
        history = sdk.data(
            "GetUsageHistoryV2",
            {
                "input": {
                    "customerId": "acme",
                    "featureId": "feature-seats",
                    "startDate": "2020-01-01T00:00:00Z",
                }
            },
        )["usageHistoryV2"]
        (series,) = history["series"]
        assert series["points"][-1]["value"] == 2

    def test_what_tollgate_does_not_offer_yet_says_so(self, sdk: Sdk) -> None:
        error = sdk.error("GetCreditBalance", {"input": {"customerId": "acme", "currencyId": "c"}})
        assert "not supported by Tollgate yet" in error["message"]
