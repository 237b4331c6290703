"""A Tollgate whose clock the test moves: the app, its clock and its URL."""

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI

from tollgate.http.components import app_components
from tollgate.jobs.runner import JobRunner
from tollgate.kit.clock import ManualClock
from tollgate.webhooks.dispatcher import Dispatcher

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class Clocked:
    app: FastAPI
    clock: ManualClock
    base_url: str

    def run_jobs(self) -> dict[str, int]:
        """What `tollgate serve` does all the time, done now, for the clock's moment: the
        lifecycle jobs, then webhook delivery until nothing more may go."""
        parts = app_components(self.app)
        done = parts.get(JobRunner).run_once()
        done["webhooks.deliver"] = parts.get(Dispatcher).run_once()
        return done
