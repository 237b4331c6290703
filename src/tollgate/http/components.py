"""The app's shared parts (stores, clock, sessions, ...), reached by their type.

`create_app` builds each part once and adds it here; routes and middleware ask for a part
by its class instead of reading untyped attributes of `app.state`. This module names no
domain: each domain declares the dependency its routes need, e.g.

    Snapshots = Annotated[SnapshotStore, Depends(component(SnapshotStore))]"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from starlette.applications import Starlette
from starlette.requests import Request

T = TypeVar("T")


class Components:
    """At most one part of each type."""

    def __init__(self) -> None:
        self._parts: dict[type[Any], object] = {}

    def add(self, part: object, *, kind: type[Any] | None = None) -> None:
        """Add `part` under `kind` (its own class unless named: a part whose class is an
        implementation detail, like a backend's semaphore, is added under its interface)."""
        kind = kind or type(part)
        if not isinstance(part, kind):
            raise TypeError(f"{part!r} is not a {kind.__name__}")
        if kind in self._parts:
            raise ValueError(f"a {kind.__name__} was added already")
        self._parts[kind] = part

    def get(self, kind: type[T]) -> T:
        # `add` checked that the part is a `kind`, so a request pays one dict lookup.
        try:
            return cast(T, self._parts[kind])
        except KeyError:
            raise LookupError(f"the app has no {kind.__name__}") from None


def install(app: Starlette, components: Components) -> None:
    """Make `components` the app's parts (once, from `create_app`)."""
    app.state.components = components


def app_components(app: Starlette) -> Components:
    """The parts `create_app` installed on `app` (a request's `request.app`)."""
    components: Components = app.state.components
    return components


def component(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A FastAPI dependency answering the app's part of type `kind`. Async, so FastAPI
    calls it on the event loop rather than sending it to a worker thread."""

    async def part(request: Request) -> T:
        return app_components(request.app).get(kind)

    return part
