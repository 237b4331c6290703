"""create_app(): the ASGI application with its routers, error handlers and storage."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from tollgate import __version__
from tollgate.catalog.features.routes import router as features_router
from tollgate.catalog.packages.routes import addons_router, plans_router
from tollgate.catalog.products.routes import router as products_router
from tollgate.config import Settings
from tollgate.db import migrate
from tollgate.db.engine import POOL_SIZE, make_engine, make_session_factory
from tollgate.http.errors import error_response, install_error_handlers
from tollgate.http.schemas import ERROR_RESPONSES

log = logging.getLogger("tollgate")

DESCRIPTION = """Tollgate's API is Stigg's public REST API v1: send a key in `X-API-KEY`;
objects come wrapped in `{"data": ...}`; lists take `limit`, `after` and `before`."""


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            migrate.upgrade(engine)
        log.info("tollgate ready", extra={"database": engine.url.render_as_string()})
        yield
        engine.dispose()

    app = FastAPI(title="Tollgate", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.write_sessions = make_session_factory(engine, write=True)
    app.state.read_sessions = make_session_factory(engine, write=False)
    # Below both the worker threads (40) and the connection pool: see http.deps._admission.
    app.state.admission = anyio.Semaphore(POOL_SIZE)
    install_error_handlers(app)
    for router in (features_router, products_router, plans_router, addons_router):
        app.include_router(router, responses=ERROR_RESPONSES)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """200 once the database answers and its schema is migrated; 503 before."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            migrated = migrate.is_up_to_date(engine)
        except Exception:
            log.exception("health check could not reach the database")
            return error_response(503, "unavailable", "database unreachable")
        if not migrated:
            return error_response(503, "unavailable", "database schema is not migrated")
        return JSONResponse({"status": "ok", "version": __version__})

    return app
