"""`entitlement.usage_exceeded`: sent once per counter's period, when usage first reaches
its limit (100%). Soft limits are announced too: they are counted past, not refused."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tollgate.entitlements.snapshots import SnapshotSource
from tollgate.kit.amounts import SCALE
from tollgate.usage import counters
from tollgate.usage.announcements import Crossing, Measured, announce_exceeded


@dataclass(frozen=True, slots=True)
class Move:
    """One change of one counter: its id, what was measured, the usage before and after."""

    counter_id: int
    measured: Measured
    before: int
    after: int


def announce_crossings(
    session: Session,
    snapshots: SnapshotSource,
    *,
    environment_id: int,
    moves: Sequence[Move],
    now: datetime,
) -> None:
    crossed: dict[int, tuple[Move, int]] = {}
    for move in moves:
        limit = _limit(snapshots, environment_id, move.measured)
        if limit is not None and move.before < limit * SCALE <= move.after:
            crossed.setdefault(move.counter_id, (move, limit))
    if not crossed:
        return
    first_time = counters.claim_limit_reached(session, set(crossed), now=now)
    crossings = []
    for counter_id in sorted(first_time):
        move, limit = crossed[counter_id]
        crossings.append(Crossing(move.measured, usage_limit=limit, usage_units=move.after))
    announce_exceeded(session, environment_id, crossings, now)


def _limit(snapshots: SnapshotSource, environment_id: int, measured: Measured) -> int | None:
    snapshot = snapshots.snapshot(environment_id, measured.customer_ref, measured.resource_ref)
    entitlement = snapshot.entitlements.get(measured.feature_ref)
    if entitlement is None or not entitlement.is_granted or entitlement.has_unlimited_usage:
        return None
    return entitlement.usage_limit
