"""Webhook payloads, Tollgate's or the hosted platform's, read into the replica's records.

Both send flat JSON objects with `type`, `messageId` and `timestamp`; they differ in small
ways this module absorbs (a measurement's customer as `customerId` or `customer.id`, a
feature's name as `displayName` or `name`, meter types in either case). A payload that lacks
what its type needs is refused with the field named, before anything is written."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tollgate.replica.tables import CUSTOMER_SCOPE


class BadEvent(ValueError):
    """A payload the replica cannot apply; answered 400 with the field named."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    customer_id: str
    name: str | None
    email: str | None
    billing_id: str | None
    metadata: dict[str, Any] | None
    is_archived: bool | None  # None: the payload does not say (left as stored)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    subscription_id: str
    customer_id: str
    resource_id: str
    status: str
    plan_id: str | None
    plan_name: str | None
    billing_id: str | None
    billing_period: str | None
    start_date: datetime | None
    end_date: datetime | None
    cancellation_date: datetime | None
    trial_end_date: datetime | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    addons: list[dict[str, Any]]
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    feature_id: str
    name: str | None
    feature_type: str
    meter_type: str
    status: str | None
    units: str | None
    units_plural: str | None
    is_deleted: bool = False


@dataclass(frozen=True, slots=True)
class UsageRecord:
    customer_id: str
    resource_id: str
    feature_id: str
    current_usage: float
    period_start: datetime | None
    period_end: datetime | None


@dataclass(frozen=True, slots=True)
class EntitlementRecord:
    feature_id: str
    is_granted: bool
    usage_limit: int | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    enum_values: list[str] | None
    reset_period: str | None
    usage_period_anchor: datetime | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    valid_until: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScopeRecord:
    """A customer's (or one resource's) whole set of entitlements, with the usage and the
    features that came with them."""

    customer_id: str
    resource_id: str
    entitlements: list[EntitlementRecord]
    features: list[FeatureRecord]
    usage: list[UsageRecord]


Record = CustomerRecord | SubscriptionRecord | FeatureRecord | UsageRecord | ScopeRecord


@dataclass(frozen=True, slots=True)
class Event:
    message_id: str
    type: str
    at: datetime  # the source's time of the event: what ordering compares
    customer_id: str | None
    record: Record | None  # None: an event the replica has no use for (acknowledged)


SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription.created",
        "subscription.updated",
        "subscription.canceled",
        "subscription.expired",
        "subscription.trial_started",
        "subscription.trial_expired",
        "subscription.trial_converted",
        "subscription.payment_failed",
    }
)
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated", "customer.deleted"})
FEATURE_EVENTS = frozenset({"feature.created", "feature.updated", "feature.deleted"})
# What `--register` subscribes to: everything the replica applies.
WANTED_EVENTS = sorted(
    CUSTOMER_EVENTS
    | SUBSCRIPTION_EVENTS
    | FEATURE_EVENTS
    | {"entitlements.updated", "measurement.reported"}
)


def read_event(payload: Any, *, message_id: str | None = None) -> Event:
    """The event a payload carries. `message_id` (the `webhook-id` header) stands in for a
    payload without `messageId`."""
    if not isinstance(payload, dict):
        raise BadEvent("the body must be a JSON object", field="body")
    event_type = _text(payload, "type")
    message = payload.get("messageId") or message_id
    if not isinstance(message, str) or not message:
        raise BadEvent("messageId is required (or a webhook-id header)", field="messageId")
    at = _moment(payload, "timestamp", required=True)
    assert at is not None
    record = _record(event_type, payload)
    customer_id = getattr(record, "customer_id", None)
    return Event(message, event_type, at, customer_id, record)


def _record(event_type: str, payload: dict[str, Any]) -> Record | None:
    if event_type in CUSTOMER_EVENTS:
        return _customer(payload, deleted=event_type == "customer.deleted")
    if event_type in SUBSCRIPTION_EVENTS:
        return _subscription(payload)
    if event_type in FEATURE_EVENTS:
        return _feature(payload, "", deleted=event_type == "feature.deleted")
    if event_type == "entitlements.updated":
        return _scope(payload)
    if event_type == "measurement.reported":
        return _measurement(payload)
    return None


def _customer(payload: dict[str, Any], *, deleted: bool) -> CustomerRecord:
    archived = payload.get("isArchived")
    return CustomerRecord(
        customer_id=_text(payload, "id"),
        name=_optional_text(payload, "name"),
        email=_optional_text(payload, "email"),
        billing_id=_optional_text(payload, "billingId"),
        metadata=_object(payload, "metadata"),
        is_archived=True if deleted else (archived if isinstance(archived, bool) else None),
    )


