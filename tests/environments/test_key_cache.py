"""The API-key cache: trusted for a while, refreshed by one caller at a time."""

from tollgate.environments.cache import REFRESH_SECONDS, TTL_SECONDS, KeyCache
from tollgate.environments.models import KeyKind
from tollgate.environments.service import Principal

PRINCIPAL = Principal(environment_id=1, environment_name="dev", key_kind=KeyKind.SERVER)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cache_with_key() -> tuple[KeyCache, Clock]:
    clock = Clock()
    keys = KeyCache(monotonic=clock)
    keys.put("k", PRINCIPAL)
    return keys, clock


class TestKeyCache:
    def test_trusted_until_the_ttl(self) -> None:
        keys, clock = cache_with_key()
        clock.now += TTL_SECONDS - 0.01
        assert keys.get("k") == PRINCIPAL
        assert keys.peek("k") == PRINCIPAL

    def test_one_caller_refreshes_while_the_others_keep_the_last_answer(self) -> None:
        keys, clock = cache_with_key()
        clock.now += TTL_SECONDS
        assert keys.peek("k") is None  # peeking never claims the refresh
        assert keys.get("k") is None  # this caller refreshes
        assert keys.get("k") == PRINCIPAL
        assert keys.peek("k") == PRINCIPAL

    def test_a_refresh_that_never_came_back_is_taken_again(self) -> None:
        keys, clock = cache_with_key()
        clock.now += TTL_SECONDS
        assert keys.get("k") is None
        clock.now += REFRESH_SECONDS
        assert keys.get("k") is None
        assert keys.get("k") == PRINCIPAL

    def test_a_refreshed_key_is_trusted_for_a_full_ttl(self) -> None:
        keys, clock = cache_with_key()
        clock.now += TTL_SECONDS
        assert keys.get("k") is None
        keys.put("k", PRINCIPAL)
        clock.now += TTL_SECONDS - 0.01
        assert keys.peek("k") == PRINCIPAL

    def test_a_refused_key_is_forgotten_for_everyone(self) -> None:
        keys, clock = cache_with_key()
        clock.now += TTL_SECONDS
        assert keys.get("k") is None
        keys.forget("k")
        assert keys.get("k") is None
        assert keys.peek("k") is None
