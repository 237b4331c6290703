"""The replica's own tables (its database is not the server's: a schema of its own,
created on first start).

Every row that an event writes keeps `event_at`, the source's time of the newest event
applied to it: an event older than that changes nothing, so late, repeated or reordered
deliveries cannot move a row back in time."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
)

from tollgate.db.base import UTCDateTime

metadata = MetaData()

# "" stands for the customer itself where a row may also belong to one of its resources.
CUSTOMER_SCOPE = ""

customers = Table(
    "replica_customers",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("name", String(255)),
    Column("email", String(255)),
    Column("billing_id", String(255)),
    Column("metadata", JSON),
    Column("is_archived", Boolean, nullable=False, default=False),
    # False while the customer is known only from another event (a subscription that
    # arrived before its customer.created): checks answer CustomerNotFound until then.
    Column("is_known", Boolean, nullable=False, default=True),
    Column("event_at", UTCDateTime()),
    Index("ix_replica_customers_email", "email"),
)

subscriptions = Table(
    "replica_subscriptions",
    metadata,
    Column("subscription_id", String(255), primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("resource_id", String(255), nullable=False, default=CUSTOMER_SCOPE),
    Column("status", String(32), nullable=False),
    Column("plan_id", String(255)),
    Column("plan_name", String(255)),
    Column("billing_id", String(255)),
    Column("billing_period", String(32)),
    Column("start_date", UTCDateTime()),
    Column("end_date", UTCDateTime()),
    Column("cancellation_date", UTCDateTime()),
    Column("trial_end_date", UTCDateTime()),
    Column("current_period_start", UTCDateTime()),
    Column("current_period_end", UTCDateTime()),
    Column("addons", JSON, nullable=False),
    Column("metadata", JSON),
    Column("event_at", UTCDateTime(), nullable=False),
    Index("ix_replica_subscriptions_customer", "customer_id"),
)

features = Table(
    "replica_features",
    metadata,
    Column("feature_id", String(255), primary_key=True),
    Column("name", String(255)),
    Column("feature_type", String(32), nullable=False),
    Column("meter_type", String(32), nullable=False),
    Column("status", String(32)),
    Column("units", String(255)),
    Column("units_plural", String(255)),
    Column("is_deleted", Boolean, nullable=False, default=False),
    Column("event_at", UTCDateTime(), nullable=False),
)

# One row per customer (or resource) whose entitlements the replica holds: an
# `entitlements.updated` replaces the scope's whole set, if it is newer than `event_at`.
entitlement_scopes = Table(
    "replica_entitlement_scopes",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("resource_id", String(255), primary_key=True),
    Column("event_at", UTCDateTime(), nullable=False),
)

entitlements = Table(
    "replica_entitlements",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("resource_id", String(255), primary_key=True),
    Column("feature_id", String(255), primary_key=True),
    Column("is_granted", Boolean, nullable=False),
    Column("usage_limit", BigInteger),
    Column("has_unlimited_usage", Boolean, nullable=False),
    Column("has_soft_limit", Boolean, nullable=False),
    Column("enum_values", JSON),
    Column("reset_period", String(16)),
    Column("usage_period_anchor", UTCDateTime()),
    Column("usage_period_start", UTCDateTime()),
    Column("usage_period_end", UTCDateTime()),
    Column("valid_until", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
)

usage = Table(
    "replica_usage",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("resource_id", String(255), primary_key=True),
    Column("feature_id", String(255), primary_key=True),
    Column("current_usage", Float, nullable=False),
    # The usage period the value counts in (both None: it never resets).
    Column("period_start", UTCDateTime()),
    Column("period_end", UTCDateTime()),
    Column("event_at", UTCDateTime(), nullable=False),
)

# Messages applied, by the sender's message id: a second delivery changes nothing.
messages = Table(
    "replica_messages",
    metadata,
    Column("message_id", String(255), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("customer_id", String(255)),
    Column("event_at", UTCDateTime()),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_replica_messages_received_at", "received_at"),
)

# Small facts about the replica itself: its registration at the source, the last resync.
facts = Table(
    "replica_facts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)
