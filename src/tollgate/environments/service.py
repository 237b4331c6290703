"""Environments and API keys: creation, listing, revocation, authentication."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.db.changes import Change, ChangeKind, record
from tollgate.environments.models import ApiKey, Environment, KeyKind
from tollgate.environments.origins import is_allowed, normalized_origin
from tollgate.environments.tokens import HEADER as TOKEN_HEADER
from tollgate.environments.tokens import verified_customer
from tollgate.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidValue,
    NotFound,
    PermissionDenied,
)

KEY_PREFIX_LENGTH = 16
CLIENT_KEY_NEEDS_TOKEN = (
    f"a client key reads a customer's data only with a customer token: send "
    f"{TOKEN_HEADER}: 'HMAC-SHA256 <customerId>:<hex>', signed by your backend with the "
    f"environment's signing secret"
)
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the environment a key belongs to, what the key may do, and (with a
    customer token) the one customer whose data it may see."""

    environment_id: int
    environment_name: str
    key_kind: KeyKind
    signing_secret: str = field(default="", repr=False)
    customer_ref: str | None = None
    # The environment lets client keys read any customer without a token (development only).
    is_customer_token_optional: bool = False
    allowed_origins: tuple[str, ...] = ()

    def with_customer_token(self, token: str | None) -> "Principal":
        if token is None:
            return self
        return replace(self, customer_ref=verified_customer(token, self.signing_secret))

    @property
    def reads_any_customer(self) -> bool:
        """Whether this caller may read every customer of its environment."""
        if self.key_kind is KeyKind.SERVER:
            return self.customer_ref is None
        return self.customer_ref is None and self.is_customer_token_optional

    def require_customer(self, customer_ref: str) -> None:
        """A customer token shows its own customer's data only, and a client key (which
        ships inside browsers and apps) shows a customer's data only with a token."""
        self.require_customer_access()
        if self.customer_ref is not None and self.customer_ref != customer_ref:
            raise PermissionDenied(
                f"the {TOKEN_HEADER} is for customer '{self.customer_ref}', not '{customer_ref}'"
            )

    def require_customer_access(self) -> None:
        """Refuse a client key without a customer token before anything is looked up, so
        that it cannot even learn which ids exist."""
        if self.customer_ref is None and not self.reads_any_customer:
            raise PermissionDenied(CLIENT_KEY_NEEDS_TOKEN, field=TOKEN_HEADER)

    def require_checkout(self, customer_ref: str) -> None:
        """A customer may change and pay for their own subscription from their browser
        (the checkout widget): a server key, or a client key with a customer token for
        exactly that customer. Never a client key alone, even where tokens are optional
        for reading."""
        if self.key_kind is not KeyKind.SERVER and self.customer_ref is None:
            raise PermissionDenied(
                f"checking out needs a server API key, or a client key with the customer's "
                f"{TOKEN_HEADER}",
                field=TOKEN_HEADER,
            )
        self.require_customer(customer_ref)

    def require_write(self) -> None:
        """Only server keys change anything: client keys ship inside browsers and apps."""
        if self.key_kind is not KeyKind.SERVER:
            raise PermissionDenied(
                "this needs a server API key; client keys are read-only", field="X-API-KEY"
            )

    def require_origin(self, origin: str | None) -> None:
        """A browser's request (it names its page's origin) comes from an origin the
        environment allows, or is refused before anything is read or written."""
        if origin is not None and not is_allowed(origin, self.allowed_origins):
            raise PermissionDenied(
                f"origin '{origin}' may not use the keys of environment "
                f"'{self.environment_name}'; allow it with `tollgate keys origins "
                f"--environment {self.environment_name} --add {origin}`",
                field="Origin",
            )

    def require_listing(self, what: str) -> None:
        """Only server keys list customers or everyone's subscriptions: a client key, even
        with a token, is in the hands of one customer."""
        if self.key_kind is not KeyKind.SERVER or self.customer_ref is not None:
            raise PermissionDenied(
                f"only a server key lists {what}; a customer token reads its own customer: "
                f"GET /api/v1/customers/{self.customer_ref or '<customerId>'}"
            )


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


