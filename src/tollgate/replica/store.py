"""The replica's database: events applied in one transaction each, rows read back.

Rules every write keeps:
- a message id already applied changes nothing (`Applied.DUPLICATE`);
- a row changes only for an event at least as new as the newest already applied to it
  (`event_at`), so an old event delivered late leaves it as it is (`Applied.STALE`);
- an event about a customer the replica has not heard of yet makes a placeholder row for
  it (a subscription may arrive before its customer.created), which the customer's own
  event or a resync fills in; the caller is told, to repair the gap from the source."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.replica import tables as t
from tollgate.replica.events import (
    CustomerRecord,
    Event,
    FeatureRecord,
    Record,
    ScopeRecord,
    SubscriptionRecord,
    UsageRecord,
)


class Applied(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # this message was applied before
    STALE = "stale"  # older than what is stored: nothing changed
    IGNORED = "ignored"  # a type the replica keeps nothing of


@dataclass(frozen=True, slots=True)
class Outcome:
    applied: Applied
    customer_id: str | None
    # The event named a customer the replica had never heard of: something before it
    # was missed, or is still on its way.
    unknown_customer: bool = False
    feature_changed: bool = False


# The shape of the replica's tables; a database written by another shape is refused, not
# guessed at (a later shape will come with its upgrade).
SCHEMA_VERSION = 1


class SchemaMismatch(RuntimeError):
    pass


def create_schema(engine: Engine) -> None:
    """Create the tables if they are missing, and check the database's shape is this one."""
    t.metadata.create_all(engine)
    with engine.begin() as connection:
        stored = connection.scalar(select(t.facts.c.value).where(t.facts.c.name == "schema"))
        if stored is None:
            connection.execute(insert(t.facts).values(name="schema", value=SCHEMA_VERSION))
        elif stored != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"the replica's database has schema {stored}, this tollgate knows "
                f"{SCHEMA_VERSION}: use the tollgate that wrote it, or a new database "
                "(then `tollgate replica resync`)"
            )


def apply_event(session: Session, event: Event, *, received_at: datetime) -> Outcome:
    """Apply one delivered event; the caller commits."""
    try:
        with session.begin_nested():
            session.execute(
                insert(t.messages).values(
                    message_id=event.message_id,
                    event_type=event.type,
                    customer_id=event.customer_id,
                    event_at=event.at,
                    received_at=received_at,
                )
            )
    except IntegrityError:
        return Outcome(Applied.DUPLICATE, event.customer_id)
    if event.record is None:
        return Outcome(Applied.IGNORED, event.customer_id)
    unknown = event.customer_id is not None and _ensure_customer(session, event.customer_id)
    applied = apply_record(session, event.record, at=event.at)
    return Outcome(
        Applied.APPLIED if applied else Applied.STALE,
        event.customer_id,
        unknown_customer=unknown and not isinstance(event.record, CustomerRecord),
        feature_changed=applied and isinstance(event.record, FeatureRecord | ScopeRecord),
    )


def apply_record(session: Session, record: Record, *, at: datetime) -> bool:
    """Write what one record says, where `at` is newer than what is stored; whether it was."""
    if isinstance(record, CustomerRecord):
        return _apply_customer(session, record, at)
    if isinstance(record, SubscriptionRecord):
        return _upsert(
            session,
            t.subscriptions,
            {"subscription_id": record.subscription_id},
            _subscription_values(record),
            at,
        )
    if isinstance(record, FeatureRecord):
        return _apply_feature(session, record, at)
    if isinstance(record, UsageRecord):
        return _apply_usage(session, record, at)
    return _apply_scope(session, record, at)


def _ensure_customer(session: Session, customer_id: str) -> bool:
    """A placeholder for a customer not seen yet; whether one was made."""
    known = session.scalar(
        select(t.customers.c.customer_id).where(t.customers.c.customer_id == customer_id)
    )
    if known is not None:
        return False
    session.execute(
        insert(t.customers).values(
            customer_id=customer_id, is_archived=False, is_known=False, event_at=None
        )
    )
    return True


def _apply_customer(session: Session, record: CustomerRecord, at: datetime) -> bool:
    values: dict[str, Any] = {
        "name": record.name,
        "email": record.email,
        "billing_id": record.billing_id,
        "metadata": record.metadata,
        "is_known": True,
    }
    if record.is_archived is not None:
        values["is_archived"] = record.is_archived
    return _upsert(
        session,
        t.customers,
        {"customer_id": record.customer_id},
        values,
        at,
        defaults={"is_archived": False},
    )


def _apply_feature(session: Session, record: FeatureRecord, at: datetime) -> bool:
    values = {
        "name": record.name,
        "feature_type": record.feature_type,
        "meter_type": record.meter_type,
        "status": record.status,
        "units": record.units,
        "units_plural": record.units_plural,
        "is_deleted": record.is_deleted,
    }
    return _upsert(session, t.features, {"feature_id": record.feature_id}, values, at)


