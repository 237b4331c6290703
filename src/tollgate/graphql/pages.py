"""The queries and mutations behind Stigg's widgets (paywall, customer portal, checkout) and
the SDKs' catalog, subscription and history reads.

Amounts come from the prices domain (a preview's are the invoice's), payments from the
environment's provider (`payments/checkout.py` for the checkout's). The shapes the widgets
cannot do without (docs/widgets.md lists them) are always there, never null."""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tollgate.coupons import service as coupons
from tollgate.coupons.models import CouponStatus
from tollgate.coupons.schemas import CouponRead
from tollgate.customers.lookup import get_customer
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.environments.models import KeyKind
from tollgate.errors import InvalidValue
from tollgate.graphql.catalog import published_plans
from tollgate.graphql.context import Caller, Info
from tollgate.graphql.operations import (
    caller_of,
    customer_of,
    mutation,
    query,
    subscription_of,
    subscriptions_of,
    writer_of,
)
from tollgate.graphql.shapes import entitlements_shape, money, time
from tollgate.graphql.subscription_inputs import (
    Input,
    preview_model,
    provision_model,
    refuse_server_fields,
    update_model,
)
from tollgate.invoices import service as invoices
from tollgate.invoices import subscribing
from tollgate.kit.pagination import PageRequest
from tollgate.payments import checkout, methods, providers
from tollgate.payments.errors import ProviderError
from tollgate.prices.bill import Bill
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import (
    SubscriptionRead,
)
from tollgate.usage import history

log = logging.getLogger(__name__)

CURRENCY = "USD"  # until prices bring a currency per price


@query.field("paywall")
async def resolve_paywall(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """The published plans of the environment (or of `productId`), lowest tier first; with
    `customerId`, the customer and its live subscriptions (the current plan's highlight)."""
    caller = caller_of(info)
    customer_ref = input.get("customerId")
    if customer_ref:
        caller.principal.require_customer(customer_ref)

    def read(session: Session) -> dict[str, Any]:
        plans = published_plans(
            session, environment_id=caller.environment_id, product_ref=input.get("productId")
        )
        customer = active = None
        if customer_ref:
            found = get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref)
            customer = customer_of(session, found)
            active = subscriptions_of(session, found, resource_refs=None)
        return paywall_shape(plans, customer, active)

    return await caller.read(read)


def paywall_shape(
    plans: list[dict[str, Any]],
    customer: dict[str, Any] | None,
    active: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    return {
        "__typename": "Paywall",
        "plans": plans,
        "currency": {"__typename": "PaywallCurrency", "code": CURRENCY, "symbol": "$"},
        "configuration": None,
        "customer": customer,
        "activeSubscriptions": active,
        "resource": None,
        "paywallCalculatedPricePoints": [],
    }


@query.field("customerPortal")
async def resolve_customer_portal(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = caller_of(info)
    customer_ref = input["customerId"]
    caller.principal.require_customer(customer_ref)
    resource_ref = input.get("resourceId")

    def read(session: Session) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        found = get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref)
        live = subscriptions_of(
            session, found, resource_refs=[resource_ref] if resource_ref else None
        )
        return customer_of(session, found), live

    customer, live = await caller.read(read)
    held = await caller.entitlements(customer_ref, resource_ref)
    return {
        "__typename": "CustomerPortal",
        "subscriptions": [_portal_subscription(s, caller.now) for s in live],
        "entitlements": entitlements_shape(held),
        "promotionalEntitlements": [],
        "billingInformation": {
            "__typename": "CustomerPortalBillingInformation",
            "email": customer["email"],
            "name": customer["name"],
            "defaultPaymentMethodId": customer["defaultPaymentMethodId"],
            "defaultPaymentMethodLast4Digits": customer["defaultPaymentMethodLast4Digits"],
            "defaultPaymentExpirationMonth": customer["defaultPaymentExpirationMonth"],
            "defaultPaymentExpirationYear": customer["defaultPaymentExpirationYear"],
        },
        "showWatermark": False,
        "billingPortalUrl": None,
        "canUpgradeSubscription": True,
        "configuration": None,
        "resource": {"__typename": "CustomerResource", "resourceId": resource_ref}
        if resource_ref
        else None,
    }


def _portal_subscription(subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The portal's view of a live subscription. A paid one shows "Next estimated bill":
    the first price's period, the period's end and the next renewal's total."""
    trial_end = subscription["trialEndDate"]
    remaining = None
    if subscription["status"] == "IN_TRIAL" and trial_end:
        ends = datetime.fromisoformat(trial_end.replace("Z", "+00:00"))
        remaining = max(0, (ends - now).days)
    total = subscription["totalPrice"]
    return {
        "__typename": "CustomerPortalSubscription",
        "subscriptionId": subscription["subscriptionId"],
        "planId": subscription["plan"]["refId"],
        "planName": subscription["plan"]["displayName"],
        "pricingType": subscription["pricingType"],
        "prices": [
            {
                "__typename": "CustomerPortalSubscriptionPrice",
                "billingPeriod": held["price"]["billingPeriod"],
                "billingModel": held["price"]["billingModel"],
                "blockSize": held["price"]["blockSize"],
                "price": held["price"]["price"],
                "feature": held["price"]["feature"],
            }
            for held in subscription["prices"]
        ],
        "pricing": None,
        "status": subscription["status"],
        "trialRemainingDays": remaining,
        "billingPeriodRange": _date_range(
            subscription["currentBillingPeriodStart"], subscription["currentBillingPeriodEnd"]
        ),
        "totalPrice": {"__typename": "TotalPrice", **total, "addonsTotal": None} if total else None,
        "addons": [
            {
                "__typename": "CustomerPortalAddon",
                "addonId": addon["addon"]["refId"],
                "displayName": addon["addon"]["displayName"],
                "description": None,
                "quantity": addon["quantity"],
            }
            for addon in subscription["addons"]
        ],
        "scheduledUpdates": subscription["scheduledUpdates"],
    }


@query.field("checkoutState")
async def resolve_checkout_state(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """What the checkout shows: the plan, the customer (its card on file) and its current
    subscription of the plan's product; with Stripe connected and its publishable key
    given, the account's key and a setup intent for Stripe Elements to collect a new card
    with (which is why this reads as a write: the customer is created at Stripe first)."""
    caller = caller_of(info)
    customer_ref, plan_ref = input["customerId"], input["planId"]
    caller.principal.require_checkout(customer_ref)  # it creates a setup intent at Stripe

    def read(session: Session) -> dict[str, Any]:
        found = get_customer(session, environment_id=caller.environment_id, ref_id=customer_ref)
        subscriptions.check_plan_offered(
            session, environment_id=caller.environment_id, ref_id=plan_ref, field="planId"
        )
        plans = published_plans(session, environment_id=caller.environment_id)
        plan = next(p for p in plans if p["refId"] == plan_ref)
        product_plans = {p["refId"] for p in plans if p["product"] == plan["product"]}
        live = subscriptions_of(session, found, resource_refs=None)
        same_product = [s for s in live if s["plan"]["refId"] in product_plans]
        integration, secret = _card_collection(session, caller, customer_ref)
        return {
            "__typename": "CheckoutState",
            "configuration": None,
            "setupSecret": secret,
            "customer": customer_of(session, found),
            "activeSubscription": same_product[0] if same_product else None,
            "resource": None,
            "plan": plan,
            "billingIntegration": integration,
        }

    return await caller.write(read)


def _card_collection(
    session: Session, caller: Caller, customer_ref: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The `billingIntegration` and `setupSecret` Stripe Elements load with, when the
    environment collects cards in the browser (Stripe, with its publishable key)."""
    provider = providers.of_environment(session, caller.environment_id)
    if provider is None or not provider.publishable_key:
        return None, None
    try:
        intent, _, _ = methods.setup_intent(
            session, environment_id=caller.environment_id, customer_ref=customer_ref, now=caller.now
        )
    except ProviderError:
        # Stripe is out of reach: the checkout still shows, and a card on file still pays.
        log.warning("no setup intent for the checkout", exc_info=True)
        return None, None
    integration = {
        "__typename": "BillingIntegration",
        "billingIdentifier": provider.vendor.value,
        "credentials": {
            "__typename": "Credentials",
            "accountId": None,
            "publicKey": provider.publishable_key,
        },
        "billingCredentials": None,
    }
    return integration, intent.client_secret


async def _preview(caller: Caller, input: Input) -> tuple[subscriptions.Preview, Bill, Bill | None]:
    """What provisioning would do, as `POST /api/v1/subscriptions/preview` answers it: the
    plan, and the bills it would issue now and at the next renewal."""
    caller.principal.require_customer(input["customerId"])
    data = preview_model(input)

    def read(session: Session) -> tuple[subscriptions.Preview, Bill, Bill | None]:
        preview = subscriptions.preview_subscription(
            session, environment_id=caller.environment_id, data=data, now=caller.now
        )
        immediate, recurring = invoices.preview(session, preview, now=caller.now)
        return preview, immediate, recurring

    return await caller.read(read)


def _bill_money(bill: Bill, minor: int) -> dict[str, Any]:
    return money(minor, bill.currency)


def _date_range(start: datetime | str | None, end: datetime | str | None) -> dict[str, Any]:
    return {
        "__typename": "DateRange",
        "start": time(start) if isinstance(start, datetime) else start,
        "end": time(end) if isinstance(end, datetime) else end,
    }


@mutation.field("previewSubscription")
async def resolve_preview_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """What the change costs now and at the next renewal (the bills the change would
    issue), whether it is a downgrade and whether it waits. `proration` is always given:
    without it the checkout's button stays disabled."""
    caller = caller_of(info)
    preview, immediate, recurring = await _preview(caller, input)
    credit = -sum(line.amount for line in immediate.lines if line.amount < 0)
    debit = sum(line.amount for line in immediate.lines if line.kind != "credit")
    invoice = {
        "__typename": "ImmediateSubscriptionPreviewInvoice",
        "total": _bill_money(immediate, immediate.total),
        "subTotal": _bill_money(immediate, immediate.subtotal),
        "totalExcludingTax": _bill_money(immediate, immediate.total),
        "tax": None,
        "discount": _bill_money(immediate, immediate.discount) if immediate.discount else None,
        "taxDetails": None,
        "discountDetails": None,
        "credits": None,
        "proration": {
            "__typename": "SubscriptionPreviewProrations",
            "prorationDate": time(caller.now),
            "hasProrations": credit > 0,
            "credit": _bill_money(immediate, credit),
            "debit": _bill_money(immediate, debit),
            "netAmount": _bill_money(immediate, immediate.total),
        },
    }
    return {
        "__typename": "SubscriptionPreviewV2",
        "immediateInvoice": invoice,
        "recurringInvoice": _recurring(recurring),
        "billingPeriodRange": _date_range(*preview.period),
        "isPlanDowngrade": preview.is_downgrade,
        "hasScheduledUpdates": preview.is_scheduled,
    }


def _recurring(bill: Bill | None) -> dict[str, Any] | None:
    if bill is None:
        return None
    return {
        "__typename": "SubscriptionPreviewInvoice",
        "total": _bill_money(bill, bill.total),
        "subTotal": _bill_money(bill, bill.subtotal),
        "totalExcludingTax": _bill_money(bill, bill.total),
        "tax": None,
        "discount": _bill_money(bill, bill.discount) if bill.discount else None,
        "discountDetails": None,
        "taxDetails": None,
    }


@mutation.field("estimateSubscription")
async def resolve_estimate(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """Zero amounts until prices exist, over the period the subscription would start."""
    caller = caller_of(info)
    preview, _, _ = await _preview(caller, input)
    return _estimate(preview.period, preview.is_downgrade, preview.is_scheduled)


@mutation.field("estimateSubscriptionUpdate")
async def resolve_estimate_update(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """Zero amounts until prices exist, over the subscription's current period."""
    caller = caller_of(info)
    ref_id = input["subscriptionId"]

    def read(session: Session) -> SubscriptionRead:
        found = subscriptions.get_subscription(
            session, environment_id=caller.environment_id, ref_id=ref_id
        )
        current = subscriptions.to_read(session, found)
        caller.principal.require_customer(current.customer_id)
        return current

    current = await caller.read(read)
    period = (current.current_billing_period_start, current.current_billing_period_end)
    return _estimate(period, False, bool(current.future_updates))


def _estimate(
    period: tuple[datetime, datetime], is_downgrade: bool, is_scheduled: bool
) -> dict[str, Any]:
    zero = money(0, CURRENCY)
    return {
        "__typename": "SubscriptionPreview",
        "subTotal": zero,
        "totalExcludingTax": zero,
        "total": zero,
        "discountAmount": None,
        "taxDetails": None,
        "tax": zero,
        "billingPeriodRange": _date_range(*period),
        "discount": None,
        "subscription": None,
        "proration": None,
        "isPlanDowngrade": is_downgrade,
        "hasScheduledUpdates": is_scheduled,
        "credits": None,
    }


@mutation.field("applySubscription")
async def resolve_apply_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    """The checkout's last step, sent from the customer's browser (a client key with the
    customer's token) or from a server: the change, paid for first when it costs money
    now (`payments/checkout.py`); `paymentMethodId` is a card the widget just collected."""
    caller = caller_of(info)
    customer_ref = input["customerId"]
    caller.principal.require_checkout(customer_ref)
    from_browser = caller.principal.key_kind is not KeyKind.SERVER
    if from_browser:
        refuse_server_fields(input)
    data = provision_model(input)
    ref_id = await caller.write_steps(
        lambda sessions: checkout.apply(
            sessions,
            environment_id=caller.environment_id,
            data=data,
            payment_method_id=input.get("paymentMethodId"),
            now=caller.now,
            from_browser=from_browser,
        )
    )
    subscription = await caller.read(
        lambda session: subscription_of(session, caller.environment_id, ref_id)
    )
    held = await caller.entitlements(customer_ref, input.get("resourceId"))
    return {
        "__typename": "ApplySubscription",
        "subscription": subscription,
        "entitlements": entitlements_shape(held),
    }


@mutation.field("updateOneSubscription")
async def resolve_update_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = writer_of(info)
    ref_id = input.get("subscriptionId") or input.get("refId")
    if not ref_id:
        raise InvalidValue("name the subscription in subscriptionId", field="subscriptionId")
    data = update_model(input)

    def write(session: Session) -> dict[str, Any]:
        subscribing.update(
            session,
            environment_id=caller.environment_id,
            ref_id=ref_id,
            data=data,
            now=caller.now,
        )
        return subscription_of(session, caller.environment_id, ref_id)

    return await caller.write(write)


@query.field("getSubscription")
async def resolve_get_subscription(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = caller_of(info)
    ref_id = input["subscriptionId"]

    def read(session: Session) -> dict[str, Any]:
        shape = subscription_of(session, caller.environment_id, ref_id)
        caller.principal.require_customer(shape["customer"]["refId"])
        return shape

    return await caller.read(read)


@query.field("products")
async def resolve_products(_: Any, info: Info, **_args: Any) -> dict[str, Any]:
    """Every live product, with its published plans and add-ons."""
    caller = caller_of(info)

    def read(session: Session) -> dict[str, Any]:
        plans = published_plans(session, environment_id=caller.environment_id)
        products: dict[str, dict[str, Any]] = {}
        for plan in plans:
            product = products.setdefault(
                plan["product"]["refId"], {**plan["product"], "plans": [], "addons": []}
            )
            product["plans"].append(plan)
            for addon in plan["compatibleAddons"]:
                if addon["refId"] not in {a["refId"] for a in product["addons"]}:
                    product["addons"].append(addon)
        return _connection("ProductEdge", list(products.values()))

    return await caller.read(read)


@query.field("coupons")
async def resolve_coupons(_: Any, info: Info, **__: Any) -> dict[str, Any]:
    """The environment's active coupons (the checkout offers them)."""
    caller = caller_of(info)

    def read(session: Session) -> list[dict[str, Any]]:
        found, _ = coupons.list_coupons(
            session,
            environment_id=caller.environment_id,
            page=PageRequest(limit=100),
            created_at={},
            statuses=[CouponStatus.ACTIVE],
        )
        return [_coupon(coupons.to_read(coupon)) for coupon in found]

    return _connection("CouponEdge", await caller.read(read))


def _coupon(coupon: CouponRead) -> dict[str, Any]:
    wire = coupon.model_dump(mode="json", by_alias=True)
    return {
        "__typename": "Coupon",
        "id": coupon.id,
        "refId": coupon.id,
        "name": coupon.name,
        "description": coupon.description,
        "type": coupon.type,
        "status": coupon.status,
        "percentOff": wire["percentOff"],
        "discountValue": wire["percentOff"],
        "amountsOff": [
            {"__typename": "AmountsOff", "amount": a["amount"], "currency": a["currency"].upper()}
            for a in wire["amountsOff"] or []
        ],
        "additionalMetaData": coupon.metadata,
        "billingId": None,
        "billingLinkUrl": None,
        "syncStates": [],
        "createdAt": time(coupon.created_at),
        "updatedAt": time(coupon.updated_at),
    }


def _connection(edge: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "edges": [{"__typename": edge, "node": node} for node in nodes],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False},
        "totalCount": len(nodes),
    }


async def _history(caller: Caller, customer_ref: str, feature_ref: str, input: Input) -> Any:
    caller.principal.require_customer(customer_ref)
    group_by = input.get("groupBy") or []
    if len(group_by) > 1:
        raise InvalidValue("group by one dimension at a time", field="groupBy")
    snapshots = caller.parts.get(SnapshotStore)
    return await caller.read(
        lambda session: history.usage_history(
            session,
            snapshots,
            environment_id=caller.environment_id,
            customer_ref=customer_ref,
            feature_ref=feature_ref,
            start=input["startDate"],
            end=input.get("endDate") or caller.now,
            group_by=group_by[0] if group_by else None,
            resource_ref=input.get("resourceId") or input.get("resourceRefId"),
        )
    )


@query.field("usageHistoryV2")
async def resolve_usage_history_v2(_: Any, info: Info, input: Input) -> dict[str, Any]:
    caller = caller_of(info)
    found = await _history(caller, input["customerId"], input["featureId"], input)
    return {
        "__typename": "UsageHistoryV2",
        "markers": [
            {"type": m["type"], "timestamp": time(m["timestamp"])} for m in found["markers"]
        ],
        "series": [
            {
                "tags": series["tags"],
                "points": [
                    {
                        "timestamp": time(p["timestamp"]),
                        "value": p["value"],
                        "isResetPoint": p.get("isResetPoint", False),
                    }
                    for p in series["points"]
                ],
            }
            for series in found["series"]
        ],
    }


@query.field("usageHistory")
async def resolve_usage_history(_: Any, info: Info, usageHistoryInput: Input) -> dict[str, Any]:  # noqa: N803 (the platform's argument name)
    caller = caller_of(info)
    given = usageHistoryInput
    found = await _history(caller, given["customerRefId"], given["featureRefId"], given)

    def measurements(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "date": time(p["timestamp"]),
                "value": p["value"],
                "isResetPoint": p.get("isResetPoint", False),
            }
            for p in points
        ]

    everything = [p for series in found["series"] for p in series["points"]]
    return {
        "__typename": "UsageHistory",
        "startDate": time(given["startDate"]),
        "endDate": time(given.get("endDate") or caller.now),
        "markers": [
            {"type": m["type"], "timestamp": time(m["timestamp"])} for m in found["markers"]
        ],
        "usageMeasurements": measurements(sorted(everything, key=lambda p: p["timestamp"])),
        "groups": [
            {
                "groupInfo": [{"key": t["key"], "value": t["value"]} for t in series["tags"]],
                "usageMeasurements": measurements(series["points"]),
            }
            for series in found["series"]
            if series["tags"]
        ],
    }
