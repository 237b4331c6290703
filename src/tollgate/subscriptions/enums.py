"""Subscription enumerations, spelled as Stigg's wire format spells them."""

from enum import StrEnum


class SubscriptionStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_TRIAL = "IN_TRIAL"
    ACTIVE = "ACTIVE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    PAYMENT_PENDING = "PAYMENT_PENDING"


# PAYMENT_PENDING is live: the customer keeps what it pays for while its payment is
# retried; after the last retry, the product's rules end it.
LIVE_STATUSES = (
    SubscriptionStatus.NOT_STARTED,
    SubscriptionStatus.IN_TRIAL,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAYMENT_PENDING,
)
# A paid plan's period is invoiced in these, and its unused time credited when it is
# replaced: a PAYMENT_PENDING period is owed all the same (its invoice stays due).
BILLED_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAYMENT_PENDING)


class PaymentCollectionMethod(StrEnum):
    """How a subscription's invoices are paid, where a payment provider is connected."""

    CHARGE = "CHARGE"  # the customer's card, by the collection job (the default)
    INVOICE = "INVOICE"  # the customer pays the invoice some other way: invoice/paid
    NONE = "NONE"  # nothing is collected through Tollgate


class BillingPeriod(StrEnum):
    MONTHLY = "MONTHLY"
    ANNUALLY = "ANNUALLY"


class TrialEndBehavior(StrEnum):
    CONVERT_TO_PAID = "CONVERT_TO_PAID"
    CANCEL_SUBSCRIPTION = "CANCEL_SUBSCRIPTION"


class CancelReason(StrEnum):
    UPGRADE_OR_DOWNGRADE = "UPGRADE_OR_DOWNGRADE"
    TRIAL_ENDED = "TRIAL_ENDED"
    IMMEDIATE = "Immediate"
    SCHEDULED = "ScheduledCancellation"
    CUSTOMER_ARCHIVED = "CustomerArchived"
    EXPIRED = "EXPIRED"
    PENDING_PAYMENT_EXPIRED = "PENDING_PAYMENT_EXPIRED"  # the last payment retry failed


class ScheduleStrategy(StrEnum):
    END_OF_BILLING_PERIOD = "END_OF_BILLING_PERIOD"
    END_OF_BILLING_MONTH = "END_OF_BILLING_MONTH"
    IMMEDIATE = "IMMEDIATE"


class CancellationTime(StrEnum):
    END_OF_BILLING_PERIOD = "END_OF_BILLING_PERIOD"
    IMMEDIATE = "IMMEDIATE"
    SPECIFIC_DATE = "SPECIFIC_DATE"


class ScheduleType(StrEnum):
    DOWNGRADE = "DOWNGRADE"
    PLAN = "PLAN"
    BILLING_PERIOD = "BILLING_PERIOD"
    ADDON = "ADDON"
    UNIT_AMOUNT = "UNIT_AMOUNT"  # a per-unit price's quantity (seats)
    MIGRATE_TO_LATEST = "MIGRATE_TO_LATEST"


class ScheduleStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    CANCELED = "CANCELED"
    DONE = "DONE"
    FAILED = "FAILED"