def _subscription(payload: dict[str, Any]) -> SubscriptionRecord:
    plan = _object(payload, "plan") or {}
    addons = payload.get("addons") or []
    if not isinstance(addons, list):
        raise BadEvent("addons must be a list", field="addons")
    return SubscriptionRecord(
        subscription_id=_text(payload, "id"),
        customer_id=_reference(payload, "customer", "customerId", required=True) or "",
        resource_id=_reference(payload, "resource", "resourceId") or CUSTOMER_SCOPE,
        status=_text(payload, "status"),
        plan_id=_optional_text(plan, "id"),
        plan_name=_optional_text(plan, "name") or _optional_text(plan, "displayName"),
        billing_id=_optional_text(payload, "billingId"),
        billing_period=_optional_text(payload, "billingPeriod"),
        start_date=_moment(payload, "startDate"),
        end_date=_moment(payload, "endDate"),
        cancellation_date=_moment(payload, "cancellationDate"),
        trial_end_date=_moment(payload, "trialEndDate"),
        current_period_start=_moment(payload, "currentBillingPeriodStart"),
        current_period_end=_moment(payload, "currentBillingPeriodEnd"),
        addons=[
            {"id": a.get("id"), "name": a.get("name"), "quantity": a.get("quantity", 1)}
            for a in addons
            if isinstance(a, dict)
        ],
        metadata=_object(payload, "metadata"),
    )


def _feature(payload: dict[str, Any], where: str, *, deleted: bool = False) -> FeatureRecord:
    return FeatureRecord(
        feature_id=_text(payload, "id", where),
        name=_optional_text(payload, "displayName") or _optional_text(payload, "name"),
        feature_type=_text(payload, "featureType", where).upper(),
        meter_type=meter_type(payload.get("meterType")),
        status=_optional_text(payload, "featureStatus") or _optional_text(payload, "status"),
        units=_optional_text(payload, "featureUnits") or _optional_text(payload, "units"),
        units_plural=_optional_text(payload, "featureUnitsPlural")
        or _optional_text(payload, "unitsPlural"),
        is_deleted=deleted,
    )


def meter_type(raw: Any) -> str:
    """The engine's spelling (`None`, `FLUCTUATING`, `INCREMENTAL`) of either platform's."""
    if not isinstance(raw, str) or raw.upper() == "NONE" or not raw:
        return "None"
    return raw.upper()


def _scope(payload: dict[str, Any]) -> ScopeRecord:
    customer_id = _reference(payload, "customer", "customerId", required=True) or ""
    resource_id = _reference(payload, "resource", "resourceId") or CUSTOMER_SCOPE
    rows = payload.get("entitlements")
    if not isinstance(rows, list):
        raise BadEvent("entitlements must be a list", field="entitlements")
    entitlements, features, usage = [], [], []
    for index, row in enumerate(rows):
        where = f"entitlements[{index}]."
        if not isinstance(row, dict) or not isinstance(row.get("feature"), dict):
            raise BadEvent("each entitlement needs a feature object", field=f"{where}feature")
        feature = _feature(row["feature"], f"{where}feature.")
        features.append(feature)
        entitlements.append(_entitlement(row, feature.feature_id, where))
        current = row.get("currentUsage")
        if feature.feature_type == "NUMBER" and isinstance(current, int | float):
            usage.append(
                UsageRecord(
                    customer_id,
                    resource_id,
                    feature.feature_id,
                    float(current),
                    _moment(row, "usagePeriodStart", where),
                    _moment(row, "usagePeriodEnd", where),
                )
            )
    return ScopeRecord(customer_id, resource_id, entitlements, features, usage)


