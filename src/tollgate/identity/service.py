"""A login reported by the Auth0 Action, decided in one transaction.

The customers the login names (the user, the organization, or both) are provisioned if
missing, and only a customer created here is subscribed to its initial plan (an archived
customer is left archived). The login is then an event that the active-users feature's
UNIQUE meter counts, enforced when asked: a user already counted in the period passes, a
new one only while the count stays within the limit. A refused event refuses the login
(DENY) and counts nothing; what was provisioned stays.

Races: two first logins into one new organization both try to create it; the second to
insert meets the first's row, waits for its commit (PostgreSQL) and runs again from a
savepoint, now finding the customer and its subscription. Entitlements are read as the
transaction sees them, not from memory, so that decision is made from what is committed."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.catalog.models import Feature
from tollgate.customers import service as customers
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate
from tollgate.db.errors import is_duplicate
from tollgate.entitlements.engine import DenyReason
from tollgate.entitlements.snapshots import AsTransactionSees, SnapshotStore
from tollgate.errors import AlreadyExists, Conflict, InvalidValue, TollgateError
from tollgate.identity.meters import counts_event, counts_unique_users, find_feature, user_field
from tollgate.identity.models import Auth0Login
from tollgate.identity.schemas import (
    ActiveUsers,
    Auth0Organization,
    CustomerKind,
    Decision,
    LoginAnswer,
    LoginCustomer,
    LoginReport,
    MissedLoginRead,
    Mode,
    wire,
)
from tollgate.kit.amounts import from_units
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import SubscriptionProvision
from tollgate.usage import events
from tollgate.usage.errors import UsageLimitExceeded
from tollgate.usage.reports import FUTURE_TOLERANCE
from tollgate.usage.subjects import EVENT_WINDOW_DAYS

WINDOW = timedelta(days=EVENT_WINDOW_DAYS)  # how long a login's key is remembered
_ATTEMPTS = 3  # each attempt again follows a rival's commit: a few suffice


@dataclass(frozen=True, slots=True)
class _Named:
    """A customer a login names, and the plan it gets if this login creates it."""

    kind: CustomerKind
    ref_id: str
    name: str | None
    email: str | None
    plan: str | None


@dataclass(frozen=True, slots=True)
class _Login:
    key: str
    user_ref: str
    organization: Auth0Organization | None
    named: list[_Named]
    at: datetime
    enforce: bool


@dataclass(frozen=True, slots=True)
class _Meter:
    """The active-users feature, and the event its meter counts for a user."""

    feature: Feature
    event_name: str
    field: str

    def dimensions(self, user_ref: str, organization: Auth0Organization | None) -> dict[str, Any]:
        found: dict[str, Any] = {self.field: user_ref}
        if organization is not None:
            found.setdefault("organization_id", organization.id)
        return found


@dataclass(slots=True)
class _Held:
    named: _Named
    customer: Customer
    is_new: bool
    subscription_ref: str | None


def record_login(
    session: Session,
    store: SnapshotStore,
    *,
    environment_id: int,
    report: LoginReport,
    now: datetime,
) -> dict[str, Any]:
    """Provision, subscribe and count one login (and the missed logins it carries); the
    answer's wire shape. A malformed configuration (plan, feature, event name) is a 422
    naming the field, whatever the login."""
    meter = _active_users_meter(session, environment_id, report.feature_id, report.event_name)
    _check_plans(session, environment_id, report)
    login = _login(report, report.idempotency_key, report.organization, report.logged_in_at, now)
    # Missed logins first: a user let in earlier this period is a known user by now.
    replayed = [
        wire(_replay(session, store, environment_id, meter, report, missed, now))
        for missed in report.missed_logins
    ]
    answer = _once(session, store, environment_id, meter, login, now)
    answer["missedLogins"] = replayed
    return answer


def _login(
    report: LoginReport,
    key: str,
    organization: Auth0Organization | None,
    at: datetime | None,
    now: datetime,
    *,
    enforce: bool | None = None,
) -> _Login:
    at = at or now
    if at > now + FUTURE_TOLERANCE:
        raise InvalidValue("the login is dated in the future", field="loggedInAt")
    user = report.user
    plans = report.initial_plans
    named = []
    if report.mode in (Mode.B2C, Mode.BOTH):
        named.append(_Named(CustomerKind.USER, user.id, user.name, user.email, plans.user))
    if report.mode in (Mode.B2B, Mode.BOTH) and organization is not None:
        named.append(
            _Named(
                CustomerKind.ORGANIZATION,
                organization.id,
                organization.name,
                None,
                plans.organization,
            )
        )
    if not named:
        raise InvalidValue(
            "a login in B2B mode needs the user's organization; the Action sends none "
            "for a login outside an organization",
            field="organization",
        )
    return _Login(
        key,
        user.id,
        organization,
        named,
        at,
        report.enforce_limit if enforce is None else enforce,
    )


def _active_users_meter(
    session: Session, environment_id: int, feature_ref: str, event_name: str
) -> _Meter:
    feature = find_feature(session, environment_id, feature_ref)
    if feature is None:
        raise InvalidValue(
            f"feature '{feature_ref}' was not found; `tollgate auth0 setup` creates it",
            field="featureId",
        )
    problem = counts_unique_users(feature)
    if problem is not None:
        raise InvalidValue(
            f"feature '{feature_ref}' cannot count active users: {problem} "
            "(`tollgate auth0 setup` creates one that can)",
            field="featureId",
        )
    if not counts_event(feature, event_name):
        raise InvalidValue(
            f"the meter of feature '{feature_ref}' does not count events named "
            f"'{event_name}'; send the event name it filters on",
            field="eventName",
        )
    return _Meter(feature, event_name, user_field(feature))


def _check_plans(session: Session, environment_id: int, report: LoginReport) -> None:
    plans = report.initial_plans
    for plan, field in ((plans.user, "user"), (plans.organization, "organization")):
        if plan is not None:
            subscriptions.check_plan_offered(
                session, environment_id=environment_id, ref_id=plan, field=f"initialPlans.{field}"
            )


def _replay(
    session: Session,
    store: SnapshotStore,
    environment_id: int,
    meter: _Meter,
    report: LoginReport,
    missed: Any,
    now: datetime,
) -> MissedLoginRead:
    """A login the user was let in by without Tollgate's answer: counted in its own
    period, never refused (it happened); a failure is reported, not raised, so that it
    does not fail the login at hand."""
    try:
        with session.begin_nested():
            login = _login(
                report,
                missed.idempotency_key,
                missed.organization,
                missed.logged_in_at,
                now,
                enforce=False,
            )
            answer = _once(session, store, environment_id, meter, login, now)
    except TollgateError as error:
        return MissedLoginRead(
            idempotency_key=missed.idempotency_key, decision="ERROR", message=error.message
        )
    return MissedLoginRead(
        idempotency_key=missed.idempotency_key,
        decision=answer["decision"],
        message=answer["message"],
    )


def _once(
    session: Session,
    store: SnapshotStore,
    environment_id: int,
    meter: _Meter,
    login: _Login,
    now: datetime,
) -> dict[str, Any]:
    """The login decided once per key: a savepoint run again when a concurrent login
    committed a customer or this key first."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with session.begin_nested():
                return _decide(session, store, environment_id, meter, login, now)
        except AlreadyExists as error:
            if error.kind != "customer" or attempt == _ATTEMPTS:
                raise
        except IntegrityError as error:
            duplicate = is_duplicate(
                error,
                Auth0Login.__table__,  # type: ignore[arg-type]
                ("environment_id", "idempotency_key"),
            )
            if not duplicate or attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _decide(
    session: Session,
    store: SnapshotStore,
    environment_id: int,
    meter: _Meter,
    login: _Login,
    now: datetime,
) -> dict[str, Any]:
    remembered = _remembered(session, environment_id, login, now)
    if remembered is not None:
        return {**remembered, "replayed": True}
    held = [_provisioned(session, environment_id, named, now) for named in login.named]
    seen = AsTransactionSees(store, session, {h.customer.ref_id for h in held if h.is_new}, now)
    answer = _count(session, seen, environment_id, meter, login, held, now)
    stored = wire(answer)
    session.add(
        Auth0Login(
            environment_id=environment_id,
            idempotency_key=login.key,
            user_ref=login.user_ref,
            organization_ref=login.organization.id if login.organization else "",
            answer={k: v for k, v in stored.items() if k != "missedLogins"},
            logged_in_at=login.at,
            recorded_at=now,
        )
    )
    session.flush()
    return stored


