"""Runs one of tests/js's Node scripts with a JSON plan and reads the JSON it prints last."""

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.graphql_api.documents import need_node

HERE = Path(__file__).parent


def run_script(script: str, plan: dict[str, Any], *, timeout: float = 90) -> Any:
    finished = subprocess.run(
        [need_node(), str(HERE / script), json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=HERE,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])
