"""Catalog webhooks: features, products, plans and add-ons, as their reads present them."""

from datetime import UTC, datetime
from typing import Any

import httpx
import stigg

from tests.support import Clocked
from tests.support.webhooks import Receiver, endpoint


def sent(receiver: Receiver, clocked: Clocked) -> list[tuple[str, Any]]:
    # The catalog stamps its changes with the wall clock, not the app's (test) clock.
    clocked.clock.set(datetime.now(UTC))
    clocked.run_jobs()
    return [(r.payload["type"], r.payload["id"]) for r in receiver.received]


class TestCatalogEvents:
    def test_features(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver)
        features = demo_client.v1.features
        features.create_feature(id="feature-a", display_name="A", feature_type="BOOLEAN")
        features.update_feature("feature-a", display_name="Audit log")
        features.archive_feature("feature-a")
        features.archive_feature("feature-a")  # already archived: nothing changes
        features.unarchive_feature("feature-a")
        assert sent(receiver, clocked) == [
            ("feature.created", "feature-a"),
            ("feature.updated", "feature-a"),
            ("feature.deleted", "feature-a"),
            ("feature.updated", "feature-a"),
        ]
        updated = receiver.received[1].payload
        assert (updated["displayName"], updated["featureType"]) == ("Audit log", "BOOLEAN")
        assert receiver.received[2].payload["featureStatus"] == "SUSPENDED"

    def test_products_and_plans(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver)
        v1 = demo_client.v1
        v1.products.create_product(id="product-b", display_name="B")
        v1.plans.create(id="plan-x", display_name="X", product_id="product-b")
        v1.plans.update("plan-x", display_name="Plan X")  # a draft edit: said at publish
        v1.plans.entitlements.create(
            "plan-x", entitlements=[{"type": "FEATURE", "id": "feature-sso"}]
        )
        v1.plans.publish("plan-x", migration_type="NEW_CUSTOMERS")
        v1.plans.archive("plan-x")
        v1.products.archive_product("product-b")
        assert sent(receiver, clocked) == [
            ("product.created", "product-b"),
            ("plan.created", "plan-x"),
            ("plan.updated", "plan-x"),
            ("plan.deleted", "plan-x"),
            ("product.deleted", "product-b"),
        ]
        published = receiver.received[2].payload
        assert (published["displayName"], published["status"]) == ("Plan X", "PUBLISHED")
        assert published["entitlements"] == [{"id": "feature-sso", "type": "FEATURE"}]
        assert receiver.received[3].payload["status"] == "ARCHIVED"

    def test_add_ons_and_a_removed_draft(
        self, http: httpx.Client, demo_client: stigg.Stigg, receiver: Receiver, clocked: Clocked
    ) -> None:
        endpoint(http, receiver, eventTypes=["addon.created", "addon.deleted"])
        addons = demo_client.v1.addons
        addons.create(id="addon-x", display_name="X", product_id="product-saas")
        addons.remove_draft("addon-x")  # never published: the add-on goes with its draft
        assert sent(receiver, clocked) == [
            ("addon.created", "addon-x"),
            ("addon.deleted", "addon-x"),
        ]
