"""The GraphQL documents Stigg's SDKs send, read from the installed packages (tests/js)."""

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).parents[1] / "js"


def need_node() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@stigg").is_dir():
        reason = "node or tests/js/node_modules is missing: run `make setup`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the JavaScript SDKs' tests")
        pytest.skip(reason)
    return node


@functools.cache
def _dumped() -> dict[str, list[dict[str, str]]]:
    finished = subprocess.run(
        [need_node(), str(JS / "documents.mjs")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    dumped: dict[str, list[dict[str, str]]] = json.loads(finished.stdout)
    return dumped


def documents(package: str) -> dict[str, str]:
    """Operation name -> the whole document (with its fragments) of one package."""
    return {d["name"]: d["document"] for d in _dumped()[package]}
