"""The queries and mutations Stigg's SDKs send, resolved over Tollgate's services.

A resolver checks the caller like the matching REST route does, turns the GraphQL input
into the REST request model (so one validation holds for both), runs the service in one
unit of work, and answers in `shapes.py`'s shapes."""

from typing import Any

from ariadne import MutationType, QueryType
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers import promotions
from tollgate.customers import service as customers
from tollgate.customers.lookup import get_customer
from tollgate.customers.models import Customer
from tollgate.customers.schemas import (
    CustomerCreate,
    CustomerImport,
    CustomerUpdate,
    PromotionGrants,
)
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.errors import AlreadyExists, InvalidValue
from tollgate.graphql.catalog import plan_of_version
from tollgate.graphql.context import Caller, Info
from tollgate.graphql.shapes import (
    SDK_CONFIGURATION,
    customer_shape,
    entitlements_shape,
    promotion_shape,
    subscription_shape,
    time,
)
from tollgate.graphql.subscription_inputs import Input, given, provision_model
from tollgate.invoices import service as invoices
from tollgate.invoices import subscribing
from tollgate.kit.amounts import AmountOutOfRange, to_units
from tollgate.payments import standing
from tollgate.subscriptions import provisioning
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.enums import SubscriptionStatus
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import SubscriptionCancel
from tollgate.usage import events as usage_events
from tollgate.usage import reports
from tollgate.usage.models import UpdateBehavior

query = QueryType()
mutation = MutationType()

_LIVE = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.IN_TRIAL,
    SubscriptionStatus.PAYMENT_PENDING,
)


def caller_of(info: Info) -> Caller:
    caller = info.context
    return caller


def writer_of(info: Info) -> Caller:
    caller = caller_of(info)
    caller.principal.require_write()
    return caller


def customer_of(session: Session, customer: Customer) -> dict[str, Any]:
    """The customer's shape, with the trials it has had."""
    return customer_shape(
        customers.to_read(customer), provisioning.trial_history(session, customer)
    )


# ---------------------------------------------------------------- queries


@query.field("sdkConfiguration")
def resolve_sdk_configuration(*_: Any) -> dict[str, Any]:
    return SDK_CONFIGURATION


@query.field("cachedEntitlements")
async def resolve_cached_entitlements(_: Any, info: Info, query: Input) -> list[dict[str, Any]]:
    caller = caller_of(info)
    customer_ref = query["customerId"]
    caller.principal.require_customer(customer_ref)
    held = await caller.entitlements(customer_ref, query.get("resourceId"))
    return entitlements_shape(held)


@query.field("getCustomerByRefId")
async def resolve_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = caller_of(info)
    customer_ref = input["customerId"]
    caller.principal.require_customer(customer_ref)

    def read(session: Session) -> dict[str, Any]:
        customer = get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref)
        shape = customer_of(session, customer)
        shape["subscriptions"] = subscriptions_of(session, customer, resource_refs=None)
        shape["hasActiveSubscription"] = bool(shape["subscriptions"])
        return shape

    return await caller.read(read)


@query.field("getActiveSubscriptions")
async def resolve_active_subscriptions(_: Any, info: Info, input: Input) -> list[dict[str, Any]]:
    caller = caller_of(info)
    customer_ref = input["customerId"]
    caller.principal.require_customer(customer_ref)
    wanted = input.get("resourceIds") or (
        [input["resourceId"]] if input.get("resourceId") else None
    )

    def read(session: Session) -> list[dict[str, Any]]:
        customer = get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref)
        return subscriptions_of(session, customer, resource_refs=wanted)

    return await caller.read(read)


def subscription_of(session: Session, environment_id: int, ref_id: str) -> dict[str, Any]:
    subscription = subscriptions.get_subscription(
        session, environment_id=environment_id, ref_id=ref_id
    )
    read = standing.with_standing(
        session, subscriptions.to_read(session, subscription), subscription.id
    )
    return subscription_shape(
        read,
        plan_of_version(session, subscription.plan_version_id),
        invoices.next_bill(session, subscription),
    )


