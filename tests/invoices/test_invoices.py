"""Invoices from the demo catalog's prices: issued at start, at each renewal (with usage in
arrears) and for changes; listed, settled and downloaded through the API."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest
import stigg
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine

from tests.support import Tenant
from tests.support.clocks import START, Clocked
from tests.support.subscriptions import customer, seats
from tests.support.tenants import signing_secret
from tollgate.environments.tokens import customer_token


@pytest.fixture
def demo_http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as raw:
        yield raw


def invoices(client: stigg.Stigg, customer_id: str = "acme") -> list[Any]:
    return list(client.v1.customers.list_invoices(customer_id))


def pro(client: stigg.Stigg, **fields: Any) -> str:
    provisioned = client.v1.subscriptions.provision(
        customer_id="acme",
        plan_id="plan-pro",
        trial_override_configuration={"is_trial": False},
        **fields,
    ).data
    assert provisioned.subscription is not None
    return provisioned.subscription.id


def report_users(client: stigg.Stigg, users: int) -> None:
    client.v2.usage.report(
        usages=[{"customer_id": "acme", "feature_id": "feature-active-users", "value": users}]
    )


class TestOpening:
    def test_a_paid_subscription_is_invoiced_at_once(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        subscription_id = pro(demo_client)
        [invoice] = invoices(demo_client)
        assert (invoice.state, invoice.total, invoice.subtotal, invoice.currency) == (
            "OPEN",
            49,
            49,
            "usd",
        )
        assert invoice.customer_external_id == "acme"
        assert invoice.issue_date == START
        [line] = invoice.line_items
        assert (line.description, line.quantity, line.unit_price, line.amount) == (
            "Pro",
            1,
            49,
            49,
        )
        raw = demo_http.get(f"/api/v1/invoices/{invoice.invoice_id}").json()["data"]
        assert raw["billingReason"] == "SUBSCRIPTION_CREATION"
        assert raw["subscriptionId"] == subscription_id
        assert raw["billingPeriodEnd"].startswith("2026-02-05")
        subscription = demo_client.v1.subscriptions.retrieve(subscription_id).data
        assert subscription.prices is not None
        assert [(p.amount, p.currency, p.base_charge) for p in subscription.prices] == [
            (49, "usd", True)
        ]

    def test_annual_prices_and_add_ons(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        pro(
            demo_client,
            billing_period="ANNUALLY",
            addons=[{"id": "addon-extra-seats", "quantity": 2}],
        )
        [invoice] = invoices(demo_client)
        assert [(li.description, li.quantity, li.amount) for li in invoice.line_items] == [
            ("Pro", 1, 490),
            ("10 extra seats", 2, 500),
        ]
        assert invoice.total == 990

    def test_free_plans_and_trials_owe_nothing_until_paid(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")  # trial
        assert invoices(demo_client) == []
        clocked.clock.set(START + timedelta(days=14, minutes=1))
        clocked.run_jobs()
        [invoice] = invoices(demo_client)
        assert (invoice.total, invoice.state) == (49, "OPEN")
        clocked.run_jobs()
        assert len(invoices(demo_client)) == 1

    def test_a_billing_period_the_plan_is_not_priced_for_is_refused(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        demo_http.patch("/api/v1/customers/acme", json={"billingCurrency": "eur"})
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-pro"}
        )
        assert response.status_code == 422, response.text
        assert "EUR" in response.json()["error"]["message"]
        assert invoices(demo_client) == []


class TestRenewal:
    def test_each_period_once_with_overage_in_arrears(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro(demo_client)
        report_users(demo_client, 1_020)  # Pro includes 1,000 a month
        clocked.clock.set(START + relativedelta(months=1) + timedelta(minutes=1))
        clocked.run_jobs()
        clocked.run_jobs()  # a second run finds nothing left to do
        _, renewal = invoices(demo_client)
        assert [(li.description, li.quantity, li.amount) for li in renewal.line_items] == [
            ("Pro", 1, 49),
            ("Pro: feature-active-users beyond 1,000", 20, 2),
        ]
        assert renewal.total == 51

    def test_half_a_year_of_months_is_six_invoices_back_to_back(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        # The manual clock stays behind the real one: the change log's pruning (a job run
        # here too) must not reach what the real-clock server of other tests wrote.
        customer(demo_client)
        pro(demo_client)
        for month in range(1, 6):
            clocked.clock.set(START + relativedelta(months=month) + timedelta(minutes=1))
            clocked.run_jobs()
        found = demo_http.get("/api/v1/customers/acme/invoices?limit=50").json()["data"]
        periods = [(i["billingPeriodStart"], i["billingPeriodEnd"]) for i in found]
        assert len(periods) == 6
        assert all(end == following[0] for (_, end), following in pairwise(periods))
        assert sum(Decimal(str(i["total"])) for i in found) == 6 * 49
        # Newest first, two at a time, forwards and back again:
        oldest_first = [i["invoiceId"] for i in found]
        newest = demo_client.v1.customers.list_invoices("acme", order_dir="DESC", limit=2)
        pages = [newest]
        while pages[-1].has_next_page():
            pages.append(pages[-1].get_next_page())
        assert [i.invoice_id for page in pages for i in page.data] == oldest_first[::-1]
        last = pages[-1].pagination
        assert last is not None
        back = demo_http.get(
            "/api/v1/customers/acme/invoices",
            params={"orderDir": "DESC", "limit": 2, "before": last.prev},
        ).json()["data"]
        assert [i["invoiceId"] for i in back] == oldest_first[::-1][2:4]

    def test_a_job_that_skipped_periods_catches_up(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro(demo_client)
        clocked.clock.set(START + relativedelta(months=3) + timedelta(minutes=1))
        clocked.run_jobs()
        assert [i.total for i in invoices(demo_client)] == [49, 49, 49, 49]


class TestChanges:
    def test_an_upgrade_is_invoiced_as_its_preview_said(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro(demo_client)
        clocked.clock.set(START + timedelta(days=10))
        body = {"customerId": "acme", "planId": "plan-enterprise"}
        preview = demo_http.post("/api/v1/subscriptions/preview", json=body).json()["data"]
        immediate = preview["immediateInvoice"]
        # 21 of January's 31 days were unused: 49 x 21/31 = 33.19 back; Enterprise starts
        # a fresh period at 199.
        assert [line["subTotal"] for line in immediate["lines"]] == [-33.19, 199]
        assert immediate["total"] == 165.81
        assert preview["recurringInvoice"]["total"] == 199
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-enterprise")
        _, upgrade = invoices(demo_client)
        assert upgrade.total == immediate["total"]
        assert [li.amount for li in upgrade.line_items] == [-33.19, 199]

    def test_more_add_ons_mid_period_are_prorated(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription_id = pro(demo_client)
        clocked.clock.set(START + timedelta(days=10))
        changed = demo_http.patch(
            f"/api/v1/subscriptions/{subscription_id}",
            json={"addons": [{"id": "addon-extra-seats", "quantity": 1}]},
        )
        assert changed.status_code == 200, changed.text
        _, change = invoices(demo_client)
        # The Pro lines cancel out; the add-on is charged for the 21 days left of 31.
        assert [li.amount for li in change.line_items] == [-33.19, 33.19, 16.94]
        assert change.total == 16.94


class TestSettling:
    def test_marked_paid_through_the_client(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription_id = pro(demo_client)
        answer = demo_client.v1.subscriptions.invoice.mark_as_paid(subscription_id)
        assert answer.data.id == subscription_id
        [invoice] = invoices(demo_client)
        assert (invoice.state, invoice.paid_date) == ("PAID", START)
        paid = list(demo_client.v1.customers.list_invoices("acme", state_in="PAID"))
        assert len(paid) == 1
        assert list(demo_client.v1.customers.list_invoices("acme", state_in="OPEN")) == []
        with pytest.raises(stigg.ConflictError):
            demo_client.v1.subscriptions.invoice.mark_as_paid(subscription_id)

    def test_the_pdf(self, demo_client: stigg.Stigg, demo_http: httpx.Client) -> None:
        customer(demo_client)
        pro(demo_client)
        [invoice] = invoices(demo_client)
        document = demo_http.get(f"/api/v1/invoices/{invoice.invoice_id}/pdf")
        assert document.status_code == 200
        assert document.headers["content-type"] == "application/pdf"
        assert document.content.startswith(b"%PDF-")
        assert len(document.content) > 1000

    def test_another_customers_token_sees_nothing(
        self, demo_client: stigg.Stigg, demo_tenant: Tenant, engine: Engine
    ) -> None:
        customer(demo_client)
        customer(demo_client, "globex")
        pro(demo_client)
        [invoice] = invoices(demo_client)
        token = customer_token("globex", signing_secret(engine, demo_tenant))
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            browser.headers["X-CUSTOMER-TOKEN"] = token
            assert browser.get("/api/v1/customers/acme/invoices").status_code == 403
            assert browser.get(f"/api/v1/invoices/{invoice.invoice_id}/pdf").status_code == 403
            assert browser.get("/api/v1/customers/globex/invoices").json()["data"] == []


class TestClosing:
    def test_void_and_uncollectible_read_as_canceled_with_their_reason(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro(demo_client)
        clocked.clock.set(START + relativedelta(months=1) + timedelta(minutes=1))
        clocked.run_jobs()
        first, second = invoices(demo_client)
        voided = demo_http.post(f"/api/v1/invoices/{first.invoice_id}/void").json()["data"]
        assert (voided["state"], voided["stateReason"]) == ("CANCELED", "VOID")
        given_up = demo_http.post(f"/api/v1/invoices/{second.invoice_id}/mark-uncollectible")
        assert given_up.json()["data"]["stateReason"] == "UNCOLLECTIBLE"
        again = demo_http.post(f"/api/v1/invoices/{first.invoice_id}/void")
        assert again.status_code == 409
        assert [i.state for i in invoices(demo_client)] == ["CANCELED", "CANCELED"]
        # An invoice never changes once issued: its lines and totals are as they were.
        assert [i.total for i in invoices(demo_client)] == [first.total, second.total]
        canceled = demo_client.v1.customers.list_invoices("acme", state_in="CANCELED")
        assert len(list(canceled)) == 2


class TestEnding:
    def test_a_cancellation_bills_the_last_usage_once(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription_id = pro(demo_client)
        report_users(demo_client, 1_005)
        clocked.clock.set(START + timedelta(days=3))
        demo_client.v1.subscriptions.cancel(subscription_id, cancellation_time="IMMEDIATE")
        clocked.run_jobs()
        clocked.run_jobs()
        _, final = invoices(demo_client)
        assert [(li.description, li.quantity, li.amount) for li in final.line_items] == [
            ("Pro: feature-active-users beyond 1,000", 5, 0.5)
        ]

    def test_a_downgrade_to_free_bills_the_paid_periods_usage(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro(demo_client)
        report_users(demo_client, 1_010)
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        clocked.clock.set(START + relativedelta(months=1) + timedelta(minutes=1))
        clocked.run_jobs()
        clocked.run_jobs()
        found = invoices(demo_client)
        assert [i.total for i in found] == [49, 1]  # 10 users beyond Pro's 1,000


class TestCoupons:
    def test_a_coupon_comes_off_for_its_months_and_previews_say_so(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        demo_http.post(
            "/api/v1/coupons",
            json={"id": "half", "name": "Half", "percentOff": 50, "durationInMonths": 2},
        )
        body = {
            "customerId": "acme",
            "planId": "plan-pro",
            "appliedCoupon": {"couponId": "half"},
            "trialOverrideConfiguration": {"isTrial": False},
        }
        preview = demo_http.post("/api/v1/subscriptions/preview", json=body).json()["data"]
        assert (preview["immediateInvoice"]["discount"], preview["immediateInvoice"]["total"]) == (
            24.5,
            24.5,
        )
        created = demo_http.post("/api/v1/subscriptions", json=body)
        assert created.status_code == 200, created.text
        subscription = created.json()["data"]["subscription"]
        assert [(c["id"], c["status"], c["percentOff"]) for c in subscription["coupons"]] == [
            ("half", "ACTIVE", 50)
        ]
        for month in (1, 2):
            clocked.clock.set(START + relativedelta(months=month) + timedelta(minutes=1))
            clocked.run_jobs()
        found = invoices(demo_client)
        assert [(i.subtotal, i.discount, i.total) for i in found] == [
            (49, 24.5, 24.5),
            (49, 24.5, 24.5),
            (49, 0, 49),  # two months are over
        ]

    def test_fixed_coupons_need_the_subscriptions_currency_and_archived_ones_are_refused(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        demo_http.post(
            "/api/v1/coupons",
            json={"id": "yen", "name": "Yen", "amountsOff": [{"amount": 500, "currency": "jpy"}]},
        )
        demo_http.post("/api/v1/coupons", json={"id": "old", "name": "Old", "percentOff": 10})
        demo_http.post("/api/v1/coupons/old/archive")
        for coupon, message in (("yen", "no amount off in USD"), ("old", "archived")):
            refused = demo_http.post(
                "/api/v1/subscriptions",
                json={
                    "customerId": "acme",
                    "planId": "plan-pro",
                    "appliedCoupon": {"couponId": coupon},
                },
            )
            assert refused.status_code == 422, refused.text
            assert message in refused.json()["error"]["message"]
            assert refused.json()["error"]["field"] == "appliedCoupon.couponId"
        assert invoices(demo_client) == []


def price_enterprise_per_seat(http: httpx.Client) -> None:
    """Enterprise at $10 a seat a month (1 to 50 seats), instead of its flat fee."""
    seat = {
        "billingModel": "PER_UNIT",
        "featureId": "feature-seats",
        "minUnitQuantity": 1,
        "maxUnitQuantity": 50,
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": {"amount": 10}},
            {"billingPeriod": "ANNUALLY", "price": {"amount": 100}},
        ],
    }
    http.post("/api/v1/plans/plan-enterprise/draft")
    priced = http.patch(
        "/api/v1/plans/plan-enterprise",
        json={"charges": {"pricingType": "PAID", "pricingModels": [seat]}},
    )
    assert priced.status_code == 200, priced.text
    published = http.post(
        "/api/v1/plans/plan-enterprise/publish", json={"migrationType": "NEW_CUSTOMERS"}
    )
    assert published.status_code == 200, published.text


class TestUnitQuantities:
    def test_seats_bought_mid_period_are_prorated_and_fewer_wait_for_the_renewal(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        price_enterprise_per_seat(demo_http)
        customer(demo_client)
        created = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-enterprise", "unitQuantity": 3},
        )
        assert created.status_code == 200, created.text
        subscription = created.json()["data"]["subscription"]
        assert subscription["unitQuantities"] == {"feature-seats": 3}
        assert seats(demo_client) == 3
        too_many = demo_http.patch(
            f"/api/v1/subscriptions/{subscription['id']}",
            json={"charges": [{"id": "feature-seats", "quantity": 51, "type": "FEATURE"}]},
        )
        assert too_many.status_code == 422
        assert too_many.json()["error"]["field"] == "charges.0.quantity"
        clocked.clock.set(START + timedelta(days=10))
        more = demo_http.patch(
            f"/api/v1/subscriptions/{subscription['id']}",
            json={"charges": [{"id": "feature-seats", "quantity": 5, "type": "FEATURE"}]},
        )
        assert more.status_code == 200, more.text
        fewer = demo_http.patch(
            f"/api/v1/subscriptions/{subscription['id']}",
            json={"charges": [{"id": "feature-seats", "quantity": 2, "type": "FEATURE"}]},
        )
        assert fewer.json()["data"]["unitQuantities"] == {"feature-seats": 5}  # until renewal
        assert seats(demo_client) == 5  # bought seats are the limit (the plan: unlimited)
        clocked.clock.set(START + relativedelta(months=1) + timedelta(minutes=1))
        clocked.run_jobs()
        assert seats(demo_client) == 2
        opening, change, renewal = invoices(demo_client)
        assert opening.total == 30
        # 3 seats credited for the 21 of 31 days left, 5 charged for them.
        assert [li.amount for li in change.line_items] == [-20.32, 33.87]
        assert renewal.total == 20  # 2 seats from the new period


class TestCredit:
    def test_a_credit_larger_than_the_charge_is_kept_for_the_next_invoices(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        price_enterprise_per_seat(demo_http)
        customer(demo_client)
        created = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-enterprise", "unitQuantity": 10},
        )
        subscription_id = created.json()["data"]["subscription"]["id"]
        clocked.clock.set(START + timedelta(days=10))
        fewer = demo_http.patch(
            f"/api/v1/subscriptions/{subscription_id}",
            json={
                "charges": [{"id": "feature-seats", "quantity": 1, "type": "FEATURE"}],
                "scheduleStrategy": "IMMEDIATE",
            },
        )
        assert fewer.status_code == 200, fewer.text
        clocked.clock.set(START + relativedelta(months=1) + timedelta(minutes=1))
        clocked.run_jobs()
        raw = demo_http.get("/api/v1/customers/acme/invoices").json()["data"]
        opening, change, renewal = ((i["total"], i["creditApplied"], i["state"]) for i in raw)
        assert opening == (100, 0, "OPEN")
        # 10 seats credited for 21 of 31 days (67.74), 1 charged for them (6.77): 60.97 back.
        assert change == (-60.97, 0, "PAID")
        # The next invoice (1 seat, $10) takes $10 of it; $50.97 is left for later ones.
        assert renewal == (10, 10, "PAID")
        assert raw[2]["amountDue"] == 0
        clocked.clock.set(START + relativedelta(months=2) + timedelta(minutes=1))
        clocked.run_jobs()
        following = demo_http.get("/api/v1/customers/acme/invoices").json()["data"][3]
        assert (following["total"], following["creditApplied"]) == (10, 10)
