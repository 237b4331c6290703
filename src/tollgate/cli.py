"""The `tollgate` command: serve, worker, migrate, keys, webhooks, payments, auth0, replica."""

import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tollgate.app import change_feed, create_app
from tollgate.background import dispatcher, job_runner, target_rules
from tollgate.catalog import demo
from tollgate.config import Settings
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.environments.models import KeyKind
from tollgate.errors import TollgateError
from tollgate.http.server import uvicorn_options
from tollgate.identity import action
from tollgate.identity import setup as identity_setup
from tollgate.identity.schemas import Mode
from tollgate.kit.clock import Clock, SystemClock
from tollgate.logs import configure_logging
from tollgate.payments import providers
from tollgate.replica.cli import replica_app
from tollgate.schema import migrate
from tollgate.webhooks import service as webhooks
from tollgate.webhooks.event_types import EventType
from tollgate.webhooks.schemas import EndpointCreate

app = typer.Typer(help="Tollgate: pricing, packaging and entitlements.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an environment.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
webhooks_app = typer.Typer(help="Webhook endpoints of an environment.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
payments_app = typer.Typer(
    help="How an environment takes payments: Stripe once connected, manual otherwise.",
    no_args_is_help=True,
)
app.add_typer(payments_app, name="payments")
auth0_app = typer.Typer(
    help="The Auth0 integration: the active-users feature and the post-login Action.",
    no_args_is_help=True,
)
app.add_typer(auth0_app, name="auth0")
app.add_typer(replica_app, name="replica")
EnvironmentOption = Annotated[str, typer.Option(help="Environment name")]
console = Console(stderr=True)
# The time every command acts at; the server and worker keep time by it too.
_clock: Clock = SystemClock()

DEMO_ENVIRONMENT = "development"
DEMO_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")


def _engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return engine


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    edge_port: Annotated[
        int | None,
        typer.Option(
            help="Also listen on this port (3060 in development): Stigg's SDKs pointed at "
            "localhost read their edge files there unless given baseEdgeUri"
        ),
    ] = None,
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
    bind = host or settings.host
    ports = [port or settings.port]
    if (edge := edge_port or settings.edge_port) is not None and edge not in ports:
        ports.append(edge)
    # One server (one app, one set of caches) listening on every port.
    configs = [
        uvicorn.Config(application, host=bind, port=p, **uvicorn_options(settings)) for p in ports
    ]
    sockets = [config.bind_socket() for config in configs]
    uvicorn.Server(configs[0]).run(sockets=sockets)


def _seed_demo(engine: Engine) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=DEMO_ENVIRONMENT)
        seeded = demo.seed(session, environment_id=environment.id, now=_clock.now())
        if seeded:
            environment.demo_key_secret = secrets.token_hex(32)
            # Pages on any local port may try the SDKs and widgets against the demo.
            environment.allowed_origins = list(DEMO_ORIGINS)
        keys = (
            {
                kind: environments.create_demo_key(session, environment=environment, kind=kind)
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
    change_feed(_clock).attach(sessions, engine)
    runner = job_runner(settings, sessions, _clock)
    deliveries = dispatcher(settings, sessions, _clock, target_rules(settings))
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    console.print(f"worker running jobs every {settings.job_interval_seconds:g}s")
    try:
        deliveries.start()  # on a thread of its own
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        deliveries.close()
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
        revoked = environments.revoke_key(session, key_or_prefix=key, now=_clock.now())
    console.print(f"revoked key {revoked.prefix}…")


@keys_app.command("signing-secret")
def signing_secret(
    environment: EnvironmentOption,
    rotate: Annotated[
        bool, typer.Option(help="Make a new one; tokens signed with the old one stop working")
    ] = False,
) -> None:
    """Show (or rotate) the secret that signs customer tokens: `HMAC-SHA256 <customerId>:<hex>`
    with hex = HMAC-SHA256(customerId) under it. The secret is the last line of output."""
    with _session() as session:
        if rotate:
            found = environments.rotate_signing_secret(session, name=environment)
            console.print(f"rotated the signing secret of environment '{environment}'")
        else:
            found = environments.get_environment(session, name=environment)
        secret = found.signing_secret
    typer.echo(secret)


@keys_app.command("customer-tokens")
def customer_tokens(
    environment: EnvironmentOption,
    optional: Annotated[
        bool | None,
        typer.Option(
            "--optional/--required",
            help="--optional lets client keys read any customer without a customer token "
            "(development only); --required (the default of every environment) undoes it",
        ),
    ] = None,
) -> None:
    """Show (or set) whether client keys need a customer token to read a customer."""
    with _session() as session:
        if optional is None:
            found = environments.get_environment(session, name=environment)
        else:
            found = environments.set_customer_token_optional(
                session, name=environment, optional=optional
            )
        is_optional = found.is_customer_token_optional
    state = "optional (development only)" if is_optional else "required"
    console.print(f"customer tokens for client keys of '{environment}': {state}")


@keys_app.command("origins")
def origins(
    environment: EnvironmentOption,
    add: Annotated[
        list[str] | None,
        typer.Option(
            "--add",
            help="An origin browsers may call from with this environment's keys: "
            "https://app.example.com, or http://localhost:* for any port (repeatable)",
        ),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="An origin to allow no more (repeatable)")
    ] = None,
) -> None:
    """Show (or change) the browser origins the SDKs may call /graphql and the edge paths
    from with this environment's keys (CORS). Requests without an Origin are not browsers'."""
    with _session() as session:
        if add or remove:
            found = environments.set_allowed_origins(
                session, name=environment, add=add or [], remove=remove or []
            )
        else:
            found = environments.get_environment(session, name=environment)
        allowed = list(found.allowed_origins)
    console.print(f"browser origins allowed for '{environment}': {', '.join(allowed) or 'none'}")


@webhooks_app.command("create")
def create_webhook(
    environment: EnvironmentOption,
    url: Annotated[str, typer.Option(help="Where to POST the events")],
    event: Annotated[
        list[EventType] | None, typer.Option(help="An event to send (repeat); all if none")
    ] = None,
    stigg_secret: Annotated[
        bool, typer.Option(help="Also send Stigg-Webhooks-Secret, for Stigg receivers")
    ] = False,
) -> None:
    """Send an environment's events to a URL. The secret is the last line of output.
    Private, loopback and link-local targets are refused unless
    TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS is on."""
    rules = target_rules(Settings())
    with _session() as session:
        data = _endpoint_create(url, event, stigg_secret)
        environment_id = environments.get_environment(session, name=environment).id
        endpoint = webhooks.create_endpoint(
            session, environment_id=environment_id, data=data, now=_clock.now(), targets=rules
        )
    console.print(f"created webhook endpoint {endpoint.ref_id} for {endpoint.url}")
    typer.echo(endpoint.secret)


@webhooks_app.command("list")
def list_webhooks(environment: EnvironmentOption) -> None:
    """List an environment's endpoints, with what they owe and what failed."""
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        rows = webhooks.endpoint_summaries(session, environment_id=environment_id)
    table = Table(
        Column("id", no_wrap=True),
        Column("url", overflow="fold"),
        Column("events", overflow="fold"),
        "enabled",
        "owed",
        "failed",
    )
    for endpoint, owed, failed in rows:
        events = ", ".join(endpoint.event_types) if endpoint.event_types is not None else "all"
        enabled = "yes" if endpoint.is_enabled else f"no: {endpoint.disabled_reason}"
        table.add_row(endpoint.ref_id, endpoint.url, events, enabled, str(owed), str(failed))
    Console().print(table)


@webhooks_app.command("delete")
def delete_webhook(
    environment: EnvironmentOption,
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id (we_...)")],
) -> None:
    """Delete an endpoint and everything still owed to it."""
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        webhooks.delete_endpoint(session, environment_id=environment_id, ref_id=endpoint)
    console.print(f"deleted webhook endpoint {endpoint}")


@webhooks_app.command("redeliver-failed")
def redeliver_failed_messages(
    environment: EnvironmentOption,
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id (we_...)")],
    hours: Annotated[float, typer.Option(help="Failed within the last this many hours")] = 72,
) -> None:
    """Send again every message that failed recently (the job sends them within a second)."""
    now = _clock.now()
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        count = webhooks.redeliver_failed_messages(
            session,
            environment_id=environment_id,
            ref_id=endpoint,
            since=now - timedelta(hours=hours),
            now=now,
        )
    console.print(f"{count} failed message(s) owed again to {endpoint}")


@payments_app.command("connect-stripe")
def connect_stripe(
    environment: EnvironmentOption,
    secret_key: Annotated[
        str,
        typer.Option(
            envvar="STRIPE_SECRET_KEY",
            help="The Stripe account's secret key, sk_... (best given as STRIPE_SECRET_KEY)",
        ),
    ],
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar="STRIPE_WEBHOOK_SECRET",
            help="The signing secret (whsec_...) of the webhook endpoint set up on Stripe",
        ),
    ] = None,
    publishable_key: Annotated[
        str | None,
        typer.Option(
            envvar="STRIPE_PUBLISHABLE_KEY",
            help="The account's publishable key, pk_...: lets the checkout widget collect "
            "new cards with Stripe Elements",
        ),
    ] = None,
    api_base: Annotated[
        str | None, typer.Option(help="Another address for Stripe's API (a stand-in's)")
    ] = None,
    retry_day: Annotated[
        list[int] | None,
        typer.Option(
            "--retry-day",
            help="Days before each retry of a failed payment, in order (repeat); 1, 3, 5 if none",
        ),
    ] = None,
) -> None:
    """Charge the environment's invoices through Stripe from now on (reconnecting keeps the
    integration's id). The integration id, which payment methods are attached with, is the
    last line of output; Stripe's webhooks go to /webhooks/stripe/<that id>."""
    with _session() as session:
        provider = providers.connect_stripe(
            session,
            environment=environment,
            secret_key=secret_key,
            webhook_secret=webhook_secret,
            publishable_key=publishable_key,
            api_base=api_base,
            retry_days=retry_day or providers.DEFAULT_RETRY_DAYS,
            now=_clock.now(),
        )
        ref_id = provider.ref_id
    console.print(f"Stripe connected for '{environment}' as integration {ref_id}")
    console.print(f"point Stripe's webhooks (payment_intent.*) at /webhooks/stripe/{ref_id}")
    typer.echo(ref_id)


