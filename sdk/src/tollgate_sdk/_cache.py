"""Each customer's entitlements in memory, and the checks decided from them.

The server's `/api/v1/sdk/customers/{id}/state` gives every entitlement's full terms and
usage; `decide` below makes the same decision as the server's engine from them, so a cached
check answers exactly what the server would, without asking it."""

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tollgate_sdk._types import AccessDeniedReason, BooleanEntitlement

CacheKey = tuple[str, str | None]  # customer id, resource id
FOREVER = float("inf")


@dataclass(frozen=True, slots=True)
class FeatureDef:
    id: str
    feature_type: str  # BOOLEAN, NUMBER, ENUM
    meter_type: str  # None, FLUCTUATING, INCREMENTAL

    @property
    def is_metered(self) -> bool:
        return self.feature_type == "NUMBER" and self.meter_type != "None"


def parse_features(data: Iterable[Mapping[str, Any]]) -> dict[str, FeatureDef]:
    return {f["id"]: FeatureDef(f["id"], f["featureType"], f["meterType"]) for f in data}


@dataclass(slots=True)
class Terms:
    """One entitlement of a customer, as the server computed it."""

    is_granted: bool
    usage_limit: float | None
    is_unlimited: bool
    has_soft_limit: bool
    enum_values: frozenset[str] | None
    reset_period: str | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    period_ends_at: float  # usage_period_end as a timestamp; FOREVER when none
    current_usage: float  # as the server last counted it (acknowledged reports)


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    resource_id: str | None
    reason: AccessDeniedReason | None  # why nothing at all is granted, if so
    has_subscription: bool
    terms: dict[str, Terms]
    refresh_at: float  # when time alone changes the answers (a trial or period ends)
    loaded_at: int = 0  # the change count (`Loader._sequence`) when its load started
    # Boolean answers of unmetered features, made once: the fastest checks return these.
    booleans: dict[str, BooleanEntitlement] = field(default_factory=dict)
    # Granted metered features, whose answers then depend only on usage (see Gauge).
    gauges: dict[str, "Gauge"] = field(default_factory=dict)

    def forget_answers(self) -> None:
        """Answers made with features that may have changed since."""
        self.booleans = {}
        self.gauges = {}


def parse_state(data: Mapping[str, Any], *, loaded_at: int = 0) -> CustomerState:
    reason = data.get("accessDeniedReason")
    return CustomerState(
        customer_id=data["customerId"],
        resource_id=data.get("resourceId"),
        reason=AccessDeniedReason(reason) if reason else None,
        has_subscription=bool(data.get("hasSubscription")),
        terms={item["featureId"]: _terms(item) for item in data.get("entitlements", ())},
        refresh_at=_timestamp(data.get("refreshAt")),
        loaded_at=loaded_at,
    )


def _terms(item: Mapping[str, Any]) -> Terms:
    values = item.get("enumValues")
    period_end = _datetime(item.get("usagePeriodEnd"))
    return Terms(
        is_granted=bool(item.get("isGranted")),
        usage_limit=item.get("usageLimit"),
        is_unlimited=bool(item.get("hasUnlimitedUsage")),
        has_soft_limit=bool(item.get("hasSoftLimit")),
        enum_values=frozenset(values) if values is not None else None,
        reset_period=item.get("resetPeriod"),
        usage_period_start=_datetime(item.get("usagePeriodStart")),
        usage_period_end=period_end,
        period_ends_at=period_end.timestamp() if period_end else FOREVER,
        current_usage=item.get("currentUsage") or 0,
    )


