"""Every background job, as `tollgate serve` and `tollgate worker` both run them."""

import httpx

from tollgate.db import changelog
from tollgate.http import idempotency
from tollgate.jobs.runner import Job
from tollgate.subscriptions.jobs import JOBS as LIFECYCLE_JOBS
from tollgate.webhooks.delivery import delivery_job


def all_jobs(webhook_client: httpx.Client) -> list[Job]:
    return [
        *LIFECYCLE_JOBS,
        delivery_job(webhook_client),
        Job("changes.prune", changelog.prune),
        Job("idempotency.prune", idempotency.prune),
    ]


def webhook_client() -> httpx.Client:
    """The HTTP client webhooks are sent with: no redirects (a receiver answers itself)."""
    return httpx.Client(follow_redirects=False, headers={"user-agent": "Tollgate-Webhooks"})
