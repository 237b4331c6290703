"""`tollgate payments ...` as an operator runs it: connect Stripe, see how, disconnect."""

from tests.support.cli import Cli, flat


class TestPaymentsCli:
    def test_connect_show_reconnect_disconnect(self, cli: Cli) -> None:
        cli.create_key("dev")
        manual = cli.run("payments", "show", "--environment", "dev")
        assert "manual provider" in flat(manual.stderr)
        connected = cli.run(
            "payments", "connect-stripe", "--environment", "dev",
            "--retry-day", "2", "--retry-day", "7",
            env={"STRIPE_SECRET_KEY": "sk_test_cli", "STRIPE_WEBHOOK_SECRET": "whsec_cli"},
        )  # fmt: skip
        assert connected.returncode == 0, connected.stderr
        integration = connected.stdout.strip().splitlines()[-1]
        assert integration.startswith("int_")
        assert f"/webhooks/stripe/{integration}" in flat(connected.stderr)
        shown = flat(cli.run("payments", "show", "--environment", "dev").stderr)
        assert f"STRIPE integration {integration}" in shown
        assert "signing secret set" in shown
        assert "retries after: 2, 7 day(s)" in shown
        assert "sk_test_cli" not in shown
        again = cli.run(
            "payments", "connect-stripe", "--environment", "dev", "--secret-key", "sk_test_new"
        )
        assert again.stdout.strip().splitlines()[-1] == integration  # the same id and URL
        assert "NOT set" in flat(cli.run("payments", "show", "--environment", "dev").stderr)
        assert cli.run("payments", "disconnect", "--environment", "dev").returncode == 0
        assert "manual" in flat(cli.run("payments", "show", "--environment", "dev").stderr)

    def test_errors_name_what_is_wrong(self, cli: Cli) -> None:
        cli.create_key("dev")
        bad_key = cli.run(
            "payments", "connect-stripe", "--environment", "dev", "--secret-key", "pk_test_x"
        )
        assert bad_key.returncode == 1
        assert "secret key starts with sk_" in flat(bad_key.stdout + bad_key.stderr)
        nothing = cli.run("payments", "disconnect", "--environment", "dev")
        assert nothing.returncode == 1
        assert "payment provider of environment 'dev' was not found" in flat(
            nothing.stdout + nothing.stderr
        )
