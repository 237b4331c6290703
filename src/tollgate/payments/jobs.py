"""The collection job: open invoices charged through their environment's provider."""

from tollgate.jobs.runner import Job
from tollgate.payments.collection import collect_due

JOBS = [Job("payments.collect", collect_due)]
