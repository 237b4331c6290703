"""create_app(): the ASGI application with its routers, error handlers and storage."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import WebSocketRoute

from tollgate import __version__
from tollgate.background import dispatcher, job_runner, target_rules
from tollgate.catalog.features.routes import router as features_router
from tollgate.catalog.packages.routes import addons_router, plans_router
from tollgate.catalog.products.routes import router as products_router
from tollgate.config import Settings
from tollgate.coupons.routes import router as coupons_router
from tollgate.customers.routes import router as customers_router
from tollgate.db.changes import ChangeFeed
from tollgate.db.engine import (
    POOL_SIZE,
    SessionFactories,
    make_engine,
    make_session_factory,
    unit_of_work,
)
from tollgate.entitlements.announcements import Announcer
from tollgate.entitlements.routes import router as entitlements_router
from tollgate.entitlements.routes import sdk_router
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import UsageStore
from tollgate.entitlements.warm import WarmEntitlementReads
from tollgate.environments import service as environments
from tollgate.environments.cache import KeyCache
from tollgate.graphql.api import live_socket
from tollgate.graphql.api import router as graphql_router
from tollgate.graphql.edge import router as edge_router
from tollgate.http.components import Components
from tollgate.http.components import install as install_components
from tollgate.http.cors import SdkCors
from tollgate.http.errors import error_response, install_error_handlers
from tollgate.http.gate import KeyBeforeBody
from tollgate.http.schemas import ERROR_RESPONSES
from tollgate.identity.routes import router as identity_router
from tollgate.invoices.routes import router as invoices_router
from tollgate.kit.clock import Clock, SystemClock
from tollgate.payments.routes import provider_webhooks
from tollgate.payments.routes import router as payments_router
from tollgate.schema import migrate
from tollgate.streams.follower import LogFollower
from tollgate.streams.routes import router as streams_router
from tollgate.subscriptions.routes import router as subscriptions_router
from tollgate.usage.routes import events_router, usage_router, usage_v2_router
from tollgate.webhooks.routes import router as webhooks_router
from tollgate.webhooks.targets import Resolver

log = logging.getLogger("tollgate")

DESCRIPTION = """Tollgate's API is Stigg's public REST API v1: send a key in `X-API-KEY`;
objects come wrapped in `{"data": ...}`; lists take `limit`, `after` and `before`."""


def change_feed(clock: Clock) -> ChangeFeed:
    """A process's change feed, with what must follow every writing transaction inside it:
    the entitlement announcer. Every process that writes (server, worker, CLI) uses it."""
    feed = ChangeFeed()
    feed.follow_in_transaction(Announcer(clock))
    return feed


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """The application. `resolver` answers for DNS in webhook targets (tests play DNS)."""
    engine = engine or make_engine(settings.database_url)
    clock = clock or SystemClock()
    changes = change_feed(clock)
    write_sessions = make_session_factory(engine, write=True)
    read_sessions = make_session_factory(engine, write=False)
    snapshots = SnapshotStore(read_sessions, clock)
    keys = KeyCache()
    usage = UsageStore(read_sessions, clock)
    # Below both the worker threads (40) and the connection pool: see http.deps._admission.
    admission = anyio.Semaphore(POOL_SIZE)
    streams = LogFollower(read_sessions, admission)
    jobs = job_runner(settings, write_sessions, clock)
    webhook_targets = target_rules(settings, resolver)
    deliveries = dispatcher(settings, write_sessions, clock, webhook_targets)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            migrate.upgrade(engine)
        for factory in (write_sessions, read_sessions):
            changes.attach(factory, engine)
        snapshots.follow(changes)
        keys.follow(changes)
        usage.follow(changes)
        streams.follow(changes)
        changes.listen(engine)
        if settings.run_jobs:
            jobs.start()
            deliveries.start()
        _warn_of_relaxed_environments(read_sessions)
        log.info("tollgate ready", extra={"database": engine.url.render_as_string()})
        yield
        jobs.stop()
        await anyio.to_thread.run_sync(deliveries.close)
        await streams.close()
        changes.close()
        engine.dispose()

    app = FastAPI(
        title="Tollgate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry asks every request whether tracing is configured, which
        # costs more than a warm check; Tollgate logs structured lines instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    components = Components()
    parts = (settings, engine, changes, snapshots, keys, usage, jobs, deliveries, streams)
    for part in (*parts, webhook_targets, SessionFactories(read_sessions, write_sessions)):
        components.add(part)
    # Added under their interfaces: the classes behind them vary (tests' clocks, anyio's
    # backends).
    components.add(clock, kind=Clock)
    components.add(admission, kind=anyio.Semaphore)
    install_components(app, components)
    install_error_handlers(app)
    routers = (
        features_router,
        products_router,
        plans_router,
        addons_router,
        entitlements_router,
        customers_router,
        coupons_router,
        invoices_router,
        payments_router,
        provider_webhooks,
        subscriptions_router,
        usage_router,
        usage_v2_router,
        events_router,
        identity_router,
        webhooks_router,
        sdk_router,
        streams_router,
        edge_router,
        graphql_router,
    )
    for router in routers:
        # Routes that take batches set larger limits of their own.
        app.include_router(router, responses=ERROR_RESPONSES, max_body_size=settings.max_body_bytes)
    app.router.routes.append(WebSocketRoute("/graphql", live_socket))
    app.add_middleware(KeyBeforeBody)
    app.add_middleware(WarmEntitlementReads, keys=keys, snapshots=snapshots, usage=usage)
    app.add_middleware(SdkCors)

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


def _warn_of_relaxed_environments(sessions: sessionmaker[Session]) -> None:
    """Say at start-up which environments let client keys read customers without a token."""
    try:
        with unit_of_work(sessions) as session:
            relaxed = environments.list_token_optional_environments(session)
    except SQLAlchemyError:
        log.exception("could not read which environments relax customer tokens")
        return
    for name in relaxed:
        log.warning(
            "client keys of this environment read any customer without a customer token; "
            "for development only (tollgate keys customer-tokens --required)",
            extra={"environment": name},
        )
