"""`tollgate serve --demo` as a user runs it: a real process on a free port."""

from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support import serving
from tests.support.servers import free_port
from tollgate.catalog.enums import FeatureType
from tollgate.catalog.features.schemas import FeatureCreate
from tollgate.catalog.features.service import create_feature
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.schema import migrate


def _catalog(base_url: str, key: str) -> dict[str, list[str]]:
    with httpx.Client(base_url=base_url, headers={"X-API-KEY": key}) as http:
        return {
            kind: [
                item["id"]
                for item in http.get(f"/api/v1/{kind}", params={"limit": 100}).json()["data"]
            ]
            for kind in ("features", "products", "plans", "addons")
        }


class TestServeDemo:
    def test_seeds_once_prints_working_keys_and_changes_nothing_the_second_time(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with serving(database_url, tmp_path / "first.log") as (base_url, keys, output):
            assert "seeded" in output
            assert set(keys) == {"server", "client"}
            first = _catalog(base_url, keys["server"])
            assert first == {
                "features": [
                    "feature-sso",
                    "feature-seats",
                    "feature-active-users",
                    "feature-api-calls",
                ],
                "products": ["product-saas"],
                "plans": ["plan-free", "plan-pro", "plan-enterprise"],
                "addons": ["addon-extra-seats"],
            }
            with httpx.Client(base_url=base_url, headers={"X-API-KEY": keys["client"]}) as http:
                assert http.get("/api/v1/plans").status_code == 200
                assert http.post("/api/v1/features", json={}).status_code == 403
        with serving(database_url, tmp_path / "second.log") as (base_url, again, output):
            assert "left unchanged" in output
            assert again == keys
            assert _catalog(base_url, keys["server"]) == first


class TestServeDemoOnAnExistingCatalog:
    def test_leaves_a_catalog_it_did_not_seed_alone_and_prints_no_keys(
        self, database_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        try:
            migrate.upgrade(engine)
            with unit_of_work(make_session_factory(engine)) as session:
                environment = ensure_environment(session, name="development")
                create_feature(
                    session,
                    environment_id=environment.id,
                    data=FeatureCreate(
                        id="feature-own", display_name="Own", feature_type=FeatureType.BOOLEAN
                    ),
                    now=datetime.now(UTC),
                )
        finally:
            engine.dispose()
        with serving(database_url, tmp_path / "serve.log") as (_base_url, keys, output):
            assert keys == {}
            assert "left unchanged" in output
            assert "tollgate keys create --environment development" in " ".join(output.split())


class TestEdgePort:
    def test_the_edge_port_serves_the_same_app(self, database_url: str, tmp_path: Path) -> None:
        """What Stigg's SDKs pointed at localhost read without baseEdgeUri (port 3060 in
        development; any free port here)."""
        edge_port = free_port()
        log = tmp_path / "serve.log"
        with serving(database_url, log, edge_port=str(edge_port)) as (base_url, keys, _out):
            headers = {"X-API-KEY": keys["server"]}
            edge = f"http://127.0.0.1:{edge_port}"
            config = httpx.get(f"{edge}/v1/config/server-sdk-configuration.json", headers=headers)
            assert config.status_code == 200
            assert config.json()["data"]["sdkConfiguration"]["sentryDsn"] is None
            # One app behind both ports: what one port writes, the other answers at once.
            created = httpx.post(f"{base_url}/api/v1/customers", json={"id": "c"}, headers=headers)
            assert created.status_code == 201
            listed = httpx.get(f"{edge}/v1/c/c/entitlements.json", headers=headers)
            assert listed.json() == {"data": {"entitlements": []}}
            assert httpx.get(f"{edge}/api/v1/customers/c", headers=headers).status_code == 200
