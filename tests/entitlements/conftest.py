"""The catalog the entitlement tests of this folder read."""

import httpx
import pytest

from tests.support import factories


@pytest.fixture
def catalog(http: httpx.Client) -> None:
    """A plan with a boolean, a limited number and an enum, and an add-on with more seats."""
    factories.feature(http, id="feature-sso", featureType="BOOLEAN", meterType="None")
    factories.feature(http, id="feature-seats")
    factories.feature(
        http,
        id="feature-region",
        featureType="ENUM",
        meterType="None",
        enumConfiguration=[
            {"value": "eu", "displayName": "EU"},
            {"value": "us", "displayName": "US"},
            {"value": "apac", "displayName": "APAC"},
        ],
    )
    factories.product(http)
    factories.plan(
        http,
        id="plan-base",
        entitlements=[
            {"id": "feature-seats", "type": "FEATURE", "usageLimit": 5},
            {"id": "feature-region", "type": "FEATURE", "enumValues": ["eu", "us"]},
        ],
        publish=True,
    )
    factories.addon(
        http,
        id="addon-seats",
        entitlements=[{"id": "feature-seats", "type": "FEATURE", "usageLimit": 10}],
        publish=True,
    )
    factories.plan(
        http,
        id="plan-team",
        parentPlanId="plan-base",
        entitlements=[{"id": "feature-sso", "type": "FEATURE"}],
    )
    assert (
        http.patch("/api/v1/plans/plan-team", json={"compatibleAddonIds": ["addon-seats"]})
    ).status_code == 200
    published = http.post(
        "/api/v1/plans/plan-team/publish", json={"migrationType": "NEW_CUSTOMERS"}
    )
    assert published.status_code == 200, published.text
    assert http.post("/api/v1/customers", json={"id": "acme"}).status_code == 201
    provisioned = http.post(
        "/api/v1/subscriptions",
        json={
            "customerId": "acme",
            "planId": "plan-team",
            "id": "sub-acme",
            "addons": [{"id": "addon-seats", "quantity": 2}],
        },
    )
    assert provisioned.status_code == 200, provisioned.text
