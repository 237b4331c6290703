"""Reading the server's replies."""

from typing import Any
from urllib.parse import quote

import httpx

from tollgate_sdk._errors import error_for

FEATURES_PATH = "/api/v1/sdk/features"
STATES_PATH = "/api/v1/sdk/states"


def state_path(customer_id: str) -> str:
    return f"/api/v1/sdk/customers/{quote(customer_id, safe='')}/state"


def parse_body(response: httpx.Response) -> Any:
    """The `data` of a reply, or the APIError its status says."""
    body = response_body(response)
    if response.status_code >= 400:
        raise error_for(response.status_code, body)
    return body.get("data") if isinstance(body, dict) else body


def response_body(response: httpx.Response) -> Any:
    """The reply's JSON, or its text when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return response.text
