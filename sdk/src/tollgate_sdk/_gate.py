"""What the framework helpers share: one check of a feature, and the body of a denial."""

from typing import Any

from tollgate_sdk._types import AccessDeniedReason, BooleanEntitlement, MeteredEntitlement

Answer = BooleanEntitlement | MeteredEntitlement


def denial(feature_id: str, answer: Answer | None) -> dict[str, Any] | None:
    """The JSON body of a 403 (which feature, why, and where the answer came from), or None
    when `answer` grants the feature. No answer means no customer was signed in."""
    if answer is not None and answer.has_access:
        return None
    if answer is None:
        reason = AccessDeniedReason.CUSTOMER_NOT_FOUND.value
        message = f"no customer is signed in, so '{feature_id}' cannot be granted"
        source = None
    else:
        reason = (answer.access_denied_reason or AccessDeniedReason.UNKNOWN).value
        message = _MESSAGES.get(reason, "this customer is not granted '{feature}' ({reason})")
        message = message.format(feature=feature_id, reason=reason)
        source = answer.source.value
    return {
        "error": {
            "code": "feature_not_granted",
            "message": message,
            "featureId": feature_id,
            "accessDeniedReason": reason,
            "source": source,
        }
    }


_MESSAGES = {
    AccessDeniedReason.CUSTOMER_NOT_FOUND.value: "this customer is unknown to Tollgate, so "
    "'{feature}' cannot be granted",
    AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT.value: "this customer has no room "
    "left for that much more of '{feature}' ({reason})",
    AccessDeniedReason.UNKNOWN.value: "Tollgate could not be reached and no fallback grants "
    "'{feature}'",
}


def check(
    client: Any,
    customer_id: str | None,
    feature_id: str,
    requested_usage: float | None,
) -> Answer | None:
    """A sync client's answer (None without a customer)."""
    if not customer_id:
        return None
    if requested_usage is None:
        answer: Answer = client.get_boolean_entitlement(customer_id, feature_id)
        return answer
    metered: Answer = client.get_metered_entitlement(
        customer_id, feature_id, requested_usage=requested_usage
    )
    return metered