@payments_app.command("show")
def show_payments(environment: EnvironmentOption) -> None:
    """Which provider the environment uses, and how (never the secret key)."""
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        provider = providers.of_environment(session, environment_id)
        if provider is None:
            console.print(f"'{environment}' is on the manual provider: {providers.MANUAL_ONLY}")
            return
        lines = [
            f"{provider.vendor.value} integration {provider.ref_id}, connected "
            f"{provider.connected_at:%Y-%m-%d %H:%M} UTC",
            f"webhooks: /webhooks/stripe/{provider.ref_id} "
            f"(signing secret {'set' if provider.webhook_secret else 'NOT set'})",
            f"retries after: {', '.join(map(str, provider.retry_days)) or 'none'} day(s)",
            "checkout widget: "
            + (provider.publishable_key or "no publishable key, cards on file only"),
        ]
        if provider.api_base:
            lines.append(f"API at {provider.api_base}")
    console.print("\n".join(lines))


@payments_app.command("disconnect")
def disconnect_payments(environment: EnvironmentOption) -> None:
    """Back to the manual provider: open invoices wait for invoice/paid again."""
    with _session() as session:
        providers.disconnect(session, environment=environment)
    console.print(f"'{environment}' is on the manual provider again")


@auth0_app.command("setup")
def auth0_setup(
    environment: EnvironmentOption,
    feature: Annotated[str, typer.Option(help="The active-users feature's id")] = "feature-mau",
    event_name: Annotated[str, typer.Option(help="The login event it counts")] = "auth0-login",
    demo: Annotated[
        bool, typer.Option("--demo", help="Grant it in the demo plans (100, 1,000, unlimited)")
    ] = False,
) -> None:
    """Create the active-users feature (NUMBER, INCREMENTAL, a meter counting UNIQUE
    `user_id` of the login events) unless it exists, and say which plans lack it. An
    existing feature of that id that is not such a meter is refused, never changed."""
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        done = identity_setup.set_up(
            session,
            environment_id=environment_id,
            feature_ref=feature,
            event_name=event_name,
            demo=demo,
            now=_clock.now(),
        )
    out = Console()
    state = "created" if done.feature_created else "already there, left unchanged"
    out.print(f"feature '{feature}' in environment '{environment}': {state}")
    for plan in done.granted:
        out.print(f"  granted in {plan} (published; its subscribers moved to it)")
    for plan in done.drafted:
        out.print(f"  not granted in {plan}: it has a draft open; publish or remove it first")
    if done.lacking:
        out.print(
            f"  plans without it (their customers' logins are denied while enforced): "
            f"{', '.join(done.lacking)}"
        )
    else:
        out.print("  every published plan grants it")


