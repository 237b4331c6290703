"""Cursor pagination in a stable order (internal id, either way), forwards and backwards."""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from operator import gt, lt
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tollgate.errors import BadRequest

T = TypeVar("T")
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    after: int | None = None
    before: int | None = None


@dataclass(frozen=True, slots=True)
class Cursors:
    next: str | None
    prev: str | None


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        row_id = int(value)
        if prefix != "id" or not 0 <= row_id <= MAX_ROW_ID:
            raise ValueError(text)
        return row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            f"'{field}' is not a cursor this API issued; pass a pagination.next or "
            "pagination.prev value from an earlier page",
            field=field,
        ) from None


def paginate(
    session: Session,
    query: Select[tuple[T]],
    id_column: InstrumentedAttribute[int],
    page: PageRequest,
    *,
    newest_first: bool = False,
) -> tuple[Sequence[T], Cursors]:
    """Run `query` one page at a time, keyed on `id_column`: oldest first, or newest first.
    `after` goes on in the listing's order, `before` back towards its start."""
    step = -1 if newest_first else 1
    ahead, behind = (lt, gt) if newest_first else (gt, lt)
    in_order, reversed_order = (
        (id_column.desc(), id_column.asc()) if newest_first else (id_column.asc(), id_column.desc())
    )
    backwards = page.before is not None
    if page.before is not None:
        query = query.where(behind(id_column, page.before)).order_by(reversed_order)
    else:
        if page.after is not None:
            query = query.where(ahead(id_column, page.after))
        query = query.order_by(in_order)
    rows: list[Any] = list(session.scalars(query.limit(page.limit + 1)))
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    ids = [getattr(row, id_column.key) for row in rows]
    if not ids:
        # Past either end: still offer the way back to where the caller came from.
        if page.after is not None:
            return rows, Cursors(next=None, prev=encode_cursor(max(page.after + step, 0)))
        if page.before is not None:
            return rows, Cursors(next=encode_cursor(max(page.before - step, 0)), prev=None)
        return rows, Cursors(next=None, prev=None)
    if backwards:
        next_id, prev_id = ids[-1], (ids[0] if has_more else None)
    else:
        next_id = ids[-1] if has_more else None
        prev_id = ids[0] if page.after is not None else None
    return rows, Cursors(
        next=encode_cursor(next_id) if next_id is not None else None,
        prev=encode_cursor(prev_id) if prev_id is not None else None,
    )
