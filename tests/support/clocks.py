"""A Tollgate whose clock the test moves: the app, its clock and its URL."""

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI

from tollgate.kit.clock import ManualClock

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class Clocked:
    app: FastAPI
    clock: ManualClock
    base_url: str

    def run_jobs(self) -> dict[str, int]:
        """What `tollgate serve` does all the time, done now, for the clock's moment: the
        lifecycle jobs, then webhook delivery until nothing more may go."""
        done: dict[str, int] = self.app.state.jobs.run_once()
        done["webhooks.deliver"] = self.app.state.deliveries.run_once()
        return done
