"""Runs localstripe, a stateful fake of Stripe's API, for the tests: on 127.0.0.1, on a
port of its own (printed first), keeping nothing on disk.

`python -m tests.payments.localstripe_server`

localstripe speaks an older version of Stripe's API than the `stripe` library Tollgate
uses. Three differences of the current API are bridged here, so the stand-in answers as
Stripe would (nothing else of it is changed):
- intents take `allowed_payment_method_types` (it knows `payment_method_types`);
- `off_session` may be sent when confirming a PaymentIntent;
- its store is not written to /tmp (two test workers would share the file)."""

import socket
from typing import Any

from aiohttp import web
from localstripe import resources


def _bridge_allowed_types(cls: Any) -> None:
    original = cls._api_create.__func__

    def create(klass: Any, /, **data: Any) -> Any:
        if "allowed_payment_method_types" in data:
            data["payment_method_types"] = data.pop("allowed_payment_method_types")
        return original(klass, **data)

    cls._api_create = classmethod(create)


def _accept_off_session_on_confirm() -> None:
    original = resources.PaymentIntent._api_confirm

    def confirm(id: str, off_session: Any = None, **kwargs: Any) -> Any:
        return original(id, **kwargs)

    # Its routes are taken from this list when its server module is imported.
    resources.extra_apis[:] = [
        (method, url, confirm if func == original else func)
        for method, url, func in resources.extra_apis
    ]


def main() -> None:
    resources.Store.dump_to_disk = lambda self: None
    _bridge_allowed_types(resources.PaymentIntent)
    _bridge_allowed_types(resources.SetupIntent)
    _accept_off_session_on_confirm()
    from localstripe import server  # after the bridges: it reads them

    listening = socket.create_server(("127.0.0.1", 0))
    print(listening.getsockname()[1], flush=True)
    web.run_app(server.app, sock=listening, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