def _entitlement(row: dict[str, Any], feature_id: str, where: str) -> EntitlementRecord:
    limit = row.get("usageLimit")
    if limit is not None and not isinstance(limit, int | float):
        raise BadEvent("usageLimit must be a number", field=f"{where}usageLimit")
    enum_values = row.get("enumValues")
    granted = row.get("isGranted")
    return EntitlementRecord(
        feature_id=feature_id,
        # A check's `isGranted` also says "over the limit now"; only a revocation (or an
        # explicit grant flag, as in the source's state reads) withdraws the feature itself.
        is_granted=row.get("accessDeniedReason") != "Revoked"
        if "accessDeniedReason" in row or not isinstance(granted, bool)
        else granted,
        usage_limit=int(limit) if limit is not None else None,
        has_unlimited_usage=bool(row.get("hasUnlimitedUsage")),
        has_soft_limit=bool(row.get("hasSoftLimit")),
        enum_values=[str(v) for v in enum_values] if isinstance(enum_values, list) else None,
        reset_period=_optional_text(row, "resetPeriod"),
        usage_period_anchor=_moment(row, "usagePeriodAnchor", where),
        usage_period_start=_moment(row, "usagePeriodStart", where),
        usage_period_end=_moment(row, "usagePeriodEnd", where),
        valid_until=_moment(row, "validUntil", where),
        updated_at=_moment(row, "entitlementUpdatedAt", where),
    )


def _measurement(payload: dict[str, Any]) -> UsageRecord:
    current = payload.get("currentUsage")
    if not isinstance(current, int | float):
        raise BadEvent("currentUsage must be a number", field="currentUsage")
    return UsageRecord(
        customer_id=_reference(payload, "customer", "customerId", required=True) or "",
        resource_id=_reference(payload, "resource", "resourceId") or CUSTOMER_SCOPE,
        feature_id=_reference(payload, "feature", "featureId", required=True) or "",
        current_usage=float(current),
        period_start=_moment(payload, "usagePeriodStart"),
        period_end=_moment(payload, "usagePeriodEnd"),
    )


def scope_of_state(state: dict[str, Any]) -> ScopeRecord:
    """A scope from the source's state read (`/api/v1/sdk/customers/{id}/state`), with
    the features as `/api/v1/sdk/features` lists them: what a resync writes."""
    customer_id = _text(state, "customerId")
    resource_id = _optional_text(state, "resourceId") or CUSTOMER_SCOPE
    entitlements, usage = [], []
    for index, row in enumerate(state.get("entitlements") or []):
        where = f"entitlements[{index}]."
        feature_id = _text(row, "featureId", where)
        entitlements.append(_entitlement(row, feature_id, where))
        current = row.get("currentUsage")
        if isinstance(current, int | float):
            usage.append(
                UsageRecord(
                    customer_id,
                    resource_id,
                    feature_id,
                    float(current),
                    _moment(row, "usagePeriodStart", where),
                    _moment(row, "usagePeriodEnd", where),
                )
            )
    return ScopeRecord(customer_id, resource_id, entitlements, [], usage)


def feature_of(payload: dict[str, Any]) -> FeatureRecord:
    return _feature(payload, "")


def customer_of(payload: dict[str, Any]) -> CustomerRecord:
    """A customer as the source's REST API reads it."""
    archived = payload.get("archivedAt") is not None or bool(payload.get("isArchived"))
    return replace(_customer(payload, deleted=False), is_archived=archived)


def subscription_of(payload: dict[str, Any]) -> SubscriptionRecord:
    """A subscription as the source's REST API reads it (flat ids, `planId`)."""
    shaped = dict(payload)
    shaped.setdefault("plan", {"id": payload.get("planId")})
    return _subscription(shaped)


def _text(payload: dict[str, Any], name: str, where: str = "") -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{where}{name} is required (a non-empty string)", field=f"{where}{name}")
    return value


def _optional_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


def _object(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, dict):
        raise BadEvent(f"{name} must be an object", field=name)
    return value


def _reference(
    payload: dict[str, Any], name: str, flat: str, *, required: bool = False
) -> str | None:
    """An id given as `{name: {id}}` (webhooks) or as `flat` (REST reads, measurements)."""
    nested = payload.get(name)
    value = nested.get("id") if isinstance(nested, dict) else payload.get(flat)
    if isinstance(value, str) and value:
        return value
    if required:
        raise BadEvent(f"{name}.id (or {flat}) is required", field=f"{name}.id")
    return None


def _moment(
    payload: dict[str, Any], name: str, where: str = "", *, required: bool = False
) -> datetime | None:
    return moment(payload.get(name), f"{where}{name}", required=required)


def moment(raw: Any, field: str, *, required: bool = False) -> datetime | None:
    """An ISO 8601 time (a trailing Z allowed) or epoch milliseconds, in UTC."""
    if raw is None or raw == "":
        if required:
            raise BadEvent(f"{field} is required", field=field)
        return None
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw / 1000, UTC)
        if isinstance(raw, str):
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise BadEvent(f"{field} must be an ISO 8601 time", field=field)
