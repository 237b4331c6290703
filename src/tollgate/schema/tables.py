"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from tollgate.catalog.models import (
    Feature,
    Package,
    PackageEntitlement,
    PackageVersion,
    Product,
)
from tollgate.coupons.models import Coupon
from tollgate.customers.models import Customer, CustomerResource, PromotionalEntitlement
from tollgate.db.base import Base
from tollgate.db.changelog import ChangeLogEntry
from tollgate.environments.models import ApiKey, Environment
from tollgate.http.models import IdempotentRequest
from tollgate.identity.models import Auth0Login
from tollgate.invoices.models import BillingCursor, Invoice, InvoiceLine
from tollgate.payments.models import Payment, PaymentProvider
from tollgate.subscriptions.models import Subscription, SubscriptionAddon, SubscriptionSchedule
from tollgate.usage.models import MeterUniqueValue, UsageCounter, UsageEvent, UsageRecord
from tollgate.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

__all__ = [
    "ApiKey",
    "Auth0Login",
    "Base",
    "BillingCursor",
    "ChangeLogEntry",
    "Coupon",
    "Customer",
    "CustomerResource",
    "Environment",
    "Feature",
    "IdempotentRequest",
    "Invoice",
    "InvoiceLine",
    "MeterUniqueValue",
    "Package",
    "PackageEntitlement",
    "PackageVersion",
    "Payment",
    "PaymentProvider",
    "Product",
    "PromotionalEntitlement",
    "Subscription",
    "SubscriptionAddon",
    "SubscriptionSchedule",
    "UsageCounter",
    "UsageEvent",
    "UsageRecord",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