def _apply_usage(session: Session, record: UsageRecord, at: datetime) -> bool:
    key = {
        "customer_id": record.customer_id,
        "resource_id": record.resource_id,
        "feature_id": record.feature_id,
    }
    values = {
        "current_usage": record.current_usage,
        "period_start": record.period_start,
        "period_end": record.period_end,
    }
    return _upsert(session, t.usage, key, values, at)


def _apply_scope(session: Session, record: ScopeRecord, at: datetime) -> bool:
    key = {"customer_id": record.customer_id, "resource_id": record.resource_id}
    if not _upsert(session, t.entitlement_scopes, key, {}, at):
        return False
    session.execute(
        delete(t.entitlements).where(
            t.entitlements.c.customer_id == record.customer_id,
            t.entitlements.c.resource_id == record.resource_id,
        )
    )
    if record.entitlements:
        session.execute(
            insert(t.entitlements),
            [
                {
                    **key,
                    "feature_id": e.feature_id,
                    "is_granted": e.is_granted,
                    "usage_limit": e.usage_limit,
                    "has_unlimited_usage": e.has_unlimited_usage,
                    "has_soft_limit": e.has_soft_limit,
                    "enum_values": e.enum_values,
                    "reset_period": e.reset_period,
                    "usage_period_anchor": e.usage_period_anchor,
                    "usage_period_start": e.usage_period_start,
                    "usage_period_end": e.usage_period_end,
                    "valid_until": e.valid_until,
                    "updated_at": e.updated_at,
                }
                for e in record.entitlements
            ],
        )
    for feature in record.features:
        _apply_feature(session, feature, at)
    for counted in record.usage:
        _apply_usage(session, counted, at)
    return True


def _upsert(
    session: Session,
    table: Table,
    key: dict[str, Any],
    values: dict[str, Any],
    at: datetime,
    *,
    defaults: dict[str, Any] | None = None,
) -> bool:
    """Insert the row, or update it if `at` is at least as new as its `event_at`."""
    where = [table.c[name] == value for name, value in key.items()]
    stored = session.execute(select(table.c.event_at).where(*where).with_for_update()).first()
    if stored is None:
        session.execute(insert(table).values({**(defaults or {}), **key, **values, "event_at": at}))
        return True
    if stored.event_at is not None and at < stored.event_at:
        return False
    session.execute(update(table).where(*where).values(**values, event_at=at))
    return True


def _subscription_values(record: SubscriptionRecord) -> dict[str, Any]:
    return {
        "customer_id": record.customer_id,
        "resource_id": record.resource_id,
        "status": record.status,
        "plan_id": record.plan_id,
        "plan_name": record.plan_name,
        "billing_id": record.billing_id,
        "billing_period": record.billing_period,
        "start_date": record.start_date,
        "end_date": record.end_date,
        "cancellation_date": record.cancellation_date,
        "trial_end_date": record.trial_end_date,
        "current_period_start": record.current_period_start,
        "current_period_end": record.current_period_end,
        "addons": record.addons,
        "metadata": record.metadata,
    }


# Reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerRows:
    """Everything stored about one customer."""

    customer: Any | None
    subscriptions: list[Any]
    entitlements: list[Any]
    usage: list[Any]


def customer_rows(session: Session, customer_id: str) -> CustomerRows:
    customer = session.execute(
        select(t.customers).where(t.customers.c.customer_id == customer_id)
    ).first()
    return CustomerRows(
        customer,
        _all(session, t.subscriptions, customer_id, t.subscriptions.c.subscription_id),
        _all(session, t.entitlements, customer_id, t.entitlements.c.feature_id),
        _all(session, t.usage, customer_id, t.usage.c.feature_id),
    )


def _all(session: Session, table: Table, customer_id: str, order: Any) -> list[Any]:
    query = select(table).where(table.c.customer_id == customer_id).order_by(order)
    return list(session.execute(query))


def feature_rows(session: Session) -> list[Any]:
    return list(session.execute(select(t.features).where(t.features.c.is_deleted.is_(False))))


def customers_page(
    session: Session,
    *,
    ids: Iterable[str] | None,
    email: str | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    """Known customers ordered by id, from after the cursor (`after` is a customer id)."""
    query = select(t.customers).where(t.customers.c.is_known.is_(True))
    if ids is not None:
        query = query.where(t.customers.c.customer_id.in_(list(ids)))
    if email is not None:
        query = query.where(t.customers.c.email == email)
    if after is not None:
        query = query.where(t.customers.c.customer_id > after)
    return list(session.execute(query.order_by(t.customers.c.customer_id).limit(limit)))


def fact(session: Session, name: str) -> Any:
    return session.scalar(select(t.facts.c.value).where(t.facts.c.name == name))


def set_fact(session: Session, name: str, value: Any) -> None:
    changed = session.execute(update(t.facts).where(t.facts.c.name == name).values(value=value))
    if getattr(changed, "rowcount", 0):
        return
    session.execute(insert(t.facts).values(name=name, value=value))


def latest_message(session: Session) -> Any | None:
    """The most recently received message (for how far behind the replica is)."""
    return session.execute(
        select(t.messages.c.event_at, t.messages.c.received_at)
        .order_by(t.messages.c.received_at.desc())
        .limit(1)
    ).first()
