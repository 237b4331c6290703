"""What every resolver knows: who calls, the app's parts, and the moment of the request;
and how it reaches the database (a unit of work on a worker thread, admitted like a
request's)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from graphql import GraphQLResolveInfo
from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.engine import SessionFactories, unit_of_work
from tollgate.entitlements.reads import CustomerEntitlements, admitted, customer_entitlements
from tollgate.environments.service import Principal
from tollgate.http.components import Components
from tollgate.kit.clock import Clock

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    principal: Principal
    parts: Components
    now: datetime
    # Of the key a socket was opened with: its subscriptions end when the key is revoked.
    key_hash: str | None = None

    @property
    def environment_id(self) -> int:
        return self.principal.environment_id

    async def read(self, work: Callable[[Session], T]) -> T:
        return await admitted(
            self.parts, self._in_unit, self.parts.get(SessionFactories).read, work
        )

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, committed when it returns (the change feed follows)."""
        return await admitted(
            self.parts, self._in_unit, self.parts.get(SessionFactories).write, work
        )

    async def write_steps(self, work: Callable[[sessionmaker[Session]], T]) -> T:
        """`work` given the write session factory, for changes made in several transactions
        with calls to a payment provider between them (the checkout)."""
        return await admitted(self.parts, work, self.parts.get(SessionFactories).write)

    async def entitlements(
        self, customer_ref: str, resource_ref: str | None = None
    ) -> CustomerEntitlements:
        return await customer_entitlements(
            self.parts, self.environment_id, customer_ref, resource_ref
        )

    @staticmethod
    def _in_unit(factory: Callable[[], Session], work: Callable[[Session], T]) -> T:
        with unit_of_work(factory) as session:  # type: ignore[arg-type]
            return work(session)


def caller_for(principal: Principal, parts: Components, key_hash: str | None = None) -> Caller:
    """A caller acting at the app clock's present moment."""
    # mypy takes no protocol for a `type[T]` (python/mypy#4717); the app added a Clock.
    clock = parts.get(Clock)  # type: ignore[type-abstract]
    return Caller(principal, parts, clock.now(), key_hash)


# What resolvers are given: graphql-core's info, with a Caller as its context.
Info = GraphQLResolveInfo[Caller]
