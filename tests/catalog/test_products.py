from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support import Tenant, factories, make_tenant

DEFAULT_SETTINGS = {
    "subscriptionCancellationTime": "END_OF_BILLING_PERIOD",
    "subscriptionEndSetup": "CANCEL_SUBSCRIPTION",
    "subscriptionStartSetup": "PLAN_SELECTION",
}


def downgrade_to(plan_id: str) -> dict[str, Any]:
    return {
        **DEFAULT_SETTINGS,
        "subscriptionEndSetup": "DOWNGRADE_TO_FREE",
        "downgradePlanId": plan_id,
    }


def publish(http: httpx.Client, segment: str, ref_id: str) -> None:
    response = http.post(
        f"/api/v1/{segment}/{ref_id}/publish", json={"migrationType": "NEW_CUSTOMERS"}
    )
    assert response.status_code == 200, response.text


class TestCreate:
    def test_fields_round_trip_through_the_stigg_client(self, client: stigg.Stigg) -> None:
        created = client.v1.products.create_product(
            id="product-saas",
            display_name="SaaS",
            description="The main product",
            metadata={"team": "growth"},
            multiple_subscriptions=True,
        ).data
        assert created.id == "product-saas"
        assert created.display_name == "SaaS"
        assert created.description == "The main product"
        assert created.metadata == {"team": "growth"}
        assert created.multiple_subscriptions is True
        assert created.status == "PUBLISHED"

        listed = client.v1.products.list_products(id="product-saas").data
        assert [product.model_dump() for product in listed] == [created.model_dump()]

    def test_defaults(self, client: stigg.Stigg, http: httpx.Client) -> None:
        created = client.v1.products.create_product(id="product-saas", display_name="SaaS").data
        assert created.multiple_subscriptions is False
        assert created.metadata == {}
        assert created.description is None
        settings = created.product_settings
        assert settings is not None
        assert settings.subscription_cancellation_time == "END_OF_BILLING_PERIOD"
        assert settings.subscription_end_setup == "CANCEL_SUBSCRIPTION"
        assert settings.subscription_start_setup == "PLAN_SELECTION"
        assert settings.downgrade_plan_id is None
        raw = http.get("/api/v1/products", params={"id": "product-saas"}).json()["data"][0]
        assert raw["productSettings"]["subscriptionEndSetup"] == "CANCEL_SUBSCRIPTION"

    def test_duplicate_id_is_a_conflict(self, http: httpx.Client) -> None:
        factories.product(http, id="product-saas")
        response = http.post(
            "/api/v1/products", json={"id": "product-saas", "displayName": "Again"}
        )
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["field"] == "id"
        assert "product-saas" in error["message"]

    def test_unknown_fields_are_refused_by_name(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/products", json={"id": "product-x", "displayName": "X", "bogus": True}
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "bogus"
        assert http.get("/api/v1/products", params={"id": "product-x"}).json()["data"] == []


class TestRetrieve:
    def test_get_by_id_is_a_tollgate_addition(self, http: httpx.Client) -> None:
        created = factories.product(http, id="product-saas", description="d")
        response = http.get("/api/v1/products/product-saas")
        assert response.status_code == 200
        assert response.json()["data"] == created
        assert http.get("/api/v1/products/product-nope").status_code == 404


class TestList:
    def test_pages_forwards_and_backwards(self, client: stigg.Stigg) -> None:
        ids = [f"product-{index:02d}" for index in range(5)]
        for product_id in ids:
            client.v1.products.create_product(id=product_id, display_name=product_id)

        first = client.v1.products.list_products(limit=2)
        assert [product.id for product in first.data] == ids[:2]
        assert [product.id for product in first] == ids

        assert first.pagination is not None
        assert first.pagination.next is not None
        second = client.v1.products.list_products(limit=2, after=first.pagination.next)
        assert [product.id for product in second.data] == ids[2:4]
        assert second.pagination is not None
        assert second.pagination.prev is not None
        back = client.v1.products.list_products(limit=2, before=second.pagination.prev)
        assert [product.id for product in back.data] == ids[:2]
        assert back.pagination is not None
        assert back.pagination.prev is None

    def test_filters_by_status_and_id(self, client: stigg.Stigg) -> None:
        for product_id in ("product-a", "product-b", "product-c"):
            client.v1.products.create_product(id=product_id, display_name=product_id)
        client.v1.products.archive_product("product-b")

        def ids(**filters: Any) -> list[str]:
            return [product.id for product in client.v1.products.list_products(**filters).data]

        assert ids(status=["PUBLISHED"]) == ["product-a", "product-c"]
        assert ids(status=["ARCHIVED"]) == ["product-b"]
        assert ids(status=["PUBLISHED", "ARCHIVED"]) == ["product-a", "product-b", "product-c"]
        assert ids(id="product-c") == ["product-c"]
        assert ids(id="product-nope") == []

    def test_unknown_status_is_refused(self, http: httpx.Client) -> None:
        response = http.get("/api/v1/products", params={"status": "PUBLISHED,DRAFT"})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "status"

    def test_environments_do_not_see_each_other(
        self, http: httpx.Client, client: stigg.Stigg, engine: Engine, base_url: str
    ) -> None:
        factories.product(http, id="product-mine")
        other = make_tenant(engine, base_url)
        with other.http() as theirs:
            assert theirs.get("/api/v1/products").json()["data"] == []
        assert [product.id for product in client.v1.products.list_products().data] == [
            "product-mine"
        ]


class TestUpdate:
    def test_names_and_metadata_change_and_the_rest_stays(self, client: stigg.Stigg) -> None:
        client.v1.products.create_product(
            id="product-saas",
            display_name="SaaS",
            description="old",
            metadata={"a": "1"},
            multiple_subscriptions=True,
        )
        updated = client.v1.products.update_product(
            "product-saas", display_name="Platform", metadata={"b": "2"}
        ).data
        assert updated.display_name == "Platform"
        assert updated.metadata == {"b": "2"}
        assert updated.description == "old"
        assert updated.multiple_subscriptions is True
        assert updated.updated_at >= updated.created_at

        cleared = client.v1.products.update_product("product-saas", description=None).data
        assert cleared.description is None
        assert cleared.display_name == "Platform"

        listed = client.v1.products.list_products(id="product-saas").data[0]
        assert listed.display_name == "Platform"
        assert listed.metadata == {"b": "2"}

    def test_updated_at_moves_in_the_response_and_in_storage(self, client: stigg.Stigg) -> None:
        created = client.v1.products.create_product(id="product-saas", display_name="SaaS").data
        updated = client.v1.products.update_product("product-saas", display_name="X").data
        assert updated.created_at == created.created_at
        assert updated.updated_at > created.updated_at
        listed = client.v1.products.list_products(id="product-saas").data[0]
        assert listed.updated_at == updated.updated_at

        archived = client.v1.products.archive_product("product-saas").data
        assert archived.updated_at > updated.updated_at
        restored = client.v1.products.unarchive_product("product-saas").data
        assert restored.updated_at > archived.updated_at
        listed = client.v1.products.list_products(id="product-saas").data[0]
        assert listed.updated_at == restored.updated_at

    def test_display_name_cannot_be_null(self, http: httpx.Client) -> None:
        factories.product(http)
        response = http.patch("/api/v1/products/product-saas", json={"displayName": None})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "displayName"

    def test_unknown_product_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.products.update_product("product-nope", display_name="X")


class TestSettings:
    def test_downgrade_to_free_needs_a_downgrade_plan(self, http: httpx.Client) -> None:
        factories.product(http)
        settings = {**DEFAULT_SETTINGS, "subscriptionEndSetup": "DOWNGRADE_TO_FREE"}
        response = http.patch("/api/v1/products/product-saas", json={"productSettings": settings})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "invalid_value"
        assert error["field"] == "productSettings.downgradePlanId"
        assert "DOWNGRADE_TO_FREE" in error["message"]

    @pytest.mark.parametrize(
        ("plan_id", "words"),
        [
            ("plan-nope", "does not exist"),
            ("plan-draft", "not published"),
            ("plan-elsewhere", "another product"),
            ("plan-gone", "archived"),
        ],
    )
    def test_downgrade_plan_must_be_a_published_plan_of_this_product(
        self, http: httpx.Client, plan_id: str, words: str
    ) -> None:
        factories.product(http, id="product-saas")
        factories.product(http, id="product-other")
        factories.plan(http, id="plan-draft", product_id="product-saas")
        factories.plan(http, id="plan-elsewhere", product_id="product-other", publish=True)
        factories.plan(http, id="plan-gone", product_id="product-saas", publish=True)
        assert http.post("/api/v1/plans/plan-gone/archive").status_code == 200
        response = http.patch(
            "/api/v1/products/product-saas", json={"productSettings": downgrade_to(plan_id)}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "productSettings.downgradePlanId"
        assert plan_id in error["message"]
        assert words in error["message"]
        settings = http.get("/api/v1/products", params={"id": "product-saas"}).json()["data"][0][
            "productSettings"
        ]
        assert settings == {
            **DEFAULT_SETTINGS,
            "downgradePlanId": None,
            "prorateAtEndOfBillingPeriod": None,
            "subscriptionStartPlanId": None,
        }

    def test_an_add_on_is_not_a_downgrade_plan(self, http: httpx.Client) -> None:
        factories.product(http)
        factories.addon(http, id="addon-x", publish=True)
        response = http.patch(
            "/api/v1/products/product-saas", json={"productSettings": downgrade_to("addon-x")}
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "productSettings.downgradePlanId"

    def test_a_published_plan_is_accepted(self, client: stigg.Stigg, http: httpx.Client) -> None:
        factories.product(http)
        factories.plan(http, id="plan-free", publish=True)
        updated = client.v1.products.update_product(
            "product-saas",
            product_settings={
                "subscription_cancellation_time": "IMMEDIATE",
                "subscription_end_setup": "DOWNGRADE_TO_FREE",
                "subscription_start_setup": "PLAN_SELECTION",
                "downgrade_plan_id": "plan-free",
            },
        ).data
        settings = updated.product_settings
        assert settings is not None
        assert settings.subscription_end_setup == "DOWNGRADE_TO_FREE"
        assert settings.subscription_cancellation_time == "IMMEDIATE"
        assert settings.downgrade_plan_id == "plan-free"
        listed = client.v1.products.list_products(id="product-saas").data[0]
        assert listed.product_settings is not None
        assert listed.product_settings.downgrade_plan_id == "plan-free"

    def test_the_downgrade_plan_cannot_be_archived(self, http: httpx.Client) -> None:
        factories.product(http)
        factories.plan(http, id="plan-free", publish=True)
        response = http.patch(
            "/api/v1/products/product-saas", json={"productSettings": downgrade_to("plan-free")}
        )
        assert response.status_code == 200, response.text
        archived = http.post("/api/v1/plans/plan-free/archive")
        assert archived.status_code == 409
        assert "product-saas" in archived.json()["error"]["message"]

    def test_a_bad_enum_value_is_refused(self, http: httpx.Client) -> None:
        factories.product(http)
        settings = {**DEFAULT_SETTINGS, "subscriptionEndSetup": "EXPLODE"}
        response = http.patch("/api/v1/products/product-saas", json={"productSettings": settings})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "productSettings.subscriptionEndSetup"


class TestArchive:
    def test_refused_while_plans_or_add_ons_are_live_and_names_them(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.product(http)
        factories.plan(http, id="plan-pro", publish=True)
        factories.addon(http, id="addon-seats")

        with pytest.raises(stigg.ConflictError):
            client.v1.products.archive_product("product-saas")
        response = http.post("/api/v1/products/product-saas/archive")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "in_use"
        assert "plan-pro" in error["message"]
        assert "addon-seats" in error["message"]
        assert client.v1.products.list_products(id="product-saas").data[0].status == "PUBLISHED"

        assert http.post("/api/v1/plans/plan-pro/archive").status_code == 200
        still = http.post("/api/v1/products/product-saas/archive")
        assert still.status_code == 409
        assert "plan-pro" not in still.json()["error"]["message"]
        assert "addon-seats" in still.json()["error"]["message"]

        assert http.post("/api/v1/addons/addon-seats/archive").status_code == 200
        archived = client.v1.products.archive_product("product-saas").data
        assert archived.status == "ARCHIVED"
        assert client.v1.products.list_products(status=["ARCHIVED"]).data[0].id == "product-saas"

    def test_archived_product_takes_no_new_packages(self, http: httpx.Client) -> None:
        factories.product(http)
        http.post("/api/v1/products/product-saas/archive")
        response = http.post(
            "/api/v1/plans",
            json={"id": "plan-x", "displayName": "X", "productId": "product-saas"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "productId"

    def test_unarchive(self, client: stigg.Stigg) -> None:
        client.v1.products.create_product(id="product-saas", display_name="SaaS")
        assert client.v1.products.archive_product("product-saas").data.status == "ARCHIVED"
        # Archiving twice is harmless.
        assert client.v1.products.archive_product("product-saas").data.status == "ARCHIVED"
        restored = client.v1.products.unarchive_product("product-saas").data
        assert restored.status == "PUBLISHED"
        assert client.v1.products.list_products(status=["ARCHIVED"]).data == []
        client.v1.plans.create(id="plan-x", display_name="X", product_id="product-saas")

    def test_unknown_product_is_not_found(self, http: httpx.Client) -> None:
        for action in ("archive", "unarchive"):
            response = http.post(f"/api/v1/products/product-nope/{action}")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"


class TestDuplicate:
    def _build_catalog(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        factories.product(
            http, id="product-saas", metadata={"tier": "main"}, multipleSubscriptions=True
        )
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(3)], publish=True)
        factories.addon(http, id="addon-draft")
        depends = http.patch("/api/v1/addons/addon-draft", json={"dependencies": ["addon-seats"]})
        assert depends.status_code == 200, depends.text
        factories.plan(http, id="plan-free", entitlements=[factories.seats(1)], publish=True)
        factories.plan(http, id="plan-pro", parentPlanId="plan-free")
        patched = http.patch("/api/v1/plans/plan-pro", json={"compatibleAddonIds": ["addon-seats"]})
        assert patched.status_code == 200, patched.text
        publish(http, "plans", "plan-pro")
        # plan-pro now has a draft (version 2) on top of its published version 1.
        assert http.post("/api/v1/plans/plan-pro/draft").status_code == 200
        factories.plan(http, id="plan-gone", publish=True)
        assert http.post("/api/v1/plans/plan-gone/archive").status_code == 200
        settings = http.patch(
            "/api/v1/products/product-saas", json={"productSettings": downgrade_to("plan-free")}
        )
        assert settings.status_code == 200, settings.text

    def test_a_target_id_too_long_for_the_copies_is_refused(self, http: httpx.Client) -> None:
        factories.product(http, id="product-saas")
        factories.plan(http, id="plan-free")
        target = "p" * 250
        response = http.post("/api/v1/products/product-saas/duplicate", json={"targetId": target})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "targetId"
        assert http.get(f"/api/v1/products/{target}").status_code == 404

    def test_copies_plans_and_add_ons_under_suffixed_ids(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        self._build_catalog(http)
        copy = client.v1.products.duplicate_product(
            "product-saas", target_id="product-copy", display_name="Copy"
        ).data
        assert copy.id == "product-copy"
        assert copy.display_name == "Copy"
        assert copy.metadata == {"tier": "main"}
        assert copy.multiple_subscriptions is True
        assert copy.status == "PUBLISHED"
        assert copy.product_settings is not None
        assert copy.product_settings.subscription_end_setup == "DOWNGRADE_TO_FREE"
        assert copy.product_settings.downgrade_plan_id == "plan-free-product-copy"

        plans = {
            plan["id"]: plan
            for plan in http.get("/api/v1/plans", params={"productId": "product-copy"}).json()[
                "data"
            ]
        }
        assert set(plans) == {"plan-free-product-copy", "plan-pro-product-copy"}
        free = plans["plan-free-product-copy"]
        assert (free["status"], free["versionNumber"], free["isLatest"]) == ("PUBLISHED", 1, True)
        assert free["entitlements"] == [{"id": "feature-seats", "type": "FEATURE"}]
        pro = plans["plan-pro-product-copy"]
        assert (pro["status"], pro["versionNumber"], pro["isLatest"]) == ("DRAFT", 2, False)
        assert pro["parentPlanId"] == "plan-free-product-copy"
        assert pro["compatibleAddonIds"] == ["addon-seats-product-copy"]

        addons = {
            addon.id: addon for addon in client.v1.addons.list(product_id="product-copy").data
        }
        assert set(addons) == {"addon-seats-product-copy", "addon-draft-product-copy"}
        assert addons["addon-seats-product-copy"].status == "PUBLISHED"
        assert addons["addon-seats-product-copy"].is_latest is True
        assert addons["addon-draft-product-copy"].status == "DRAFT"
        assert addons["addon-draft-product-copy"].dependencies == ["addon-seats-product-copy"]
        seats = client.v1.addons.entitlements.list("addon-seats-product-copy").data
        limits = [(grant.id, getattr(grant, "usage_limit", None)) for grant in seats]
        assert limits == [("feature-seats", 3)]

    def test_the_copy_is_independent_of_the_original(self, http: httpx.Client) -> None:
        self._build_catalog(http)
        copied = http.post("/api/v1/products/product-saas/duplicate", json={"targetId": "copy"})
        assert copied.status_code == 201, copied.text
        # The published version 1 of plan-pro in the copy is still published underneath
        # its draft, and publishing the copy's draft does not touch the original.
        publish(http, "plans", "plan-pro-copy")
        assert http.get("/api/v1/plans/plan-pro-copy").json()["data"]["versionNumber"] == 2
        original = http.get("/api/v1/plans/plan-pro").json()["data"]
        assert (original["status"], original["versionNumber"]) == ("DRAFT", 2)
        assert original["compatibleAddonIds"] == ["addon-seats"]
        assert original["parentPlanId"] == "plan-free"
        # Archived packages are not copied.
        assert http.get("/api/v1/plans/plan-gone-copy").status_code == 404
        # Changing the copy's plan leaves the original's entitlements alone.
        http.post("/api/v1/plans/plan-free-copy/draft")
        removed = http.delete("/api/v1/plans/plan-free-copy/entitlements/feature-seats")
        assert removed.status_code == 200, removed.text
        grants = http.get("/api/v1/plans/plan-free/entitlements").json()["data"]
        assert [grant["id"] for grant in grants] == ["feature-seats"]

    def test_description_defaults_to_the_original(self, client: stigg.Stigg) -> None:
        client.v1.products.create_product(id="product-saas", display_name="SaaS", description="d")
        copy = client.v1.products.duplicate_product("product-saas", target_id="product-b").data
        assert (copy.display_name, copy.description) == ("SaaS", "d")
        other = client.v1.products.duplicate_product(
            "product-saas", target_id="product-c", description=None
        ).data
        assert other.description is None

    def test_existing_target_id_is_a_conflict(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.product(http, id="product-saas")
        factories.plan(http, id="plan-free", publish=True)
        factories.product(http, id="product-taken")
        response = http.post(
            "/api/v1/products/product-saas/duplicate", json={"targetId": "product-taken"}
        )
        assert response.status_code == 409
        assert "product-taken" in response.json()["error"]["message"]
        with pytest.raises(stigg.ConflictError):
            client.v1.products.duplicate_product("product-saas", target_id="product-taken")
        # Nothing was half-copied.
        assert http.get("/api/v1/plans/plan-free-product-taken").status_code == 404

    def test_a_clashing_copied_id_leaves_nothing_behind(self, http: httpx.Client) -> None:
        factories.product(http, id="product-saas")
        factories.product(http, id="product-other")
        factories.plan(http, id="plan-free", product_id="product-saas", publish=True)
        factories.plan(http, id="plan-free-copy", product_id="product-other")
        response = http.post("/api/v1/products/product-saas/duplicate", json={"targetId": "copy"})
        assert response.status_code == 409
        assert "plan-free-copy" in response.json()["error"]["message"]
        assert http.get("/api/v1/products", params={"id": "copy"}).json()["data"] == []
        kept = http.get("/api/v1/plans/plan-free-copy").json()["data"]
        assert kept["productId"] == "product-other"

    def test_unknown_source_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.products.duplicate_product("product-nope", target_id="product-x")


class TestClientKey:
    def test_client_key_may_list_but_not_write(self, tenant: Tenant, http: httpx.Client) -> None:
        factories.product(http, id="product-saas")
        with tenant.http(key=tenant.client_key) as browser:
            listed = browser.get("/api/v1/products")
            assert listed.status_code == 200
            assert [product["id"] for product in listed.json()["data"]] == ["product-saas"]
            writes = [
                browser.post("/api/v1/products", json={"id": "product-x", "displayName": "X"}),
                browser.patch("/api/v1/products/product-saas", json={"displayName": "X"}),
                browser.post("/api/v1/products/product-saas/archive"),
                browser.post("/api/v1/products/product-saas/unarchive"),
                browser.post("/api/v1/products/product-saas/duplicate", json={"targetId": "p2"}),
            ]
        for response in writes:
            assert response.status_code == 403, response.request.url
            assert response.json()["error"]["code"] == "permission_denied"
        product = http.get("/api/v1/products").json()["data"]
        assert [(p["id"], p["displayName"], p["status"]) for p in product] == [
            ("product-saas", "product-saas", "PUBLISHED")
        ]
