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
        # PostgreSQL cannot store NUL in text; refuse it here with the field's name.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL bytes")
        return value


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
