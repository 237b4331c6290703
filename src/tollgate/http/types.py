"""Constrained types shared by request models.

Every free-form value a request can carry has a bound (a length, a number of entries, a
size), every number is a JSON number (`"5"` and `true` are not 5 and 1), and every date is
one Tollgate can compute with: the limits are here, once, and the API reference shows them."""

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

RefId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][\w.:\-]*$"
    ),
]
"""An id chosen by the SaaS (`plan-pro`, `feature-seats`): letters, digits, `_ . : -`."""

CustomerId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][\w|.@-]*$"
    ),
]
"""A customer's (or resource's) id, the SaaS's own: a user id such as `auth0|5f7c...` or an
email, an organization id; letters, digits and `_ | . @ -`, as Stigg allows."""

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]

ShortText = Annotated[str, StringConstraints(max_length=255)]
"""Free text stored in a 255-character column: units, billing ids, label overrides."""

Description = Annotated[str, StringConstraints(max_length=1_000)]

MAX_JSON_BYTES = 8 * 1024
# The body limit of the routes that take 1,000 items at once (usage, events, customer
# imports): 1,000 of the largest items their bounds allow (about 8 to 10 KB of ASCII each:
# four 255-character ids, and 20 dimensions or 8 KiB of metadata) fit in it.
MAX_BATCH_BODY_BYTES = 10 * 1024 * 1024


def _small_json(value: Any) -> Any:
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise ValueError(f"must be at most {MAX_JSON_BYTES:,} bytes as JSON")
    return value


Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100)],
        Annotated[str, StringConstraints(max_length=500)],
    ],
    Field(
        max_length=100,
        description="At most 100 entries, keys up to 100 characters, "
        "values up to 500, and 8 KiB as JSON in all",
    ),
    AfterValidator(_small_json),
]

FreeJson = Annotated[
    dict[Annotated[str, StringConstraints(max_length=100)], Any],
    Field(max_length=50, description="Stored as given: at most 50 keys and 8 KiB as JSON"),
    AfterValidator(_small_json),
]
"""Details Tollgate stores and hands back without reading them."""


# Strict: pydantic's lax conversion would take "5", "1e3" and true for numbers, and "true"
# or 1 for booleans.
JsonInt = Annotated[int, Strict()]
MAX_INT = 2**31 - 1  # counts and quantities: 32-bit, as the compatible API's clients expect
"""A whole number sent as a JSON number (5, not 5.0, "5" or true)."""

JsonFloat = Annotated[float, Strict()]
"""A number sent as a JSON number (5 or 5.5, not "5" or true)."""

JsonBool = StrictBool
"""true or false, not "true" or 1."""

# Dates Tollgate can add periods of years to and store on both databases; a date outside
# (year 1, year 9999, an offset that moves it past either end) is refused at the edge.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _moment_problem(moment: datetime) -> str | None:
    """Why an aware date cannot be used, or None."""
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        return "is out of range once converted to UTC"
    if not EARLIEST <= in_utc < LATEST:
        return f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)"
    return None


def _moment(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("needs a time zone, such as a trailing Z")
    problem = _moment_problem(moment)
    if problem is not None:
        raise ValueError(problem)
    return moment.astimezone(UTC)


Moment = Annotated[
    datetime,
    AfterValidator(_moment),
    Field(description="ISO 8601 with a time zone, from 1970-01-01 to before 3000-01-01"),
]
"""A date in a request body: with a time zone, within the range above, read as UTC."""

Refused = Annotated[
    Any,
    WithJsonSchema(
        {"type": "null", "description": "Not supported by Tollgate yet: refused (422) if set"}
    ),
]
"""A field the Stigg client can send that Tollgate refuses by name rather than ignore."""
