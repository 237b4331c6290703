"""The rules of customers: provisioning, editing, archiving, importing."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.announcements import announce_customers
from tollgate.customers.feed import Trigger, record_holdings_change, record_new_customer
from tollgate.customers.lookup import get_customer
from tollgate.customers.models import Customer, CustomerResource
from tollgate.customers.schemas import (
    CustomerCreate,
    CustomerFields,
    CustomerImport,
    CustomerRead,
    CustomerUpdate,
    ImportResult,
    IntegrationRead,
)
from tollgate.db.errors import flush_unique
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.webhooks.event_types import EventType


def list_customers(
    session: Session,
    *,
    environment_id: int,
    page: PageRequest,
    created_at: CreatedAtRange,
    email: str | None = None,
    name: str | None = None,
) -> tuple[Sequence[Customer], Cursors]:
    query = select(Customer).where(
        Customer.environment_id == environment_id,
        *range_conditions(Customer.created_at, created_at),
    )
    if email is not None:
        query = query.where(Customer.email == email)
    if name is not None:
        query = query.where(Customer.name == name)
    return paginate(session, query, Customer.id, page)


def provision_customer(
    session: Session, *, environment_id: int, data: CustomerCreate, now: datetime
) -> Customer:
    customer = Customer(
        environment_id=environment_id,
        ref_id=data.id,
        metadata_={},
        integrations=[],
        entitlements_version=1,
        created_at=now,
        updated_at=now,
    )
    _apply(customer, data, data.model_fields_set)
    session.add(customer)
    flush_unique(session, kind="customer", ref_id=data.id)
    record_new_customer(session, customer)
    announce_customers(session, [(EventType.CUSTOMER_CREATED, customer)], now=now)
    return customer


def update_customer(
    session: Session, *, environment_id: int, ref_id: str, data: CustomerUpdate, now: datetime
) -> Customer:
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    _apply(customer, data, data.model_fields_set)
    customer.updated_at = now
    announce_customers(session, [(EventType.CUSTOMER_UPDATED, customer)], now=now)
    return customer


def _apply(customer: Customer, data: CustomerFields, given: set[str]) -> None:
    if data.coupon_id:
        raise NotImplementedYet("couponId", "coupons are not supported yet")
    simple = ("name", "email", "billing_id", "billing_currency", "language", "timezone")
    for field in simple:
        if field in given:
            setattr(customer, field, getattr(data, field))
    if "coupon_id" in given:
        customer.coupon_id = None
    if "metadata" in given:
        customer.metadata_ = data.metadata or {}
    if "integrations" in given:
        integrations = data.integrations or []
        vendors = [integration.vendor_identifier for integration in integrations]
        if len(set(vendors)) != len(vendors):
            raise InvalidValue("list each integration vendor once", field="integrations")
        customer.integrations = [i.model_dump(by_alias=True) for i in integrations]
    if "default_payment_method" in given:
        method = data.default_payment_method
        customer.default_payment_method = method.model_dump(by_alias=True) if method else None
    if "passthrough" in given:
        customer.passthrough = data.passthrough


def archive_customer(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Customer:
    """Archive a customer (ending its subscriptions is the subscriptions domain's part: the
    route calls it)."""
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if customer.archived_at is None:
        customer.archived_at = customer.updated_at = now
        announce_customers(session, [(EventType.CUSTOMER_DELETED, customer)], now=now)
        record_holdings_change(session, customer, trigger=Trigger.CUSTOMER_ARCHIVED)
    return customer


def unarchive_customer(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Customer:
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if customer.archived_at is not None:
        customer.archived_at = None
        customer.updated_at = now
        announce_customers(session, [(EventType.CUSTOMER_UPDATED, customer)], now=now)
        record_holdings_change(session, customer, trigger=Trigger.CUSTOMER_UNARCHIVED)
    return customer


def import_customers(
    session: Session, *, environment_id: int, data: CustomerImport, now: datetime
) -> ImportResult:
    """Create the customers that do not exist; update the others' given fields. Running the
    same import twice changes nothing the second time."""
    ids = [item.id for item in data.customers]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidValue(
            f"customers lists ids more than once: {', '.join(duplicates[:10])}", field="customers"
        )
    existing = {
        customer.ref_id: customer
        for customer in session.scalars(
            select(Customer)
            .where(Customer.environment_id == environment_id, Customer.ref_id.in_(ids))
            .with_for_update()
        )
    }
    created = []
    changes: list[tuple[EventType, Customer]] = []
    for item in data.customers:
        fields: dict[str, Any] = {"name": item.name, "email": item.email}
        if "billing_id" in item.model_fields_set:
            fields["billing_id"] = item.billing_id
        if "metadata" in item.model_fields_set:
            fields["metadata_"] = item.metadata or {}
        customer = existing.get(item.id)
        if customer is None:
            customer = Customer(
                environment_id=environment_id,
                ref_id=item.id,
                integrations=[],
                entitlements_version=1,
                created_at=now,
                updated_at=now,
                **{"metadata_": {}, **fields},
            )
            session.add(customer)
            record_new_customer(session, customer)
            created.append(item.id)
            changes.append((EventType.CUSTOMER_CREATED, customer))
        elif any(getattr(customer, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(customer, name, value)
            customer.updated_at = now
            changes.append((EventType.CUSTOMER_UPDATED, customer))
    flush_unique(session, kind="customer", ref_id=", ".join(created[:5]))
    announce_customers(session, changes, now=now)
    return ImportResult(new_customers=created)


def list_resources(
    session: Session, *, environment_id: int, ref_id: str, page: PageRequest
) -> tuple[Sequence[CustomerResource], Cursors]:
    customer = get_customer(session, environment_id=environment_id, ref_id=ref_id)
    query = select(CustomerResource).where(CustomerResource.customer_id == customer.id)
    return paginate(session, query, CustomerResource.id, page)


def to_read(customer: Customer) -> CustomerRead:
    return CustomerRead(
        id=customer.ref_id,
        name=customer.name,
        email=customer.email,
        billing_id=customer.billing_id,
        billing_currency=customer.billing_currency,
        coupon_id=customer.coupon_id,
        default_payment_method=customer.default_payment_method,
        integrations=[IntegrationRead.model_validate(i) for i in customer.integrations or []],
        language=customer.language,
        metadata=customer.metadata_ or {},
        passthrough=customer.passthrough,
        timezone=customer.timezone,
        archived_at=customer.archived_at,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )
