"""Tollgate's objects in the shapes of Stigg's GraphQL types, as plain dicts.

The edge JSON files are these dicts as they are; the GraphQL resolvers return them and let
the schema pick the fields a document asks for. One place per shape, so that the two
transports cannot drift apart."""

from datetime import datetime
from typing import Any

from tollgate.customers.models import PromotionalEntitlement
from tollgate.customers.schemas import CustomerRead
from tollgate.entitlements.engine import Effective, FeatureInfo
from tollgate.entitlements.reads import CustomerEntitlements
from tollgate.kit.money import wire_amount
from tollgate.prices.bill import Bill
from tollgate.subscriptions.provisioning import TrialHistory
from tollgate.subscriptions.schemas import LatestInvoice, SubscriptionRead

METER_TYPES = {"None": "None", "FLUCTUATING": "Fluctuating", "INCREMENTAL": "Incremental"}


def time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def money(minor: int, currency: str) -> dict[str, Any]:
    """A `Money`: the widgets crash on a null currency, so it is always given."""
    return {
        "__typename": "Money",
        "amount": wire_amount(minor, currency),
        "currency": currency.upper(),
    }


def total_price(bill: Bill | None) -> dict[str, Any] | None:
    """A subscription's `totalPrice`: what its next renewal charges (None when free)."""
    if bill is None:
        return None
    return {
        "__typename": "CustomerSubscriptionTotalPrice",
        "subTotal": money(bill.subtotal, bill.currency),
        "total": money(bill.total, bill.currency),
    }


def feature_shape(feature: FeatureInfo) -> dict[str, Any]:
    return {
        "__typename": "EntitlementFeature",
        "id": feature.ref_id,
        "refId": feature.ref_id,
        "displayName": feature.display_name,
        "description": feature.description,
        "featureType": feature.feature_type,
        "meterType": METER_TYPES.get(feature.meter_type, "None"),
        "featureUnits": feature.units,
        "featureUnitsPlural": feature.units_plural,
        "featureStatus": feature.status,
        "unitTransformation": None,
        "additionalMetaData": None,
    }


def entitlement_shape(
    held: CustomerEntitlements, entitlement: Effective, feature: FeatureInfo
) -> dict[str, Any]:
    """An `Entitlement` the customer holds: the SDKs decide every check from these terms."""
    metered = feature.meter_type in ("FLUCTUATING", "INCREMENTAL")
    reset_period = entitlement.reset_period if metered else None
    return {
        "__typename": "Entitlement",
        "isGranted": True,
        "accessDeniedReason": None,
        "customerId": held.snapshot.customer_ref,
        "resourceId": held.snapshot.resource_ref,
        "usageLimit": entitlement.usage_limit,
        "hasUnlimitedUsage": entitlement.has_unlimited_usage,
        "hasSoftLimit": entitlement.has_soft_limit,
        "currentUsage": held.current_usage(feature) if metered else 0,
        "requestedUsage": None,
        "requestedValues": None,
        "enumValues": sorted(entitlement.enum_values) if entitlement.enum_values else None,
        "entitlementUpdatedAt": time(entitlement.updated_at),
        "usageUpdatedAt": None,
        "usagePeriodAnchor": time(entitlement.usage_period_anchor),
        "usagePeriodStart": time(entitlement.usage_period_start),
        "usagePeriodEnd": time(entitlement.usage_period_end),
        "nextResetDate": time(entitlement.usage_period_end) if reset_period else None,
        "resetPeriod": reset_period.value if reset_period else None,
        "resetPeriodConfiguration": None,
        "validUntil": time(entitlement.valid_until),
        "creditRate": None,
        "feature": feature_shape(feature),
    }


def entitlements_shape(held: CustomerEntitlements) -> list[dict[str, Any]]:
    """Only what the customer has: the SDKs take a listed entitlement as granted (an unknown,
    archived or unsubscribed customer has an empty list), so a revoked one is left out."""
    snapshot = held.snapshot
    if not snapshot.customer_found or snapshot.is_archived or not snapshot.resource_found:
        return []
    shapes = []
    for feature_ref in sorted(snapshot.entitlements):
        entitlement = snapshot.entitlements[feature_ref]
        feature = held.features.get(feature_ref)
        if feature is None or not entitlement.is_granted:
            continue
        shapes.append(entitlement_shape(held, entitlement, feature))
    return shapes