def subscriptions_of(
    session: Session, customer: Customer, *, resource_refs: list[str] | None
) -> list[dict[str, Any]]:
    """The customer's live subscriptions (active, in trial, or with a payment being retried),
    oldest first."""
    rows = session.scalars(
        select(Subscription.ref_id)
        .where(Subscription.customer_id == customer.id, Subscription.status.in_(_LIVE))
        .order_by(Subscription.start_date, Subscription.id)
    )
    shapes = [subscription_of(session, customer.environment_id, ref_id) for ref_id in rows]
    if resource_refs is None:
        return shapes
    return [s for s in shapes if (s["resource"] or {}).get("resourceId") in resource_refs]


# ---------------------------------------------------------------- customers


@mutation.field("provisionCustomer")
async def resolve_provision_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """Create the customer, or update it when it exists (provisioning is safe to repeat);
    with `subscriptionParams`, subscribe a customer that has no live subscription yet."""
    caller = writer_of(info)
    customer_ref = input.get("customerId") or input.get("refId")
    if not customer_ref:
        raise InvalidValue("give the customer's id in customerId", field="customerId")
    fields = _customer_fields(input)
    plan = input.get("subscriptionParams")

    def write(session: Session) -> tuple[dict[str, Any], dict[str, Any] | None]:
        environment_id = caller.environment_id
        found = session.scalar(
            select(Customer.id).where(
                Customer.environment_id == environment_id, Customer.ref_id == customer_ref
            )
        )
        customer = None
        if found is None:
            data = CustomerCreate.model_validate({"id": customer_ref, **fields})
            try:
                # A savepoint: losing a race with another provision of the same customer
                # (first logins into a new organization) makes this one a repeat.
                with session.begin_nested():
                    customer = customers.provision_customer(
                        session, environment_id=environment_id, data=data, now=caller.now
                    )
            except AlreadyExists:
                customer = None
        if customer is None and fields:
            customer = customers.update_customer(
                session,
                environment_id=environment_id,
                ref_id=customer_ref,
                data=CustomerUpdate.model_validate(fields),
                now=caller.now,
            )
        elif customer is None:  # provisioned again with nothing to change: no webhook
            customer = get_customer(session, environment_id=environment_id, ref_id=customer_ref)
        subscription = None
        if plan is not None:
            # Under the customer's lock, so that two provisions subscribe it once.
            customer = get_customer(
                session, environment_id=environment_id, ref_id=customer_ref, lock=True
            )
        if plan is not None and not subscriptions_of(session, customer, resource_refs=None):
            subscription = provision(session, caller, {**plan, "customerId": customer_ref})
        return customer_of(session, customer), subscription

    customer, subscription = await caller.write(write)
    held = await caller.entitlements(customer_ref)
    return {
        "__typename": "ProvisionedCustomer",
        "customer": customer,
        "subscriptionDecisionStrategy": "REQUESTED_PLAN"
        if subscription
        else "SKIPPED_SUBSCRIPTION_CREATION",
        "subscription": subscription,
        "entitlements": entitlements_shape(held),
    }


def _customer_fields(input: Input) -> dict[str, Any]:
    fields = given(input, "name", "email", "billingId")
    if input.get("additionalMetaData") is not None:
        fields["metadata"] = input["additionalMetaData"]
    return fields


@mutation.field("updateOneCustomer")
async def resolve_update_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    customer_ref = input.get("customerId") or input.get("refId")
    if not customer_ref:
        raise InvalidValue("give the customer to update in customerId", field="customerId")
    data = CustomerUpdate.model_validate(_customer_fields(input))

    def write(session: Session) -> dict[str, Any]:
        customer = customers.update_customer(
            session,
            environment_id=caller.environment_id,
            ref_id=customer_ref,
            data=data,
            now=caller.now,
        )
        return customer_of(session, customer)

    return await caller.write(write)


@mutation.field("archiveCustomer")
async def resolve_archive_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)

    def write(session: Session) -> dict[str, Any]:
        customer = customers.archive_customer(
            session,
            environment_id=caller.environment_id,
            ref_id=input["customerId"],
            now=caller.now,
        )
        subscriptions.end_subscriptions_of_archived_customer(
            session, customer=customer, now=caller.now
        )
        return customer_of(session, customer)

    return await caller.write(write)


