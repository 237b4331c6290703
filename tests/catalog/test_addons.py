from typing import Any

import httpx
import pytest
import stigg

from tests.support import Tenant, factories


@pytest.fixture
def catalog(http: httpx.Client) -> None:
    """A product and a NUMBER feature to grant, which nearly every test needs."""
    factories.feature(http, id="feature-seats")
    factories.product(http, id="product-saas")


def seats(limit: int) -> Any:
    return {"id": "feature-seats", "type": "FEATURE", "usage_limit": limit}


def grants(client: stigg.Stigg, addon_id: str) -> list[tuple[str, Any]]:
    listed = client.v1.addons.entitlements.list(addon_id).data
    return [(grant.id, getattr(grant, "usage_limit", None)) for grant in listed]


@pytest.mark.usefixtures("catalog")
class TestCreate:
    def test_a_new_add_on_is_a_first_draft(self, client: stigg.Stigg) -> None:
        created = client.v1.addons.create(
            id="addon-seats",
            display_name="Extra seats",
            product_id="product-saas",
            description="More people",
            metadata={"k": "v"},
            max_quantity=10,
            pricing_type="PAID",
        ).data
        assert created.id == "addon-seats"
        assert created.status == "DRAFT"
        assert created.version_number == 1
        assert created.is_latest is False
        assert created.product_id == "product-saas"
        assert created.max_quantity == 10
        assert created.metadata == {"k": "v"}
        assert created.pricing_type == "PAID"
        assert created.entitlements == []
        assert created.dependencies == []

        fetched = client.v1.addons.retrieve("addon-seats").data
        assert fetched.model_dump() == created.model_dump()

    def test_max_quantity_is_optional_and_changes_on_the_draft(self, client: stigg.Stigg) -> None:
        created = client.v1.addons.create(
            id="addon-seats", display_name="Seats", product_id="product-saas"
        ).data
        assert created.max_quantity is None
        assert client.v1.addons.update("addon-seats", max_quantity=3).data.max_quantity == 3
        assert client.v1.addons.retrieve("addon-seats").data.max_quantity == 3
        assert client.v1.addons.update("addon-seats", max_quantity=None).data.max_quantity is None

    def test_max_quantity_must_be_positive(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/addons",
            json={
                "id": "addon-x",
                "displayName": "X",
                "productId": "product-saas",
                "maxQuantity": 0,
            },
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "maxQuantity"
        assert http.get("/api/v1/addons/addon-x").status_code == 404

    def test_unknown_product_is_refused(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/addons",
            json={"id": "addon-x", "displayName": "X", "productId": "product-nope"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "productId"

    def test_duplicate_id_is_a_conflict(self, client: stigg.Stigg) -> None:
        client.v1.addons.create(id="addon-seats", display_name="Seats", product_id="product-saas")
        with pytest.raises(stigg.ConflictError) as caught:
            client.v1.addons.create(
                id="addon-seats", display_name="Again", product_id="product-saas"
            )
        assert "addon-seats" in str(caught.value)

    def test_unknown_id_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.addons.retrieve("addon-nope")

    def test_a_plan_id_is_not_an_add_on(self, http: httpx.Client) -> None:
        factories.plan(http, id="plan-free")
        assert http.get("/api/v1/addons/plan-free").status_code == 404


@pytest.mark.usefixtures("catalog")
class TestEntitlementsAndPublish:
    def test_entitlements_on_the_draft_then_publish(self, client: stigg.Stigg) -> None:
        client.v1.addons.create(id="addon-seats", display_name="Seats", product_id="product-saas")
        created = client.v1.addons.entitlements.create("addon-seats", entitlements=[seats(5)]).data
        assert [grant.id for grant in created] == ["feature-seats"]
        assert grants(client, "addon-seats") == [("feature-seats", 5)]

        updated = client.v1.addons.entitlements.update(
            "feature-seats", addon_id="addon-seats", type="FEATURE", usage_limit=8
        ).data
        assert updated.usage_limit == 8  # type: ignore[union-attr]
        assert grants(client, "addon-seats") == [("feature-seats", 8)]
        entitled = client.v1.addons.retrieve("addon-seats").data.entitlements
        assert [(grant.id, grant.type) for grant in entitled] == [("feature-seats", "FEATURE")]

        result = client.v1.addons.publish("addon-seats", migration_type="NEW_CUSTOMERS").data
        assert result.task_id is None
        published = client.v1.addons.retrieve("addon-seats").data
        assert published.status == "PUBLISHED"
        assert published.version_number == 1
        assert published.is_latest is True
        assert grants(client, "addon-seats") == [("feature-seats", 8)]

    def test_delete_entitlement_on_the_draft(self, client: stigg.Stigg, http: httpx.Client) -> None:
        factories.feature(http, id="feature-sso", featureType="BOOLEAN", meterType="None")
        client.v1.addons.create(id="addon-seats", display_name="Seats", product_id="product-saas")
        client.v1.addons.entitlements.create(
            "addon-seats", entitlements=[seats(5), {"id": "feature-sso", "type": "FEATURE"}]
        )
        deleted = client.v1.addons.entitlements.delete("feature-seats", addon_id="addon-seats").data
        assert deleted.id == "feature-seats"
        assert grants(client, "addon-seats") == [("feature-sso", None)]
        missing = http.delete("/api/v1/addons/addon-seats/entitlements/feature-seats")
        assert missing.status_code == 404

    def test_the_same_feature_twice_is_a_conflict(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)])
        again = http.post(
            "/api/v1/addons/addon-seats/entitlements", json={"entitlements": [factories.seats(9)]}
        )
        assert again.status_code == 409
        assert again.json()["error"]["field"] == "entitlements.0.id"

    def test_published_add_on_without_a_draft_is_not_edited(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)], publish=True)
        attempts = [
            http.post(
                "/api/v1/addons/addon-seats/entitlements",
                json={
                    "entitlements": [{"id": "feature-seats", "type": "FEATURE", "usageLimit": 1}]
                },
            ),
            http.patch(
                "/api/v1/addons/addon-seats/entitlements/feature-seats",
                json={"type": "FEATURE", "usageLimit": 1},
            ),
            http.delete("/api/v1/addons/addon-seats/entitlements/feature-seats"),
            http.patch("/api/v1/addons/addon-seats", json={"maxQuantity": 2}),
        ]
        for response in attempts:
            assert response.status_code == 409, response.text
            error = response.json()["error"]
            assert error["code"] == "draft_required"
            assert "POST /api/v1/addons/addon-seats/draft" in error["message"]
        with pytest.raises(stigg.ConflictError):
            client.v1.addons.entitlements.update(
                "feature-seats", addon_id="addon-seats", type="FEATURE", usage_limit=1
            )
        assert grants(client, "addon-seats") == [("feature-seats", 5)]
        assert client.v1.addons.retrieve("addon-seats").data.max_quantity is None

    def test_names_change_without_a_draft(self, client: stigg.Stigg, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats", publish=True)
        renamed = client.v1.addons.update(
            "addon-seats", display_name="Seats+", metadata={"a": "b"}
        ).data
        assert (renamed.display_name, renamed.metadata) == ("Seats+", {"a": "b"})
        assert (renamed.status, renamed.version_number) == ("PUBLISHED", 1)

    def test_publishing_without_a_draft_is_a_conflict(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats", publish=True)
        again = http.post(
            "/api/v1/addons/addon-seats/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert again.status_code == 409

    def test_publish_needs_a_migration_type(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats")
        response = http.post("/api/v1/addons/addon-seats/publish", json={})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "migrationType"
        assert http.get("/api/v1/addons/addon-seats").json()["data"]["status"] == "DRAFT"


@pytest.mark.usefixtures("catalog")
class TestDrafts:
    def test_a_draft_copies_the_published_version(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(
            http, id="addon-seats", entitlements=[factories.seats(5)], publish=True, maxQuantity=4
        )
        draft = client.v1.addons.create_draft("addon-seats").data
        assert draft.status == "DRAFT"
        assert draft.version_number == 2
        assert draft.is_latest is False
        assert draft.max_quantity == 4
        assert [grant.id for grant in draft.entitlements] == ["feature-seats"]
        assert grants(client, "addon-seats") == [("feature-seats", 5)]

        again = client.v1.addons.create_draft("addon-seats").data
        assert again.version_number == 2
        assert again.status == "DRAFT"

        client.v1.addons.entitlements.update(
            "feature-seats", addon_id="addon-seats", type="FEATURE", usage_limit=50
        )
        assert grants(client, "addon-seats") == [("feature-seats", 50)]
        client.v1.addons.publish("addon-seats", migration_type="ALL_CUSTOMERS")
        latest = client.v1.addons.retrieve("addon-seats").data
        assert (latest.status, latest.version_number, latest.is_latest) == ("PUBLISHED", 2, True)
        assert grants(client, "addon-seats") == [("feature-seats", 50)]

    def test_removing_the_draft_returns_to_the_published_version(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)], publish=True)
        client.v1.addons.create_draft("addon-seats")
        client.v1.addons.entitlements.update(
            "feature-seats", addon_id="addon-seats", type="FEATURE", usage_limit=99
        )
        removed = client.v1.addons.remove_draft("addon-seats").data
        assert removed.id == "addon-seats"
        current = client.v1.addons.retrieve("addon-seats").data
        assert (current.status, current.version_number, current.is_latest) == (
            "PUBLISHED",
            1,
            True,
        )
        assert grants(client, "addon-seats") == [("feature-seats", 5)]
        # No draft left to remove.
        with pytest.raises(stigg.NotFoundError):
            client.v1.addons.remove_draft("addon-seats")
        # A fresh draft is version 2 again, copied from the published version.
        fresh = client.v1.addons.create_draft("addon-seats").data
        assert fresh.version_number == 2
        assert grants(client, "addon-seats") == [("feature-seats", 5)]

    def test_removing_the_only_draft_deletes_the_add_on(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)])
        assert client.v1.addons.remove_draft("addon-seats").data.id == "addon-seats"
        with pytest.raises(stigg.NotFoundError):
            client.v1.addons.retrieve("addon-seats")
        assert http.get("/api/v1/addons/addon-seats").status_code == 404
        assert client.v1.addons.list(product_id="product-saas").data == []
        # The id is free again.
        assert factories.addon(http, id="addon-seats")["versionNumber"] == 1

    def test_the_only_draft_of_an_add_on_in_use_stays(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-base")
        factories.addon(http, id="addon-extra")
        depends = http.patch("/api/v1/addons/addon-extra", json={"dependencies": ["addon-base"]})
        assert depends.status_code == 200, depends.text
        response = http.delete("/api/v1/addons/addon-base/draft")
        assert response.status_code == 409
        assert "addon-extra" in response.json()["error"]["message"]
        assert http.get("/api/v1/addons/addon-base").status_code == 200

    def test_an_archived_add_on_gets_no_draft(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats", publish=True)
        http.post("/api/v1/addons/addon-seats/archive")
        response = http.post("/api/v1/addons/addon-seats/draft")
        assert response.status_code == 409
        assert "archived" in response.json()["error"]["message"]


@pytest.mark.usefixtures("catalog")
class TestDependencies:
    def test_unknown_add_on_is_refused(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats")
        response = http.patch("/api/v1/addons/addon-seats", json={"dependencies": ["addon-nope"]})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["field"] == "dependencies"
        assert "addon-nope" in error["message"]
        assert http.get("/api/v1/addons/addon-seats").json()["data"]["dependencies"] == []

    def test_an_add_on_cannot_depend_on_itself(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats")
        response = http.patch("/api/v1/addons/addon-seats", json={"dependencies": ["addon-seats"]})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "dependencies"

    def test_a_plan_or_another_products_add_on_is_refused(self, http: httpx.Client) -> None:
        factories.product(http, id="product-other")
        factories.addon(http, id="addon-elsewhere", product_id="product-other", publish=True)
        factories.plan(http, id="plan-free", publish=True)
        factories.addon(http, id="addon-seats")
        for other in ("addon-elsewhere", "plan-free"):
            response = http.patch("/api/v1/addons/addon-seats", json={"dependencies": [other]})
            assert response.status_code == 422, other
            assert response.json()["error"]["field"] == "dependencies"

    def test_a_dependency_must_be_published_first(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-base")
        factories.addon(http, id="addon-extra")
        updated = client.v1.addons.update("addon-extra", dependencies=["addon-base"]).data
        assert updated.dependencies == ["addon-base"]

        refused = http.post(
            "/api/v1/addons/addon-extra/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["field"] == "dependencies"
        assert "addon-base" in error["message"]
        assert client.v1.addons.retrieve("addon-extra").data.status == "DRAFT"

        client.v1.addons.publish("addon-base", migration_type="NEW_CUSTOMERS")
        client.v1.addons.publish("addon-extra", migration_type="NEW_CUSTOMERS")
        published = client.v1.addons.retrieve("addon-extra").data
        assert (published.status, published.dependencies) == ("PUBLISHED", ["addon-base"])

    def test_a_dependency_cannot_be_archived(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-base", publish=True)
        factories.addon(http, id="addon-extra")
        http.patch("/api/v1/addons/addon-extra", json={"dependencies": ["addon-base"]})
        response = http.post("/api/v1/addons/addon-base/archive")
        assert response.status_code == 409
        assert "addon-extra" in response.json()["error"]["message"]


@pytest.mark.usefixtures("catalog")
class TestUpdate:
    @pytest.mark.parametrize("status", ["PUBLISHED", "ARCHIVED", "DRAFT"])
    def test_status_is_not_changed_by_update(self, http: httpx.Client, status: str) -> None:
        factories.addon(http, id="addon-seats")
        response = http.patch("/api/v1/addons/addon-seats", json={"status": status})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["field"] == "status"
        assert "publish" in error["message"]
        assert http.get("/api/v1/addons/addon-seats").json()["data"]["status"] == "DRAFT"

    def test_the_stigg_client_gets_a_typed_error(self, client: stigg.Stigg) -> None:
        client.v1.addons.create(id="addon-seats", display_name="Seats", product_id="product-saas")
        with pytest.raises(stigg.UnprocessableEntityError):
            client.v1.addons.update("addon-seats", status="PUBLISHED")

    def test_a_malformed_price_is_refused_by_field(self, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats")
        response = http.patch(
            "/api/v1/addons/addon-seats",
            json={"charges": {"pricingType": "PAID", "pricingModels": [{"x": 1}]}},
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "charges.pricingModels.0.billingModel"


@pytest.mark.usefixtures("catalog")
class TestArchive:
    def test_refused_while_a_live_plan_offers_it(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-seats", publish=True)
        factories.plan(http, id="plan-pro")
        patched = http.patch("/api/v1/plans/plan-pro", json={"compatibleAddonIds": ["addon-seats"]})
        assert patched.status_code == 200, patched.text

        response = http.post("/api/v1/addons/addon-seats/archive")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "in_use"
        assert "plan-pro" in error["message"]
        with pytest.raises(stigg.ConflictError):
            client.v1.addons.archive("addon-seats")
        assert client.v1.addons.retrieve("addon-seats").data.status == "PUBLISHED"

        assert http.post("/api/v1/plans/plan-pro/archive").status_code == 200
        archived = client.v1.addons.archive("addon-seats").data
        assert archived.status == "ARCHIVED"
        assert client.v1.addons.retrieve("addon-seats").data.status == "ARCHIVED"

    def test_an_unused_add_on_archives_and_stays_archived(
        self, client: stigg.Stigg, http: httpx.Client
    ) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)], publish=True)
        assert client.v1.addons.archive("addon-seats").data.status == "ARCHIVED"
        assert client.v1.addons.archive("addon-seats").data.status == "ARCHIVED"
        edit = http.patch("/api/v1/addons/addon-seats", json={"displayName": "X"})
        assert edit.status_code == 409
        offered = http.post(
            "/api/v1/plans",
            json={"id": "plan-pro", "displayName": "Pro", "productId": "product-saas"},
        )
        assert offered.status_code == 201
        refused = http.patch("/api/v1/plans/plan-pro", json={"compatibleAddonIds": ["addon-seats"]})
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "compatibleAddonIds"

    def test_unknown_add_on_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.addons.archive("addon-nope")


@pytest.mark.usefixtures("catalog")
class TestList:
    def test_filters_by_product_and_status(self, client: stigg.Stigg, http: httpx.Client) -> None:
        factories.product(http, id="product-other")
        factories.addon(http, id="addon-draft")
        factories.addon(http, id="addon-live", publish=True)
        factories.addon(http, id="addon-old", publish=True)
        client.v1.addons.archive("addon-old")
        factories.addon(http, id="addon-elsewhere", product_id="product-other", publish=True)
        factories.plan(http, id="plan-free")

        def ids(**filters: Any) -> list[str]:
            return [addon.id for addon in client.v1.addons.list(**filters).data]

        assert ids() == ["addon-draft", "addon-live", "addon-old", "addon-elsewhere"]
        assert ids(product_id="product-saas") == ["addon-draft", "addon-live", "addon-old"]
        assert ids(product_id="product-other") == ["addon-elsewhere"]
        assert ids(product_id="product-nope") == []
        assert ids(status=["DRAFT"]) == ["addon-draft"]
        assert ids(status=["ARCHIVED"]) == ["addon-old"]
        assert ids(status=["PUBLISHED"], product_id="product-saas") == ["addon-live"]
        assert ids(status=["DRAFT", "ARCHIVED"]) == ["addon-draft", "addon-old"]

        listed = {addon.id: addon for addon in client.v1.addons.list().data}
        assert listed["addon-old"].status == "ARCHIVED"
        assert listed["addon-live"].is_latest is True

    def test_pages(self, client: stigg.Stigg) -> None:
        ids = [f"addon-{index}" for index in range(5)]
        for addon_id in ids:
            client.v1.addons.create(id=addon_id, display_name=addon_id, product_id="product-saas")
        first = client.v1.addons.list(limit=2)
        assert [addon.id for addon in first.data] == ids[:2]
        assert [addon.id for addon in first] == ids

    def test_unknown_status_is_refused(self, http: httpx.Client) -> None:
        response = http.get("/api/v1/addons", params={"status": "DRAFT,LIVE"})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "status"


@pytest.mark.usefixtures("catalog")
class TestClientKey:
    def test_client_key_may_read_but_not_write(self, tenant: Tenant, http: httpx.Client) -> None:
        factories.addon(http, id="addon-seats", entitlements=[factories.seats(5)])
        with tenant.http(key=tenant.client_key) as browser:
            assert browser.get("/api/v1/addons").json()["data"][0]["id"] == "addon-seats"
            assert browser.get("/api/v1/addons/addon-seats").status_code == 200
            assert browser.get("/api/v1/addons/addon-seats/entitlements").status_code == 200
            writes = [
                browser.post(
                    "/api/v1/addons",
                    json={"id": "addon-x", "displayName": "X", "productId": "product-saas"},
                ),
                browser.patch("/api/v1/addons/addon-seats", json={"displayName": "X"}),
                browser.post(
                    "/api/v1/addons/addon-seats/publish", json={"migrationType": "NEW_CUSTOMERS"}
                ),
                browser.delete("/api/v1/addons/addon-seats/draft"),
                browser.delete("/api/v1/addons/addon-seats/entitlements/feature-seats"),
                browser.post("/api/v1/addons/addon-seats/archive"),
            ]
        for response in writes:
            assert response.status_code == 403, response.request.url
        current = http.get("/api/v1/addons/addon-seats").json()["data"]
        assert (current["displayName"], current["status"]) == ("addon-seats", "DRAFT")
        assert [grant["id"] for grant in current["entitlements"]] == ["feature-seats"]
