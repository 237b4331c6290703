"""The background work `tollgate serve` and `tollgate worker` both do: the lifecycle jobs
on a job runner, and webhook delivery on a dispatcher of its own, so that a slow endpoint
never holds up a trial end or a cancellation."""

from sqlalchemy.orm import Session, sessionmaker

from tollgate.config import Settings
from tollgate.db import changelog
from tollgate.http import idempotency
from tollgate.identity.jobs import JOBS as IDENTITY_JOBS
from tollgate.invoices.jobs import JOBS as INVOICE_JOBS
from tollgate.jobs.runner import Job, JobRunner
from tollgate.kit.clock import Clock
from tollgate.payments.jobs import JOBS as PAYMENT_JOBS
from tollgate.subscriptions.jobs import JOBS as LIFECYCLE_JOBS
from tollgate.webhooks.dispatcher import Dispatcher
from tollgate.webhooks.targets import Resolver, TargetRules, system_resolver


def job_runner(settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> JobRunner:
    jobs = [
        *LIFECYCLE_JOBS,
        *INVOICE_JOBS,  # after the lifecycle: a renewal invoices the period it opened
        *PAYMENT_JOBS,  # after the invoices: the ones just issued are charged in the same pass
        Job("changes.prune", changelog.prune),
        Job("idempotency.prune", idempotency.prune),
        *IDENTITY_JOBS,
    ]
    return JobRunner(sessions, clock, jobs, interval_seconds=settings.job_interval_seconds)


def target_rules(settings: Settings, resolver: Resolver | None = None) -> TargetRules:
    return TargetRules(
        allow_private=settings.webhooks_allow_private_targets,
        resolve=resolver or system_resolver,
    )


def dispatcher(
    settings: Settings, sessions: sessionmaker[Session], clock: Clock, rules: TargetRules
) -> Dispatcher:
    return Dispatcher(
        sessions,
        clock,
        rules,
        deadline_seconds=settings.webhooks_delivery_deadline_seconds,
        interval_seconds=settings.job_interval_seconds,
    )
