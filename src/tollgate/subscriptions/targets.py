"""What a scheduled update makes a subscription: a typed value, and its stored JSON form.

`SubscriptionSchedule.target` holds a `ScheduleTarget`; the column type below is the one
place it is turned into the stored JSON and back. The stored keys are those rows have
always had ({"planVersionId", "addons": [{"addonVersionId", "quantity"}], "billingPeriod"},
each absent or null when that part does not change), so existing rows stay readable."""

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import JSON, Dialect
from sqlalchemy.types import TypeDecorator

from tollgate.subscriptions.enums import BillingPeriod


@dataclass(frozen=True, slots=True)
class AddonTarget:
    version_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class ScheduleTarget:
    """Each part is None when the update leaves it as it is; `addons`, when given, is the
    whole new set (empty: none)."""

    plan_version_id: int | None = None
    addons: tuple[AddonTarget, ...] | None = None
    billing_period: BillingPeriod | None = None
    # With a plan change: the price terms the new plan is billed on (None: no price).
    currency: str | None = None
    unit_quantities: tuple[tuple[str, int], ...] = ()

    def with_versions_moved(self, older: set[int], latest: int) -> "ScheduleTarget":
        """The same update, naming `latest` wherever it named one of the `older` versions."""
        plan = self.plan_version_id
        addons = self.addons
        if plan in older:
            plan = latest
        if addons:
            addons = tuple(
                replace(a, version_id=latest) if a.version_id in older else a for a in addons
            )
        return replace(self, plan_version_id=plan, addons=addons)


class ScheduleTargetJson(TypeDecorator[ScheduleTarget]):
    """A `ScheduleTarget` stored as JSON with the keys rows have always had."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: ScheduleTarget | None, dialect: Dialect
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        stored: dict[str, Any] = {}
        if value.plan_version_id is not None:
            stored["planVersionId"] = value.plan_version_id
        if value.addons is not None:
            stored["addons"] = [
                {"addonVersionId": a.version_id, "quantity": a.quantity} for a in value.addons
            ]
        if value.billing_period is not None:
            stored["billingPeriod"] = value.billing_period.value
        if value.currency is not None:
            stored["currency"] = value.currency
        if value.unit_quantities:
            stored["unitQuantities"] = dict(value.unit_quantities)
        return stored

    def process_result_value(self, value: Any | None, dialect: Dialect) -> ScheduleTarget | None:
        if value is None:
            return None
        addons = value.get("addons")
        return ScheduleTarget(
            plan_version_id=value.get("planVersionId") or None,
            addons=None
            if addons is None
            else tuple(AddonTarget(a["addonVersionId"], a["quantity"]) for a in addons),
            billing_period=BillingPeriod(value["billingPeriod"])
            if value.get("billingPeriod")
            else None,
            currency=value.get("currency"),
            unit_quantities=tuple(sorted((value.get("unitQuantities") or {}).items())),
        )
