"""A customer's payment method, kept at Stripe: attached through the official client,
declined, removed, collected with a setup intent; refused where no provider is connected."""

import pytest
import stigg
from stigg.types.v1.customer_response import CustomerResponse

from tests.payments.conftest import Connected, with_a_card_stripe_no_longer_has
from tests.support import Tenant
from tests.support.localstripe import DECLINED_AT_ATTACH, LocalStripe


def attach(
    client: stigg.Stigg, connected: Connected, payment_method_id: str, customer_id: str = "acme"
) -> CustomerResponse:
    return client.v1.customers.payment_method.attach(
        customer_id,
        integration_id=connected.integration_id,
        payment_method_id=payment_method_id,
        vendor_identifier="STRIPE",
    )


class TestAttaching:
    def test_a_card_links_the_customer_at_stripe(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        card = localstripe.card()
        customer = attach(paying, connected, card).data
        assert (customer.billing_id or "").startswith("cus_")
        assert customer.default_payment_method is not None
        method = customer.default_payment_method
        assert (method.billing_id, method.type, method.card_last4_digits) == (card, "CARD", "4242")
        assert (method.card_expiry_month, method.card_expiry_year) == (12, 2034)
        assert [
            (i.id, i.synced_entity_id, i.vendor_identifier) for i in customer.integrations or []
        ] == [(connected.integration_id, customer.billing_id, "STRIPE")]
        at_stripe = localstripe.http.get(f"/v1/customers/{customer.billing_id}").json()
        assert (at_stripe["email"], at_stripe["metadata"]) == (
            "it@acme.test",
            {"tollgate_customer_id": "acme"},
        )
        assert localstripe.http.get(f"/v1/payment_methods/{card}").json()["customer"] == (
            customer.billing_id
        )

    def test_a_second_card_replaces_the_first_at_the_same_stripe_customer(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        first = attach(paying, connected, localstripe.card()).data
        second_card = localstripe.card("5555555555554444")
        second = attach(paying, connected, second_card).data
        assert second.billing_id == first.billing_id
        assert second.default_payment_method is not None
        assert second.default_payment_method.billing_id == second_card
        assert len(second.integrations or []) == 1

    def test_a_billing_id_given_at_provisioning_names_an_existing_stripe_customer(
        self, demo_client: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        existing = localstripe.http.post("/v1/customers", data={"name": "Old"}).json()["id"]
        demo_client.v1.customers.provision(id="acme", billing_id=existing)
        customer = attach(demo_client, connected, localstripe.card()).data
        assert customer.billing_id == existing

    def test_a_billing_currency_is_kept(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        customer = paying.v1.customers.payment_method.attach(
            "acme",
            integration_id=connected.integration_id,
            payment_method_id=localstripe.card(),
            vendor_identifier="STRIPE",
            billing_currency="eur",
        ).data
        assert customer.billing_currency == "eur"


class TestRefused:
    def test_a_card_stripe_declines_is_a_402_and_nothing_is_kept(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        with pytest.raises(stigg.APIStatusError) as refused:
            attach(paying, connected, localstripe.card(DECLINED_AT_ATTACH))
        assert refused.value.status_code == 402
        assert "declined" in str(refused.value.body)
        customer = paying.v1.customers.retrieve("acme").data
        assert (customer.billing_id, customer.default_payment_method) == (None, None)

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"integrationId": "int_someone_elses"}, "integrationId"),
            ({"vendorIdentifier": "ZUORA"}, "vendorIdentifier"),
        ],
    )
    def test_another_integration_is_refused_by_field(
        self,
        paying: stigg.Stigg,
        connected: Connected,
        localstripe: LocalStripe,
        change: dict[str, str],
        field: str,
    ) -> None:
        body = {
            "integrationId": connected.integration_id,
            "paymentMethodId": localstripe.card(),
            "vendorIdentifier": "STRIPE",
            **change,
        }
        with connected.tenant.http() as http:
            response = http.post("/api/v1/customers/acme/payment-method", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    def test_an_unknown_customer_is_a_404(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        with pytest.raises(stigg.NotFoundError):
            attach(paying, connected, localstripe.card(), customer_id="nobody")

    def test_the_manual_provider_takes_no_payment_method(self, demo_client: stigg.Stigg) -> None:
        demo_client.v1.customers.provision(id="acme")
        with pytest.raises(stigg.UnprocessableEntityError) as refused:
            demo_client.v1.customers.payment_method.attach(
                "acme", integration_id="int_x", payment_method_id="pm_x", vendor_identifier="STRIPE"
            )
        assert "connect-stripe" in str(refused.value.body)


class TestRemoving:
    def test_detaching_removes_it_at_stripe_too(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        card = localstripe.card()
        attach(paying, connected, card)
        customer = paying.v1.customers.payment_method.detach("acme").data
        assert customer.default_payment_method is None
        assert customer.billing_id is not None  # still the customer at Stripe
        assert localstripe.http.get(f"/v1/payment_methods/{card}").json()["customer"] is None

    def test_a_card_stripe_no_longer_has_is_removed_all_the_same(
        self, demo_client: stigg.Stigg, connected: Connected
    ) -> None:
        with_a_card_stripe_no_longer_has(demo_client)
        customer = demo_client.v1.customers.payment_method.detach("acme").data
        assert customer.default_payment_method is None

    def test_detaching_when_there_is_none_is_a_conflict(
        self, paying: stigg.Stigg, connected: Connected
    ) -> None:
        with pytest.raises(stigg.ConflictError):
            paying.v1.customers.payment_method.detach("acme")


class TestSetupIntent:
    def test_a_card_collected_in_the_browser_is_then_attached(
        self, paying: stigg.Stigg, connected: Connected, localstripe: LocalStripe
    ) -> None:
        with connected.tenant.http() as http:
            created = http.post("/api/v1/customers/acme/payment-method/setup-intent")
        assert created.status_code == 201, created.text
        intent = created.json()["data"]
        assert intent["clientSecret"].startswith(intent["id"] + "_secret_")
        assert intent["integrationId"] == connected.integration_id
        # What Stripe.js does with the client secret and the card typed in:
        card = localstripe.card()
        confirmed = localstripe.http.post(
            f"/v1/setup_intents/{intent['id']}/confirm",
            data={"client_secret": intent["clientSecret"], "payment_method": card},
        )
        assert confirmed.json()["status"] == "succeeded", confirmed.text
        customer = attach(paying, connected, card).data
        assert customer.billing_id == intent["billingId"]
        assert customer.default_payment_method is not None

    def test_on_the_manual_provider_it_is_refused(
        self, demo_client: stigg.Stigg, demo_tenant: Tenant
    ) -> None:
        demo_client.v1.customers.provision(id="acme")
        with demo_tenant.http() as http:
            response = http.post("/api/v1/customers/acme/payment-method/setup-intent")
        assert response.status_code == 422, response.text
