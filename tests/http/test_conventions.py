"""The wire conventions every endpoint shares: envelopes, lists, errors, operations routes."""

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import stigg

from tests.support import Tenant, factories, free_port, live_server
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.kit.pagination import encode_cursor

CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def camel_case_problems(value: object, path: str = "") -> list[str]:
    """Every key in a JSON document that is not camelCase, with where it sits."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            # Metadata keys are the caller's own, echoed back as sent.
            if not CAMEL_CASE.match(key) and not path.endswith(".metadata"):
                problems.append(f"{path}.{key}")
            problems.extend(camel_case_problems(child, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            problems.extend(camel_case_problems(child, f"{path}.{index}"))
    return problems


def assert_error_shape(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


class TestEnvelope:
    def test_an_object_comes_wrapped_in_data(self, http: httpx.Client) -> None:
        created = http.post(
            "/api/v1/features",
            json={"id": "feature-sso", "displayName": "SSO", "featureType": "BOOLEAN"},
        )
        assert created.status_code == 201, created.text
        assert set(created.json()) == {"data"}
        assert created.json()["data"]["id"] == "feature-sso"

        fetched = http.get("/api/v1/features/feature-sso")
        assert fetched.status_code == 200
        assert set(fetched.json()) == {"data"}
        assert fetched.json()["data"] == created.json()["data"]

    def test_keys_are_camel_case(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        data = http.get("/api/v1/features/feature-seats").json()["data"]
        assert "displayName" in data
        assert "featureType" in data
        assert "createdAt" in data
        assert camel_case_problems(data) == []

    def test_a_list_has_data_and_pagination(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-a")
        response = http.get("/api/v1/features")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"data", "pagination"}
        assert isinstance(body["data"], list)
        assert [item["id"] for item in body["data"]] == ["feature-a"]
        assert set(body["pagination"]) == {"next", "prev"}
        assert body["pagination"] == {"next": None, "prev": None}
        assert camel_case_problems(body) == []

    def test_an_empty_list_is_still_a_list(self, http: httpx.Client) -> None:
        body = http.get("/api/v1/features").json()
        assert body == {"data": [], "pagination": {"next": None, "prev": None}}


class TestPaginationParameters:
    @pytest.mark.parametrize("limit", [0, -1, 101])
    def test_limit_out_of_bounds_is_refused(self, http: httpx.Client, limit: int) -> None:
        response = http.get("/api/v1/features", params={"limit": limit})
        error = assert_error_shape(response, 422, "invalid_value")
        assert error["field"] == "limit"

    @pytest.mark.parametrize("limit", [1, 100])
    def test_limit_bounds_themselves_are_accepted(self, http: httpx.Client, limit: int) -> None:
        assert http.get("/api/v1/features", params={"limit": limit}).status_code == 200

    def test_non_numeric_limit_is_refused_by_field(self, http: httpx.Client) -> None:
        error = assert_error_shape(http.get("/api/v1/features?limit=ten"), 422)
        assert error["field"] == "limit"

    @pytest.mark.parametrize("cursor", ["garbage!", "aWQ6eA", "eDox", "%%%"])
    @pytest.mark.parametrize("field", ["after", "before"])
    def test_a_garbage_cursor_is_a_bad_request(
        self, http: httpx.Client, cursor: str, field: str
    ) -> None:
        response = http.get("/api/v1/features", params={field: cursor})
        error = assert_error_shape(response, 400, "bad_request")
        assert error["field"] == field

    def test_after_and_before_together_are_refused(self, http: httpx.Client) -> None:
        response = http.get(
            "/api/v1/features", params={"after": encode_cursor(1), "before": encode_cursor(5)}
        )
        error = assert_error_shape(response, 400, "bad_request")
        assert error["field"] == "after"
        assert "before" in error["message"]


class TestRequestBodies:
    def test_malformed_json_is_a_bad_request(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/features",
            content=b'{"id": "feature-x", "displayName": ',
            headers={"content-type": "application/json"},
        )
        assert_error_shape(response, 400, "bad_request")
        assert http.get("/api/v1/features/feature-x").status_code == 404

    def test_an_unknown_field_is_named(self, http: httpx.Client) -> None:
        response = http.post(
            "/api/v1/features",
            json={
                "id": "feature-x",
                "displayName": "X",
                "featureType": "BOOLEAN",
                "colour": "red",
            },
        )
        error = assert_error_shape(response, 422, "invalid_value")
        assert error["field"] == "colour"
        assert "colour" in error["message"]
        assert {"field": "colour"}.items() <= error["details"][0].items()
        assert http.get("/api/v1/features/feature-x").status_code == 404

    def test_every_problem_is_listed_in_details(self, http: httpx.Client) -> None:
        response = http.post("/api/v1/features", json={"bogus": 1, "other": 2})
        error = assert_error_shape(response, 422)
        fields = {detail["field"] for detail in error["details"]}
        assert {"bogus", "other", "id", "displayName"} <= fields
        for detail in error["details"]:
            assert detail["message"]


class TestUnstorableInput:
    def test_a_nul_byte_in_a_body_is_refused_by_field(self, http: httpx.Client) -> None:
        body = {"id": "feature-x", "displayName": "bad\x00name", "featureType": "BOOLEAN"}
        response = http.post("/api/v1/features", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "displayName"
        assert http.get("/api/v1/features/feature-x").status_code == 404

    def test_a_nul_byte_in_a_path_or_query_is_not_a_server_error(self, http: httpx.Client) -> None:
        assert http.get("/api/v1/features/feature%00x").status_code in (404, 422)
        assert http.get("/api/v1/features", params={"id": "a\x00b"}).status_code in (200, 422)

    def test_a_limit_beyond_64_bits_is_refused(self, http: httpx.Client) -> None:
        http.post(
            "/api/v1/features",
            json={"id": "feature-seats", "displayName": "Seats", "featureType": "NUMBER"},
        )
        http.post("/api/v1/products", json={"id": "product-saas", "displayName": "SaaS"})
        http.post(
            "/api/v1/plans", json={"id": "plan-x", "displayName": "X", "productId": "product-saas"}
        )
        grant = {"id": "feature-seats", "type": "FEATURE", "usageLimit": 2**64}
        response = http.post("/api/v1/plans/plan-x/entitlements", json={"entitlements": [grant]})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "entitlements.0.usageLimit"


class TestOutOfRangeParameters:
    def test_a_cursor_beyond_64_bits_is_a_bad_request(self, http: httpx.Client) -> None:
        huge = base64.urlsafe_b64encode(b"id:99999999999999999999").decode().rstrip("=")
        response = http.get("/api/v1/features", params={"after": huge})
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "after"

    def test_a_date_out_of_range_in_utc_is_refused(self, http: httpx.Client) -> None:
        response = http.get(
            "/api/v1/features", params={"createdAt[gt]": "9999-12-31T23:59:59-23:59"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "createdAt[gt]"

    def test_a_page_past_the_end_still_leads_back(self, http: httpx.Client) -> None:
        for index in range(3):
            http.post(
                "/api/v1/features",
                json={"id": f"feature-{index}", "displayName": "F", "featureType": "BOOLEAN"},
            )
        beyond = http.get("/api/v1/features", params={"limit": 2, "after": encode_cursor(10**12)})
        assert beyond.json()["data"] == []
        back_cursor = beyond.json()["pagination"]["prev"]
        assert back_cursor is not None
        back = http.get("/api/v1/features", params={"limit": 2, "before": back_cursor})
        assert [item["id"] for item in back.json()["data"]] == ["feature-1", "feature-2"]


class TestEnvironmentHeader:
    def test_naming_the_keys_own_environment_is_fine(self, tenant: Tenant) -> None:
        with tenant.http() as http:
            response = http.get("/api/v1/features", headers={"X-ENVIRONMENT-ID": tenant.name})
        assert response.status_code == 200

    def test_naming_another_environment_is_refused(
        self, client: stigg.Stigg, tenant: Tenant
    ) -> None:
        with pytest.raises(stigg.PermissionDeniedError) as caught:
            client.v1.features.create_feature(
                id="feature-x",
                display_name="X",
                feature_type="BOOLEAN",
                x_environment_id="production",
            )
        assert "production" in str(caught.value)
        with tenant.http() as http:
            assert http.get("/api/v1/features/feature-x").status_code == 404


class TestErrorShape:
    def test_an_unknown_route_is_a_404_in_the_error_shape(self, http: httpx.Client) -> None:
        assert_error_shape(http.get("/api/v1/no-such-thing"), 404, "not_found")

    def test_a_wrong_method_is_a_405_in_the_error_shape(self, http: httpx.Client) -> None:
        response = http.delete("/api/v1/features")
        assert_error_shape(response, 405, "method_not_allowed")

    def test_an_unknown_id_is_a_404_naming_it(self, http: httpx.Client) -> None:
        error = assert_error_shape(http.get("/api/v1/features/feature-nope"), 404, "not_found")
        assert "feature-nope" in error["message"]

    @pytest.mark.parametrize(
        ("method", "path", "kwargs", "status"),
        [
            ("GET", "/api/v1/features", {"params": {"limit": 0}}, 422),
            ("GET", "/api/v1/features", {"params": {"after": "garbage!"}}, 400),
            ("GET", "/api/v1/features/feature-nope", {}, 404),
            ("GET", "/api/v1/no-such-thing", {}, 404),
            ("DELETE", "/api/v1/features", {}, 405),
            ("POST", "/api/v1/features", {"json": {"bogus": 1}}, 422),
            ("GET", "/api/v1/features", {"headers": {"X-API-KEY": "tg_server_nope"}}, 401),
        ],
    )
    def test_client_errors_say_not_to_retry(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        kwargs: dict[str, object],
        status: int,
    ) -> None:
        response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert_error_shape(response, status)
        assert response.headers.get("x-should-retry") == "false"

    def test_a_conflict_says_not_to_retry(self, http: httpx.Client) -> None:
        factories.feature(http, id="feature-seats")
        again = http.post(
            "/api/v1/features",
            json={"id": "feature-seats", "displayName": "Seats", "featureType": "BOOLEAN"},
        )
        assert_error_shape(again, 409)
        assert again.headers.get("x-should-retry") == "false"

    def test_the_stigg_client_does_not_retry_a_conflict(self, tenant: Tenant) -> None:
        sent: list[str] = []

        def count(request: httpx.Request) -> None:
            sent.append(request.method)

        with (
            httpx.Client(event_hooks={"request": [count]}) as transport,
            stigg.Stigg(
                api_key=tenant.server_key,
                base_url=tenant.base_url,
                max_retries=2,
                http_client=transport,
            ) as sdk,
        ):
            sdk.v1.features.create_feature(
                id="feature-sso", display_name="SSO", feature_type="BOOLEAN"
            )
            assert sent == ["POST"]
            with pytest.raises(stigg.ConflictError):
                sdk.v1.features.create_feature(
                    id="feature-sso", display_name="SSO", feature_type="BOOLEAN"
                )
        assert sent == ["POST", "POST"]


class TestOperations:
    def test_openapi_lists_the_api(self, base_url: str) -> None:
        response = httpx.get(f"{base_url}/openapi.json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        assert "/api/v1/features" in paths
        assert {"get", "post"} <= set(paths["/api/v1/features"])

    def test_docs_answer(self, base_url: str) -> None:
        response = httpx.get(f"{base_url}/docs")
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]

    def test_healthz_is_ok_on_a_migrated_database_without_a_key(self, base_url: str) -> None:
        response = httpx.get(f"{base_url}/healthz")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok"


class TestUnmigratedDatabase:
    def test_healthz_is_unavailable(self, tmp_path: Path) -> None:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'empty.db'}", migrate_on_start=False
        )
        with live_server(create_app(settings)) as url:
            response = httpx.get(f"{url}/healthz")
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "unavailable"
        assert "migrat" in error["message"]


class TestUnreachableDatabase:
    def test_requests_get_a_503_that_invites_a_retry(self) -> None:
        settings = Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
            migrate_on_start=False,
        )
        with live_server(create_app(settings)) as url:
            response = httpx.get(f"{url}/api/v1/features", headers={"X-API-KEY": "tg_server_x"})
            health = httpx.get(f"{url}/healthz")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "unavailable"
        assert health.status_code == 503


class TestDocumentedErrors:
    def test_error_statuses_are_in_the_openapi_document(self, base_url: str) -> None:
        operation = httpx.get(f"{base_url}/openapi.json").json()["paths"]["/api/v1/features"][
            "post"
        ]
        assert {"400", "401", "403", "409", "422"} <= set(operation["responses"])


class TestNestedNulBytes:
    def test_a_nul_byte_inside_metadata_is_refused(self, http: httpx.Client) -> None:
        body = {"id": "product-x", "displayName": "X", "metadata": {"k\x00": "v"}}
        response = http.post("/api/v1/products", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "metadata"


class TestEmptyCursors:
    def test_empty_cursors_count_as_absent(self, http: httpx.Client) -> None:
        response = http.get("/api/v1/features", params={"after": "", "before": ""})
        assert response.status_code == 200


class TestMethodNotAllowed:
    def test_a_405_lists_every_method_of_the_path(self, http: httpx.Client) -> None:
        for path, methods in (
            ("/api/v1/addons", {"GET", "POST"}),
            ("/api/v1/addons/x/draft", {"POST", "DELETE"}),
            ("/api/v1/customers/x", {"GET", "PATCH"}),
        ):
            response = http.request("TRACE", path)
            assert response.status_code == 405, path
            assert response.json()["error"]["code"] == "method_not_allowed"
            assert set(response.headers["allow"].split(", ")) == methods, path