SDK_CONFIGURATION = {
    "__typename": "SdkConfiguration",
    # A DSN would make the browser SDK report its errors to Stigg's Sentry.
    "sentryDsn": None,
    "isWidgetWatermarkEnabled": False,
}


def customer_shape(customer: CustomerRead, trials: TrialHistory | None = None) -> dict[str, Any]:
    """A `Customer` (its slim fields and the payment-method ones the widgets read), with
    the trials it has had when given (the paywall offers "Start trial" only where the
    product's trial would still be given)."""
    card = customer.default_payment_method or {}
    return {
        "__typename": "Customer",
        "id": customer.id,
        "refId": customer.id,
        "customerId": customer.id,
        "name": customer.name,
        "email": customer.email,
        "billingId": customer.billing_id,
        "additionalMetaData": customer.metadata,
        "awsMarketplaceCustomerId": None,
        "createdAt": time(customer.created_at),
        "updatedAt": time(customer.updated_at),
        "hasPaymentMethod": bool(card),
        "defaultPaymentMethodId": card.get("billingId"),
        "defaultPaymentMethodType": card.get("type"),
        "defaultPaymentMethodLast4Digits": card.get("cardLast4Digits"),
        "defaultPaymentExpirationMonth": card.get("cardExpiryMonth"),
        "defaultPaymentExpirationYear": card.get("cardExpiryYear"),
        "trialedPlans": [
            {
                "__typename": "TrialedPlans",
                "productId": product,
                "productRefId": product,
                "planId": plan,
                "planRefId": plan,
            }
            for product, plan in (trials.trialed if trials else [])
        ],
        "experimentInfo": None,
        "coupon": None,
        "eligibleForTrial": [
            {
                "__typename": "EligibleForTrial",
                "productId": product,
                "productRefId": product,
                "eligible": eligible,
            }
            for product, eligible in (trials.eligible.items() if trials else [])
        ],
        "promotionalEntitlements": [],
        "subscriptions": [],
    }


def package_ref_shape(ref_id: str, display_name: str | None, typename: str) -> dict[str, Any]:
    return {"__typename": typename, "id": ref_id, "refId": ref_id, "displayName": display_name}


def _invoice_shape(invoice: LatestInvoice | None) -> dict[str, Any] | None:
    if invoice is None:
        return None
    return {
        "__typename": "SubscriptionInvoice",
        "billingId": invoice.billing_id,
        "billingReason": invoice.billing_reason,
        "status": invoice.status,
        "createdAt": time(invoice.created_at),
        "updatedAt": time(invoice.created_at),
        "dueDate": time(invoice.created_at),
        "currency": invoice.currency,
        "total": invoice.total,
        "totalExcludingTax": invoice.total,
        "subTotal": None,
        "subTotalExcludingTax": None,
        "tax": 0,
        "amountDue": invoice.amount_due,
        "attemptCount": None,
        "errorMessage": None,
        "requiresAction": invoice.requires_action,
        "paymentSecret": invoice.payment_secret,
        "paymentUrl": None,
        "pdfUrl": invoice.pdf_url,
    }


