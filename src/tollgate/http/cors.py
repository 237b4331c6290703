"""CORS for the paths Stigg's browser SDKs call: `/graphql` and the edge JSON (`/v1/...`).

A preflight carries no API key, so it cannot tell which environment's origins apply: every
preflight on these paths is answered yes, and the request that follows is refused (403,
`Principal.require_origin`) when its key's environment does not list its origin. Answers
carry `Access-Control-Allow-Origin` so that the page can read even a refusal. The REST API
under `/api/` gets no CORS at all: it is for backends, and its server keys never belong in
a browser."""

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

SDK_PATHS = ("/graphql", "/v1/")

# What the SDKs send (measured from Chromium), and Tollgate's own name for the token.
SDK_HEADERS = (
    "apollographql-client-name",
    "apollographql-client-version",
    "content-type",
    "source",
    "x-api-key",
    "x-api-version",
    "x-customer-key",
    "x-customer-token",
    "x-graphql-operation-name",
)


class SdkCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=list(SDK_HEADERS),
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SDK_PATHS):
            await self._cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
