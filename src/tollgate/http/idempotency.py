"""`Idempotency-Key` on POST requests that change something: a retry gets the first answer.

The key is claimed in the request's own transaction before the route runs, and the route's
answer is written into the claim just before that transaction commits (`remember`), so a key
is remembered exactly when the work it guards is: a request that fails or rolls back leaves
the key free, and one that committed can never run twice. Two requests with the same key at
once: on PostgreSQL the second one's claim waits for the first transaction and then finds
its answer; on SQLite writers take turns, so the second finds it at once.

Same key, same request (method, path, query and JSON body) within 24 hours: the first
answer, replayed with `Idempotent-Replayed: true`. Same key, anything else: 409. Keys are
per environment."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from fastapi import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tollgate.db.engine import unit_of_work
from tollgate.errors import Conflict
from tollgate.http.models import OPERATION_LENGTH, IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WINDOW = timedelta(hours=24)
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, no spaces
_CLAIM = "tollgate.idempotency_claim"
_ANSWER = "tollgate.answer"


class RequestKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self, key: str, operation: str, same_operation: bool) -> None:
        what = "with a different body or query" if same_operation else f"for {operation}"
        super().__init__(
            f"{HEADER} '{key}' was used within the last 24 hours {what}; send a new key for "
            f"a new request",
            field=HEADER,
        )


class IdempotentReplay(Exception):
    """The answer of the request that first used this key (not an error: rendered as is)."""

    def __init__(self, claim: IdempotentRequest) -> None:
        super().__init__(claim.key)
        self.response = Response(
            claim.body,
            status_code=claim.status_code or 200,
            media_type=claim.media_type,
            headers={REPLAYED_HEADER: "true"},
        )


@dataclass(frozen=True, slots=True)
class _Request:
    environment_id: int
    key: str
    operation: str
    fingerprint: str


async def claim(
    request: Request, session: Session, environment_id: int, key: str, now: datetime
) -> None:
    """Claim the request's key, or replay (raise IdempotentReplay) the answer it already has.

    Called for requests that change something, after their API key is authenticated."""
    body = await request.body()
    operation = f"{request.method} {request.url.path}"
    wanted = _Request(
        environment_id,
        key,
        operation[:OPERATION_LENGTH],  # kept to name it; the fingerprint has all of it
        _fingerprint(operation, request.url.query, body),
    )
    setattr(request.state, _CLAIM, await run_in_threadpool(_claim, session, wanted, now))


def remember(request: Request, session: Session) -> None:
    """Write the route's answer into the request's claim; the caller then commits both."""
    claimed: IdempotentRequest | None = getattr(request.state, _CLAIM, None)
    if claimed is None:
        return
    answer: Response | None = getattr(request.state, _ANSWER, None)
    if answer is None:  # no answer to give back: let the key go rather than keep it blank
        session.delete(claimed)
        return
    claimed.status_code = answer.status_code
    claimed.media_type = answer.media_type
    claimed.body = bytes(answer.body)


def keep_answer(request: Request, response: Response) -> None:
    """Called by the route class with what a route answered, before the transaction ends."""
    setattr(request.state, _ANSWER, response)


def prune(sessions: sessionmaker[Session], now: datetime) -> int:
    """Forget keys older than the window (the `idempotency.prune` job); how many went."""
    with unit_of_work(sessions) as session:
        result = session.execute(
            delete(IdempotentRequest).where(IdempotentRequest.created_at < now - WINDOW)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claim(session: Session, wanted: _Request, now: datetime) -> IdempotentRequest:
    found = _find(session, wanted)
    if found is not None:
        if found.created_at >= now - WINDOW:
            _replay(found, wanted)
        session.delete(found)  # older than the window: the key is free again
        session.flush()
    claimed = IdempotentRequest(
        environment_id=wanted.environment_id,
        key=wanted.key,
        operation=wanted.operation,
        fingerprint=wanted.fingerprint,
        created_at=now,
    )
    try:
        # On PostgreSQL this waits for a concurrent request holding the same key.
        with session.begin_nested():
            session.add(claimed)
    except IntegrityError:
        found = _find(session, wanted)
        if found is None:  # it was forgotten meanwhile: rare enough to ask for a retry
            raise Conflict(
                f"another request with {HEADER} '{wanted.key}' was being recorded at the same "
                f"moment; retry to get its answer",
                field=HEADER,
            ) from None
        _replay(found, wanted)
    return claimed


def _find(session: Session, wanted: _Request) -> IdempotentRequest | None:
    return session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.environment_id == wanted.environment_id,
            IdempotentRequest.key == wanted.key,
        )
    )


def _replay(found: IdempotentRequest, wanted: _Request) -> None:
    if found.operation != wanted.operation or found.fingerprint != wanted.fingerprint:
        raise RequestKeyReused(
            wanted.key, found.operation, same_operation=found.operation == wanted.operation
        )
    raise IdempotentReplay(found)


def _fingerprint(operation: str, query: str, body: bytes) -> str:
    """A digest of what the request asks; JSON bodies compare by content, not by spacing or
    key order."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(b"\n".join([operation.encode(), query.encode(), canonical])).hexdigest()
