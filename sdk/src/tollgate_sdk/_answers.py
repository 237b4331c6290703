"""The answers to checks: from a customer's cached state when there is one (the features'
definitions say how to read it), else from the fallbacks configured for the feature.

Every check answers here, on the caller's thread; only a customer's first check waits for
the network (`Loader.load_now`)."""

import logging
import time
from collections.abc import Mapping

from tollgate_sdk._cache import (
    FOREVER,
    CacheKey,
    CustomerState,
    EntitlementCache,
    FeatureDef,
    Gauge,
    decide,
)
from tollgate_sdk._loader import Loader
from tollgate_sdk._types import (
    AccessDeniedReason,
    BooleanEntitlement,
    Entitlement,
    EnumEntitlement,
    Fallback,
    MeteredEntitlement,
    NumericEntitlement,
    Source,
)
from tollgate_sdk._usage import UsageBuffer, counted_with

log = logging.getLogger("tollgate_sdk")

# Looking up an enum member costs ~70 ns; the cached metered path reads these instead.
_CACHE = Source.CACHE
_EXCEEDING = AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT


class Answers:
    def __init__(
        self,
        cache: EntitlementCache,
        loader: Loader,
        usage: UsageBuffer,
        fallbacks: Mapping[str, Fallback] | None,
    ) -> None:
        self.cache = cache
        self.features: dict[str, FeatureDef] = {}
        self.usage = usage
        self._loader = loader
        self._fallbacks = dict(fallbacks or {})

    def use_features(self, features: dict[str, FeatureDef]) -> None:
        """The features' definitions, as last read from the server."""
        self.features = features

    def state_for(self, key: CacheKey) -> tuple[CustomerState | None, Source]:
        """The cached state, else one loaded now (None when the server cannot be reached)."""
        state = self.cache.get(key)
        if state is not None:
            self.notice_time(state)
            return state, Source.CACHE
        return self._loader.load_now(key), Source.SERVER

    @staticmethod
    def is_due(state: CustomerState) -> bool:
        return state.refresh_at <= time.time()

    def notice_time(self, state: CustomerState) -> None:
        if state.refresh_at <= time.time():
            state.refresh_at = FOREVER  # read it again once, not on every check meanwhile
            self._loader.schedule((state.customer_id, state.resource_id))

    def boolean(
        self, state: CustomerState | None, source: Source, feature_id: str
    ) -> BooleanEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id)
            granted = fallback is not None and fallback.has_access
            return BooleanEntitlement(
                feature_id, granted, _fallback_reason(granted), Source.FALLBACK
            )
        feature = self.features.get(feature_id)
        if feature is not None and feature.is_metered:
            metered = self.metered(state, source, feature_id, None)
            return BooleanEntitlement(
                feature_id, metered.has_access, metered.access_denied_reason, source
            )
        granted, reason, _ = decide(state, feature)
        answer = BooleanEntitlement(feature_id, granted, reason, source)
        if source is Source.CACHE:
            state.booleans[feature_id] = answer
        return answer

    def numeric(
        self, state: CustomerState | None, source: Source, feature_id: str
    ) -> NumericEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
            return NumericEntitlement(
                feature_id,
                fallback.has_access,
                _fallback_reason(fallback.has_access),
                Source.FALLBACK,
                fallback.usage_limit,
                fallback.is_unlimited,
            )
        granted, reason, terms = decide(state, self.features.get(feature_id))
        return NumericEntitlement(
            feature_id,
            granted,
            reason,
            source,
            terms.usage_limit if terms else None,
            terms.is_unlimited if terms else False,
        )

    def metered(
        self,
        state: CustomerState | None,
        source: Source,
        feature_id: str,
        requested_usage: float | None,
    ) -> MeteredEntitlement:
        requested = 1 if requested_usage is None else requested_usage
        if state is None:
            return self._metered_fallback(feature_id, requested)
        feature = self.features.get(feature_id)
        terms = state.terms.get(feature_id)
        usage = 0.0
        if terms is not None and feature is not None and feature.is_metered:
            local = self.usage.local_values.get((state.customer_id, state.resource_id, feature_id))
            counted = terms.current_usage if time.time() < terms.period_ends_at else 0
            usage = counted_with(local, counted)
        granted, reason, terms = decide(
            state, feature, requested_usage=requested_usage, current_usage=usage
        )
        if (
            source is Source.CACHE
            and terms is not None
            and feature is not None
            and feature.is_metered
            and (granted or reason is AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT)
        ):
            key = (state.customer_id, state.resource_id, feature_id)
            state.gauges[feature_id] = Gauge(feature_id, key, terms)
        return MeteredEntitlement(
            feature_id=feature_id,
            has_access=granted,
            access_denied_reason=reason,
            source=source,
            usage_limit=terms.usage_limit if terms else None,
            is_unlimited=terms.is_unlimited if terms else False,
            has_soft_limit=terms.has_soft_limit if terms else False,
            current_usage=usage,
            requested_usage=requested,
            reset_period=terms.reset_period if terms else None,
            usage_period_start=terms.usage_period_start if terms else None,
            usage_period_end=terms.usage_period_end if terms else None,
        )

    def gauged(self, gauge: Gauge, requested_usage: float | None, now: float) -> MeteredEntitlement:
        """A cached metered check of a granted feature: `metered`'s answer, made faster."""
        terms = gauge.terms
        local = self.usage.local_values.get(gauge.key)  # before the count: see counted_with
        counted = counted_with(local, terms.current_usage if now < terms.period_ends_at else 0)
        requested = 1 if requested_usage is None else requested_usage
        granted = gauge.unbounded or counted + requested <= gauge.limit
        return MeteredEntitlement(
            gauge.feature_id,
            granted,
            None if granted else _EXCEEDING,
            _CACHE,
            terms.usage_limit,
            terms.is_unlimited,
            terms.has_soft_limit,
            counted,
            requested,
            terms.reset_period,
            terms.usage_period_start,
            terms.usage_period_end,
        )

    def _metered_fallback(self, feature_id: str, requested: float) -> MeteredEntitlement:
        fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
        limit = fallback.usage_limit
        granted = fallback.has_access and (
            fallback.is_unlimited or limit is None or requested <= limit
        )
        return MeteredEntitlement(
            feature_id=feature_id,
            has_access=granted,
            access_denied_reason=_fallback_reason(granted),
            source=Source.FALLBACK,
            usage_limit=limit,
            is_unlimited=fallback.is_unlimited,
            has_soft_limit=False,
            current_usage=0,
            requested_usage=requested,
            reset_period=None,
            usage_period_start=None,
            usage_period_end=None,
        )

    def enum(
        self,
        state: CustomerState | None,
        source: Source,
        feature_id: str,
        requested_values: frozenset[str] | None,
    ) -> EnumEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
            values = fallback.enum_values or frozenset()
            granted = fallback.has_access and (
                requested_values is None or values.issuperset(requested_values)
            )
            return EnumEntitlement(
                feature_id,
                granted,
                _fallback_reason(granted),
                Source.FALLBACK,
                values,
                requested_values,
            )
        granted, reason, terms = decide(
            state, self.features.get(feature_id), requested_values=requested_values
        )
        values = (terms.enum_values if terms else None) or frozenset()
        return EnumEntitlement(feature_id, granted, reason, source, values, requested_values)

    def every(self, state: CustomerState | None, source: Source) -> list[Entitlement]:
        """Each feature the customer is entitled to, answered as its own kind of check."""
        if state is None:
            return [self.typed(None, source, feature_id) for feature_id in sorted(self._fallbacks)]
        return [self.typed(state, source, feature_id) for feature_id in sorted(state.terms)]

    def typed(self, state: CustomerState | None, source: Source, feature_id: str) -> Entitlement:
        feature = self.features.get(feature_id)
        fallback = self._fallbacks.get(feature_id)
        if (feature is not None and feature.is_metered) or (
            feature is None and fallback is not None and fallback.usage_limit is not None
        ):
            return self.metered(state, source, feature_id, None)
        if feature is not None and feature.feature_type == "NUMBER":
            return self.numeric(state, source, feature_id)
        if (feature is not None and feature.feature_type == "ENUM") or (
            feature is None and fallback is not None and fallback.enum_values is not None
        ):
            return self.enum(state, source, feature_id, None)
        return self.boolean(state, source, feature_id)

    def report_failure(self, kind: str, feature_id: str) -> None:
        """A check answers its fallback even if this SDK has a bug; said loudly."""
        log.exception("Tollgate %s check of %s failed; answering the fallback", kind, feature_id)


def _fallback_reason(granted: bool) -> AccessDeniedReason | None:
    return None if granted else AccessDeniedReason.UNKNOWN
