"""`tollgate webhooks ...` as an operator runs it."""

from tests.environments.test_keys import Cli, cli, flat  # noqa: F401 (fixture)


class TestWebhooksCli:
    def test_create_list_redeliver_delete(self, cli: Cli) -> None:  # noqa: F811
        cli.create_key("dev")
        created = cli.run(
            "webhooks", "create", "--environment", "dev", "--url", "http://127.0.0.1:9/h",
            "--event", "customer.created",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip().splitlines()[-1].startswith("whsec_")
        endpoint = flat(created.stderr + created.stdout).split("endpoint ")[1].split()[0]
        listed = cli.run("webhooks", "list", "--environment", "dev")
        assert endpoint in listed.stdout
        assert "yes" in listed.stdout  # enabled
        again = cli.run("webhooks", "redeliver-failed", "--environment", "dev", endpoint)
        assert "0 failed message(s)" in flat(again.stdout + again.stderr)
        assert cli.run("webhooks", "delete", "--environment", "dev", endpoint).returncode == 0
        assert endpoint not in cli.run("webhooks", "list", "--environment", "dev").stdout

    def test_errors_name_what_is_wrong(self, cli: Cli) -> None:  # noqa: F811
        cli.create_key("dev")
        bad_url = cli.run("webhooks", "create", "--environment", "dev", "--url", "notaurl")
        assert bad_url.returncode == 1
        assert "URL" in flat(bad_url.stdout + bad_url.stderr)
        missing = cli.run("webhooks", "list", "--environment", "nope")
        assert missing.returncode == 1
        assert "environment 'nope' was not found" in flat(missing.stdout + missing.stderr)
