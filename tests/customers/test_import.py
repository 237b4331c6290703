from typing import Any

import httpx
import pytest
import stigg
from stigg.types.v1.customer_import_params import Customer as ImportedCustomer

from tests.support.customers import check, error

PAYLOAD: list[ImportedCustomer] = [
    {"id": "acme", "name": "Acme", "email": "it@acme.test", "billing_id": "cus_1"},
    {"id": "globex", "name": "Globex", "email": None, "metadata": {"tier": "gold"}},
    {"id": "initech", "name": None, "email": "ops@initech.test"},
]


VALID = {"id": "valid", "name": None, "email": None}


def snapshot(client: stigg.Stigg) -> list[dict[str, Any]]:
    return [customer.model_dump() for customer in client.v1.customers.list()]


class TestNewCustomers:
    def test_new_ids_are_reported_and_created_with_their_fields(self, client: stigg.Stigg) -> None:
        result = client.v1.customers.import_(customers=PAYLOAD).data
        assert result.new_customers == ["acme", "globex", "initech"]

        customers = {customer.id: customer for customer in client.v1.customers.list()}
        assert list(customers) == ["acme", "globex", "initech"]
        acme = customers["acme"]
        assert (acme.name, acme.email, acme.billing_id) == ("Acme", "it@acme.test", "cus_1")
        assert acme.metadata == {}
        assert acme.archived_at is None
        globex = customers["globex"]
        assert (globex.name, globex.email, globex.billing_id) == ("Globex", None, None)
        assert globex.metadata == {"tier": "gold"}
        assert (customers["initech"].name, customers["initech"].email) == (
            None,
            "ops@initech.test",
        )

    def test_imported_customers_are_known_to_checks_at_once(self, demo: stigg.Stigg) -> None:
        # The first check remembers "not found"; the import must make that stale.
        assert check(demo, "acme", "feature-seats").access_denied_reason == "CustomerNotFound"
        demo.v1.customers.import_(customers=[{"id": "acme", "name": "Acme", "email": None}])
        denied = check(demo, "acme", "feature-seats")
        assert denied.access_denied_reason == "NoActiveSubscription"
        demo.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        assert check(demo, "acme", "feature-seats").usage_limit == 3


class TestSamePayloadTwice:
    def test_the_second_import_creates_and_changes_nothing(self, client: stigg.Stigg) -> None:
        assert client.v1.customers.import_(customers=PAYLOAD).data.new_customers == [
            "acme",
            "globex",
            "initech",
        ]
        before = snapshot(client)
        again = client.v1.customers.import_(customers=PAYLOAD).data
        assert again.new_customers == []
        assert snapshot(client) == before  # updatedAt included

    def test_a_payload_matching_provisioned_customers_changes_nothing(
        self, client: stigg.Stigg
    ) -> None:
        client.v1.customers.provision(
            id="acme", name="Acme", email="it@acme.test", billing_id="cus_1", language="en"
        )
        before = snapshot(client)
        result = client.v1.customers.import_(
            customers=[{"id": "acme", "name": "Acme", "email": "it@acme.test"}]
        ).data
        assert result.new_customers == []
        assert snapshot(client) == before


class TestExistingCustomers:
    def test_existing_ids_are_updated_with_the_given_fields_only(self, client: stigg.Stigg) -> None:
        created = client.v1.customers.provision(
            id="acme",
            name="Old name",
            email="old@acme.test",
            billing_id="cus_1",
            language="en",
            metadata={"a": "1"},
        ).data
        result = client.v1.customers.import_(
            customers=[
                {"id": "acme", "name": "New name", "email": "new@acme.test"},
                {"id": "globex", "name": "Globex", "email": None},
            ]
        ).data
        assert result.new_customers == ["globex"]

        acme = client.v1.customers.retrieve("acme").data
        assert (acme.name, acme.email) == ("New name", "new@acme.test")
        assert (acme.billing_id, acme.language, acme.metadata) == ("cus_1", "en", {"a": "1"})
        assert acme.created_at == created.created_at
        assert acme.updated_at > created.updated_at

        client.v1.customers.import_(
            customers=[
                {
                    "id": "acme",
                    "name": "New name",
                    "email": "new@acme.test",
                    "billing_id": "cus_2",
                    "metadata": {},
                }
            ]
        )
        acme = client.v1.customers.retrieve("acme").data
        assert (acme.billing_id, acme.metadata) == ("cus_2", {})

    def test_an_archived_customer_is_updated_and_stays_archived(self, client: stigg.Stigg) -> None:
        client.v1.customers.provision(id="acme", name="Acme")
        client.v1.customers.archive("acme")
        result = client.v1.customers.import_(
            customers=[{"id": "acme", "name": "Acme 2", "email": None}]
        ).data
        assert result.new_customers == []
        acme = client.v1.customers.retrieve("acme").data
        assert acme.name == "Acme 2"
        assert acme.archived_at is not None


class TestRefused:
    def test_an_id_listed_twice_is_refused_and_nothing_is_imported(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        customers: list[ImportedCustomer] = [
            {"id": "acme", "name": "A", "email": None},
            {"id": "globex", "name": "G", "email": None},
            {"id": "acme", "name": "B", "email": None},
        ]
        with pytest.raises(stigg.UnprocessableEntityError):
            client.v1.customers.import_(customers=customers)
        body = {"customers": [dict(item) for item in customers]}
        problem = error(http.post("/api/v1/customers/import", json=body), 422)
        assert problem["field"] == "customers"
        assert "acme" in problem["message"]
        assert "globex" not in problem["message"]
        assert snapshot(client) == []

    @pytest.mark.parametrize(
        ("customers", "field"),
        [
            ([], "customers"),
            ([VALID, {"id": "acme", "name": "A"}], "customers.1.email"),
            ([VALID, {"id": "acme", "email": None}], "customers.1.name"),
            ([VALID, {"id": "acme", "name": None, "email": "broken"}], "customers.1.email"),
            ([VALID, {"id": "-acme", "name": None, "email": None}], "customers.1.id"),
            ([VALID, {**VALID, "id": "acme", "colour": "red"}], "customers.1.colour"),
        ],
    )
    def test_invalid_items_are_refused_by_name_and_nothing_is_imported(
        self, http: httpx.Client, customers: list[dict[str, Any]], field: str
    ) -> None:
        problem = error(http.post("/api/v1/customers/import", json={"customers": customers}), 422)
        assert problem["field"] == field
        assert http.get("/api/v1/customers").json()["data"] == []

    def test_more_than_a_thousand_customers_are_refused(self, http: httpx.Client) -> None:
        customers = [{"id": f"c{index}", "name": None, "email": None} for index in range(1001)]
        problem = error(http.post("/api/v1/customers/import", json={"customers": customers}), 422)
        assert problem["field"] == "customers"
        assert http.get("/api/v1/customers").json()["data"] == []

    def test_a_thousand_customers_are_accepted(self, client: stigg.Stigg) -> None:
        customers: list[ImportedCustomer] = [
            {"id": f"c{index:04d}", "name": None, "email": None} for index in range(1000)
        ]
        result = client.v1.customers.import_(customers=customers).data
        assert len(result.new_customers) == 1000
        assert result.new_customers[:2] == ["c0000", "c0001"]
        assert client.v1.customers.retrieve("c0999").data.id == "c0999"
