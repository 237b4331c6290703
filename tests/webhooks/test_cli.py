"""`tollgate webhooks ...` as an operator runs it."""

import pytest

from tests.support.cli import Cli, flat

ALLOW_PRIVATE = "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"


class TestWebhooksCli:
    def test_create_list_redeliver_delete(
        self,
        cli: Cli,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv(ALLOW_PRIVATE, "true")  # the URL is on 127.0.0.1
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

    def test_errors_name_what_is_wrong(self, cli: Cli) -> None:
        cli.create_key("dev")
        bad_url = cli.run("webhooks", "create", "--environment", "dev", "--url", "notaurl")
        assert bad_url.returncode == 1
        assert "URL" in flat(bad_url.stdout + bad_url.stderr)
        missing = cli.run("webhooks", "list", "--environment", "nope")
        assert missing.returncode == 1
        assert "environment 'nope' was not found" in flat(missing.stdout + missing.stderr)

    def test_refuses_a_private_target_unless_the_installation_allows_them(
        self,
        cli: Cli,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.delenv(ALLOW_PRIVATE, raising=False)
        cli.create_key("dev")
        metadata = "http://169.254.169.254/latest/meta-data"  # a cloud's metadata service
        refused = cli.run("webhooks", "create", "--environment", "dev", "--url", metadata)
        assert refused.returncode == 1
        said = flat(refused.stdout + refused.stderr)
        assert "host '169.254.169.254' is a link-local address" in said
        assert "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS" in said
        assert "we_" not in cli.run("webhooks", "list", "--environment", "dev").stdout
        monkeypatch.setenv(ALLOW_PRIVATE, "true")
        allowed = cli.run("webhooks", "create", "--environment", "dev", "--url", metadata)
        assert allowed.returncode == 0, allowed.stderr
