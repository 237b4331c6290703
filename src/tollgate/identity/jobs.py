"""The identity domain's background job: forgetting logins past their keys' window."""

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.engine import unit_of_work
from tollgate.identity.models import Auth0Login
from tollgate.identity.service import WINDOW
from tollgate.jobs.runner import Job


def prune(sessions: sessionmaker[Session], now: datetime) -> int:
    """Forget logins older than the window (the `auth0.logins.prune` job); how many went."""
    with unit_of_work(sessions) as session:
        pruned = session.execute(delete(Auth0Login).where(Auth0Login.recorded_at < now - WINDOW))
    return int(pruned.rowcount)  # type: ignore[attr-defined]


JOBS = [Job("auth0.logins.prune", prune)]