@mutation.field("unarchiveCustomer")
async def resolve_unarchive_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)

    def write(session: Session) -> dict[str, Any]:
        customer = customers.unarchive_customer(
            session,
            environment_id=caller.environment_id,
            ref_id=input["customerId"],
            now=caller.now,
        )
        return customer_of(session, customer)

    return await caller.write(write)


def _import_item(item: Input) -> dict[str, Any]:
    imported = {
        "id": item.get("customerId") or item.get("refId"),
        "email": item.get("email"),
        "name": item.get("name"),
        **given(item, "billingId", "paymentMethodId", "salesforceId", "updatedAt"),
    }
    if item.get("additionalMetaData") is not None:
        imported["metadata"] = item["additionalMetaData"]
    return imported


async def _import(caller: Caller, items: list[Input]) -> None:
    data = CustomerImport.model_validate({"customers": [_import_item(i) for i in items]})
    await caller.write(
        lambda session: customers.import_customers(
            session, environment_id=caller.environment_id, data=data, now=caller.now
        )
    )


@mutation.field("importOneCustomer")
async def resolve_import_customer(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    await _import(caller, [input])
    customer_ref = _import_item(input)["id"]
    return await caller.read(
        lambda session: customer_of(
            session,
            get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref),
        )
    )


@mutation.field("importCustomersBulk")
async def resolve_import_customers(_: Any, info: Info, input: Input) -> str:
    caller = writer_of(info)
    await _import(caller, list(input.get("customers") or []))
    return "SUCCESS"


# The platform's promotion lengths, as the REST API spells them.
_PERIODS = {
    "ONE_WEEK": "1 week",
    "ONE_MONTH": "1 month",
    "SIX_MONTH": "6 month",
    "ONE_YEAR": "1 year",
    "LIFETIME": "lifetime",
    "CUSTOM": "custom",
}


@mutation.field("grantPromotionalEntitlements")
async def resolve_grant_promotions(_: Any, info: Info, input: Input) -> list[dict[str, Any]]:
    caller = writer_of(info)
    customer_ref = input["customerId"]
    grants = [
        {k: v for k, v in grant.items() if v is not None}
        for grant in input.get("promotionalEntitlements") or []
    ]
    for grant in grants:
        grant["period"] = _PERIODS.get(grant.get("period", ""), grant.get("period"))
    data = PromotionGrants.model_validate({"promotionalEntitlements": grants})

    def write(session: Session) -> list[dict[str, Any]]:
        granted = promotions.grant_promotions(
            session,
            environment_id=caller.environment_id,
            customer_ref=customer_ref,
            data=data,
            now=caller.now,
        )
        return [
            promotion_shape(row, grant.feature_id)
            for row, grant in zip(granted, data.promotional_entitlements, strict=True)
        ]

    return await caller.write(write)


