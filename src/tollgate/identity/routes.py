"""The endpoint the Auth0 post-login Action calls at every login."""

import orjson
from fastapi import Response

from tollgate.entitlements.deps import Snapshots
from tollgate.http.deps import DbSession, Now, WritePrincipal
from tollgate.http.routing import api_router
from tollgate.identity import service
from tollgate.identity.schemas import LoginEnvelope, LoginReport

router = api_router(prefix="/api/v1/integrations/auth0", tags=["integrations"])


@router.post("/logins", response_model=LoginEnvelope)
def report_login(
    body: LoginReport, snapshots: Snapshots, session: DbSession, principal: WritePrincipal, now: Now
) -> Response:
    """Decide one Auth0 login: provision the user and/or the organization if missing
    (subscribing only a customer created here to its initial plan), count the user as an
    active user of `featureId` in the period of `loggedInAt`, and answer `ALLOW` or `DENY`
    (both 200; any other status means the call itself failed). With `enforceLimit`, a user
    not yet counted in the period is denied once the limit is reached; users already
    counted, soft limits and unlimited usage always pass. One transaction: a denied login
    counts nothing, and what it provisioned stays.

    The same `idempotencyKey` within 7 days gets the first answer back (`replayed`) and
    counts nothing again; sent for another user or organization, 409
    `idempotency_key_reused`. `missedLogins` are the user's earlier logins the Action let
    through without an answer: each is counted in its own period under its own key, never
    denied, and reported in `missedLogins` of the answer. An unknown plan, a feature
    without a UNIQUE meter or an event name its meter does not count is a 422 naming the
    field."""
    answer = service.record_login(
        session, snapshots, environment_id=principal.environment_id, report=body, now=now
    )
    return Response(
        orjson.dumps({"data": answer}, option=orjson.OPT_UTC_Z), media_type="application/json"
    )