def _remembered(
    session: Session, environment_id: int, login: _Login, now: datetime
) -> dict[str, Any] | None:
    found = session.scalar(
        select(Auth0Login).where(
            Auth0Login.environment_id == environment_id, Auth0Login.idempotency_key == login.key
        )
    )
    if found is None:
        return None
    if found.recorded_at < now - WINDOW:
        session.execute(delete(Auth0Login).where(Auth0Login.id == found.id))
        return None
    organization_ref = login.organization.id if login.organization else ""
    if (found.user_ref, found.organization_ref) != (login.user_ref, organization_ref):
        raise IdempotencyKeyReused(login.key, found.user_ref, found.organization_ref)
    return dict(found.answer)


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self, key: str, user_ref: str, organization_ref: str) -> None:
        where = f" in organization '{organization_ref}'" if organization_ref else ""
        super().__init__(
            f"idempotency key '{key}' already stands for a login of '{user_ref}'{where}",
            field="idempotencyKey",
        )


def _provisioned(session: Session, environment_id: int, named: _Named, now: datetime) -> _Held:
    customer = session.scalar(
        select(Customer).where(
            Customer.environment_id == environment_id, Customer.ref_id == named.ref_id
        )
    )
    if customer is not None:
        return _Held(named, customer, is_new=False, subscription_ref=None)
    fields: dict[str, Any] = {"id": named.ref_id, "name": named.name}
    if named.email and "@" in named.email and " " not in named.email:
        fields["email"] = named.email
    customer = customers.provision_customer(
        session,
        environment_id=environment_id,
        data=CustomerCreate.model_validate(fields),
        now=now,
    )
    subscription_ref = None
    if named.plan is not None:
        subscription, _ = subscriptions.provision_subscription(
            session,
            environment_id=environment_id,
            data=SubscriptionProvision.model_validate(
                {"customerId": named.ref_id, "planId": named.plan}
            ),
            now=now,
        )
        subscription_ref = subscription.ref_id
    return _Held(named, customer, is_new=True, subscription_ref=subscription_ref)