@mutation.field("revokePromotionalEntitlement")
async def resolve_revoke_promotion(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    customer_ref, feature_ref = input["customerId"], input["featureId"]
    await caller.write(
        lambda session: promotions.revoke_promotion(
            session,
            environment_id=caller.environment_id,
            customer_ref=customer_ref,
            feature_ref=feature_ref,
            now=caller.now,
        )
    )
    return {"__typename": "RevokePromotionalEntitlement", "id": feature_ref}


# ---------------------------------------------------------------- subscriptions


def provision(session: Session, caller: Caller, input: Input) -> dict[str, Any]:
    """Provision as `POST /api/v1/subscriptions` does; the subscription's shape."""
    subscription, _scheduled = subscribing.provision(
        session, environment_id=caller.environment_id, data=provision_model(input), now=caller.now
    )
    return subscription_of(session, caller.environment_id, subscription.ref_id)


@mutation.field("provisionSubscriptionV2")
async def resolve_provision_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    subscription = await caller.write(lambda session: provision(session, caller, input))
    held = await caller.entitlements(input["customerId"], input.get("resourceId"))
    return {
        "__typename": "ProvisionSubscriptionResult",
        "id": subscription["id"],
        "status": "SUCCESS",
        "checkoutUrl": None,
        "checkoutBillingId": None,
        "subscription": subscription,
        "entitlements": entitlements_shape(held),
    }


@mutation.field("cancelSubscription")
async def resolve_cancel_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    ref_id = input.get("subscriptionRefId") or input.get("subscriptionId")
    if not ref_id:
        raise InvalidValue("name the subscription in subscriptionRefId", field="subscriptionRefId")
    fields = given(input, "endDate")
    if input.get("subscriptionCancellationTime") is not None:
        fields["cancellationTime"] = input["subscriptionCancellationTime"]
    if input.get("subscriptionCancellationAction") is not None:
        fields["cancellationAction"] = input["subscriptionCancellationAction"]
    data = SubscriptionCancel.model_validate(fields)

    def write(session: Session) -> dict[str, Any]:
        subscription = subscriptions.cancel_subscription(
            session,
            environment_id=caller.environment_id,
            ref_id=ref_id,
            data=data,
            now=caller.now,
        )
        return subscription_of(session, caller.environment_id, subscription.ref_id)

    return await caller.write(write)


# ---------------------------------------------------------------- usage


def _usage_report(item: Input, index: int, field: str) -> reports.UsageReport:
    try:
        value = to_units(item["value"])
    except AmountOutOfRange as exc:
        raise InvalidValue(str(exc), field=f"{field}[{index}].value") from exc
    return reports.UsageReport(
        customer_ref=item["customerId"],
        feature_ref=item["featureId"],
        value=value,
        behavior=UpdateBehavior(item.get("updateBehavior") or "DELTA"),
        created_at=item.get("createdAt"),
        dimensions=item.get("dimensions"),
        idempotency_key=item.get("idempotencyKey"),
        resource_ref=item.get("resourceId"),
    )


async def _report_usage(caller: Caller, batch: list[reports.UsageReport]) -> list[dict[str, Any]]:
    snapshots = caller.parts.get(SnapshotStore)
    measured = await caller.write(
        lambda session: reports.report_usage(
            session,
            snapshots,
            environment_id=caller.environment_id,
            reports=batch,
            now=caller.now,
        )
    )
    return [
        {
            "__typename": "UsageMeasurementWithCurrentUsage",
            **{k: time(v) if k in _TIMES else v for k, v in m.as_wire().items()},
        }
        for m in measured
    ]


_TIMES = frozenset(
    {"createdAt", "timestamp", "usagePeriodStart", "usagePeriodEnd", "nextResetDate"}
)


@mutation.field("reportUsage")
async def resolve_report_usage(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    return (await _report_usage(caller, [_usage_report(input, 0, "input")]))[0]


@mutation.field("reportUsageBulk")
async def resolve_report_usage_bulk(_: Any, info: Info, input: Input) -> list[dict[str, Any]]:
    caller = writer_of(info)
    usages = input.get("usages") or []
    if not usages:
        raise InvalidValue("usages must hold at least one report", field="usages")
    return await _report_usage(
        caller, [_usage_report(item, index, "usages") for index, item in enumerate(usages)]
    )


@mutation.field("reportEvent")
async def resolve_report_event(_: Any, info: Info, events: Input) -> str:
    caller = writer_of(info)
    batch = [
        usage_events.EventReport(
            customer_ref=event["customerId"],
            event_name=event["eventName"],
            idempotency_key=event["idempotencyKey"],
            dimensions=event.get("dimensions") or {},
            resource_ref=event.get("resourceId"),
            timestamp=event.get("timestamp"),
        )
        for event in events.get("usageEvents") or []
    ]
    if not batch:
        raise InvalidValue("usageEvents must hold at least one event", field="usageEvents")
    snapshots = caller.parts.get(SnapshotStore)
    await caller.write(
        lambda session: usage_events.report_events(
            session,
            snapshots,
            environment_id=caller.environment_id,
            events=batch,
            now=caller.now,
        )
    )
    return "SUCCESS"


@mutation.field("reportEntitlementCheckRequested")
def resolve_check_requested(*_: Any, **__: Any) -> str:
    """The browser SDK's record of the checks it answered itself: accepted, not kept."""
    return "SUCCESS"
