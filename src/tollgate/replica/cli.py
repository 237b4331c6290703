"""`tollgate replica serve` and `tollgate replica resync`."""

import os
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tollgate.logs import configure_logging
from tollgate.replica.app import create_replica_app
from tollgate.replica.service import Replica, ReplicaSettings
from tollgate.replica.source import SourceError
from tollgate.replica.store import SchemaMismatch

replica_app = typer.Typer(
    help="Your own copy of customers, entitlements and usage, kept in step by webhooks.",
    no_args_is_help=True,
)
console = Console(stderr=True)

DEFAULT_DATABASE = "sqlite:///tollgate-replica.db"
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="The source's base URL (a Tollgate server)", show_default=False),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="TOLLGATE_REPLICA_KEY",
        help="A server API key of the source's environment (or TOLLGATE_REPLICA_KEY)",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TOLLGATE_REPLICA_DATABASE_URL",
        help="The replica's own database: SQLite, or PostgreSQL for production",
    ),
]


def _replica(settings: ReplicaSettings) -> Replica:
    try:
        return Replica(settings)
    except SchemaMismatch as refused:
        console.print(f"[red]refused:[/] {refused}")
        raise typer.Exit(1) from refused


@replica_app.command("serve")
def serve(
    source: SourceOption = None,
    key: KeyOption = None,
    database_url: DatabaseOption = DEFAULT_DATABASE,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8100,
    register: Annotated[
        bool,
        typer.Option(
            "--register",
            help="On first start, create the webhook endpoint at the source (needs --source)",
        ),
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="The URL the source delivers to (default: http://HOST:PORT/webhook)",
            show_default=False,
        ),
    ] = None,
    webhook_secret: Annotated[
        list[str] | None,
        typer.Option(
            help="A signing secret of an endpoint made by hand (whsec_...); repeatable. "
            "Also read from TOLLGATE_REPLICA_WEBHOOK_SECRET",
            show_default=False,
        ),
    ] = None,
    stigg_secret: Annotated[
        str | None,
        typer.Option(
            envvar="TOLLGATE_REPLICA_STIGG_SECRET",
            help="Accept the hosted platform's deliveries carrying this Stigg-Webhooks-Secret",
            show_default=False,
        ),
    ] = None,
    access_token: Annotated[
        str | None,
        typer.Option(
            envvar="TOLLGATE_REPLICA_ACCESS_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on /check-access and /graphql",
            show_default=False,
        ),
    ] = None,
    audit_seconds: Annotated[
        float, typer.Option(help="How often to compare with the source and repair gaps")
    ] = 30.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Serve POST /webhook, POST /check-access, /graphql (GraphiQL at /graphiql) and
    /healthz. With --source and --key, the first start backfills from the source's API."""
    configure_logging(log_level)
    if register and not (source and key):
        raise typer.BadParameter("--register needs --source and --key", param_hint="--register")
    secrets = list(webhook_secret or [])
    if env_secret := os.environ.get("TOLLGATE_REPLICA_WEBHOOK_SECRET"):
        secrets.append(env_secret)
    settings = ReplicaSettings(
        database_url=database_url,
        source_url=source,
        api_key=key,
        webhook_secrets=tuple(secrets),
        stigg_secret=stigg_secret,
        register_url=(public_url or f"http://{host}:{port}/webhook") if register else None,
        access_token=access_token,
        audit_seconds=audit_seconds,
    )
    replica = _replica(settings)
    application = create_replica_app(replica)
    console.print(f"replica of {source or '(webhooks only)'} on http://{host}:{port}")
    uvicorn.run(
        application, host=host, port=port, log_config=None, log_level=log_level, http="httptools"
    )


@replica_app.command("resync")
def resync(
    source: SourceOption = None,
    key: KeyOption = None,
    database_url: DatabaseOption = DEFAULT_DATABASE,
    customer: Annotated[
        list[str] | None,
        typer.Option(help="Only this customer (repeatable); default: every customer"),
    ] = None,
) -> None:
    """Read the features and customers (subscriptions, entitlements, usage) from the source
    again and write them to the replica's database. Safe beside a running replica: what an
    event changed after the resync began is kept."""
    if not (source and key):
        raise typer.BadParameter("a resync needs --source and --key", param_hint="--source")
    replica = _replica(ReplicaSettings(database_url=database_url, source_url=source, api_key=key))
    columns = (
        TextColumn("resync"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("customers", total=None)
            done = replica.resync(
                customer, progress=lambda n, total: bar.update(task, completed=n, total=total)
            )
    except SourceError as error:
        console.print(f"[red]resync failed:[/] {error}")
        raise typer.Exit(1) from error
    finally:
        replica.stop()
    console.print(f"resynced {done.customers} customers as of {done.at.isoformat()}")