@auth0_app.command("action")
def auth0_action(
    print_secrets: Annotated[
        bool,
        typer.Option(
            "--print-secrets",
            help="Instead of the Action: check these settings against the environment and "
            "print its secrets and the Auth0 CLI commands",
        ),
    ] = False,
    environment: Annotated[str | None, typer.Option(help="Environment name")] = None,
    url: Annotated[str, typer.Option(help="Where Auth0 reaches Tollgate")] = (
        "http://127.0.0.1:8000"
    ),
    api_key: Annotated[
        str,
        typer.Option(
            envvar="TOLLGATE_AUTH0_API_KEY",
            help="A server key of the environment (`tollgate keys create --kind server`); "
            "from the environment variable, it stays out of the shell's history",
        ),
    ] = action.API_KEY_PLACEHOLDER,
    mode: Annotated[Mode, typer.Option(help="Who becomes a customer")] = Mode.B2C,
    user_plan: Annotated[str | None, typer.Option(help="Plan of a new user customer")] = None,
    organization_plan: Annotated[
        str | None, typer.Option(help="Plan of a new organization customer")
    ] = None,
    feature: Annotated[str, typer.Option(help="The active-users feature")] = "feature-mau",
    event_name: Annotated[str, typer.Option(help="The login event")] = "auth0-login",
    client_id: Annotated[
        list[str] | None, typer.Option(help="An application to act on (repeat); all if none")
    ] = None,
    enforce: Annotated[bool, typer.Option(help="Deny new users past the limit")] = True,
    timeout_ms: Annotated[int, typer.Option(min=100, max=15_000)] = 3_000,
    fail_mode: Annotated[
        action.FailMode, typer.Option(help="open: let logins in when Tollgate is unreachable")
    ] = action.FailMode.OPEN,
    deny_message: Annotated[
        str | None,
        typer.Option(help="{message} {customerId} {usage} {limit} {feature}"),
    ] = None,
    claim: Annotated[
        str | None, typer.Option(help="A custom claim to carry the customer id")
    ] = None,
) -> None:
    """Print the post-login Action to paste into Auth0 (Node 20 or 22, no dependencies)."""
    if not print_secrets:
        typer.echo(action.action_source(), nl=False)
        return
    if environment is None:
        console.print("[red]error:[/] --print-secrets needs --environment")
        raise typer.Exit(code=1)
    settings = action.ActionSettings(
        url=url,
        api_key=api_key,
        mode=mode,
        user_plan=user_plan,
        organization_plan=organization_plan,
        feature=feature,
        event_name=event_name,
        client_ids=tuple(client_id or ()),
        enforce=enforce,
        timeout_ms=timeout_ms,
        fail_mode=fail_mode,
        deny_message=deny_message,
        claim=claim,
    )
    with _session() as session:
        environment_id = environments.get_environment(session, name=environment).id
        secrets = action.checked_secrets(session, environment_id=environment_id, settings=settings)
    out = Console(soft_wrap=True, highlight=False)
    out.print("# Secrets of the Action (Auth0 dashboard: Actions > the Action > Secrets)")
    for name, value in secrets.items():
        out.print(f"{name}={value}", markup=False)
    out.print("\n# Or with the Auth0 CLI")
    out.print(action.auth0_cli_commands(secrets), markup=False)


def _endpoint_create(url: str, events: list[EventType] | None, stigg_secret: bool) -> Any:
    try:
        return EndpointCreate.model_validate(
            {"url": url, "eventTypes": events or None, "sendStiggSecret": stigg_secret}
        )
    except ValidationError as error:
        console.print(f"[red]error:[/] {error.errors()[0]['msg']}")
        raise typer.Exit(code=1) from None


@contextmanager
def _session() -> Iterator[Session]:
    """A unit of work on a migrated database; a domain error exits cleanly with its message."""
    engine = _engine(Settings())
    sessions = make_session_factory(engine)
    # Other processes (servers) learn at once of what this command changes, keys above all.
    change_feed(_clock).attach(sessions, engine)
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
