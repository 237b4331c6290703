"""One rule for date-times (docs/api.md): every date-time a request can carry, in a body,
a batch item or the query string, needs a time zone, and one sent without gets the same
422 answer wherever it is."""

import re
from typing import Any

import httpx
import pytest

NAIVE = "2026-03-01T00:00:00"
RULE = "Value error, needs a time zone, such as a trailing Z"


def refusal(field: str) -> dict[str, Any]:
    """The whole answer to a request whose one problem is a naive date-time in `field`."""
    return {
        "code": "invalid_value",
        "message": f"{field}: {RULE}",
        "field": field,
        "details": [{"field": field, "message": RULE}],
    }


class TestOneAnswerForANaiveDateTime:
    @pytest.mark.parametrize(
        ("method", "path", "params", "body", "field"),
        [
            (
                "POST",
                "/api/v1/subscriptions",
                None,
                {"customerId": "acme", "planId": "plan-pro", "startDate": NAIVE},
                "startDate",
            ),
            (
                "POST",
                "/api/v1/usage",
                None,
                {
                    "usages": [
                        {"customerId": "acme", "featureId": "feature-x", "value": 1},
                        {
                            "customerId": "acme",
                            "featureId": "feature-x",
                            "value": 1,
                            "createdAt": NAIVE,
                        },
                    ]
                },
                "usages.1.createdAt",
            ),
            (
                "GET",
                "/api/v1/usage/acme/history/feature-x",
                {"startDate": NAIVE},
                None,
                "startDate",
            ),
            ("GET", "/api/v1/features", {"createdAt[gt]": NAIVE}, None, "createdAt[gt]"),
            (
                "POST",
                "/api/v1/webhooks/we_nope/redeliver-failed",
                {"since": NAIVE},
                None,
                "since",
            ),
        ],
        ids=["body field", "batch item", "query parameter", "created-at range", "since"],
    )
    def test_body_batch_and_query_answer_alike(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        field: str,
    ) -> None:
        response = http.request(method, path, params=params, json=body)
        assert response.status_code == 422, response.text
        assert response.json() == {"error": refusal(field)}

    def test_every_date_time_input_of_the_reference_follows_the_rule(
        self, http: httpx.Client
    ) -> None:
        document = http.get("/openapi.json").json()
        inputs = list(_date_time_inputs(document))
        kinds = {kind for *_, kind, _ in inputs}
        assert kinds == {"body", "query"}, inputs  # the walk finds both kinds
        assert any("0" in pointer for *_, pointer in inputs), inputs  # and batch items
        wrong = []
        for method, path, kind, pointer in inputs:
            field = ".".join(pointer)
            url = re.sub(r"\{[^}]+\}", "x", path)
            if kind == "query":
                response = http.request(method, url, params={field: NAIVE})
            else:
                response = http.request(method, url, json=_nested(pointer, NAIVE))
            details = response.json().get("error", {}).get("details") or []
            if response.status_code != 422 or {"field": field, "message": RULE} not in details:
                wrong.append(f"{method.upper()} {path} {kind} {field}: {response.text}")
        assert wrong == []


def _date_time_inputs(document: dict[str, Any]) -> Any:
    """(method, path, "body" or "query", pointer) of every date-time a request carries."""
    schemas = document["components"]["schemas"]

    def walk(schema: dict[str, Any], pointer: list[str], seen: frozenset[str]) -> Any:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(schemas[name], pointer, seen | {name})
            return
        if schema.get("format") == "date-time":
            yield pointer
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                yield from walk(branch, pointer, seen)
        for name, child in schema.get("properties", {}).items():
            yield from walk(child, [*pointer, name], seen)
        if "items" in schema:
            yield from walk(schema["items"], [*pointer, "0"], seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for pointer in walk(parameter.get("schema", {}), [parameter["name"]], frozenset()):
                    yield method, path, parameter["in"], pointer
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if body is not None:
                for pointer in walk(body, [], frozenset()):
                    yield method, path, "body", pointer


def _nested(pointer: list[str], value: object) -> Any:
    """`value` placed at `pointer` ("0" for an array's first item) in an otherwise empty
    document."""
    if not pointer:
        return value
    head, *rest = pointer
    inner = _nested(rest, value)
    return [inner] if head == "0" else {head: inner}
