"""Rules every request body field follows, checked over the whole API at once: a bound on
every free-form value, stated in the API reference; JSON numbers and booleans only; dates
within the range Tollgate computes with. A new field that breaks a rule fails here."""

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.http.schemas import RequestModel

OPENAPI = create_app(Settings(database_url="sqlite://")).openapi()
COMPONENTS: dict[str, Any] = OPENAPI["components"]["schemas"]


def _request_models() -> list[type[RequestModel]]:
    found: list[type[RequestModel]] = []
    pending: list[type[RequestModel]] = [RequestModel]
    while pending:
        model = pending.pop()
        for sub in model.__subclasses__():
            found.append(sub)
            pending.append(sub)
    return sorted(set(found), key=lambda model: model.__name__)


REQUEST_MODELS = _request_models()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _unbounded(schema: dict[str, Any], where: str, seen: set[str]) -> Iterator[str]:
    """Every place under `schema` whose size a client could make as large as it likes."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen.add(name)
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from _unbounded(part, where, seen)
    kind = schema.get("type")
    if kind == "null":
        return
    if kind == "string":
        if not (
            {"maxLength", "enum", "const"} & set(schema)
            or schema.get("format")
            in {
                "date-time",
                "date",
            }
        ):
            yield f"{where}: a string without maxLength"
    elif kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: an array without maxItems"
        yield from _unbounded(schema.get("items", {}), f"{where}[]", seen)
    elif kind == "object" or "properties" in schema:
        for name, part in schema.get("properties", {}).items():
            yield from _unbounded(part, f"{where}.{name}", seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                yield f"{where}: a map without maxProperties"
            if "maxLength" not in schema.get("propertyNames", {}):
                yield f"{where}: a map whose keys have no maxLength"
            yield from _unbounded(extra, f"{where}.*", seen)
    elif not kind and not any(
        key in schema for key in ("anyOf", "oneOf", "allOf", "enum", "const")
    ):
        yield f"{where}: a value of any shape"


def _request_bodies() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                yield f"{method.upper()} {path}", media["schema"]


class TestBounds:
    def test_every_request_body_is_bounded_in_the_api_reference(self) -> None:
        problems = [
            problem
            for operation, schema in _request_bodies()
            for problem in _unbounded(schema, operation, set())
        ]
        assert problems == []

    def test_there_are_request_bodies_to_check(self) -> None:
        assert len(list(_request_bodies())) >= 30


def _fields_of_type(kind: str) -> list[tuple[type[RequestModel], str]]:
    """(model, wire name) of every field whose JSON schema is of `kind` (or a nullable one)."""
    found = []
    for model in REQUEST_MODELS:
        properties = model.model_json_schema()["properties"]
        for name, schema in properties.items():
            parts = [_resolve(part) for part in schema.get("anyOf", [schema])]
            if any(part.get("type") == kind or part.get("format") == kind for part in parts):
                found.append((model, name))
    return found


def _refuses(model: type[RequestModel], name: str, value: object) -> bool:
    try:
        model.model_validate({name: value})
    except ValidationError as error:
        return any(problem["loc"][:1] == (name,) for problem in error.errors())
    return False


NUMBERS = _fields_of_type("integer") + _fields_of_type("number")
BOOLEANS = _fields_of_type("boolean")
DATES = _fields_of_type("date-time")


class TestStrictTypes:
    @pytest.mark.parametrize(("model", "name"), NUMBERS, ids=lambda v: getattr(v, "__name__", v))
    def test_numbers_must_be_json_numbers(self, model: type[RequestModel], name: str) -> None:
        for wrong in ("5", "1e3", True, False):
            assert _refuses(model, name, wrong), f"{model.__name__}.{name} took {wrong!r}"

    @pytest.mark.parametrize(("model", "name"), BOOLEANS, ids=lambda v: getattr(v, "__name__", v))
    def test_booleans_must_be_json_booleans(self, model: type[RequestModel], name: str) -> None:
        for wrong in ("true", "false", 1, 0):
            assert _refuses(model, name, wrong), f"{model.__name__}.{name} took {wrong!r}"

    def test_every_kind_of_field_was_found(self) -> None:
        assert len(NUMBERS) > 10
        assert len(BOOLEANS) > 10


class TestDates:
    @pytest.mark.parametrize(("model", "name"), DATES, ids=lambda v: getattr(v, "__name__", v))
    def test_dates_at_the_ends_of_the_calendar_are_refused(
        self, model: type[RequestModel], name: str
    ) -> None:
        for wrong in (
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "1969-12-31T23:59:59Z",
            "3000-01-01T00:00:00Z",
            "2026-01-01T00:00:00",  # no zone
        ):
            assert _refuses(model, name, wrong), f"{model.__name__}.{name} took {wrong!r}"
        assert not _refuses(model, name, "2026-01-01T00:00:00+01:00")

    def test_date_fields_were_found(self) -> None:
        assert len(DATES) > 8
