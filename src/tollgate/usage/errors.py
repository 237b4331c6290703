"""Why a usage report or event batch was refused. Nothing of a refused batch is counted."""

from typing import Any

from tollgate.errors import Conflict, InvalidValue


class UsageRefused(InvalidValue):
    """Items of a batch that cannot be counted, each named by its place in the batch."""

    code = "invalid_usage"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(message, field=problems[0]["field"], details=problems)


class UsageLimitExceeded(Conflict):
    """An enforced report that does not fit the customer's limit (or entitlement)."""

    code = "usage_limit_exceeded"

    def __init__(
        self,
        field: str,
        reason: str,
        message: str,
        *,
        customer_ref: str,
        feature_ref: str,
        current_usage: float,
        usage_limit: float | None,
    ) -> None:
        details = [
            {
                "field": field,
                "accessDeniedReason": reason,
                "message": message,
                "customerId": customer_ref,
                "featureId": feature_ref,
                "currentUsage": current_usage,
                "usageLimit": usage_limit,
            }
        ]
        super().__init__(message, field=field, details=details)
        self.reason = reason
        self.customer_ref = customer_ref
        self.feature_ref = feature_ref
        self.current_usage = current_usage
        self.usage_limit = usage_limit


class IdempotencyKeyReused(Conflict):
    """Items whose idempotency key already stands for a different report or event."""

    code = "idempotency_key_reused"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(message, field=problems[0]["field"], details=problems)
