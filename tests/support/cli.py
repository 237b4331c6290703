"""The `tollgate` command line, run as a user would run it."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cli:
    """Runs `python -m tollgate` against one empty database, as a user would."""

    database_url: str
    cwd: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tollgate", *args],
            env={**os.environ, "TOLLGATE_DATABASE_URL": self.database_url, **(env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def create_key(self, environment: str = "dev", kind: str = "server") -> str:
        result = self.run("keys", "create", "--environment", environment, "--kind", kind)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]


def flat(output: str) -> str:
    """Output with its line wrapping undone, so a message reads as one line."""
    return " ".join(output.split())
