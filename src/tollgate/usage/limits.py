"""Enforced usage (reports and events with `enforceLimit`): what may not be counted.

Decided by the caller while it holds the counters' locks, so two writers racing for the
last unit of a limit are decided one after the other."""

from tollgate.entitlements import engine
from tollgate.entitlements.snapshots import SnapshotSource
from tollgate.kit.amounts import from_units
from tollgate.usage.errors import UsageLimitExceeded


def refuse_past_limit(
    snapshots: SnapshotSource,
    environment_id: int,
    *,
    customer_ref: str,
    resource_ref: str | None,
    feature_ref: str,
    before: int,
    after: int,
    field: str,
) -> None:
    """Refuse usage moving from `before` to `after` (scaled) past the customer's limit, or
    usage of a feature it is not entitled to. Soft limits and unlimited usage pass."""
    snapshot = snapshots.snapshot(environment_id, customer_ref, resource_ref)
    feature = snapshots.features(environment_id).get(feature_ref)
    decision = engine.check(snapshot, feature, requested_usage=0, current_usage=from_units(after))
    if decision.is_granted:
        return
    reason = decision.reason.value if decision.reason else "Unknown"
    past_limit = decision.reason is engine.DenyReason.REQUESTED_USAGE_EXCEEDING_LIMIT
    limit = decision.entitlement.usage_limit if past_limit and decision.entitlement else None
    why = (
        f"it would reach {from_units(after)} of a limit of {limit}"
        if limit is not None
        else f"the customer is not entitled to it ({reason})"
    )
    message = f"usage of '{feature_ref}' by '{customer_ref}' was not counted: {why}"
    raise UsageLimitExceeded(
        field,
        reason,
        message,
        customer_ref=customer_ref,
        feature_ref=feature_ref,
        current_usage=from_units(before),
        usage_limit=limit,
    )
