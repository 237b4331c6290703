"""`tollgate auth0 setup` and `tollgate auth0 action`, run as a user runs them."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.support.cli import Cli, flat
from tollgate.catalog import demo
from tollgate.catalog.enums import PackageKind
from tollgate.catalog.models import Feature
from tollgate.catalog.packages import service as packages
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.identity.action import action_source
from tollgate.schema import migrate


@pytest.fixture
def demo_cli(cli: Cli) -> Cli:
    """The CLI on a database whose environment `dev` holds the demo catalog."""
    engine = make_engine(cli.database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name="dev")
        demo.seed(session, environment_id=environment.id, now=datetime.now(UTC))
    engine.dispose()
    return cli


def meter_of(cli: Cli, feature: str) -> object:
    engine = make_engine(cli.database_url)
    with make_session_factory(engine)() as session:
        found = session.scalar(select(Feature.meter).where(Feature.ref_id == feature))
    engine.dispose()
    return found


class TestSetup:
    def test_creates_the_feature_and_names_the_plans_without_it(self, demo_cli: Cli) -> None:
        first = demo_cli.run("auth0", "setup", "--environment", "dev")
        assert first.returncode == 0, first.stderr
        out = flat(first.stdout)
        assert "feature 'feature-mau' in environment 'dev': created" in out
        assert "plans without it" in out
        assert "plan-enterprise, plan-free, plan-pro" in out
        assert meter_of(demo_cli, "feature-mau") == {
            "aggregation": {"function": "UNIQUE", "field": "user_id"},
            "filters": [
                {
                    "conditions": [
                        {"field": "eventName", "operation": "EQUALS", "value": "auth0-login"}
                    ]
                }
            ],
        }
        again = demo_cli.run("auth0", "setup", "--environment", "dev")
        assert "already there, left unchanged" in flat(again.stdout)

    def test_demo_grants_it_in_the_demo_plans(self, demo_cli: Cli) -> None:
        done = demo_cli.run("auth0", "setup", "--environment", "dev", "--demo")
        assert done.returncode == 0, done.stderr
        out = flat(done.stdout)
        for plan in ("plan-free", "plan-pro", "plan-enterprise"):
            assert f"granted in {plan}" in out
        assert "every published plan grants it" in out
        again = flat(demo_cli.run("auth0", "setup", "--environment", "dev", "--demo").stdout)
        assert "granted in" not in again

    def test_demo_leaves_a_plan_with_an_open_draft_alone(self, demo_cli: Cli) -> None:
        engine = make_engine(demo_cli.database_url)
        with unit_of_work(make_session_factory(engine)) as session:
            environment_id = environments.get_environment(session, name="dev").id
            packages.create_draft(
                session, environment_id=environment_id, kind=PackageKind.PLAN, ref_id="plan-pro"
            )
        engine.dispose()
        done = flat(demo_cli.run("auth0", "setup", "--environment", "dev", "--demo").stdout)
        assert "not granted in plan-pro: it has a draft open" in done
        assert "granted in plan-free" in done

    def test_refuses_an_existing_feature_that_is_not_such_a_meter(self, demo_cli: Cli) -> None:
        refused = demo_cli.run(
            "auth0", "setup", "--environment", "dev", "--feature", "feature-active-users"
        )
        assert refused.returncode == 1
        message = flat(refused.stderr)
        assert "'feature-active-users' exists and is left as it is" in message
        assert "it has no meter" in message
        assert meter_of(demo_cli, "feature-active-users") is None


class TestAction:
    def test_prints_the_action_exactly(self, cli: Cli) -> None:
        printed = cli.run("auth0", "action")
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout == action_source()
        assert "exports.onExecutePostLogin" in printed.stdout

    def test_print_secrets_checks_the_plans_and_the_feature(self, demo_cli: Cli) -> None:
        demo_cli.run("auth0", "setup", "--environment", "dev", "--demo")
        base = ("auth0", "action", "--print-secrets", "--environment", "dev", "--mode", "BOTH")
        printed = demo_cli.run(
            *base, "--user-plan", "plan-free", "--organization-plan", "plan-pro", "--claim", "c"
        )
        assert printed.returncode == 0, printed.stderr
        lines = printed.stdout.splitlines()
        for line in (
            "TOLLGATE_MODE=BOTH",
            "TOLLGATE_ORGANIZATION_PLAN=plan-pro",
            "TOLLGATE_CLAIM=c",
        ):
            assert line in lines
        assert "auth0 actions create --name tollgate-post-login --trigger post-login \\" in lines
        unknown = demo_cli.run(*base, "--user-plan", "plan-nope", "--organization-plan", "plan-pro")
        assert unknown.returncode == 1
        assert "plan 'plan-nope' does not exist" in flat(unknown.stderr)
        missing = demo_cli.run(*base, "--user-plan", "plan-free")
        assert "give --organization-plan" in flat(missing.stderr)
        client_key = demo_cli.create_key("dev", "client")
        refused_key = demo_cli.run(
            *base,
            "--user-plan",
            "plan-free",
            "--organization-plan",
            "plan-pro",
            "--api-key",
            client_key,
        )
        assert "must be a server key of this environment" in flat(refused_key.stderr)
        server_key = demo_cli.create_key("dev", "server")
        with_key = demo_cli.run(
            *base,
            "--user-plan",
            "plan-free",
            "--organization-plan",
            "plan-pro",
            env={"TOLLGATE_AUTH0_API_KEY": server_key},
        )
        assert f"TOLLGATE_API_KEY={server_key}" in with_key.stdout.splitlines()
        wrong_feature = demo_cli.run(
            *base[:-2], "--user-plan", "plan-free", "--feature", "feature-api-calls"
        )
        assert "not UNIQUE user ids" in flat(wrong_feature.stderr)
