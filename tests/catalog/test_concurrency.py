"""Concurrent requests on one package take turns: no 5xx, and published versions stay put."""

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, text

from tests.support import Tenant, factories

Call = tuple[str, str, dict[str, object] | None]


def _in_parallel(tenant: Tenant, calls: list[Call]) -> list[httpx.Response]:
    def send(call: Call) -> httpx.Response:
        method, path, body = call
        with tenant.http() as http:
            return http.request(method, path, json=body)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


class TestConcurrentDrafts:
    def test_parallel_draft_requests_open_one_draft(
        self, http: httpx.Client, tenant: Tenant
    ) -> None:
        factories.feature(http)
        factories.product(http)
        factories.plan(http, id="plan-pro", entitlements=[factories.seats(3)], publish=True)
        responses = _in_parallel(tenant, [("POST", "/api/v1/plans/plan-pro/draft", None)] * 60)
        assert [response.status_code for response in responses] == [200] * 60
        assert {response.json()["data"]["versionNumber"] for response in responses} == {2}

    def test_edits_racing_a_publish_never_change_the_published_version(
        self, http: httpx.Client, tenant: Tenant, engine: Engine
    ) -> None:
        factories.feature(http)
        factories.product(http)
        factories.plan(http, id="plan-pro", entitlements=[factories.seats(3)])
        edit: Call = (
            "PATCH",
            "/api/v1/plans/plan-pro/entitlements/feature-seats",
            {"type": "FEATURE", "usageLimit": 7},
        )
        publish: Call = (
            "POST",
            "/api/v1/plans/plan-pro/publish",
            {"migrationType": "NEW_CUSTOMERS"},
        )
        responses = _in_parallel(tenant, [edit] * 8 + [publish] + [edit] * 8)
        assert all(response.status_code in (200, 409) for response in responses), [
            response.text for response in responses if response.status_code not in (200, 409)
        ]
        assert responses[8].status_code == 200
        with engine.connect() as connection:
            late_edits = connection.execute(
                text(
                    "SELECT count(*) FROM package_entitlements e "
                    "JOIN package_versions v ON v.id = e.package_version_id "
                    "JOIN packages p ON p.id = v.package_id "
                    "JOIN environments n ON n.id = p.environment_id "
                    "WHERE n.name = :name AND v.status = 'PUBLISHED' "
                    "AND e.updated_at > v.published_at"
                ),
                {"name": tenant.name},
            ).scalar_one()
        assert late_edits == 0
