"""What a batch of usage refers to: its customers and features, read once per batch."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.models import Feature
from tollgate.customers.models import Customer
from tollgate.db.sets import where_among

EVENT_WINDOW_DAYS = 7  # how long an idempotency key is remembered


@dataclass(frozen=True, slots=True)
class MeteredFeature:
    id: int
    ref_id: str
    feature_type: str
    meter_type: str
    meter: dict[str, Any] | None
    unit_transformation: dict[str, Any] | None

    @property
    def is_metered(self) -> bool:
        return self.feature_type == "NUMBER" and self.meter_type != "None"


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    ref_id: str
    archived_at: datetime | None


def features_of(session: Session, environment_id: int) -> dict[str, MeteredFeature]:
    f = Feature
    rows = session.execute(
        select(f.id, f.ref_id, f.feature_type, f.meter_type, f.meter, f.unit_transformation).where(
            f.environment_id == environment_id
        )
    )
    return {
        row.ref_id: MeteredFeature(
            row.id,
            row.ref_id,
            str(row.feature_type),
            str(row.meter_type),
            row.meter,
            row.unit_transformation,
        )
        for row in rows
    }


def customers_of(
    session: Session, environment_id: int, refs: Iterable[str]
) -> dict[str, CustomerRow]:
    query = select(Customer.id, Customer.ref_id, Customer.archived_at).where(
        Customer.environment_id == environment_id
    )
    rows = session.execute(where_among(session, query, Customer.ref_id, refs))
    return {row.ref_id: CustomerRow(row.id, row.ref_id, row.archived_at) for row in rows}


def customer_problem(customer: CustomerRow | None, ref: str) -> str | None:
    if customer is None:
        return f"customer '{ref}' was not found"
    if customer.archived_at is not None:
        return f"customer '{ref}' is archived; unarchive it before reporting its usage"
    return None
