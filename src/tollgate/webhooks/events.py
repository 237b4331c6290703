"""The events Tollgate sends, and the payload fields shared by several of them."""

from enum import StrEnum


class EventType(StrEnum):
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    SUBSCRIPTION_EXPIRED = "subscription.expired"
    SUBSCRIPTION_TRIAL_STARTED = "subscription.trial_started"
    SUBSCRIPTION_TRIAL_EXPIRED = "subscription.trial_expired"
    SUBSCRIPTION_TRIAL_CONVERTED = "subscription.trial_converted"
    MEASUREMENT_REPORTED = "measurement.reported"
    USAGE_EXCEEDED = "entitlement.usage_exceeded"
    PROMOTION_GRANTED = "promotionalEntitlement.granted"
    PROMOTION_UPDATED = "promotionalEntitlement.updated"
    PROMOTION_REVOKED = "promotionalEntitlement.revoked"
    PROMOTION_EXPIRED = "promotionalEntitlement.expired"
    TEST = "test"
