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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.catalog.models import Feature
from tollgate.customers import service as customers
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate, Email
from tollgate.db.errors import is_duplicate
from tollgate.entitlements.engine import DenyReason
from tollgate.entitlements.snapshots import AsTransactionSees, SnapshotStore
from tollgate.errors import AlreadyExists, InvalidValue, TollgateError
from tollgate.identity.meters import active_users_problem, counts_event, find_feature, user_field
from tollgate.identity.models import Auth0Login
from tollgate.identity.schemas import (
    ActiveUsers,
    Auth0Organization,
    CustomerKind,
    Decision,
    LoginAnswer,
    LoginCustomer,
    LoginReport,
    MissedLogin,
    MissedLoginRead,
    wire,
)
from tollgate.kit.amounts import from_units
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.schemas import SubscriptionProvision
from tollgate.usage import events
from tollgate.usage.errors import IdempotencyKeyReused, UsageLimitExceeded
from tollgate.usage.reports import FUTURE_TOLERANCE
from tollgate.usage.subjects import EVENT_WINDOW_DAYS

WINDOW = timedelta(days=EVENT_WINDOW_DAYS)  # how long a login's key is remembered
_ATTEMPTS = 3  # each attempt again follows a rival's commit: a few suffice
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


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
    client_id: str | None
    # A login the Action let through without an answer: it happened, so it is counted,
    # even where Tollgate had decided DENY for it when the answer never arrived.
    is_missed: bool = False


@dataclass(frozen=True, slots=True)
class _Meter:
    """The active-users feature, and the event its meter counts for a user."""

    feature: Feature
    event_name: str
    field: str

    def dimensions(self, login: "_Login") -> dict[str, Any]:
        found: dict[str, Any] = {self.field: login.user_ref}
        if login.organization is not None:
            found.setdefault("organization_id", login.organization.id)
        if login.client_id is not None:
            found.setdefault("client_id", login.client_id)
        return found


@dataclass(slots=True)
class _Request:
    """What the logins of one request (the missed ones, then the login at hand) share."""

    session: Session
    store: SnapshotStore
    environment_id: int
    meter: _Meter
    now: datetime
    # Customers this transaction created: their snapshots are its own, never kept.
    created: set[str] = field(default_factory=set)


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
    request = _Request(session, store, environment_id, meter, now)
    # Missed logins first: a user let in earlier this period is a known user by now.
    replayed = [wire(_replay(request, report, missed)) for missed in report.missed_logins]
    answer = _once(request, login)
    answer["missedLogins"] = replayed
    return answer


def _login(
    report: LoginReport,
    key: str,
    organization: Auth0Organization | None,
    at: datetime | None,
    now: datetime,
    *,
    is_missed: bool = False,
) -> _Login:
    at = at or now
    if at > now + FUTURE_TOLERANCE:
        raise InvalidValue("the login is dated in the future", field="loggedInAt")
    user = report.user
    plans = report.initial_plans
    named = []
    if report.mode.makes_users:
        named.append(_Named(CustomerKind.USER, user.id, user.name, user.email, plans.user))
    if report.mode.makes_organizations and organization is not None:
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
        enforce=report.enforce_limit and not is_missed,
        client_id=report.client_id,
        is_missed=is_missed,
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
    problem = active_users_problem(feature)
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
    """The initial plans the mode may use, checked at every login, so that a wrong one is
    found at once rather than at the first new customer's login."""
    plans = report.initial_plans
    for kind, plan, used in (
        ("user", plans.user, report.mode.makes_users),
        ("organization", plans.organization, report.mode.makes_organizations),
    ):
        if plan is not None and used:
            subscriptions.check_plan_offered(
                session, environment_id=environment_id, ref_id=plan, field=f"initialPlans.{kind}"
            )


def _replay(request: _Request, report: LoginReport, missed: MissedLogin) -> MissedLoginRead:
    """A login the user was let in by without Tollgate's answer: counted in its own
    period, never refused (it happened); a failure is reported, not raised, so that it
    does not fail the login at hand."""
    try:
        with request.session.begin_nested():
            login = _login(
                report,
                missed.idempotency_key,
                missed.organization,
                missed.logged_in_at,
                request.now,
                is_missed=True,
            )
            answer = _once(request, login)
    except TollgateError as error:
        return MissedLoginRead(
            idempotency_key=missed.idempotency_key, decision="ERROR", message=error.message
        )
    return MissedLoginRead(
        idempotency_key=missed.idempotency_key,
        decision=answer["decision"],
        message=answer["message"],
    )


