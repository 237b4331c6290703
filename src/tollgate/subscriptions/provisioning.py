"""What provisioning and previewing need beside the request itself: the resource, the
subscriptions a new one replaces, the trial it starts with, and a downgrade scheduled
for later. Part of the service layer, behind `service`; raises request errors by field."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.models import Package, PackageVersion, Product
from tollgate.customers.models import Customer, CustomerResource
from tollgate.errors import InvalidValue
from tollgate.subscriptions import billing, lifecycle, offer
from tollgate.subscriptions.enums import BillingPeriod, ScheduleType, TrialEndBehavior
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import TrialOverride
from tollgate.subscriptions.targets import AddonTarget, ScheduleTarget


def resource(
    session: Session, customer: Customer, ref_id: str | None, now: datetime
) -> CustomerResource | None:
    """The customer's resource named `ref_id`, made on first use."""
    if ref_id is None:
        return None
    found = existing_resource(session, customer, ref_id)
    if found is None:
        found = CustomerResource(
            customer_id=customer.id, ref_id=ref_id, created_at=now, updated_at=now
        )
        session.add(found)
        session.flush()
    return found


def existing_resource(
    session: Session, customer: Customer, ref_id: str | None
) -> CustomerResource | None:
    if ref_id is None:
        return None
    return session.scalar(
        select(CustomerResource).where(
            CustomerResource.customer_id == customer.id, CustomerResource.ref_id == ref_id
        )
    )


def replaced(
    session: Session,
    customer: Customer,
    plan: offer.Offered,
    resource: CustomerResource | None,
    now: datetime,
    *,
    catch_up: bool = True,
) -> list[Subscription]:
    """The live subscriptions a new one in this product replaces (none if it allows many)."""
    if plan.package.product.is_multiple_subscriptions:
        return []

    def live() -> list[Subscription]:
        return lifecycle.live_in_product(
            session,
            customer_id=customer.id,
            product_id=plan.package.product_id,
            resource_id=resource.id if resource else None,
        )

    found = live()
    due = [s for s in found if s.next_transition_at is not None and s.next_transition_at <= now]
    if not catch_up:
        return found
    for subscription in due:
        lifecycle.advance(session, subscription, now=now)
    return live() if due else found


def schedule_plan_change(
    session: Session,
    subscription: Subscription,
    *,
    plan: offer.Offered,
    addons: list[offer.OfferedAddon],
    billing_period: BillingPeriod,
    price_terms: billing.PriceTerms,
    at: datetime,
    now: datetime,
) -> None:
    """Make `subscription` the new plan, add-ons and period at `at` (a downgrade waiting)."""
    if subscription.end_date is not None and subscription.end_date <= at:
        raise InvalidValue(
            f"subscription '{subscription.ref_id}' ends before the downgrade would take effect",
            field="planId",
        )
    lifecycle.schedule_update(
        subscription,
        schedule_type=ScheduleType.DOWNGRADE,
        at=at,
        target=ScheduleTarget(
            plan_version_id=plan.version.id,
            addons=tuple(AddonTarget(a.version.id, a.quantity) for a in addons),
            billing_period=billing_period
            if billing_period is not subscription.billing_period
            else None,
            currency=price_terms.currency,
            unit_quantities=tuple(sorted(price_terms.unit_quantities.items())),
        ),
        now=now,
    )
    lifecycle.refresh(session, subscription, now=now)


def trial(
    session: Session,
    customer: Customer,
    plan: offer.Offered,
    override: TrialOverride | None,
    start: datetime,
) -> lifecycle.Trial | None:
    """The plan's default trial, once per customer and product, unless overridden."""
    config: dict[str, Any] = plan.version.default_trial_config or {}
    default_behavior = TrialEndBehavior(config.get("trialEndBehavior") or "CONVERT_TO_PAID")
    if override is not None:
        if not override.is_trial:
            return None
        end = override.trial_end_date
        if end is None:
            if not config:
                raise InvalidValue(
                    f"plan '{plan.package.ref_id}' has no default trial; give a trialEndDate",
                    field="trialOverrideConfiguration.trialEndDate",
                )
            end = _trial_end(start, config)
        if end <= start:
            raise InvalidValue(
                "the trial must end after the subscription starts",
                field="trialOverrideConfiguration.trialEndDate",
            )
        return lifecycle.Trial(end, override.trial_end_behavior or default_behavior)
    if not config or _had_trial(session, customer, plan):
        return None
    return lifecycle.Trial(_trial_end(start, config), default_behavior)


def _trial_end(start: datetime, config: dict[str, Any]) -> datetime:
    duration = float(config["duration"])
    if config.get("units") == "MONTH":
        return start + relativedelta(months=round(duration))
    return start + timedelta(days=duration)


# A subscription that began with a trial: its product's default trial is not given again.
_TRIALED = Subscription.trial_end_date.is_not(None)


def _had_trial(session: Session, customer: Customer, plan: offer.Offered) -> bool:
    return (
        session.scalar(
            select(Subscription.id)
            .where(
                Subscription.customer_id == customer.id,
                Subscription.product_id == plan.package.product_id,
                _TRIALED,
            )
            .limit(1)
        )
        is not None
    )


@dataclass(frozen=True, slots=True)
class TrialHistory:
    trialed: list[tuple[str, str]]  # (product, plan) ref ids of each plan trialed
    eligible: dict[str, bool]  # product ref id: whether its default trial is still given


def trial_history(session: Session, customer: Customer) -> TrialHistory:
    """The plans the customer has had a trial of, and the products whose default trial
    `trial` would still give it (once per customer and product)."""
    trialed = [
        (product, plan)
        for product, plan in session.execute(
            select(Product.ref_id, Package.ref_id)
            .select_from(Subscription)
            .join(PackageVersion, PackageVersion.id == Subscription.plan_version_id)
            .join(Package, Package.id == PackageVersion.package_id)
            .join(Product, Product.id == Subscription.product_id)
            .where(Subscription.customer_id == customer.id, _TRIALED)
            .distinct()
            .order_by(Product.ref_id, Package.ref_id)
        )
    ]
    used = {product for product, _ in trialed}
    products = session.scalars(
        select(Product.ref_id)
        .where(Product.environment_id == customer.environment_id)
        .order_by(Product.ref_id)
    )
    return TrialHistory(trialed, {product: product not in used for product in products})
