"""The SDK's webhook receiver stands alone: an app that installs only tollgate-sdk can use it."""

import subprocess
import sys


def test_importing_the_receiver_loads_nothing_beyond_the_standard_library() -> None:
    # A fresh interpreter, so that what the test suite already imported does not count.
    probe = (
        "import sys\n"
        "import tollgate_sdk.webhooks\n"
        "loaded = {name.partition('.')[0] for name in sys.modules}\n"
        "print(sorted(loaded & {'orjson', 'standardwebhooks', 'tollgate'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
