"""GraphQL's subscription inputs (provision, apply, preview, update) as REST's bodies.

Every field REST knows is passed on under REST's name, so it is validated, or refused by
name, exactly as `POST /api/v1/subscriptions` does it: nothing the client sends is dropped
silently (a coupon or a seat count ignored would charge the wrong amount). A customer's
own page (the checkout widget, with a client key) may send only what that widget sends."""

from collections.abc import Mapping
from typing import Any

from tollgate.errors import InvalidValue, NotImplementedYet, PermissionDenied
from tollgate.subscriptions.schemas import (
    SubscriptionPreview,
    SubscriptionProvision,
    SubscriptionUpdate,
)

Input = Mapping[str, Any]

# GraphQL fields whose REST name is the same.
_TERMS = (
    "customerId",
    "planId",
    "billingPeriod",
    "resourceId",
    "startDate",
    "scheduleStrategy",
    "appliedCoupon",
    "trialOverrideConfiguration",
    "billingCountryCode",
    "billingInformation",
    "payingCustomerId",
    "budget",
    "minimumSpend",
    "priceOverrides",
    "awaitPaymentConfirmation",
)
_PROVISION = ("billingId", "paymentCollectionMethod", "salesforceId", "checkoutOptions")

# What Stigg's `<Checkout>` sends from the customer's browser: the plan and what is bought
# with it, the card it just collected, the resource, and the country taxes would follow
# (from the host's `billingCountryCode` prop). Anything else (a coupon, a trial's end, whom
# Stripe charges, how the invoice is collected, when a change takes effect, the team's
# metadata, `billingInformation`, which can name a coupon) is the team's server's to choose.
BROWSER_CHECKOUT_FIELDS = frozenset(
    {
        "customerId",
        "planId",
        "billingPeriod",
        "addons",
        "billableFeatures",
        "unitQuantity",
        "skipTrial",
        "paymentMethodId",
        "promotionCode",
        "resourceId",
        "billingCountryCode",
        "environmentId",
    }
)


def refuse_server_fields(input: Input) -> None:
    """A browser's checkout sets no field its widget does not send (403, naming it)."""
    for field in sorted(input):
        if field not in BROWSER_CHECKOUT_FIELDS and input[field] is not None:
            raise PermissionDenied(
                f"{field} is set by your server (a server key), not from a browser", field=field
            )


def refuse_promotion_code(input: Input) -> None:
    """Promotion codes are not taken yet: say so rather than charge the full price."""
    if input.get("promotionCode"):
        raise InvalidValue(
            "promotion codes are not taken yet; a coupon is applied by your server "
            "(appliedCoupon in POST /api/v1/subscriptions)",
            field="promotionCode",
        )


def provision_model(input: Input) -> SubscriptionProvision:
    """The input as `POST /api/v1/subscriptions`'s body, validated by it."""
    fields = _terms(input) | given(input, *_PROVISION)
    if input.get("additionalMetaData") is not None:
        fields["metadata"] = input["additionalMetaData"]
    ref_id = input.get("subscriptionId") or input.get("refId")
    if ref_id is not None:
        fields["id"] = ref_id
    if input.get("subscriptionEntitlements"):
        raise NotImplementedYet("subscriptionEntitlements", "give entitlements in the plan")
    return SubscriptionProvision.model_validate(fields)


def preview_model(input: Input) -> SubscriptionPreview:
    """The input as `POST /api/v1/subscriptions/preview`'s body, validated by it."""
    return SubscriptionPreview.model_validate(_terms(input))


def update_model(input: Input) -> SubscriptionUpdate:
    """The input as `PATCH /api/v1/subscriptions/{id}`'s body, validated by it."""
    refuse_promotion_code(input)
    fields = given(
        input,
        "billingPeriod",
        "scheduleStrategy",
        "trialEndDate",
        "appliedCoupon",
        "billingInformation",
        "budget",
        "minimumSpend",
        "priceOverrides",
        "awaitPaymentConfirmation",
    )
    if input.get("additionalMetaData") is not None:
        fields["metadata"] = input["additionalMetaData"]
    if input.get("addons") is not None:
        fields["addons"] = _addons(input)
    if input.get("billableFeatures"):
        fields["charges"] = _charges(input)
    if input.get("unitQuantity") is not None:
        raise NotImplementedYet("unitQuantity", "give each feature's quantity in billableFeatures")
    if input.get("subscriptionEntitlements"):
        raise NotImplementedYet("subscriptionEntitlements", "give entitlements in the plan")
    return SubscriptionUpdate.model_validate(fields)


def _addons(input: Input) -> list[dict[str, Any]]:
    return [
        {
            "id": addon.get("addonId"),
            "quantity": 1 if addon.get("quantity") is None else addon["quantity"],
        }
        for addon in input.get("addons") or []
    ]


def _charges(input: Input) -> list[dict[str, Any]]:
    return [
        {"id": f["featureId"], "quantity": _whole(f["quantity"])}
        for f in input.get("billableFeatures") or []
    ]


def _terms(input: Input) -> dict[str, Any]:
    refuse_promotion_code(input)
    if input.get("priceUnitAmount") is not None:
        raise NotImplementedYet("priceUnitAmount", "prices are the plan's")
    fields = given(input, *_TERMS)
    if input.get("addons"):
        fields["addons"] = _addons(input)
    if input.get("billableFeatures"):
        fields["charges"] = _charges(input)
    if input.get("unitQuantity") is not None:
        fields["unitQuantity"] = _whole(input["unitQuantity"])
    if input.get("skipTrial"):
        if input.get("trialOverrideConfiguration") is not None:
            raise InvalidValue(
                "give skipTrial or trialOverrideConfiguration, not both", field="skipTrial"
            )
        fields["trialOverrideConfiguration"] = {"isTrial": False}
    return fields


def _whole(quantity: float) -> int | float:
    """GraphQL's quantities are Floats; a whole one is the int REST takes (a fraction is
    left for REST's validation to refuse by name)."""
    return int(quantity) if float(quantity).is_integer() else quantity


def given(data: Input, *names: str) -> dict[str, Any]:
    """The named fields the client sent (nulls left out, as REST leaves them out)."""
    return {name: data[name] for name in names if data.get(name) is not None}