def _datetime(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def _timestamp(raw: str | None) -> float:
    moment = _datetime(raw)
    return moment.timestamp() if moment else FOREVER


Decision = tuple[bool, AccessDeniedReason | None, Terms | None]


def decide(
    state: CustomerState,
    feature: FeatureDef | None,
    *,
    requested_usage: float | None = None,
    requested_values: frozenset[str] | None = None,
    current_usage: float = 0,
) -> Decision:
    """The server engine's decision: the first reason that applies, in Stigg's order (the
    customer, its subscriptions, the feature, the grant, the values or usage asked for)."""
    reason = state.reason
    if reason is None and feature is None:
        reason = AccessDeniedReason.FEATURE_NOT_FOUND
    if reason is not None or feature is None:
        return False, reason, None
    if (requested_values is not None and feature.feature_type != "ENUM") or (
        requested_usage is not None and feature.feature_type != "NUMBER"
    ):
        return False, AccessDeniedReason.FEATURE_TYPE_MISMATCH, None
    terms = state.terms.get(feature.id)
    if terms is None:
        if state.has_subscription:
            return False, AccessDeniedReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION, None
        return False, AccessDeniedReason.NO_ACTIVE_SUBSCRIPTION, None
    if not terms.is_granted:
        return False, AccessDeniedReason.REVOKED, terms
    if requested_values is not None and not (terms.enum_values or frozenset()).issuperset(
        requested_values
    ):
        return False, AccessDeniedReason.REQUESTED_VALUES_MISMATCH, terms
    if feature.is_metered and not _within_limit(
        terms, current_usage, 1 if requested_usage is None else requested_usage
    ):
        return False, AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT, terms
    return True, None, terms


def _within_limit(terms: Terms, current_usage: float, requested: float) -> bool:
    return is_unbounded(terms) or current_usage + requested <= (terms.usage_limit or 0)


def is_unbounded(terms: Terms) -> bool:
    """Whether any amount is allowed: unlimited, or a soft limit (reported, not enforced)."""
    return terms.is_unlimited or terms.has_soft_limit


class Gauge:
    """A granted metered feature of one cached customer: everything `decide` would look at
    except the usage, settled once, so a cached metered check is one comparison."""

    __slots__ = ("feature_id", "key", "limit", "terms", "unbounded")

    def __init__(self, feature_id: str, key: tuple[str, str | None, str], terms: Terms) -> None:
        self.feature_id = feature_id
        self.key = key  # the usage buffer's key
        self.terms = terms  # read live: acknowledged usage updates `current_usage`
        self.unbounded = is_unbounded(terms)  # `decide`'s last rule, settled once
        self.limit = terms.usage_limit or 0


class EntitlementCache:
    """The most recently used customers' states, at most `max_customers` of them."""

    def __init__(self, max_customers: int) -> None:
        self._max = max_customers
        self._states: OrderedDict[CacheKey, CustomerState] = OrderedDict()
        # Each customer's keys (one per resource asked about): a change event finds them
        # without scanning the whole cache.
        self._by_customer: dict[str, set[CacheKey]] = {}
        self._lock = threading.Lock()
        # Recency matters only when something must be evicted; until the cache is nearly
        # full, checks skip the reordering (it is half the cost of a cached lookup).
        self._crowded = False

    def get(self, key: CacheKey) -> CustomerState | None:
        state = self._states.get(key)
        if state is not None and self._crowded:
            # Not contextlib.suppress: this is the hottest line of the SDK.
            try:  # noqa: SIM105
                self._states.move_to_end(key)
            except KeyError:  # evicted by another thread just now
                pass
        return state

    def put(self, state: CustomerState) -> None:
        key = (state.customer_id, state.resource_id)
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            self._by_customer.setdefault(key[0], set()).add(key)
            self._crowded = len(self._states) >= self._max * 0.9
            while len(self._states) > self._max:
                evicted, _ = self._states.popitem(last=False)
                keys = self._by_customer[evicted[0]]
                keys.discard(evicted)
                if not keys:
                    del self._by_customer[evicted[0]]

    def drop(self, customer_id: str) -> None:
        """Forget every state of one customer."""
        with self._lock:
            for key in self._by_customer.pop(customer_id, ()):
                self._states.pop(key, None)

    def keys_of(self, customer_id: str) -> list[CacheKey]:
        """The cached keys of one customer (each resource asked about is its own key)."""
        with self._lock:
            return list(self._by_customer.get(customer_id, ()))

    def all_keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._states)

    def states(self) -> list[CustomerState]:
        with self._lock:
            return list(self._states.values())

    def __len__(self) -> int:
        return len(self._states)
