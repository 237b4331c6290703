"""API keys: who may call, what each kind may do, tenant isolation, storage and the CLI."""

import hashlib
from datetime import UTC, datetime

import httpx
import pytest
import stigg
from sqlalchemy import Engine, text

from tests.support import Tenant, factories, live_server, make_tenant
from tests.support.cli import Cli, flat
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.schema import migrate


class TestAuthentication:
    def test_a_missing_key_is_unauthenticated(self, tenant: Tenant) -> None:
        response = httpx.get(f"{tenant.base_url}/api/v1/features")
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "unauthenticated"
        assert "X-API-KEY" in error["message"]
        assert response.headers.get("x-should-retry") == "false"

    def test_an_empty_key_is_unauthenticated(self, tenant: Tenant) -> None:
        with tenant.http(key="") as raw:
            assert raw.get("/api/v1/features").status_code == 401

    def test_an_unknown_key_is_refused_by_the_stigg_client(self, tenant: Tenant) -> None:
        bogus = tenant.server_key[:-4] + "XXXX"
        with stigg.Stigg(api_key=bogus, base_url=tenant.base_url, max_retries=0) as sdk:
            with pytest.raises(stigg.AuthenticationError):
                sdk.v1.features.list_features()
            with pytest.raises(stigg.AuthenticationError):
                sdk.v1.features.create_feature(
                    id="feature-x", display_name="X", feature_type="BOOLEAN"
                )

    def test_a_key_prefix_alone_is_refused(self, tenant: Tenant) -> None:
        prefix = tenant.server_key[: environments.KEY_PREFIX_LENGTH]
        with tenant.http(key=prefix) as raw:
            assert raw.get("/api/v1/features").status_code == 401

    def test_a_revoked_key_is_unauthenticated(self, engine: Engine, tenant: Tenant) -> None:
        with tenant.http() as raw:
            assert raw.get("/api/v1/features").status_code == 200
        with unit_of_work(make_session_factory(engine)) as session:
            environments.revoke_key(session, key_or_prefix=tenant.server_key, now=datetime.now(UTC))
        with tenant.http() as raw:
            response = raw.get("/api/v1/features")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
        # The environment's other key is untouched.
        with tenant.http(key=tenant.client_key) as raw:
            assert raw.get("/api/v1/features").status_code == 200


