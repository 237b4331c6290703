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

    def __init__(self, field: str, reason: str, message: str) -> None:
        details = [{"field": field, "accessDeniedReason": reason, "message": message}]
        super().__init__(message, field=field, details=details)
        self.reason = reason


class IdempotencyKeyReused(Conflict):
    """Items whose idempotency key already stands for a different report or event."""

    code = "idempotency_key_reused"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(message, field=problems[0]["field"], details=problems)
