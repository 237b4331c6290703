"""The `tollgate` command: serve, worker, migrate, keys."""

import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tollgate.app import create_app
from tollgate.background import all_jobs, webhook_client
from tollgate.catalog import demo
from tollgate.config import Settings
from tollgate.db import migrate
from tollgate.db.changes import ChangeFeed
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.models import KeyKind
from tollgate.errors import TollgateError
from tollgate.jobs.runner import JobRunner
from tollgate.kit.clock import SystemClock
from tollgate.logs import configure_logging

app = typer.Typer(help="Tollgate: pricing, packaging and entitlements.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an environment.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

DEMO_ENVIRONMENT = "development"


def _engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return engine


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    demo_catalog: Annotated[
        bool, typer.Option("--demo", help="Seed the demo catalog and print demo keys")
    ] = False,
) -> None:
    """Run the API server (migrating the database first)."""
    settings = Settings()
    configure_logging(settings.log_level)
    engine = _engine(settings)
    if demo_catalog:
        _seed_demo(engine)
    application = create_app(settings, engine=engine)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        log_level=settings.log_level,
    )


def _seed_demo(engine: Engine) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=DEMO_ENVIRONMENT)
        seeded = demo.seed(session, environment_id=environment.id)
        if seeded:
            environment.demo_key_secret = secrets.token_hex(32)
        keys = (
            {
                kind: environments.demo_key(session, environment=environment, kind=kind)
                for kind in KeyKind
            }
            if environment.demo_key_secret
            else {}
        )
    out = Console()
    state = "seeded" if seeded else "already there, left unchanged"
    out.print(f"[bold]Demo catalog[/] in environment '{DEMO_ENVIRONMENT}': {state}")
    if not keys:
        out.print(
            f"  '{DEMO_ENVIRONMENT}' held a catalog before the demo; create keys with "
            f"`tollgate keys create --environment {DEMO_ENVIRONMENT} --kind server`"
        )
    for kind, key in keys.items():
        shown = key or "(revoked; create another with `tollgate keys create`)"
        out.print(f"  {kind.value} key: [bold]{shown}[/]", soft_wrap=True)


@app.command()
def worker() -> None:
    """Run the background jobs (trial ends, period ends, scheduled updates, webhook
    delivery) without serving HTTP. Any number of workers may share one PostgreSQL
    database; none repeats another's work. Stops cleanly on Ctrl-C or SIGTERM."""
    settings = Settings()
    configure_logging(settings.log_level)
    engine = _engine(settings)
    sessions = make_session_factory(engine)
    ChangeFeed().attach(sessions, engine)
    client = webhook_client()
    runner = JobRunner(
        sessions, SystemClock(), all_jobs(client), interval_seconds=settings.job_interval_seconds
    )
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    console.print(f"worker running jobs every {settings.job_interval_seconds:g}s")
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        engine.dispose()
    console.print("worker stopped")


@app.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema to the newest revision."""
    settings = Settings()
    _engine(settings).dispose()
    console.print("database is at the newest schema revision")


@keys_app.command("create")
def create_key(
    environment: Annotated[str, typer.Option(help="Environment name; created if missing")],
    kind: Annotated[KeyKind, typer.Option(help="server: full access; client: read-only")],
) -> None:
    """Create an API key. The key is the last line of standard output; it is shown once."""
    with _session() as session:
        issued = environments.create_key(session, environment_name=environment, kind=kind)
    console.print(f"created {kind.value} key {issued.key.prefix}… for environment '{environment}'")
    typer.echo(issued.secret)


@keys_app.command("list")
def list_keys(
    environment: Annotated[str | None, typer.Option(help="Only this environment")] = None,
) -> None:
    """List keys by prefix; keys themselves are never stored."""
    with _session() as session:
        rows = environments.list_keys(session, environment_name=environment)
    # The prefix is what `keys revoke` takes: never let a narrow console truncate it.
    table = Table("environment", "kind", Column("prefix", no_wrap=True), "created", "revoked")
    for key, env in rows:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
        table.add_row(
            env.name, key.kind, key.prefix, key.created_at.isoformat(timespec="seconds"), revoked
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key, or the prefix a listing shows")],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with _session() as session:
        revoked = environments.revoke_key(session, key_or_prefix=key)
    console.print(f"revoked key {revoked.prefix}…")


@contextmanager
def _session() -> Iterator[Session]:
    """A unit of work on a migrated database; a domain error exits cleanly with its message."""
    engine = _engine(Settings())
    sessions = make_session_factory(engine)
    # Other processes (servers) learn at once of what this command changes, keys above all.
    ChangeFeed().attach(sessions, engine)
    try:
        with unit_of_work(sessions) as session:
            yield session
    except TollgateError as error:
        console.print(f"[red]error:[/] {error.message}")
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()


def main() -> None:
    app()