class TestClientKeys:
    def test_a_client_key_reads(self, tenant: Tenant, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        with tenant.http(key=tenant.client_key) as raw:
            listed = raw.get("/api/v1/features")
            fetched = raw.get("/api/v1/features/feature-seats")
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["data"]] == ["feature-seats"]
        assert fetched.status_code == 200

    def test_a_client_key_cannot_write(self, tenant: Tenant, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        with stigg.Stigg(api_key=tenant.client_key, base_url=tenant.base_url, max_retries=0) as sdk:
            assert [feature.id for feature in sdk.v1.features.list_features().data] == [
                "feature-seats"
            ]
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.features.create_feature(
                    id="feature-x", display_name="X", feature_type="BOOLEAN"
                )
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.features.update_feature("feature-seats", display_name="Changed")
            with pytest.raises(stigg.PermissionDeniedError):
                sdk.v1.features.archive_feature("feature-seats")
        fetched = http.get("/api/v1/features/feature-seats").json()["data"]
        assert fetched["displayName"] == "feature-seats"
        assert fetched["featureStatus"] == "NEW"
        assert http.get("/api/v1/features/feature-x").status_code == 404

    def test_forbidden_is_a_403_in_the_error_shape(self, tenant: Tenant) -> None:
        with tenant.http(key=tenant.client_key) as raw:
            response = raw.post(
                "/api/v1/features",
                json={"id": "feature-x", "displayName": "X", "featureType": "BOOLEAN"},
            )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert response.headers.get("x-should-retry") == "false"


class TestIsolation:
    def test_another_environment_cannot_see_a_feature(
        self, engine: Engine, base_url: str, tenant: Tenant, http: httpx.Client
    ) -> None:
        factories.feature(http, id="feature-seats")
        other = make_tenant(engine, base_url)
        for key in (other.server_key, other.client_key):
            with other.http(key=key) as raw:
                assert raw.get("/api/v1/features/feature-seats").status_code == 404
                assert raw.get("/api/v1/features").json()["data"] == []
                assert raw.post("/api/v1/features/feature-seats/archive").status_code in (403, 404)

    def test_the_same_id_lives_independently_in_two_environments(
        self, engine: Engine, base_url: str, tenant: Tenant, http: httpx.Client
    ) -> None:
        factories.feature(http, id="feature-seats", displayName="Seats here")
        other = make_tenant(engine, base_url)
        with other.http() as raw:
            factories.feature(raw, id="feature-seats", displayName="Seats there")
            assert raw.get("/api/v1/features/feature-seats").json()["data"]["displayName"] == (
                "Seats there"
            )
        mine = http.get("/api/v1/features/feature-seats").json()["data"]
        assert mine["displayName"] == "Seats here"


class TestStorage:
    def test_keys_are_stored_hashed(self, engine: Engine, tenant: Tenant) -> None:
        with engine.connect() as connection:
            rows = [
                dict(row._mapping) for row in connection.execute(text("SELECT * FROM api_keys"))
            ]
        assert rows
        for row in rows:
            for value in row.values():
                assert tenant.server_key not in str(value)
                assert tenant.client_key not in str(value)
        for key in (tenant.server_key, tenant.client_key):
            mine = [
                row for row in rows if row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
            ]
            assert len(mine) == 1
            assert key.startswith(mine[0]["prefix"])
            assert len(mine[0]["prefix"]) < len(key)

    def test_each_kind_has_its_own_key_shape(self, tenant: Tenant) -> None:
        assert tenant.server_key.startswith("tg_server_")
        assert tenant.client_key.startswith("tg_client_")
        assert tenant.server_key != tenant.client_key


class TestCli:
    def test_keys_create_prints_the_key_last_and_creates_the_schema(self, cli: Cli) -> None:
        key = cli.create_key()
        assert key.startswith("tg_server_")
        assert len(key) > 40
        engine = make_engine(cli.database_url)
        try:
            assert migrate.is_up_to_date(engine)
            with unit_of_work(make_session_factory(engine)) as session:
                principal = environments.authenticate(session, raw_key=key)
            assert principal.environment_name == "dev"
            assert principal.key_kind == "server"
        finally:
            engine.dispose()

    def test_keys_create_a_client_key(self, cli: Cli) -> None:
        key = cli.create_key(kind="client")
        assert key.startswith("tg_client_")

    def test_keys_list_shows_the_prefix_not_the_key(self, cli: Cli) -> None:
        key = cli.create_key()
        result = cli.run("keys", "list")
        assert result.returncode == 0, result.stderr
        assert key[: environments.KEY_PREFIX_LENGTH] in result.stdout
        assert "dev" in result.stdout
        assert key not in result.stdout
        assert key not in result.stderr

    def test_keys_list_shows_the_whole_prefix_of_a_wide_row(self, cli: Cli) -> None:
        """Not a terminal, so 80 columns: the prefix `keys revoke` needs must still fit."""
        key = cli.create_key(environment="customer-production-eu-west-1")
        prefix = key[: environments.KEY_PREFIX_LENGTH]
        assert cli.run("keys", "revoke", key).returncode == 0
        result = cli.run("keys", "list")
        assert result.returncode == 0, result.stderr
        assert prefix in result.stdout

    def test_keys_revoke_by_prefix_locks_the_key_out_of_a_running_server(self, cli: Cli) -> None:
        key = cli.create_key()
        prefix = key[: environments.KEY_PREFIX_LENGTH]
        with live_server(create_app(Settings(database_url=cli.database_url))) as url:
            headers = {"X-API-KEY": key}
            assert httpx.get(f"{url}/api/v1/features", headers=headers).status_code == 200
            result = cli.run("keys", "revoke", prefix)
            assert result.returncode == 0, result.stderr
            assert httpx.get(f"{url}/api/v1/features", headers=headers).status_code == 401
        listing = cli.run("keys", "list")
        assert listing.returncode == 0, listing.stderr

    def test_revoking_an_unknown_key_fails_cleanly(self, cli: Cli) -> None:
        key = cli.create_key()
        for unknown in ("tg_server_nope", key + "x", key[:-1]):
            result = cli.run("keys", "revoke", unknown)
            assert result.returncode != 0
            assert "not found" in flat(result.stderr)
            assert "Traceback" not in result.stderr
        listing = cli.run("keys", "list")
        assert key[: environments.KEY_PREFIX_LENGTH] in listing.stdout
        engine = make_engine(cli.database_url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                assert environments.authenticate(session, raw_key=key).key_kind == "server"
        finally:
            engine.dispose()

    @pytest.mark.parametrize("name", ["Bad_Name", "has space", "-dash-first", "x" * 65])
    def test_a_bad_environment_name_fails_with_a_clear_message(self, cli: Cli, name: str) -> None:
        result = cli.run("keys", "create", "--environment", name, "--kind", "server")
        assert result.returncode != 0
        assert result.stdout.strip() == ""
        message = flat(result.stderr)
        assert "environment name" in message
        assert "lowercase letters, digits and dashes" in message
        assert "Traceback" not in result.stderr

    def test_an_unknown_kind_is_refused(self, cli: Cli) -> None:
        result = cli.run("keys", "create", "--environment", "dev", "--kind", "admin")
        assert result.returncode != 0
        assert result.stdout.strip() == ""

    def test_migrate_works_on_an_empty_database(self, cli: Cli) -> None:
        result = cli.run("migrate")
        assert result.returncode == 0, result.stderr
        engine = make_engine(cli.database_url)
        try:
            assert migrate.is_up_to_date(engine)
        finally:
            engine.dispose()
        again = cli.run("migrate")
        assert again.returncode == 0, again.stderr