def subscription_shape(
    subscription: SubscriptionRead, plan: dict[str, Any], next_bill: Bill | None
) -> dict[str, Any]:
    """A `CustomerSubscription` of `plan` (a whole `Plan`: the SDKs map its product too).
    Its `prices` are the plan's for the subscription's billing period (the paywall marks
    the current plan by their period), its `totalPrice` the next renewal's charge."""
    customer = {"__typename": "Customer", "id": subscription.customer_id}
    customer |= {"refId": subscription.customer_id, "customerId": subscription.customer_id}
    resource = (
        {"__typename": "CustomerResource", "resourceId": subscription.resource_id}
        if subscription.resource_id
        else None
    )
    updates = [
        {
            "__typename": "SubscriptionFutureUpdate",
            "subscriptionScheduleType": update.subscription_schedule_type.value,
            "scheduleStatus": update.schedule_status.value,
            "scheduledExecutionTime": time(update.scheduled_execution_time),
            "targetPackage": package_ref_shape(update.target_package.id, None, "PackageDTO")
            if update.target_package
            else None,
            "scheduleVariables": None,
        }
        for update in subscription.future_updates
    ]
    return {
        "__typename": "CustomerSubscription",
        "id": subscription.id,
        "subscriptionId": subscription.id,
        "refId": subscription.id,
        "status": subscription.status.value,
        "pricingType": subscription.pricing_type.value,
        "startDate": time(subscription.start_date),
        "endDate": time(subscription.end_date),
        "trialEndDate": time(subscription.trial_end_date),
        "cancellationDate": time(subscription.cancellation_date),
        "effectiveEndDate": time(subscription.effective_end_date),
        "currentBillingPeriodStart": time(subscription.current_billing_period_start),
        "currentBillingPeriodEnd": time(subscription.current_billing_period_end),
        "additionalMetaData": subscription.metadata,
        "billingId": subscription.billing_id,
        "billingLinkUrl": None,
        "latestInvoice": _invoice_shape(subscription.latest_invoice),
        "paymentCollection": subscription.payment_collection,
        "paymentCollectionMethod": subscription.payment_collection_method.value,
        "billingSyncError": None,
        "resource": resource,
        "experimentInfo": None,
        "prices": [
            {"__typename": "Prices", "usageLimit": None, "price": price}
            for price in plan["prices"]
            if price["billingPeriod"] == subscription.billing_period.value
            and (price["price"] or {}).get("currency") == (subscription.currency or "").upper()
        ],
        "totalPrice": total_price(next_bill),
        "plan": plan,
        "addons": [
            {
                "__typename": "SubscriptionAddon",
                "id": addon.id,
                "quantity": addon.quantity,
                "addon": package_ref_shape(addon.id, None, "Addon"),
            }
            for addon in subscription.addons
        ],
        "scheduledUpdates": [
            {**update, "__typename": "SubscriptionScheduledUpdate"} for update in updates
        ],
        "futureUpdates": updates,
        "trialConfiguration": {
            "__typename": "TrialConfiguration",
            "trialEndBehavior": subscription.trial.trial_end_behavior.value,
        }
        if subscription.trial
        else None,
        "customer": customer,
        "payingCustomer": customer,
    }


def slim_subscription(subscription: dict[str, Any]) -> dict[str, Any]:
    """`SlimSubscriptionFragmentV2` as the edge file gives it: the fragment's aliases
    (`planId: refId`, `addonId: refId`) applied, as GraphQL would answer them."""
    return {
        "__typename": "CustomerSubscription",
        "subscriptionId": subscription["subscriptionId"],
        "status": subscription["status"],
        "pricingType": subscription["pricingType"],
        "startDate": subscription["startDate"],
        "cancellationDate": subscription["cancellationDate"],
        "currentBillingPeriodEnd": subscription["currentBillingPeriodEnd"],
        "trialEndDate": subscription["trialEndDate"],
        "customer": {"__typename": "Customer", "customerId": subscription["customer"]["refId"]},
        "payingCustomer": {
            "__typename": "Customer",
            "customerId": subscription["payingCustomer"]["refId"],
        },
        "resource": subscription["resource"],
        "plan": {
            "__typename": "Plan",
            "planId": subscription["plan"]["refId"],
            "displayName": subscription["plan"]["displayName"],
        },
        "addons": [
            {
                "__typename": "SubscriptionAddon",
                "quantity": addon["quantity"],
                "addon": {"__typename": "Addon", "addonId": addon["addon"]["refId"]},
            }
            for addon in subscription["addons"]
        ],
        "trialConfiguration": subscription["trialConfiguration"],
    }


def promotion_shape(row: PromotionalEntitlement, feature_ref: str) -> dict[str, Any]:
    return {
        "__typename": "PromotionalEntitlement",
        "id": str(row.id),
        "featureId": feature_ref,
        "status": row.status.value,
        "usageLimit": row.usage_limit,
        "hasUnlimitedUsage": row.has_unlimited_usage,
        "hasSoftLimit": row.has_soft_limit,
        "resetPeriod": row.reset_period.value if row.reset_period else None,
        "startDate": time(row.start_date),
        "endDate": time(row.end_date),
        "isVisible": row.is_visible,
        "description": row.description,
        "feature": None,
    }
