"""Query-string parameters in the shapes the Stigg client sends them."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from tollgate.errors import BadRequest, InvalidValue
from tollgate.http.types import Moment
from tollgate.kit.filters import RANGE_OPERATORS, CreatedAtRange
from tollgate.kit.pagination import PageRequest, decode_cursor

E = TypeVar("E", bound=StrEnum)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def page_request(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page"),
    after: str | None = Query(None, description="Return items after this cursor"),
    before: str | None = Query(None, description="Return items before this cursor"),
) -> PageRequest:
    # An empty cursor is no cursor: clients build query strings from optional values.
    if after and before:
        raise BadRequest("pass either 'after' or 'before', not both", field="after")
    return PageRequest(
        limit=limit,
        after=decode_cursor(after, field="after") if after else None,
        before=decode_cursor(before, field="before") if before else None,
    )


def created_at_range(request: Request) -> CreatedAtRange:
    """`createdAt[gt]=...&createdAt[lte]=...`, the client's nested query format."""
    bounds: CreatedAtRange = {}
    for name in RANGE_OPERATORS:
        field = f"createdAt[{name}]"
        raw = request.query_params.get(field)
        if raw is None:
            continue
        bounds[name] = query_moment(raw, field=field)
    return bounds


def query_moment(raw: str, *, field: str) -> datetime:
    """A date-time of the query string that FastAPI does not parse itself, by the rule of
    `Moment` (docs/api.md): refused, when it breaks it, with the answer a body field gets."""
    try:
        return _MOMENT.validate_python(raw)
    except ValidationError as invalid:
        problems = [{**error, "loc": ("query", field)} for error in invalid.errors()]
        raise RequestValidationError(problems) from None


def enum_query(enum: type[StrEnum], *, alias: str | None = None) -> Any:
    """A query parameter holding a comma-separated list of `enum`'s values (the client's
    format), with the values in the API reference; parse it with `enum_list`."""
    one = "|".join(re.escape(member.value) for member in enum)
    values = ", ".join(member.value for member in enum)
    return Query(
        None,
        alias=alias,
        description=f"Comma-separated, any of: {values}",
        # In the reference only: `enum_list` refuses the rest, naming the unknown value.
        json_schema_extra={"pattern": rf"^(\s*({one})\s*(,\s*({one})\s*)*)?$"},
    )


def enum_list(raw: str | None, enum: type[E], *, field: str) -> list[E] | None:
    """Parse `A,B` (the client's comma array format) into enum members."""
    if not raw:
        return None
    values = []
    for part in raw.split(","):
        try:
            values.append(enum(part.strip()))
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise InvalidValue(
                f"'{field}' has unknown value '{part}'; allowed: {allowed}", field=field
            ) from None
    return values


def flag(raw: str | None, *, field: str) -> bool:
    """A boolean query flag: `true` or `1`, `false` or `0`; absent or empty is false, and
    anything else is refused naming `field` (rather than silently read as false)."""
    if raw is None or raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise InvalidValue(f"'{field}' must be true or false, got '{raw[:40]}'", field=field)


def whole_number(raw: str | None, *, field: str) -> int | None:
    """A non-negative whole number (at most 18 digits, so it fits a 64-bit column), or None
    when absent; anything else is refused naming `field`."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise InvalidValue(f"'{field}' must be a whole number, got '{raw[:40]}'", field=field)
    return int(raw)