def _count(
    session: Session,
    seen: AsTransactionSees,
    environment_id: int,
    meter: _Meter,
    login: _Login,
    held: Sequence[_Held],
    now: datetime,
) -> LoginAnswer:
    live = [h for h in held if h.customer.archived_at is None]
    archived = [h for h in held if h.customer.archived_at is not None]
    if archived and login.enforce:
        closed = archived[0].customer
        return _answer(
            Decision.DENY,
            f"{_display(closed)} is closed (its customer record is archived)",
            DenyReason.CUSTOMER_IS_ARCHIVED.value,
            login,
            held,
            {},
        )
    batch = [
        events.EventReport(
            customer_ref=h.customer.ref_id,
            event_name=meter.event_name,
            idempotency_key=_event_key(login.key, h.customer.ref_id),
            dimensions=meter.dimensions(login.user_ref, login.organization),
            timestamp=login.at,
            enforce_limit=login.enforce,
        )
        for h in live
    ]
    feature_ref = meter.feature.ref_id
    try:
        # A refused batch leaves nothing written: the login goes on to its DENY.
        stored = (
            events.report_events(
                session, seen, environment_id=environment_id, events=batch, now=now
            )
            if batch
            else events.Stored(0, [])
        )
    except UsageLimitExceeded as refused:
        denied = next(h for h in live if h.customer.ref_id == refused.customer_ref)
        figures = {
            refused.customer_ref: ActiveUsers(
                usage=refused.current_usage,
                usage_limit=refused.usage_limit,
                has_unlimited_usage=False,
                has_soft_limit=False,
                is_new_active_user=True,
                counted=False,
            )
        }
        return _answer(
            Decision.DENY,
            _refusal(denied.customer, meter.feature, refused),
            refused.reason,
            login,
            held,
            figures,
        )
    figures = {}
    for tally in stored.tallies:
        if tally.feature_ref != feature_ref:
            continue
        terms = seen.snapshot(environment_id, tally.customer_ref, None).entitlements.get(
            feature_ref
        )
        figures[tally.customer_ref] = ActiveUsers(
            usage=from_units(tally.after),
            usage_limit=terms.usage_limit if terms else None,
            has_unlimited_usage=bool(terms and terms.has_unlimited_usage),
            has_soft_limit=bool(terms and terms.has_soft_limit),
            is_new_active_user=tally.after > tally.before,
            counted=True,
        )
    return _answer(Decision.ALLOW, _welcome(login, held, figures), None, login, held, figures)


def _answer(
    decision: Decision,
    message: str,
    reason: str | None,
    login: _Login,
    held: Sequence[_Held],
    figures: dict[str, ActiveUsers],
) -> LoginAnswer:
    return LoginAnswer(
        decision=decision,
        message=message,
        reason=reason,
        customer_id=held[-1].customer.ref_id,  # the organization when there is one
        customers=[
            LoginCustomer(
                customer_id=h.customer.ref_id,
                kind=h.named.kind,
                is_new=h.is_new,
                subscription_id=h.subscription_ref,
                active_users=figures.get(h.customer.ref_id),
            )
            for h in held
        ],
        replayed=False,
        missed_logins=[],
    )


def _refusal(customer: Customer, feature: Feature, refused: UsageLimitExceeded) -> str:
    who = _display(customer)
    if refused.usage_limit is not None:
        units = feature.units_plural or feature.display_name
        return f"{who} has reached its limit of {refused.usage_limit:g} {units} for this period"
    if refused.reason == DenyReason.NO_ACTIVE_SUBSCRIPTION.value:
        return f"{who} has no active subscription"
    return f"{who}'s plan does not include {feature.display_name}"


def _welcome(login: _Login, held: Sequence[_Held], figures: dict[str, ActiveUsers]) -> str:
    parts = []
    for h in held:
        found = figures.get(h.customer.ref_id)
        if found is None:
            parts.append(f"{_display(h.customer)}: not counted")
        elif found.usage_limit is None:
            parts.append(f"{_display(h.customer)}: {found.usage:g} active")
        else:
            parts.append(f"{_display(h.customer)}: {found.usage:g} of {found.usage_limit:g} active")
    return f"'{login.user_ref}' may sign in ({'; '.join(parts)})"


def _display(customer: Customer) -> str:
    return customer.name or f"'{customer.ref_id}'"


def _event_key(login_key: str, customer_ref: str) -> str:
    """The login's event for one customer: one per login and customer, and short enough
    for the column whatever the login's key."""
    digest = hashlib.sha256(f"{login_key}\n{customer_ref}".encode()).hexdigest()
    return f"auth0-login:{digest[:48]}"
