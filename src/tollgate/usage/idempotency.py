"""An idempotency key stands for the one report (or event) it was first used for.

Sent again with that same item, the key answers as the first time did, and nothing is
counted twice. Sent with anything else (another customer, feature, value, ...), it is a
mistake that must not pass for a retry: the batch is refused, naming the item, the key
and what the key stands for. Keys are remembered per environment for the idempotency
window (`subjects.EVENT_WINDOW_DAYS`)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tollgate.usage.errors import IdempotencyKeyReused


@dataclass(frozen=True, slots=True)
class Use:
    """What an item under a key is: `content`, compared field by field (wire names), and
    `subject`, which names it (customer, feature or event, resource) to the caller."""

    content: dict[str, Any]
    subject: dict[str, str | None]


def comparable(dimensions: Mapping[str, Any] | None) -> dict[str, tuple[bool, Any]]:
    """Dimensions as compared: stored JSON and a request's dict alike, in any key order,
    with 1 and 1.0 the same number but `true` never the number 1 (Python says True == 1)."""
    return {name: (isinstance(value, bool), value) for name, value in (dimensions or {}).items()}


class FirstUses:
    """The first use of each key a batch holds: remembered from earlier requests, else the
    batch's own first item under it.

    A batch's items are described (`Use`) only when their key comes again: most keys are
    new, and a batch holds up to a thousand of them."""

    def __init__(self, *, items: str, kind: str, outcome: str) -> None:
        self._items = items  # "usages"
        self._kind = kind  # "report"
        self._outcome = outcome  # "counted"
        self._first: dict[str, tuple[Callable[[], Use], str]] = {}
        self._problems: list[dict[str, Any]] = []

    def remember(self, key: str, use: Use) -> None:
        self._first[key] = (lambda: use, f"another {self._kind}")

    def repeats(self, index: int, key: str, use: Callable[[], Use]) -> bool:
        """Whether the item at `index` comes after its key's first use, so it is not applied
        again. If it is not the same item, it is noted for `refuse_reuses`."""
        first = self._first.get(key)
        if first is None:
            self._first[key] = (use, f"{self._items}[{index}] of this batch")
            return False
        first_use, where = first[0](), first[1]
        this = use()
        differs = [name for name, value in this.content.items() if first_use.content[name] != value]
        if differs:
            self._problems.append(self._problem(index, key, first_use, where, differs))
        return True

    def refuse_reuses(self) -> None:
        if self._problems:
            raise IdempotencyKeyReused(self._problems)

    def _problem(
        self, index: int, key: str, first: Use, where: str, differs: list[str]
    ) -> dict[str, Any]:
        named = ", ".join(
            f"{_WORDS[name]} '{value}'" for name, value in first.subject.items() if value
        )
        message = (
            f"idempotency key '{key}' already stands for {where} ({named}); this one differs "
            f"in {', '.join(differs)}, so the batch was not {self._outcome}. Send a different "
            f"{self._kind} under a key of its own"
        )
        return {
            "field": f"{self._items}[{index}].idempotencyKey",
            "message": message,
            "idempotencyKey": key,
            "firstUsedFor": first.subject,
            "differs": differs,
        }


_WORDS = {
    "customerId": "customer",
    "featureId": "feature",
    "eventName": "event",
    "resourceId": "resource",
}
