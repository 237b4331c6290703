"""The one way to find "the row with this id in this environment, optionally locked"."""

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption

from tollgate.db.base import Base
from tollgate.errors import NotFound

# A table whose rows belong to one environment and are named there by `ref_id`.
RowT = TypeVar("RowT", bound=Base)


def get_by_ref(
    session: Session,
    model: type[RowT],
    *,
    environment_id: int,
    ref_id: str,
    noun: str,
    lock: bool = False,
    where: Iterable[ColumnElement[bool]] = (),
    options: Iterable[ExecutableOption] = (),
    reload: bool = False,
    field: str | None = None,
) -> RowT:
    """The row named `ref_id` in the environment, or NotFound naming `noun`.

    `lock` holds the row (SELECT ... FOR UPDATE OF it, on PostgreSQL) until commit, so
    concurrent changes to one row take turns; `reload` refreshes a row this session holds."""
    query = (
        select(model)
        .where(
            model.__table__.c.environment_id == environment_id,
            model.__table__.c.ref_id == ref_id,
            *where,
        )
        .options(*options)
    )
    if reload:
        query = query.execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update(of=model)
    row = session.scalar(query)
    if row is None:
        raise NotFound(noun, ref_id, field=field)
    return row
