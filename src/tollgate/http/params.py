"""Query-string parameters in the shapes the Stigg client sends them."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from fastapi import Query, Request
from pydantic import TypeAdapter, ValidationError

from tollgate.errors import BadRequest, InvalidValue
from tollgate.http.types import moment_problem
from tollgate.kit.filters import RANGE_OPERATORS, CreatedAtRange
from tollgate.kit.pagination import PageRequest, decode_cursor

E = TypeVar("E", bound=StrEnum)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_DATETIME = TypeAdapter(datetime)


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
        try:
            moment = _DATETIME.validate_python(raw)
        except ValidationError:
            raise InvalidValue(
                f"'{field}' must be an ISO 8601 date-time, got '{raw}'", field=field
            ) from None
        if moment.tzinfo is None:
            raise InvalidValue(f"'{field}' needs a time zone, such as a trailing Z", field=field)
        bounds[name] = in_range(moment, field=field)
    return bounds


def in_range(moment: datetime, *, field: str) -> datetime:
    """A date of the query string, in UTC (one sent without a zone is taken as UTC), or
    InvalidValue naming `field` when it is outside the dates Tollgate computes with."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    problem = moment_problem(moment)
    if problem is not None:
        raise InvalidValue(f"'{field}' {problem}", field=field)
    return moment.astimezone(UTC)


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


def is_true(raw: str | None) -> bool:
    """A boolean query flag: `true` or `1`; anything else, or nothing, is false."""
    return raw in ("true", "1")


def whole_number(raw: str | None, *, field: str) -> int | None:
    """A non-negative whole number (at most 18 digits, so it fits a 64-bit column), or None
    when absent; anything else is refused naming `field`."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise InvalidValue(f"'{field}' must be a whole number, got '{raw[:40]}'", field=field)
    return int(raw)
