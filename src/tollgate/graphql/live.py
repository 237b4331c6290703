"""The live socket's subscriptions: what the Node SDK listens to so that it can answer checks
from its own cache without a request.

Each subscription follows the change log like an SSE stream does (`streams.follower`), so a
change made by any process reaches every socket on every process. A customer change sends
the customer's whole entitlement list, read at least as new as the change; a usage change
sends each metered feature's usage; a catalog change says "package published" with the
migration type that makes the SDK drop its whole cache (what the change did to each customer
is then read again on demand)."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ariadne import SubscriptionType

from tollgate.db.changelog import LoggedChange
from tollgate.db.changes import ChangeKind
from tollgate.entitlements.reads import CustomerEntitlements, admitted
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import UsageStore
from tollgate.graphql.context import Caller, Info
from tollgate.graphql.shapes import entitlements_shape
from tollgate.streams.follower import LogFollower

subscription = SubscriptionType()


async def _entries(caller: Caller, kind: ChangeKind) -> AsyncIterator[LoggedChange]:
    """The environment's log entries of one kind, from the moment of subscribing."""
    assert caller.key_hash is not None  # sockets are opened with a key
    follower = caller.parts.get(LogFollower)
    followed = await follower.subscribe(caller.environment_id, caller.key_hash)
    try:
        while not followed.overflowed:
            delivery = await followed.queue.get()
            if followed.revoked:
                return  # the key was revoked: the SDK reconnects and is refused
            if delivery is not None and delivery[0].kind == kind.value:
                yield delivery[0]
    finally:
        follower.unsubscribe(followed)


async def _held(caller: Caller, entry: LoggedChange, *, fresh_usage: bool) -> CustomerEntitlements:
    """The customer's entitlements as of the change or later: memory may not have heard of
    it yet when the change came from another process."""
    parts, environment_id, customer_ref = caller.parts, caller.environment_id, entry.customer_ref
    store = parts.get(SnapshotStore)
    snapshot = store.cached(environment_id, customer_ref, None)
    if snapshot is None or snapshot.version < entry.version:
        snapshot = await admitted(parts, store.recompute, environment_id, customer_ref, None)
    usage_store = parts.get(UsageStore)
    usage = usage_store.cached(environment_id, customer_ref)
    if usage is None or fresh_usage:
        usage = await admitted(parts, usage_store.reload, environment_id, customer_ref)
    features = store.cached_features(environment_id)
    if features is None:
        features = await admitted(parts, store.features, environment_id)
    return CustomerEntitlements(snapshot, features, usage)


@subscription.source("entitlementsUpdated")
async def entitlements_updated(_: Any, info: Info) -> AsyncGenerator[dict[str, Any], None]:
    caller = info.context
    async for entry in _entries(caller, ChangeKind.CUSTOMER):
        held = await _held(caller, entry, fresh_usage=False)
        yield {
            "__typename": "EntitlementsUpdated",
            "customerId": entry.customer_ref,
            "resourceId": None,
            "entitlements": entitlements_shape(held),
        }


@subscription.source("usageUpdated")
async def usage_updated(_: Any, info: Info) -> AsyncGenerator[dict[str, Any], None]:
    caller = info.context
    async for entry in _entries(caller, ChangeKind.USAGE):
        held = await _held(caller, entry, fresh_usage=True)
        for entitlement in entitlements_shape(held):
            if entitlement["feature"]["meterType"] == "None":
                continue
            yield {
                "__typename": "UsageUpdated",
                "usage": {
                    "__typename": "UsageMeasurementUpdated",
                    "customerId": entry.customer_ref,
                    "resourceId": None,
                    "featureId": entitlement["feature"]["refId"],
                    "currentUsage": entitlement["currentUsage"],
                    "usagePeriodStart": entitlement["usagePeriodStart"],
                    "usagePeriodEnd": entitlement["usagePeriodEnd"],
                    "nextResetDate": entitlement["nextResetDate"],
                },
                "entitlement": entitlement,
            }


@subscription.source("packagePublished")
async def package_published(_: Any, info: Info) -> AsyncGenerator[dict[str, Any], None]:
    caller = info.context
    async for _entry in _entries(caller, ChangeKind.ENVIRONMENT):
        yield {
            "__typename": "PackagePublished",
            "accountId": None,
            "environmentId": caller.principal.environment_name,
            "packageType": None,
            "packageRefId": None,
            "packageVersion": None,
            # What makes the SDK drop every cached customer: the catalog changed.
            "migrationType": "ALL_CUSTOMERS",
        }


@subscription.source("creditBalanceUpdated")
async def credit_balance_updated(_: Any, info: Info) -> AsyncGenerator[dict[str, Any], None]:
    """Tollgate has no credits yet: the subscription is accepted and stays quiet until the
    socket closes (which cancels the wait)."""
    await asyncio.Event().wait()
    yield {}  # never reached; makes this the async generator a subscription needs


for _name in ("entitlementsUpdated", "usageUpdated", "packagePublished", "creditBalanceUpdated"):
    subscription.set_field(_name, lambda payload, *_args, **_kwargs: payload)
