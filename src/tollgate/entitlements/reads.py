"""Entitlement reads for routes and other surfaces: from memory when it is there, else from
the database on a worker thread, admitted like any unit of work."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

from tollgate.entitlements.engine import FeatureInfo, Snapshot
from tollgate.entitlements.service import current_usage
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import CustomerUsage, UsageStore
from tollgate.http.components import Components

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CustomerEntitlements:
    """What a customer (or one resource) holds now, the features they are of, its usage."""

    snapshot: Snapshot
    features: dict[str, FeatureInfo]
    usage: CustomerUsage

    def current_usage(self, feature: FeatureInfo) -> float:
        return current_usage(self.snapshot, feature, self.usage)


async def customer_entitlements(
    parts: Components, environment_id: int, customer_ref: str, resource_ref: str | None
) -> CustomerEntitlements:
    store = parts.get(SnapshotStore)
    return CustomerEntitlements(
        await snapshot(parts, store, environment_id, customer_ref, resource_ref),
        await features(parts, store, environment_id),
        await usage(parts, environment_id, customer_ref),
    )


async def snapshot(
    parts: Components,
    store: SnapshotStore,
    environment_id: int,
    customer_ref: str,
    resource_ref: str | None,
) -> Snapshot:
    found = store.cached(environment_id, customer_ref, resource_ref)
    if found is not None:
        return found
    return await admitted(parts, store.snapshot, environment_id, customer_ref, resource_ref)


async def features(
    parts: Components, store: SnapshotStore, environment_id: int
) -> dict[str, FeatureInfo]:
    found = store.cached_features(environment_id)
    if found is not None:
        return found
    return await admitted(parts, store.features, environment_id)


async def usage(parts: Components, environment_id: int, customer_ref: str) -> CustomerUsage:
    store = parts.get(UsageStore)
    found = store.cached(environment_id, customer_ref)
    if found is not None:
        return found
    return await admitted(parts, store.usage, environment_id, customer_ref)


async def admitted(parts: Components, function: Callable[..., T], *args: Any) -> T:
    """Run blocking database work on a worker thread, admitted like a unit of work."""
    async with parts.get(anyio.Semaphore):
        return await run_in_threadpool(function, *args)
