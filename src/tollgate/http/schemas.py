"""Base wire models: camelCase on the wire, snake_case in Python."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from tollgate.kit.pagination import Cursors

T = TypeVar("T")


class WireModel(BaseModel):
    """A response shape. Fields serialize by their camelCase alias."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(WireModel):
    """A request body. Unknown fields are refused by name rather than silently ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
        allow_inf_nan=False,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it here, with the field's name.
        if _holds_nul(value):
            raise ValueError("must not contain NUL bytes")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class Envelope(WireModel, Generic[T]):
    data: T


class Pagination(WireModel):
    next: str | None = None
    prev: str | None = None


class Page(WireModel, Generic[T]):
    data: list[T]
    pagination: Pagination


def page_of(items: list[T], cursors: Cursors) -> "Page[T]":
    return Page[T](data=items, pagination=Pagination(next=cursors.next, prev=cursors.prev))


class ErrorDetail(WireModel):
    field: str
    message: str


class ErrorBody(WireModel):
    code: str
    message: str
    field: str | None = None
    details: list[ErrorDetail] | None = None


class ErrorResponse(WireModel):
    """Every error, whatever its status."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed input: a bad cursor, a body that is not JSON",
        401: "No API key, or one Tollgate does not know",
        403: "A client key on a write, or a key used for another environment",
        404: "An id that does not exist in this environment",
        409: "A duplicate id, or a state that forbids the change",
        422: "Values that break a rule; `field` names the first",
        503: "The database is busy or unreachable; retry",
    }.items()
}