def _once(request: _Request, login: _Login) -> dict[str, Any]:
    """The login decided once per key: a savepoint run again when a concurrent login
    committed a customer or this key first."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with request.session.begin_nested():
                return _decide(request, login)
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


def _decide(request: _Request, login: _Login) -> dict[str, Any]:
    session, environment_id, now = request.session, request.environment_id, request.now
    remembered = _remembered(session, environment_id, login, now)
    if remembered is not None:
        return {**remembered, "replayed": True}
    held = [_provisioned(session, environment_id, named, now) for named in login.named]
    request.created.update(h.customer.ref_id for h in held if h.is_new)
    seen = AsTransactionSees(request.store, session, request.created, now)
    answer = _count(session, seen, environment_id, request.meter, login, held, now)
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
    """The first answer to the login's key, if it still stands: past the window the key
    is free again, and a missed login that was denied is decided again (nothing of a
    DENY was counted, so counting it now counts it once)."""
    found = session.scalar(
        select(Auth0Login).where(
            Auth0Login.environment_id == environment_id, Auth0Login.idempotency_key == login.key
        )
    )
    if found is None:
        return None
    if found.recorded_at >= now - WINDOW:
        _refuse_another_login(found, login)
        if not (login.is_missed and found.answer["decision"] == Decision.DENY):
            return dict(found.answer)
    session.execute(delete(Auth0Login).where(Auth0Login.id == found.id))
    session.flush()
    return None


def _refuse_another_login(found: Auth0Login, login: _Login) -> None:
    organization_ref = login.organization.id if login.organization else ""
    if (found.user_ref, found.organization_ref) == (login.user_ref, organization_ref):
        return
    where = f" in organization '{found.organization_ref}'" if found.organization_ref else ""
    message = (
        f"idempotency key '{login.key}' already stands for a login of '{found.user_ref}'{where}"
    )
    raise IdempotencyKeyReused([{"field": "idempotencyKey", "message": message}])


def _provisioned(session: Session, environment_id: int, named: _Named, now: datetime) -> _Held:
    customer = session.scalar(
        select(Customer).where(
            Customer.environment_id == environment_id, Customer.ref_id == named.ref_id
        )
    )
    if customer is not None:
        return _Held(named, customer, is_new=False, subscription_ref=None)
    fields: dict[str, Any] = {"id": named.ref_id, "name": named.name}
    if named.email is not None and _is_email(named.email):
        fields["email"] = named.email  # Auth0 may hold what customers may not: then none
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
    archived = [h.customer for h in held if h.customer.archived_at is not None]
    if archived and login.enforce:
        message = f"{_display(archived[0])} is closed (its customer record is archived)"
        reason = DenyReason.CUSTOMER_IS_ARCHIVED.value
        return _answer(Decision.DENY, message, reason, held, {})
    batch = [
        events.EventReport(
            customer_ref=h.customer.ref_id,
            event_name=meter.event_name,
            idempotency_key=_event_key(login.key, h.customer.ref_id),
            dimensions=meter.dimensions(login),
            timestamp=login.at,
            enforce_limit=login.enforce,
            # Other features' meters may count logins too; only active users deny one.
            enforce_only=meter.feature.ref_id,
        )
        for h in live
    ]
    if not batch:
        return _allowed(seen, environment_id, meter, login, held, [])
    try:
        # A refused batch leaves nothing written: the login goes on to its DENY.
        stored = events.report_events(
            session, seen, environment_id=environment_id, events=batch, now=now
        )
    except UsageLimitExceeded as refused:
        return _denied(meter, held, refused)
    return _allowed(seen, environment_id, meter, login, held, stored.tallies)


def _denied(meter: _Meter, held: Sequence[_Held], refused: UsageLimitExceeded) -> LoginAnswer:
    customer = next(h.customer for h in held if h.customer.ref_id == refused.customer_ref)
    figures = ActiveUsers(
        usage=refused.current_usage,
        usage_limit=refused.usage_limit,
        has_unlimited_usage=False,
        has_soft_limit=False,
        is_new_active_user=True,
        counted=False,
    )
    message = _refusal(customer, meter.feature, refused)
    return _answer(Decision.DENY, message, refused.reason, held, {customer.ref_id: figures})


def _allowed(
    seen: AsTransactionSees,
    environment_id: int,
    meter: _Meter,
    login: _Login,
    held: Sequence[_Held],
    tallies: Sequence[events.Tally],
) -> LoginAnswer:
    feature_ref = meter.feature.ref_id
    figures = {}
    for tally in tallies:
        if tally.feature_ref != feature_ref:
            continue
        snapshot = seen.snapshot(environment_id, tally.customer_ref, None)
        terms = snapshot.entitlements.get(feature_ref)
        figures[tally.customer_ref] = ActiveUsers(
            usage=from_units(tally.after),
            usage_limit=terms.usage_limit if terms else None,
            has_unlimited_usage=bool(terms and terms.has_unlimited_usage),
            has_soft_limit=bool(terms and terms.has_soft_limit),
            is_new_active_user=tally.after > tally.before,
            counted=True,
        )
    return _answer(Decision.ALLOW, _welcome(login, held, figures), None, held, figures)


def _answer(
    decision: Decision,
    message: str,
    reason: str | None,
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


def _is_email(text: str) -> bool:
    try:
        _EMAIL.validate_python(text)
    except ValidationError:
        return False
    return True


def _display(customer: Customer) -> str:
    return customer.name or f"'{customer.ref_id}'"


def _event_key(login_key: str, customer_ref: str) -> str:
    """The login's event for one customer: one per login and customer, and short enough
    for the column whatever the login's key."""
    digest = hashlib.sha256(f"{login_key}\n{customer_ref}".encode()).hexdigest()
    return f"auth0-login:{digest[:48]}"
