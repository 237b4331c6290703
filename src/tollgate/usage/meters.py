"""Event meters, pure: which events a meter counts, and what it adds to a counter.

A meter's filters are ORed; the conditions inside one filter are ANDed. A condition's
`field` names `eventName`, `customerId`, `resourceId`, or else one of the event's
dimensions. Numbers compare as numbers when both sides are numbers, otherwise as text.
Aggregations keep running totals (count, sum, min, max, distinct values) per counter, so an
event is counted once, when it arrives, and a read never scans events."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tollgate.kit.amounts import SCALE, AmountOutOfRange, to_units, transform

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    customer_ref: str
    resource_ref: str | None
    dimensions: Mapping[str, Any]

    def field(self, name: str) -> Scalar:
        if name == "eventName":
            return self.name
        if name == "customerId":
            return self.customer_ref
        if name == "resourceId":
            return self.resource_ref
        value = self.dimensions.get(name)
        return value if isinstance(value, str | int | float | bool) else None


def matches(meter: Mapping[str, Any], event: Event) -> bool:
    return any(
        all(_holds(condition, event.field(condition["field"])) for condition in f["conditions"])
        for f in meter["filters"]
    )


def _holds(condition: Mapping[str, Any], actual: Scalar) -> bool:
    operation = condition["operation"]
    if operation == "IS_NULL":
        return actual is None
    if operation == "IS_NOT_NULL":
        return actual is not None
    if actual is None:
        return False
    if operation == "IN":
        return any(_equal(actual, v) for v in condition.get("values") or [])
    expected = condition.get("value")
    if expected is None:
        return False
    return _OPERATIONS[operation](actual, expected)


def _number(value: Scalar) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(actual: Scalar, expected: str) -> bool:
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None and not isinstance(actual, str):
        return a == b
    return _text(actual) == expected


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Scalar, str], bool]:
    def compare(actual: Scalar, expected: str) -> bool:
        a, b = _number(actual), _number(expected)
        if a is not None and b is not None:
            return test(a, b)
        return test(_text(actual), expected)

    return compare


_OPERATIONS: dict[str, Callable[[Scalar, str], bool]] = {
    "EQUALS": _equal,
    "NOT_EQUALS": lambda actual, expected: not _equal(actual, expected),
    "GREATER_THAN": _compare(lambda a, b: a > b),
    "GREATER_THAN_OR_EQUAL": _compare(lambda a, b: a >= b),
    "LESS_THAN": _compare(lambda a, b: a < b),
    "LESS_THAN_OR_EQUAL": _compare(lambda a, b: a <= b),
    "CONTAINS": lambda actual, expected: expected in _text(actual),
    "STARTS_WITH": lambda actual, expected: _text(actual).startswith(expected),
    "ENDS_WITH": lambda actual, expected: _text(actual).endswith(expected),
}


@dataclass(slots=True)
class Aggregate:
    """A counter's running aggregation of the events its meter matched."""

    count: int = 0
    total: int = 0
    low: int | None = None
    high: int | None = None
    distinct: int = 0


def measured(meter: Mapping[str, Any], event: Event) -> int | str | None:
    """What the event contributes: scaled amount, a distinct value for UNIQUE, 1 for COUNT.

    None when the event lacks a usable value for the meter's field (it is not counted)."""
    aggregation = meter["aggregation"]
    function = aggregation["function"]
    if function == "COUNT":
        return 1
    raw = event.field(aggregation.get("field") or "")
    if raw is None:
        return None
    if function == "UNIQUE":
        return _text(raw)
    number = _number(raw)
    if number is None:
        return None
    try:
        return to_units(number)
    except AmountOutOfRange:
        return None


def add(aggregate: Aggregate, amount: int | str, *, is_new_distinct: bool = False) -> None:
    """Fold one matched event's amount (from `measured`) into the aggregate; a distinct
    value (UNIQUE) counts only when the caller found it new in the counter's period."""
    aggregate.count += 1
    if isinstance(amount, str):
        aggregate.distinct += 1 if is_new_distinct else 0
        return
    aggregate.total += amount
    aggregate.low = amount if aggregate.low is None else min(aggregate.low, amount)
    aggregate.high = amount if aggregate.high is None else max(aggregate.high, amount)


def usage(
    meter: Mapping[str, Any], aggregate: Aggregate, unit_transformation: Mapping[str, Any] | None
) -> int:
    """The counter's usage (scaled) from its aggregate, after the unit transformation."""
    function = meter["aggregation"]["function"]
    if function == "COUNT":
        units = aggregate.count * SCALE
    elif function == "UNIQUE":
        units = aggregate.distinct * SCALE
    elif function == "SUM":
        units = aggregate.total
    elif function == "MAX":
        units = aggregate.high or 0
    elif function == "MIN":
        units = aggregate.low or 0
    else:  # AVG
        units = round(aggregate.total / aggregate.count) if aggregate.count else 0
    if unit_transformation:
        units = transform(
            units,
            divide=int(unit_transformation["divide"]),
            round_up=unit_transformation.get("round") == "UP",
        )
    return units
