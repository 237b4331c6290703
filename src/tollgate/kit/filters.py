"""Filters shared by list queries."""

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

RANGE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

CreatedAtRange = dict[str, datetime]
"""Bounds keyed by operator name: {"gte": ..., "lt": ...}."""


def range_conditions(column: Any, bounds: CreatedAtRange) -> list[ColumnElement[bool]]:
    return [RANGE_OPERATORS[name](column, moment) for name, moment in bounds.items()]
