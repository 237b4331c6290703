import httpx
import pytest
import stigg
from stigg.types.v1.plans.entitlement_list_response import DataFeature as FeatureEntitlement

from tests.support import factories


@pytest.fixture
def catalog(http: httpx.Client) -> httpx.Client:
    """A product with a NUMBER, an INCREMENTAL and a BOOLEAN feature."""
    factories.feature(http, id="feature-seats")
    factories.feature(http, id="feature-calls", meterType="INCREMENTAL")
    factories.feature(http, id="feature-sso", featureType="BOOLEAN", meterType="None")
    factories.product(http)
    return http


class TestDraftAndPublish:
    def test_lifecycle_through_the_stigg_client(
        self, client: stigg.Stigg, catalog: httpx.Client
    ) -> None:
        plan = client.v1.plans.create(
            id="plan-pro",
            display_name="Pro",
            product_id="product-saas",
            pricing_type="PAID",
            default_trial_config={
                "duration": 14,
                "units": "DAY",
                "trial_end_behavior": "CONVERT_TO_PAID",
            },
            metadata={"tier": "2"},
        ).data
        assert (plan.status, plan.version_number, plan.is_latest) == ("DRAFT", 1, False)
        assert plan.default_trial_config is not None
        assert plan.default_trial_config.duration == 14

        created = client.v1.plans.entitlements.create(
            "plan-pro",
            entitlements=[
                {"id": "feature-sso", "type": "FEATURE"},
                {"id": "feature-seats", "type": "FEATURE", "usage_limit": 20},
                {
                    "id": "feature-calls",
                    "type": "FEATURE",
                    "usage_limit": 1000,
                    "reset_period": "MONTH",
                    "monthly_reset_period_configuration": {"according_to": "StartOfTheMonth"},
                },
            ],
        ).data
        assert [entitlement.id for entitlement in created] == [
            "feature-sso",
            "feature-seats",
            "feature-calls",
        ]

        published = client.v1.plans.publish("plan-pro", migration_type="NEW_CUSTOMERS")
        assert published.data is not None
        plan = client.v1.plans.retrieve("plan-pro").data
        assert (plan.status, plan.version_number, plan.is_latest) == ("PUBLISHED", 1, True)
        assert [entitlement.id for entitlement in plan.entitlements] == [
            "feature-sso",
            "feature-seats",
            "feature-calls",
        ]

        listed = client.v1.plans.entitlements.list("plan-pro").data
        calls = next(entitlement for entitlement in listed if entitlement.id == "feature-calls")
        assert isinstance(calls, FeatureEntitlement)
        assert calls.usage_limit == 1000
        assert calls.reset_period == "MONTH"
        assert calls.reset_period_configuration is not None
        assert calls.reset_period_configuration.according_to == "StartOfTheMonth"

    def test_published_versions_never_change(
        self, catalog: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.plan(catalog, id="plan-pro", entitlements=[factories.seats(20)], publish=True)
        with pytest.raises(stigg.ConflictError) as caught:
            client.v1.plans.entitlements.update(
                "feature-seats", plan_id="plan-pro", type="FEATURE", usage_limit=50
            )
        assert "/api/v1/plans/plan-pro/draft" in str(caught.value)
        parent_change = catalog.patch("/api/v1/plans/plan-pro", json={"defaultTrialConfig": None})
        assert parent_change.status_code == 409

        draft = client.v1.plans.create_draft("plan-pro").data
        assert (draft.status, draft.version_number) == ("DRAFT", 2)
        assert client.v1.plans.create_draft("plan-pro").data.version_number == 2
        client.v1.plans.entitlements.update(
            "feature-seats", plan_id="plan-pro", type="FEATURE", usage_limit=50
        )
        client.v1.plans.publish("plan-pro", migration_type="ALL_CUSTOMERS")

        plan = client.v1.plans.retrieve("plan-pro").data
        assert (plan.status, plan.version_number, plan.is_latest) == ("PUBLISHED", 2, True)
        seats = client.v1.plans.entitlements.list("plan-pro").data[0]
        assert isinstance(seats, FeatureEntitlement)
        assert seats.usage_limit == 50

    def test_names_may_change_without_a_draft(
        self, catalog: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.plan(catalog, id="plan-pro", publish=True)
        plan = client.v1.plans.update("plan-pro", display_name="Professional", description="d").data
        assert (plan.display_name, plan.description, plan.status) == (
            "Professional",
            "d",
            "PUBLISHED",
        )

    def test_remove_draft(self, catalog: httpx.Client, client: stigg.Stigg) -> None:
        factories.plan(catalog, id="plan-pro", entitlements=[factories.seats(20)], publish=True)
        client.v1.plans.create_draft("plan-pro")
        client.v1.plans.entitlements.delete("feature-seats", plan_id="plan-pro")
        assert client.v1.plans.entitlements.list("plan-pro").data == []
        assert client.v1.plans.remove_draft("plan-pro").data.id == "plan-pro"
        plan = client.v1.plans.retrieve("plan-pro").data
        assert (plan.status, plan.version_number) == ("PUBLISHED", 1)
        assert [entitlement.id for entitlement in plan.entitlements] == ["feature-seats"]
        with pytest.raises(stigg.NotFoundError):
            client.v1.plans.remove_draft("plan-pro")

    def test_removing_the_only_draft_removes_the_plan(
        self, catalog: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.plan(catalog, id="plan-idea")
        client.v1.plans.remove_draft("plan-idea")
        with pytest.raises(stigg.NotFoundError):
            client.v1.plans.retrieve("plan-idea")

    def test_create_published(self, catalog: httpx.Client) -> None:
        plan = factories.plan(catalog, id="plan-free", status="PUBLISHED")
        assert (plan["status"], plan["isLatest"]) == ("PUBLISHED", True)

    def test_publishing_needs_a_draft(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-free", publish=True)
        response = catalog.post(
            "/api/v1/plans/plan-free/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert response.status_code == 409
        missing = catalog.post("/api/v1/plans/plan-free/publish", json={})
        assert missing.status_code == 422
        assert missing.json()["error"]["field"] == "migrationType"


class TestEntitlementRules:
    @pytest.mark.parametrize(
        ("grant", "field"),
        [
            ({"id": "feature-seats", "type": "FEATURE"}, "entitlements.0.usageLimit"),
            (
                {
                    "id": "feature-seats",
                    "type": "FEATURE",
                    "usageLimit": 3,
                    "hasUnlimitedUsage": True,
                },
                "entitlements.0.usageLimit",
            ),
            (
                {"id": "feature-seats", "type": "FEATURE", "usageLimit": -1},
                "entitlements.0.usageLimit",
            ),
            (
                {"id": "feature-seats", "type": "FEATURE", "usageLimit": 3, "resetPeriod": "MONTH"},
                "entitlements.0.resetPeriod",
            ),
            (
                {
                    "id": "feature-calls",
                    "type": "FEATURE",
                    "usageLimit": 3,
                    "resetPeriod": "WEEK",
                    "monthlyResetPeriodConfiguration": {"accordingTo": "StartOfTheMonth"},
                },
                "entitlements.0.resetPeriod",
            ),
            (
                {"id": "feature-sso", "type": "FEATURE", "usageLimit": 3},
                "entitlements.0.usageLimit",
            ),
            ({"id": "feature-nope", "type": "FEATURE"}, "entitlements.0.id"),
            (
                {"id": "credits", "type": "CREDIT", "amount": 5, "cadence": "MONTH"},
                "entitlements.0.type",
            ),
        ],
    )
    def test_grants_that_make_no_sense_are_refused(
        self, catalog: httpx.Client, grant: dict[str, object], field: str
    ) -> None:
        factories.plan(catalog)
        response = catalog.post(
            "/api/v1/plans/plan-free/entitlements", json={"entitlements": [grant]}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert catalog.get("/api/v1/plans/plan-free/entitlements").json()["data"] == []

    def test_one_entitlement_per_feature(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, entitlements=[factories.seats(3)])
        again = catalog.post(
            "/api/v1/plans/plan-free/entitlements", json={"entitlements": [factories.seats(4)]}
        )
        assert again.status_code == 409
        twice = catalog.post(
            "/api/v1/plans/plan-free/entitlements",
            json={"entitlements": [factories.seats(4) | {"id": "feature-calls"}] * 2},
        )
        assert twice.status_code == 409

    def test_switching_to_unlimited_is_one_call(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, entitlements=[factories.seats(3)])
        response = catalog.patch(
            "/api/v1/plans/plan-free/entitlements/feature-seats",
            json={"type": "FEATURE", "hasUnlimitedUsage": True},
        )
        assert response.status_code == 200, response.text
        assert (
            response.json()["data"]["usageLimit"],
            response.json()["data"]["hasUnlimitedUsage"],
        ) == (None, True)

    def test_unknown_entitlement_is_not_found(self, catalog: httpx.Client) -> None:
        factories.plan(catalog)
        response = catalog.delete("/api/v1/plans/plan-free/entitlements/feature-seats")
        assert response.status_code == 404


class TestParentsAndAddons:
    def test_parent_must_be_published_before_the_child(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-free")
        factories.plan(catalog, id="plan-pro", parentPlanId="plan-free")
        early = catalog.post(
            "/api/v1/plans/plan-pro/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert early.status_code == 409
        assert "plan-free" in early.json()["error"]["message"]
        catalog.post("/api/v1/plans/plan-free/publish", json={"migrationType": "NEW_CUSTOMERS"})
        late = catalog.post(
            "/api/v1/plans/plan-pro/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert late.status_code == 200
        assert catalog.get("/api/v1/plans/plan-pro").json()["data"]["parentPlanId"] == "plan-free"

    def test_parents_cannot_form_a_cycle(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-a")
        factories.plan(catalog, id="plan-b", parentPlanId="plan-a")
        cycle = catalog.patch("/api/v1/plans/plan-a", json={"parentPlanId": "plan-b"})
        assert cycle.status_code == 422
        assert cycle.json()["error"]["field"] == "parentPlanId"
        itself = catalog.patch("/api/v1/plans/plan-a", json={"parentPlanId": "plan-a"})
        assert itself.status_code == 422

    def test_parent_in_another_product_is_refused(self, catalog: httpx.Client) -> None:
        factories.product(catalog, id="product-other")
        factories.plan(catalog, id="plan-other", product_id="product-other")
        response = catalog.post(
            "/api/v1/plans",
            json={
                "id": "plan-x",
                "displayName": "X",
                "productId": "product-saas",
                "parentPlanId": "plan-other",
            },
        )
        assert response.status_code == 422
        assert catalog.get("/api/v1/plans/plan-x").status_code == 404

    def test_archiving_a_parent_is_refused_while_a_child_uses_it(
        self, catalog: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.plan(catalog, id="plan-free", publish=True)
        factories.plan(catalog, id="plan-pro", parentPlanId="plan-free", publish=True)
        with pytest.raises(stigg.ConflictError) as caught:
            client.v1.plans.archive("plan-free")
        assert "plan-pro" in str(caught.value)
        assert client.v1.plans.archive("plan-pro").data.status == "ARCHIVED"
        assert client.v1.plans.archive("plan-free").data.status == "ARCHIVED"
        edit = catalog.post("/api/v1/plans/plan-free/draft")
        assert edit.status_code == 409

    def test_compatible_addons(self, catalog: httpx.Client, client: stigg.Stigg) -> None:
        factories.addon(catalog, id="addon-seats", entitlements=[factories.seats(10)], publish=True)
        factories.plan(catalog, id="plan-pro")
        plan = client.v1.plans.update("plan-pro", compatible_addon_ids=["addon-seats"]).data
        assert plan.compatible_addon_ids == ["addon-seats"]
        unknown = catalog.patch(
            "/api/v1/plans/plan-pro", json={"compatibleAddonIds": ["addon-nope"]}
        )
        assert unknown.status_code == 422
        assert unknown.json()["error"]["field"] == "compatibleAddonIds"

    def test_an_incomplete_price_is_refused_by_field(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-pro")
        response = catalog.patch(
            "/api/v1/plans/plan-pro",
            json={
                "charges": {"pricingType": "PAID", "pricingModels": [{"billingModel": "FLAT_FEE"}]}
            },
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "charges.pricingModels.0.pricePeriods"
        pricing_type_only = catalog.patch(
            "/api/v1/plans/plan-pro", json={"charges": {"pricingType": "FREE"}}
        )
        assert pricing_type_only.json()["data"]["pricingType"] == "FREE"


class TestList:
    def test_filters_and_pages(self, catalog: httpx.Client, client: stigg.Stigg) -> None:
        factories.product(catalog, id="product-other")
        factories.plan(catalog, id="plan-a", publish=True)
        factories.plan(catalog, id="plan-b")
        factories.plan(catalog, id="plan-c", product_id="product-other", publish=True)
        client.v1.plans.create_draft("plan-a")

        def ids(**filters: object) -> list[str]:
            return [plan.id for plan in client.v1.plans.list(**filters)]  # type: ignore[arg-type]

        assert ids(limit=1) == ["plan-a", "plan-b", "plan-c"]
        assert ids(product_id="product-saas") == ["plan-a", "plan-b"]
        assert ids(status=["PUBLISHED"]) == ["plan-a", "plan-c"]
        assert ids(status=["DRAFT"]) == ["plan-a", "plan-b"]
        client.v1.plans.archive("plan-c")
        assert ids(status=["ARCHIVED"]) == ["plan-c"]


class TestVersionGuards:
    def test_removing_an_only_draft_named_by_an_archived_plan_is_refused(
        self, catalog: httpx.Client
    ) -> None:
        factories.plan(catalog, id="plan-a")
        factories.plan(catalog, id="plan-b", parentPlanId="plan-a")
        catalog.post("/api/v1/plans/plan-b/archive")
        response = catalog.delete("/api/v1/plans/plan-a/draft")
        assert response.status_code == 409
        assert "plan-b" in response.json()["error"]["message"]
        assert catalog.get("/api/v1/plans/plan-a").status_code == 200

    def test_published_parents_cannot_form_a_cycle(self, catalog: httpx.Client) -> None:
        publish = {"migrationType": "NEW_CUSTOMERS"}
        factories.plan(catalog, id="plan-b", publish=True)
        factories.plan(catalog, id="plan-a", parentPlanId="plan-b", publish=True)
        catalog.post("/api/v1/plans/plan-a/draft")
        catalog.patch("/api/v1/plans/plan-a", json={"parentPlanId": None})
        catalog.post("/api/v1/plans/plan-b/draft")
        assert catalog.patch("/api/v1/plans/plan-b", json={"parentPlanId": "plan-a"}).is_success
        response = catalog.post("/api/v1/plans/plan-b/publish", json=publish)
        assert response.status_code == 409
        assert response.json()["error"]["field"] == "parentPlanId"

    def test_the_billing_id_needs_a_draft(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-pro", publish=True)
        refused = catalog.patch("/api/v1/plans/plan-pro", json={"billingId": "prod_other"})
        assert refused.status_code == 409
        catalog.post("/api/v1/plans/plan-pro/draft")
        accepted = catalog.patch("/api/v1/plans/plan-pro", json={"billingId": "prod_other"})
        assert accepted.json()["data"]["billingId"] == "prod_other"
        assert accepted.json()["data"]["status"] == "DRAFT"

    def test_an_empty_patch_changes_nothing(self, catalog: httpx.Client) -> None:
        before = factories.plan(catalog, id="plan-pro", publish=True)
        after = catalog.patch("/api/v1/plans/plan-pro", json={})
        assert after.status_code == 200
        assert after.json()["data"] == before

    def test_infinite_numbers_are_refused(self, catalog: httpx.Client) -> None:
        factories.plan(catalog, id="plan-pro")
        response = catalog.patch(
            "/api/v1/plans/plan-pro",
            content=b'{"defaultTrialConfig": {"duration": 1e400, "units": "DAY"}}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "defaultTrialConfig.duration"


class TestCharges:
    def test_charge_lists_are_empty_until_prices_exist(
        self, catalog: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.plan(catalog, id="plan-pro")
        factories.addon(catalog, id="addon-seats")
        assert list(client.v1.plans.list_charges("plan-pro")) == []
        assert list(client.v1.plans.list_overage_charges("plan-pro")) == []
        assert list(client.v1.addons.list_charges("addon-seats")) == []
        with pytest.raises(stigg.NotFoundError):
            client.v1.plans.list_charges("plan-nope")
        with pytest.raises(stigg.NotFoundError):
            client.v1.addons.list_charges("plan-pro")
