"""Limiting a query to rows whose column is one of many values (a batch's keys).

On PostgreSQL the values travel as one array, joined as a table (`JOIN unnest(:values)`):
the statement text is the same for any batch size, so psycopg prepares it once, and the
join is looked up by index or hashed. (`column = ANY(:values)` would be prepared too, but
with stale statistics PostgreSQL may test every row against the whole array, which costs
rows x values.) Elsewhere, a plain `IN` list."""

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Select, func, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

S = TypeVar("S", bound=Select[Any])


def where_among(
    session: Session, statement: S, column: InstrumentedAttribute[Any], values: Iterable[Any]
) -> S:
    distinct = list(set(values))
    if session.get_bind().dialect.name != "postgresql":
        return statement.where(column.in_(distinct))
    array = literal(distinct, ARRAY(column.type))
    listed = func.unnest(array).table_valued("value").render_derived()
    return statement.join(listed, column == listed.c.value)