def hash_key(raw_key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is enough and keeps lookups indexable.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def ensure_environment(session: Session, *, name: str) -> Environment:
    """Return the environment called `name`, creating it if it does not exist."""
    if not _ENVIRONMENT_NAME.match(name):
        raise InvalidValue(
            f"environment name '{name}' must be lowercase letters, digits and dashes",
            field="environment",
        )
    query = select(Environment).where(Environment.name == name)
    environment = session.scalar(query)
    if environment is not None:
        return environment
    try:
        # A savepoint, so losing a race with another creator costs only this insert.
        with session.begin_nested():
            environment = Environment(name=name, signing_secret=secrets.token_hex(32))
            session.add(environment)
    except IntegrityError:
        environment = session.scalars(query).one()
    return environment


def get_environment(session: Session, *, name: str) -> Environment:
    environment = session.scalar(select(Environment).where(Environment.name == name))
    if environment is None:
        raise NotFound("environment", name, field="environment")
    return environment


def create_key(session: Session, *, environment_name: str, kind: KeyKind) -> IssuedKey:
    environment = ensure_environment(session, name=environment_name)
    secret = f"tg_{kind.value}_{secrets.token_urlsafe(32)}"
    key = _key_row(environment, kind, secret)
    session.add(key)
    session.flush()
    return IssuedKey(key=key, secret=secret)


def _key_row(environment: Environment, kind: KeyKind, secret: str) -> ApiKey:
    """The stored form of a key: its hash, and a prefix listings can show."""
    return ApiKey(
        environment_id=environment.id,
        kind=kind,
        prefix=secret[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(secret),
    )


def create_demo_key(session: Session, *, environment: Environment, kind: KeyKind) -> str | None:
    """The environment's demo key of `kind`, the same on every call; None once revoked.

    Only for environments seeded by `serve --demo` (they have a demo_key_secret)."""
    assert environment.demo_key_secret is not None
    digest = hmac.new(
        environment.demo_key_secret.encode(), f"demo-{kind.value}-key".encode(), hashlib.sha256
    ).hexdigest()
    secret = f"tg_{kind.value}_demo{digest[:40]}"
    row = _key_row(environment, kind, secret)
    existing = session.scalar(select(ApiKey).where(ApiKey.key_hash == row.key_hash))
    if existing is None:
        session.add(row)
    elif existing.revoked_at is not None:
        return None
    return secret


def list_keys(
    session: Session, *, environment_name: str | None = None
) -> list[tuple[ApiKey, Environment]]:
    query = select(ApiKey, Environment).join(Environment).order_by(Environment.name, ApiKey.id)
    if environment_name is not None:
        query = query.where(Environment.name == environment_name)
    return [(key, environment) for key, environment in session.execute(query)]


def revoke_key(session: Session, *, key_or_prefix: str, now: datetime) -> ApiKey:
    """Revoke by the full key, or by exactly the prefix a listing shows."""
    if len(key_or_prefix) == KEY_PREFIX_LENGTH:
        condition = ApiKey.prefix == key_or_prefix
    else:
        condition = ApiKey.key_hash == hash_key(key_or_prefix)
    matches = list(session.scalars(select(ApiKey).where(condition)))
    if not matches:
        raise NotFound("API key", key_or_prefix)
    if len(matches) > 1:
        raise Conflict(f"prefix '{key_or_prefix}' matches {len(matches)} keys; give the full key")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = now
        record(session, Change(ChangeKind.KEYS, key.environment_id))
    return key


def rotate_signing_secret(session: Session, *, name: str) -> Environment:
    """A new signing secret: every customer token signed with the old one stops working."""
    environment = get_environment(session, name=name)
    environment.signing_secret = secrets.token_hex(32)
    # Servers cache principals, secrets included, by key: make them read it again.
    record(session, Change(ChangeKind.KEYS, environment.id))
    return environment


def set_customer_token_optional(session: Session, *, name: str, optional: bool) -> Environment:
    """Whether client keys of the environment may read customers without a customer token
    (for development only: a client key ships inside browsers and apps)."""
    environment = get_environment(session, name=name)
    environment.is_customer_token_optional = optional
    # Servers cache principals, this flag included, by key: make them read it again.
    record(session, Change(ChangeKind.KEYS, environment.id))
    return environment


def set_allowed_origins(
    session: Session, *, name: str, add: list[str], remove: list[str]
) -> Environment:
    """Add and remove browser origins the environment's keys may be used from."""
    environment = get_environment(session, name=name)
    dropped = {normalized_origin(origin) for origin in remove}
    origins = [origin for origin in environment.allowed_origins if origin not in dropped]
    for origin in map(normalized_origin, add):
        if origin not in origins:
            origins.append(origin)
    environment.allowed_origins = origins
    # Servers cache principals, origins included, by key: make them read it again.
    record(session, Change(ChangeKind.KEYS, environment.id))
    return environment


def list_token_optional_environments(session: Session) -> list[str]:
    """The environments whose client keys read customers without a token."""
    query = select(Environment.name).where(Environment.is_customer_token_optional)
    return list(session.scalars(query.order_by(Environment.name)))


def list_live_key_hashes(session: Session, key_hashes: set[str]) -> set[str]:
    """Those of the keys (by hash) that exist and are not revoked."""
    if not key_hashes:
        return set()
    query = select(ApiKey.key_hash).where(
        ApiKey.key_hash.in_(key_hashes), ApiKey.revoked_at.is_(None)
    )
    return set(session.scalars(query))


def authenticate(session: Session, *, raw_key: str | None) -> Principal:
    if not raw_key:
        raise AuthenticationFailed("missing API key: send it in the X-API-KEY header")
    row = session.execute(
        select(
            ApiKey.kind,
            ApiKey.revoked_at,
            Environment.id,
            Environment.name,
            Environment.signing_secret,
            Environment.is_customer_token_optional,
            Environment.allowed_origins,
        )
        .join(Environment)
        .where(ApiKey.key_hash == hash_key(raw_key))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("invalid or revoked API key in the X-API-KEY header")
    return Principal(
        environment_id=row.id,
        environment_name=row.name,
        key_kind=KeyKind(row.kind),
        signing_secret=row.signing_secret,
        is_customer_token_optional=row.is_customer_token_optional,
        allowed_origins=tuple(row.allowed_origins or ()),
    )
