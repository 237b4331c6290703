from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stigg

from tests.support import Tenant, factories

METER = {
    "aggregation": {"function": "SUM", "field": "tokens"},
    "filters": [
        {
            "conditions": [
                {"field": "eventName", "operation": "EQUALS", "value": "llm_call"},
                {"field": "model", "operation": "IN", "values": ["a", "b"]},
            ]
        },
        {"conditions": [{"field": "legacy", "operation": "IS_NOT_NULL"}]},
    ],
}


class TestCreateAndRead:
    def test_every_field_round_trips_through_the_stigg_client(self, client: stigg.Stigg) -> None:
        created = client.v1.features.create_feature(
            id="feature-tokens",
            display_name="LLM tokens",
            feature_type="NUMBER",
            meter_type="INCREMENTAL",
            description="Tokens spent",
            feature_units="token",
            feature_units_plural="tokens",
            metadata={"team": "ai"},
            meter=METER,  # type: ignore[arg-type]
            unit_transformation={"divide": 1000, "round": "UP", "feature_units": "k tokens"},
        ).data
        assert created.id == "feature-tokens"
        assert created.feature_type == "NUMBER"
        assert created.meter_type == "INCREMENTAL"
        assert created.feature_status == "NEW"
        assert created.metadata == {"team": "ai"}
        assert created.meter is not None
        assert created.meter.aggregation.function == "SUM"
        assert created.meter.filters[0].conditions[1].values == ["a", "b"]
        assert created.unit_transformation is not None
        assert created.unit_transformation.divide == 1000
        assert created.unit_transformation.round == "UP"

        fetched = client.v1.features.retrieve_feature("feature-tokens").data
        assert fetched.model_dump() == created.model_dump()

    def test_enum_feature_keeps_its_values(self, client: stigg.Stigg) -> None:
        feature = client.v1.features.create_feature(
            id="feature-region",
            display_name="Region",
            feature_type="ENUM",
            enum_configuration=[
                {"value": "eu", "display_name": "Europe"},
                {"value": "us", "display_name": "United States"},
            ],
        ).data
        assert [value.value for value in feature.enum_configuration or []] == ["eu", "us"]
        assert feature.meter_type == "None"

    def test_duplicate_id_is_a_conflict(self, client: stigg.Stigg) -> None:
        client.v1.features.create_feature(
            id="feature-sso", display_name="SSO", feature_type="BOOLEAN"
        )
        with pytest.raises(stigg.ConflictError) as caught:
            client.v1.features.create_feature(
                id="feature-sso", display_name="Again", feature_type="BOOLEAN"
            )
        assert "feature-sso" in str(caught.value)

    def test_unknown_id_is_not_found(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            client.v1.features.retrieve_feature("feature-nope")


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"featureType": "BOOLEAN", "meterType": "INCREMENTAL"}, "meterType"),
            ({"featureType": "ENUM"}, "enumConfiguration"),
            (
                {
                    "featureType": "ENUM",
                    "enumConfiguration": [
                        {"value": "a", "displayName": "A"},
                        {"value": "a", "displayName": "A again"},
                    ],
                },
                "enumConfiguration",
            ),
            ({"featureType": "NUMBER", "meter": METER}, "meter"),
            (
                {
                    "featureType": "NUMBER",
                    "meterType": "INCREMENTAL",
                    "meter": {"aggregation": {"function": "SUM"}, "filters": METER["filters"]},
                },
                "meter.aggregation.field",
            ),
            (
                {
                    "featureType": "NUMBER",
                    "meterType": "INCREMENTAL",
                    "meter": {
                        "aggregation": {"function": "COUNT"},
                        "filters": [{"conditions": [{"field": "x", "operation": "IN"}]}],
                    },
                },
                "meter.filters.0.conditions.0.values",
            ),
            (
                {"featureType": "BOOLEAN", "unitTransformation": {"divide": 10}},
                "unitTransformation",
            ),
            (
                {"featureType": "NUMBER", "unitTransformation": {"divide": 0}},
                "unitTransformation.divide",
            ),
            ({"featureType": "COLOR"}, "featureType"),
            ({"featureType": "BOOLEAN", "featureStatus": "SUSPENDED"}, "featureStatus"),
            ({"featureType": "BOOLEAN", "bogus": 1}, "bogus"),
        ],
    )
    def test_bad_shapes_are_refused_by_field(
        self, http: httpx.Client, body: dict[str, object], field: str
    ) -> None:
        response = http.post(
            "/api/v1/features", json={"id": "feature-x", "displayName": "X", **body}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == field
        assert error["message"]
        assert http.get("/api/v1/features/feature-x").status_code == 404

    def test_bad_ids_are_refused(self, http: httpx.Client) -> None:
        for bad in ["", " ", "has space", "slash/y", "x" * 256]:
            response = http.post(
                "/api/v1/features", json={"id": bad, "displayName": "X", "featureType": "BOOLEAN"}
            )
            assert response.status_code == 422, bad

    def test_the_stigg_client_gets_typed_errors(self, client: stigg.Stigg) -> None:
        with pytest.raises(stigg.UnprocessableEntityError):
            client.v1.features.create_feature(id="feature-e", display_name="E", feature_type="ENUM")


class TestList:
    def test_pages_forwards_and_backwards_in_a_stable_order(self, client: stigg.Stigg) -> None:
        ids = [f"feature-{index:02d}" for index in range(7)]
        for feature_id in ids:
            client.v1.features.create_feature(
                id=feature_id, display_name=feature_id, feature_type="BOOLEAN"
            )

        first = client.v1.features.list_features(limit=3)
        assert [feature.id for feature in first.data] == ids[:3]
        # Iterating a page follows pagination.next through every page.
        assert [feature.id for feature in first] == ids

        assert first.pagination is not None

        assert first.pagination.next is not None
        second = client.v1.features.list_features(limit=3, after=first.pagination.next)
        assert [feature.id for feature in second.data] == ids[3:6]
        assert second.pagination is not None
        assert second.pagination.prev is not None
        back = client.v1.features.list_features(limit=3, before=second.pagination.prev)
        assert [feature.id for feature in back.data] == ids[:3]
        assert back.pagination is not None
        assert back.pagination.prev is None

    def test_filters(self, client: stigg.Stigg) -> None:
        client.v1.features.create_feature(id="feature-a", display_name="A", feature_type="BOOLEAN")
        client.v1.features.create_feature(
            id="feature-b", display_name="B", feature_type="NUMBER", meter_type="INCREMENTAL"
        )
        client.v1.features.create_feature(
            id="feature-c", display_name="C", feature_type="NUMBER", meter_type="FLUCTUATING"
        )
        client.v1.features.archive_feature("feature-a")

        def ids(**filters: object) -> list[str]:
            return [feature.id for feature in client.v1.features.list_features(**filters).data]  # type: ignore[arg-type]

        assert ids(feature_type=["NUMBER"]) == ["feature-b", "feature-c"]
        assert ids(meter_type=["INCREMENTAL", "FLUCTUATING"]) == ["feature-b", "feature-c"]
        assert ids(status=["SUSPENDED"]) == ["feature-a"]
        assert ids(id="feature-c") == ["feature-c"]
        future = datetime.now(UTC) + timedelta(hours=1)
        assert ids(created_at={"gt": future}) == []
        assert ids(created_at={"lte": future}) == ["feature-a", "feature-b", "feature-c"]

    def test_unknown_filter_value_is_refused(self, http: httpx.Client) -> None:
        response = http.get("/api/v1/features", params={"featureType": "BOOLEAN,COLOR"})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "featureType"


class TestUpdate:
    def test_changes_only_what_is_sent(self, client: stigg.Stigg) -> None:
        created = client.v1.features.create_feature(
            id="feature-seats",
            display_name="Seats",
            feature_type="NUMBER",
            meter_type="FLUCTUATING",
            description="people",
            metadata={"a": "1"},
        ).data
        updated = client.v1.features.update_feature("feature-seats", display_name="Members").data
        assert updated.display_name == "Members"
        assert updated.description == "people"
        assert updated.metadata == {"a": "1"}
        assert updated.updated_at > created.updated_at
        assert client.v1.features.retrieve_feature("feature-seats").data == updated

    def test_type_cannot_change(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        response = http.patch("/api/v1/features/feature-seats", json={"featureType": "BOOLEAN"})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "featureType"

    def test_enum_values_in_use_cannot_be_dropped(self, http: httpx.Client) -> None:
        factories.feature(
            http,
            id="feature-region",
            featureType="ENUM",
            meterType="None",
            enumConfiguration=[
                {"value": "eu", "displayName": "EU"},
                {"value": "us", "displayName": "US"},
            ],
        )
        factories.product(http)
        factories.plan(
            http, entitlements=[{"id": "feature-region", "type": "FEATURE", "enumValues": ["eu"]}]
        )
        dropped = http.patch(
            "/api/v1/features/feature-region",
            json={"enumConfiguration": [{"value": "us", "displayName": "US"}]},
        )
        assert dropped.status_code == 409
        assert "eu" in dropped.json()["error"]["message"]
        kept = http.patch(
            "/api/v1/features/feature-region",
            json={"enumConfiguration": [{"value": "eu", "displayName": "Europe"}]},
        )
        assert kept.status_code == 200, kept.text


class TestArchive:
    def test_archive_and_unarchive(self, client: stigg.Stigg) -> None:
        client.v1.features.create_feature(
            id="feature-sso", display_name="SSO", feature_type="BOOLEAN"
        )
        assert client.v1.features.archive_feature("feature-sso").data.feature_status == "SUSPENDED"
        assert client.v1.features.unarchive_feature("feature-sso").data.feature_status == "NEW"

    def test_archiving_a_feature_in_use_names_its_users(
        self, http: httpx.Client, client: stigg.Stigg
    ) -> None:
        factories.feature(http, id="feature-seats")
        factories.product(http)
        factories.plan(http, id="plan-team", entitlements=[factories.seats(5)], publish=True)
        assert client.v1.features.retrieve_feature("feature-seats").data.feature_status == "ACTIVE"
        with pytest.raises(stigg.ConflictError) as caught:
            client.v1.features.archive_feature("feature-seats")
        assert "plan-team" in str(caught.value)

    def test_an_archived_feature_cannot_be_granted(
        self, http: httpx.Client, tenant: Tenant
    ) -> None:
        factories.feature(http, id="feature-seats")
        http.post("/api/v1/features/feature-seats/archive")
        factories.product(http)
        factories.plan(http)
        response = http.post(
            "/api/v1/plans/plan-free/entitlements", json={"entitlements": [factories.seats()]}
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "entitlements.0.id"


class TestStorableValues:
    def test_units_longer_than_a_column_are_refused_by_field(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/features",
            json={
                "id": "feature-x",
                "displayName": "X",
                "featureType": "NUMBER",
                "featureUnits": "u" * 300,
            },
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "featureUnits"
