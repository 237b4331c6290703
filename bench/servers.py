"""The two ASGI applications `check_throughput.py` serves, as uvicorn factories.

Both are started the same way, so the difference measured is the application (and the
HTTP protocol `tollgate serve` runs, which Tollgate gets and the baseline does not):

    python -m uvicorn --app-dir bench --factory servers:tollgate_app \\
        --http tollgate.http.server:HeadLimitedProtocol \\
        --host 127.0.0.1 --port PORT --workers 1 --no-access-log --log-level warning
"""

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CHECK_PATH = "/api/v1/customers/{customer_id}/entitlements/check"
BASELINE_BODY = "TOLLGATE_BENCH_BASELINE_BODY"


def tollgate_app() -> Starlette:
    """Tollgate as `tollgate serve` builds it, from `TOLLGATE_*` settings."""
    # Imported here so the baseline process never loads Tollgate at all.
    from tollgate.app import create_app
    from tollgate.config import Settings
    from tollgate.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def baseline_app() -> Starlette:
    """A bare Starlette route answering a fixed JSON object (one real Tollgate answer)."""
    payload = json.loads(os.environ[BASELINE_BODY])

    async def check(_request: Request) -> JSONResponse:
        return JSONResponse(payload)

    return Starlette(routes=[Route(CHECK_PATH, check)])


REPLICA_DATABASE = "TOLLGATE_REPLICA_DATABASE_URL"


def replica_app() -> Starlette:
    """`tollgate replica serve` without a source: checks from its database (seeded)."""
    from tollgate.logs import configure_logging
    from tollgate.replica.app import create_replica_app
    from tollgate.replica.service import Replica, ReplicaSettings

    configure_logging("warning")
    return create_replica_app(Replica(ReplicaSettings(database_url=os.environ[REPLICA_DATABASE])))


def replica_baseline_app() -> Starlette:
    """A bare Starlette POST route answering a fixed JSON object (one real replica answer)."""
    payload = json.loads(os.environ[BASELINE_BODY])

    async def check_access(_request: Request) -> JSONResponse:
        return JSONResponse(payload)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/check-access", check_access, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
