"""The background job runner, shared by `tollgate serve` and `tollgate worker`.

Each job is a function of (sessions, now) that does what is due and returns how much it did.
Jobs take their rows with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL and re-check
that a row is still due under the lock, so any number of runners share the work and no
transition happens twice."""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from tollgate.kit.clock import Clock

log = logging.getLogger("tollgate.jobs")

JobFunction = Callable[[sessionmaker[Session], datetime], int]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: JobFunction


class JobRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        jobs: list[Job],
        *,
        interval_seconds: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._jobs = jobs
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # One pass at a time per process: a test's run_once never overlaps the loop's.
        self._pass = threading.Lock()
        self.passes = 0

    def run_once(self) -> dict[str, int]:
        """Run every job once for the clock's present moment; what each one did."""
        with self._pass:
            now = self._clock.now()
            done = {}
            for job in self._jobs:
                try:
                    done[job.name] = job.run(self._sessions, now)
                except Exception:
                    log.exception("job failed", extra={"job": job.name})
                    done[job.name] = 0
                if done[job.name]:
                    log.info("job ran", extra={"job": job.name, "count": done[job.name]})
            self.passes += 1
            return done

    def run_forever(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._stopping.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="tollgate-jobs", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Let the current pass finish, then stop (safe from a signal handler)."""
        self._stopping.set()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
