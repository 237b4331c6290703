from datetime import timedelta
from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine
from stigg.types.v1.customer_list_params import CreatedAt

from tests.support import Clocked, Tenant, make_tenant
from tests.support.customers import T0, check, error, seats, subscribe


def provision(http: httpx.Client, id: str = "acme", **fields: Any) -> dict[str, Any]:
    response = http.post("/api/v1/customers", json={"id": id, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def ids(page: Any) -> list[str]:
    return [customer.id for customer in page.data]


class TestProvision:
    def test_every_field_round_trips_through_the_stigg_client(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        created = client.v1.customers.provision(
            id="acme",
            name="Acme Inc.",
            email="billing@acme.test",
            billing_id="cus_123",
            billing_currency="eur",
            language="fr-FR",
            timezone="Europe/Paris",
            metadata={"tier": "gold", "region": "eu"},
            integrations=[
                {"id": "int-stripe", "synced_entity_id": "cus_123", "vendor_identifier": "STRIPE"},
                {"id": "int-hubspot", "synced_entity_id": None, "vendor_identifier": "HUBSPOT"},
            ],
            default_payment_method={
                "billing_id": "pm_1",
                "card_expiry_month": 12,
                "card_expiry_year": 2030,
                "card_last4_digits": "4242",
                "type": "CARD",
            },
            passthrough={
                "stripe": {
                    "customer_name": "Acme SAS",
                    "billing_address": {"city": "Paris", "country": "FR"},
                    "tax_ids": [{"type": "eu_vat", "value": "FR123"}],
                }
            },
        ).data
        assert created.id == "acme"
        assert (created.name, created.email) == ("Acme Inc.", "billing@acme.test")
        assert (created.billing_id, created.billing_currency) == ("cus_123", "eur")
        assert (created.language, created.timezone) == ("fr-FR", "Europe/Paris")
        assert created.metadata == {"tier": "gold", "region": "eu"}
        assert [
            (i.id, i.synced_entity_id, i.vendor_identifier) for i in created.integrations or []
        ] == [("int-stripe", "cus_123", "STRIPE"), ("int-hubspot", None, "HUBSPOT")]
        method = created.default_payment_method
        assert method is not None
        assert (method.billing_id, method.type, method.card_last4_digits) == (
            "pm_1",
            "CARD",
            "4242",
        )
        assert (method.card_expiry_month, method.card_expiry_year) == (12, 2030)
        assert created.passthrough is not None
        stripe = created.passthrough.stripe
        assert stripe is not None
        assert stripe.customer_name == "Acme SAS"
        assert stripe.billing_address is not None
        assert stripe.billing_address.city == "Paris"
        assert [(t.type, t.value) for t in stripe.tax_ids or []] == [("eu_vat", "FR123")]
        assert created.archived_at is None
        assert created.coupon_id is None

        retrieved = client.v1.customers.retrieve("acme").data
        assert retrieved.model_dump() == created.model_dump()
        listed = client.v1.customers.list().data
        assert [customer.model_dump() for customer in listed] == [created.model_dump()]
        raw = http.get("/api/v1/customers/acme").json()["data"]
        assert raw["passthrough"] == {
            "stripe": {
                "customerName": "Acme SAS",
                "billingAddress": {"city": "Paris", "country": "FR"},
                "taxIds": [{"type": "eu_vat", "value": "FR123"}],
            }
        }

    def test_defaults(self, client: stigg.Stigg) -> None:
        created = client.v1.customers.provision(id="acme").data
        assert created.name is None
        assert created.email is None
        assert created.billing_id is None
        assert created.billing_currency is None
        assert created.metadata == {}
        assert created.integrations == []
        assert created.default_payment_method is None
        assert created.passthrough is None
        assert created.archived_at is None

    @pytest.mark.parametrize("customer_id", ["auth0|5f7c8ec7c33c6c004bbafe82", "jane@acme.test"])
    def test_ids_may_hold_the_characters_stigg_allows(
        self, client: stigg.Stigg, customer_id: str
    ) -> None:
        # Stigg's customer ids match ^[a-zA-Z0-9][a-zA-Z0-9_|.@-]*$; Auth0 user ids
        # ("auth0|...") and emails are the ids its Auth0 integration provisions.
        created = client.v1.customers.provision(id=customer_id, name="Jane").data
        assert created.id == customer_id
        assert client.v1.customers.retrieve(customer_id).data.name == "Jane"

    @pytest.mark.parametrize("customer_id", ["-acme", "ac me", "a" * 256, ""])
    def test_malformed_ids_are_refused(self, http: httpx.Client, customer_id: str) -> None:
        problem = error(http.post("/api/v1/customers", json={"id": customer_id}), 422)
        assert problem["field"] == "id"
        assert http.get("/api/v1/customers").json()["data"] == []

    def test_duplicate_id_is_a_conflict_and_changes_nothing(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        client.v1.customers.provision(id="acme", name="First")
        with pytest.raises(stigg.ConflictError):
            client.v1.customers.provision(id="acme", name="Second")
        problem = error(http.post("/api/v1/customers", json={"id": "acme", "name": "X"}), 409)
        assert problem["code"] == "already_exists"
        assert problem["field"] == "id"
        assert "acme" in problem["message"]
        assert client.v1.customers.retrieve("acme").data.name == "First"
        assert ids(client.v1.customers.list()) == ["acme"]

    def test_the_same_id_in_another_environment_is_another_customer(
        self, client: stigg.Stigg, engine: Engine, base_url: str
    ) -> None:
        client.v1.customers.provision(id="acme", name="Mine")
        other = make_tenant(engine, base_url)
        with other.http() as theirs:
            assert theirs.get("/api/v1/customers/acme").status_code == 404
            assert theirs.get("/api/v1/customers").json()["data"] == []
            provision(theirs, "acme", name="Theirs")
        assert client.v1.customers.retrieve("acme").data.name == "Mine"

    @pytest.mark.parametrize("email", ["not-an-email", "two@@acme.test", "sp ace@acme.test"])
    def test_a_malformed_email_is_refused_by_name(self, http: httpx.Client, email: str) -> None:
        problem = error(http.post("/api/v1/customers", json={"id": "acme", "email": email}), 422)
        assert problem["code"] == "invalid_value"
        assert problem["field"] == "email"
        assert http.get("/api/v1/customers/acme").status_code == 404

    @pytest.mark.parametrize("currency", ["USD", "us", "dollars", "12a"])
    def test_a_malformed_currency_is_refused_by_name(
        self, http: httpx.Client, client: stigg.Stigg, currency: str
    ) -> None:
        body = {"id": "acme", "billingCurrency": currency}
        problem = error(http.post("/api/v1/customers", json=body), 422)
        assert problem["field"] == "billingCurrency"
        with pytest.raises(stigg.UnprocessableEntityError):
            client.v1.customers.provision(id="acme", billing_currency=currency)  # type: ignore[arg-type]
        assert http.get("/api/v1/customers/acme").status_code == 404

    def test_a_currency_stigg_does_not_know_is_refused(self, http: httpx.Client) -> None:
        # The client's billingCurrency is an enum of ISO 4217 codes; "xyz" is none of them.
        body = {"id": "acme", "billingCurrency": "xyz"}
        problem = error(http.post("/api/v1/customers", json=body), 422)
        assert problem["field"] == "billingCurrency"

    def test_one_link_per_integration_vendor(self, http: httpx.Client) -> None:
        link = {"id": "int-1", "syncedEntityId": "cus_1", "vendorIdentifier": "STRIPE"}
        body = {"id": "acme", "integrations": [link, {**link, "id": "int-2"}]}
        problem = error(http.post("/api/v1/customers", json=body), 422)
        assert problem["field"] == "integrations"
        assert http.get("/api/v1/customers/acme").status_code == 404

    def test_a_coupon_is_refused_as_not_supported(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        with pytest.raises(stigg.UnprocessableEntityError):
            client.v1.customers.provision(id="acme", coupon_id="coupon-half-off")
        body = {"id": "acme", "couponId": "coupon-half-off"}
        problem = error(http.post("/api/v1/customers", json=body), 422)
        assert problem["code"] == "not_implemented"
        assert problem["field"] == "couponId"
        assert http.get("/api/v1/customers/acme").status_code == 404
        # An empty coupon (the client's way of saying "none") is no coupon.
        assert client.v1.customers.provision(id="acme", coupon_id="").data.coupon_id is None

    def test_unknown_fields_are_refused_by_name(self, http: httpx.Client) -> None:
        problem = error(http.post("/api/v1/customers", json={"id": "acme", "colour": "red"}), 422)
        assert problem["field"] == "colour"


class TestRetrieve:
    def test_unknown_customer_is_not_found(self, client: stigg.Stigg, http: httpx.Client) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.customers.retrieve("nobody")
        problem = error(http.get("/api/v1/customers/nobody"), 404)
        assert problem["code"] == "not_found"
        assert "nobody" in problem["message"]

    def test_an_archived_customer_is_still_retrieved(self, client: stigg.Stigg) -> None:
        client.v1.customers.provision(id="acme", name="Acme")
        archived = client.v1.customers.archive("acme").data
        retrieved = client.v1.customers.retrieve("acme").data
        assert retrieved.archived_at == archived.archived_at
        assert retrieved.archived_at is not None
        assert retrieved.name == "Acme"


class TestList:
    def test_pages_forwards_and_backwards(self, client: stigg.Stigg) -> None:
        names = [f"customer-{index:02d}" for index in range(5)]
        for customer_id in names:
            client.v1.customers.provision(id=customer_id)

        first = client.v1.customers.list(limit=2)
        assert ids(first) == names[:2]
        assert [customer.id for customer in first] == names  # the client follows `next`
        assert first.pagination is not None
        assert first.pagination.next is not None
        second = client.v1.customers.list(limit=2, after=first.pagination.next)
        assert ids(second) == names[2:4]
        assert second.pagination is not None
        assert second.pagination.prev is not None
        last = client.v1.customers.list(limit=2, after=second.pagination.next or "")
        assert ids(last) == names[4:]
        assert last.pagination is not None
        assert last.pagination.next is None
        back = client.v1.customers.list(limit=2, before=second.pagination.prev)
        assert ids(back) == names[:2]
        assert back.pagination is not None
        assert back.pagination.prev is None

    def test_filters_by_exact_email_and_name(self, client: stigg.Stigg) -> None:
        client.v1.customers.provision(id="a", name="Acme", email="it@acme.test")
        client.v1.customers.provision(id="b", name="Acme", email="ops@acme.test")
        client.v1.customers.provision(id="c", name="Globex", email="it@globex.test")

        assert ids(client.v1.customers.list(email="it@acme.test")) == ["a"]
        assert ids(client.v1.customers.list(name="Acme")) == ["a", "b"]
        assert ids(client.v1.customers.list(name="Acme", email="ops@acme.test")) == ["b"]
        assert ids(client.v1.customers.list(name="acme")) == []
        assert ids(client.v1.customers.list(email="acme.test")) == []

    def test_filters_by_creation_time(self, client: stigg.Stigg) -> None:
        made = [client.v1.customers.provision(id=f"c{index}").data for index in range(3)]
        middle = made[1].created_at
        assert made[0].created_at < middle < made[2].created_at

        def between(bounds: CreatedAt) -> list[str]:
            return ids(client.v1.customers.list(created_at=bounds))

        assert between({"gte": middle}) == ["c1", "c2"]
        assert between({"gt": middle}) == ["c2"]
        assert between({"lt": middle}) == ["c0"]
        assert between({"lte": middle}) == ["c0", "c1"]
        assert between({"gt": made[0].created_at, "lt": made[2].created_at}) == ["c1"]
        assert between({"gt": made[2].created_at}) == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"createdAt[gt]": "yesterday"}, "createdAt[gt]"),
            ({"createdAt[lte]": "2036-01-01T00:00:00"}, "createdAt[lte]"),
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
        ],
    )
    def test_bad_parameters_are_refused_by_name(
        self, http: httpx.Client, params: dict[str, str], field: str
    ) -> None:
        problem = error(http.get("/api/v1/customers", params=params), 422)
        assert problem["field"] == field

    def test_a_cursor_this_api_did_not_issue_is_a_bad_request(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.BadRequestError):
            client.v1.customers.list(after="not-a-cursor")


class TestUpdate:
    def test_only_the_given_fields_change(self, client: stigg.Stigg) -> None:
        created = client.v1.customers.provision(
            id="acme",
            name="Acme",
            email="it@acme.test",
            billing_id="cus_1",
            billing_currency="usd",
            language="en",
            timezone="UTC",
            metadata={"a": "1"},
            integrations=[{"id": "int-1", "synced_entity_id": "x", "vendor_identifier": "STRIPE"}],
        ).data
        updated = client.v1.customers.update("acme", name="Acme Corp", metadata={"b": "2"}).data
        assert updated.name == "Acme Corp"
        assert updated.metadata == {"b": "2"}  # replaced, not merged
        unchanged = ("email", "billing_id", "billing_currency", "language", "timezone")
        for field in unchanged:
            assert getattr(updated, field) == getattr(created, field), field
        assert updated.integrations == created.integrations
        assert updated.created_at == created.created_at
        assert client.v1.customers.retrieve("acme").data.model_dump() == updated.model_dump()

    def test_a_null_clears_a_field_and_an_empty_object_clears_metadata(
        self, client: stigg.Stigg
    ) -> None:
        client.v1.customers.provision(id="acme", name="Acme", email="a@b.test", metadata={"a": "1"})
        updated = client.v1.customers.update("acme", email=None, metadata={}).data
        assert updated.email is None
        assert updated.metadata == {}
        assert updated.name == "Acme"

    def test_updated_at_moves_in_the_response_and_in_storage(self, client: stigg.Stigg) -> None:
        created = client.v1.customers.provision(id="acme", name="Acme").data
        updated = client.v1.customers.update("acme", name="Acme 2").data
        assert updated.updated_at > created.updated_at
        assert updated.created_at == created.created_at
        assert client.v1.customers.retrieve("acme").data.updated_at == updated.updated_at

    def test_invalid_values_are_refused_and_nothing_changes(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        client.v1.customers.provision(id="acme", name="Acme", email="it@acme.test")
        body = {"name": "Renamed", "email": "broken"}
        problem = error(http.patch("/api/v1/customers/acme", json=body), 422)
        assert problem["field"] == "email"
        problem = error(http.patch("/api/v1/customers/acme", json={"couponId": "c"}), 422)
        assert problem["field"] == "couponId"
        retrieved = client.v1.customers.retrieve("acme").data
        assert (retrieved.name, retrieved.email) == ("Acme", "it@acme.test")

    def test_unknown_customer_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.customers.update("nobody", name="X")


class TestClock:
    def test_timestamps_come_from_the_servers_clock(
        self, demo: stigg.Stigg, clocked: Clocked
    ) -> None:
        created = demo.v1.customers.provision(id="acme", name="Acme").data
        assert created.created_at == T0
        assert created.updated_at == T0
        clocked.clock.set(T0 + timedelta(hours=1))
        updated = demo.v1.customers.update("acme", name="Acme 2").data
        assert updated.created_at == T0
        assert updated.updated_at == T0 + timedelta(hours=1)


class TestArchive:
    def test_live_subscriptions_end_with_reason_customer_archived(
        self, demo: stigg.Stigg, clocked: Clocked
    ) -> None:
        demo.v1.customers.provision(id="acme")
        subscription = subscribe(demo, "acme", "plan-free")
        assert subscription.status == "ACTIVE"
        assert seats(demo) == 3

        clocked.clock.set(T0 + timedelta(hours=2))
        archived = demo.v1.customers.archive("acme").data
        assert archived.archived_at == T0 + timedelta(hours=2)
        ended = demo.v1.subscriptions.retrieve(subscription.id).data
        assert ended.status == "CANCELED"
        assert ended.cancel_reason == "CustomerArchived"
        assert ended.end_date == T0 + timedelta(hours=2)
        live = demo.v1.subscriptions.list(customer_id="acme", status=["ACTIVE", "IN_TRIAL"])
        assert list(live) == []

    def test_checks_then_say_the_customer_is_archived(self, demo: stigg.Stigg) -> None:
        demo.v1.customers.provision(id="acme")
        subscribe(demo, "acme", "plan-pro")
        assert check(demo, "acme", "feature-sso").is_granted is True
        demo.v1.customers.archive("acme")
        for feature in ("feature-sso", "feature-seats", "feature-nope"):
            denied = check(demo, "acme", feature)
            assert (denied.is_granted, denied.access_denied_reason) == (
                False,
                "CustomerIsArchived",
            ), feature
        listed = demo.v1.customers.retrieve_entitlements("acme").data
        assert listed.access_denied_reason == "CustomerIsArchived"

    def test_an_archived_customer_takes_no_new_subscription(
        self, demo: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        demo.v1.customers.provision(id="acme")
        demo.v1.customers.archive("acme")
        with pytest.raises(stigg.ConflictError):
            demo.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        body = {"customerId": "acme", "planId": "plan-free"}
        problem = error(demo_http.post("/api/v1/subscriptions", json=body), 409)
        assert problem["code"] == "customer_archived"
        assert "acme" in problem["message"]
        assert list(demo.v1.subscriptions.list(customer_id="acme")) == []

    def test_archiving_twice_keeps_the_first_moment(
        self, demo: stigg.Stigg, clocked: Clocked
    ) -> None:
        demo.v1.customers.provision(id="acme")
        first = demo.v1.customers.archive("acme").data
        stored = demo.v1.customers.retrieve("acme").data
        clocked.clock.set(T0 + timedelta(days=1))
        again = demo.v1.customers.archive("acme").data
        assert again.archived_at == first.archived_at == T0
        assert again.updated_at == stored.updated_at

    def test_the_response_matches_what_is_stored(self, client: stigg.Stigg) -> None:
        client.v1.customers.provision(id="acme")
        archived = client.v1.customers.archive("acme").data
        assert archived.archived_at is not None
        assert client.v1.customers.retrieve("acme").data.model_dump() == archived.model_dump()
        restored = client.v1.customers.unarchive("acme").data
        assert client.v1.customers.retrieve("acme").data.model_dump() == restored.model_dump()

    def test_unknown_customer_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.customers.archive("nobody")
        with pytest.raises(stigg.NotFoundError):
            client.v1.customers.unarchive("nobody")


class TestUnarchive:
    def test_restores_the_customer_but_not_its_subscriptions(
        self, demo: stigg.Stigg, clocked: Clocked
    ) -> None:
        demo.v1.customers.provision(id="acme", name="Acme")
        ended = subscribe(demo, "acme", "plan-free")
        demo.v1.customers.archive("acme")
        clocked.clock.set(T0 + timedelta(hours=1))

        restored = demo.v1.customers.unarchive("acme").data
        assert restored.archived_at is None
        assert restored.name == "Acme"
        assert restored.updated_at == T0 + timedelta(hours=1)
        assert demo.v1.customers.retrieve("acme").data.archived_at is None
        assert demo.v1.subscriptions.retrieve(ended.id).data.status == "CANCELED"
        assert seats(demo) == "NoActiveSubscription"

        again = subscribe(demo, "acme", "plan-free")
        assert again.status == "ACTIVE"
        assert seats(demo) == 3

    def test_unarchiving_a_live_customer_changes_nothing(self, client: stigg.Stigg) -> None:
        created = client.v1.customers.provision(id="acme").data
        restored = client.v1.customers.unarchive("acme").data
        assert restored.archived_at is None
        assert restored.updated_at == created.updated_at


class TestResources:
    def test_lists_the_resources_that_hold_subscriptions(
        self, demo: stigg.Stigg, clocked: Clocked
    ) -> None:
        demo.v1.customers.provision(id="acme")
        assert list(demo.v1.customers.list_resources("acme")) == []
        subscribe(demo, "acme", "plan-free", resource_id="site-1")
        clocked.clock.set(T0 + timedelta(minutes=5))
        subscribe(demo, "acme", "plan-pro", resource_id="site-2")
        subscribe(demo, "acme", "plan-free")  # customer-level: no resource

        resources = list(demo.v1.customers.list_resources("acme"))
        assert [(r.id, r.created_at) for r in resources] == [
            ("site-1", T0),
            ("site-2", T0 + timedelta(minutes=5)),
        ]
        first = demo.v1.customers.list_resources("acme", limit=1)
        assert [r.id for r in first.data] == ["site-1"]
        assert first.pagination is not None
        assert first.pagination.next is not None
        second = demo.v1.customers.list_resources("acme", limit=1, after=first.pagination.next)
        assert [r.id for r in second.data] == ["site-2"]

    def test_a_resource_is_listed_once_however_many_subscriptions_it_holds(
        self, demo: stigg.Stigg
    ) -> None:
        demo.v1.customers.provision(id="acme")
        subscribe(demo, "acme", "plan-free", resource_id="site-1")
        subscribe(demo, "acme", "plan-pro", resource_id="site-1")
        assert [r.id for r in demo.v1.customers.list_resources("acme")] == ["site-1"]

    def test_checks_know_the_resources(self, demo: stigg.Stigg) -> None:
        demo.v1.customers.provision(id="acme")
        subscribe(demo, "acme", "plan-pro", resource_id="site-1")
        assert check(demo, "acme", "feature-sso", resource_id="site-1").is_granted is True
        unknown = check(demo, "acme", "feature-sso", resource_id="site-9")
        assert unknown.access_denied_reason == "CustomerResourceNotFound"

    def test_unknown_customer_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.customers.list_resources("nobody")


class TestClientKey:
    def test_client_key_may_not_write_customers(self, tenant: Tenant, http: httpx.Client) -> None:
        provision(http, "acme", name="Acme")
        with tenant.http(key=tenant.client_key) as browser:
            writes = [
                browser.post("/api/v1/customers", json={"id": "other"}),
                browser.patch("/api/v1/customers/acme", json={"name": "Hacked"}),
                browser.post("/api/v1/customers/acme/archive"),
                browser.post("/api/v1/customers/acme/unarchive"),
                browser.post(
                    "/api/v1/customers/import",
                    json={"customers": [{"id": "other", "email": None, "name": None}]},
                ),
            ]
        for response in writes:
            problem = error(response, 403)
            assert problem["code"] == "permission_denied", response.request.url
        listed = http.get("/api/v1/customers").json()["data"]
        assert [(c["id"], c["name"], c["archivedAt"]) for c in listed] == [("acme", "Acme", None)]

    def test_the_stigg_client_sees_a_permission_error(self, tenant: Tenant) -> None:
        with (
            stigg.Stigg(
                api_key=tenant.client_key, base_url=tenant.base_url, max_retries=0
            ) as browser,
            pytest.raises(stigg.PermissionDeniedError),
        ):
            browser.v1.customers.provision(id="acme")
