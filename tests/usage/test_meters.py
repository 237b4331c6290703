"""Meters, pure: every filter operation and every aggregation."""

from typing import Any

import pytest

from tollgate.kit.amounts import to_units
from tollgate.usage import meters

EVENT = meters.Event(
    name="api_call",
    customer_ref="acme",
    resource_ref=None,
    dimensions={"region": "eu-west", "bytes": 1500, "ok": True, "path": "/v1/items"},
)


def meter_with(*conditions: dict[str, Any], function: str = "COUNT", field: str = "") -> Any:
    return {
        "aggregation": {"function": function, "field": field or None},
        "filters": [{"conditions": list(conditions)}],
    }


class TestConditions:
    @pytest.mark.parametrize(
        ("field", "operation", "value", "holds"),
        [
            ("eventName", "EQUALS", "api_call", True),
            ("eventName", "EQUALS", "login", False),
            ("bytes", "EQUALS", "1500.0", True),  # numbers compare as numbers
            ("ok", "EQUALS", "true", True),
            ("region", "NOT_EQUALS", "us-east", True),
            ("region", "NOT_EQUALS", "eu-west", False),
            ("bytes", "GREATER_THAN", "1000", True),
            ("bytes", "GREATER_THAN", "1500", False),
            ("bytes", "GREATER_THAN_OR_EQUAL", "1500", True),
            ("bytes", "LESS_THAN", "2000", True),
            ("bytes", "LESS_THAN", "900", False),  # not "1500" < "900" as text
            ("bytes", "LESS_THAN_OR_EQUAL", "1500", True),
            ("region", "CONTAINS", "west", True),
            ("region", "CONTAINS", "east", False),
            ("path", "STARTS_WITH", "/v1/", True),
            ("path", "STARTS_WITH", "/v2/", False),
            ("path", "ENDS_WITH", "items", True),
            ("path", "ENDS_WITH", "users", False),
            ("customerId", "EQUALS", "acme", True),
            ("missing", "EQUALS", "x", False),
        ],
    )
    def test_operation(self, field: str, operation: str, value: str, holds: bool) -> None:
        condition = {"field": field, "operation": operation, "value": value}
        assert meters.matches(meter_with(condition), EVENT) is holds

    @pytest.mark.parametrize(
        ("field", "operation", "holds"),
        [
            ("missing", "IS_NULL", True),
            ("region", "IS_NULL", False),
            ("region", "IS_NOT_NULL", True),
            ("resourceId", "IS_NOT_NULL", False),
        ],
    )
    def test_null_operations(self, field: str, operation: str, holds: bool) -> None:
        assert meters.matches(meter_with({"field": field, "operation": operation}), EVENT) is holds

    @pytest.mark.parametrize(
        ("values", "holds"), [(["us-east", "eu-west"], True), (["us-east"], False), ([], False)]
    )
    def test_in(self, values: list[str], holds: bool) -> None:
        condition = {"field": "region", "operation": "IN", "values": values}
        assert meters.matches(meter_with(condition), EVENT) is holds

    def test_conditions_and_filters_or(self) -> None:
        name = {"field": "eventName", "operation": "EQUALS", "value": "api_call"}
        region = {"field": "region", "operation": "EQUALS", "value": "us-east"}
        assert not meters.matches(meter_with(name, region), EVENT)  # ANDed
        either = {
            "aggregation": {"function": "COUNT"},
            "filters": [{"conditions": [region]}, {"conditions": [name]}],
        }
        assert meters.matches(either, EVENT)  # ORed


class TestAggregations:
    @pytest.mark.parametrize(
        ("function", "expected"),
        [
            ("COUNT", 4),
            ("SUM", 9.5),
            ("MAX", 5),
            ("MIN", 0.5),
            ("AVG", 2.375),
            ("UNIQUE", 3),
        ],
    )
    def test_function(self, function: str, expected: float) -> None:
        meter = meter_with(function=function, field="amount")
        aggregate = meters.Aggregate()
        seen: set[str] = set()
        for amount in (2, 5, 0.5, 2):
            event = meters.Event("e", "acme", None, {"amount": amount})
            measured = meters.measured(meter, event)
            assert measured is not None
            is_new = isinstance(measured, str) and measured not in seen
            if isinstance(measured, str):
                seen.add(measured)
            meters.add(aggregate, measured, is_new_distinct=is_new)
        assert meters.usage(meter, aggregate, None) == to_units(expected)

    def test_events_without_the_field_are_not_counted(self) -> None:
        meter = meter_with(function="SUM", field="amount")
        assert meters.measured(meter, meters.Event("e", "acme", None, {})) is None
        assert meters.measured(meter, meters.Event("e", "acme", None, {"amount": "x"})) is None

    @pytest.mark.parametrize(("rounding", "expected"), [("UP", 3), ("DOWN", 2)])
    def test_unit_transformation(self, rounding: str, expected: int) -> None:
        aggregate = meters.Aggregate(total=to_units(2_500))
        transformation = {"divide": 1_000, "round": rounding}
        units = meters.usage(meter_with(function="SUM", field="b"), aggregate, transformation)
        assert units == to_units(expected)
