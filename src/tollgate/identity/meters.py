"""What makes a feature an active-users counter: a NUMBER, INCREMENTAL feature whose meter
counts UNIQUE user ids over the login events."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.enums import FeatureType, MeterType
from tollgate.catalog.models import Feature
from tollgate.usage import meters

USER_FIELD = "user_id"  # the event dimension `tollgate auth0 setup` counts


def active_users_problem(feature: Feature) -> str | None:
    """Why `feature` cannot count unique users at all, or None."""
    if feature.feature_type != FeatureType.NUMBER or feature.meter_type != MeterType.INCREMENTAL:
        return (
            f"it is a {feature.feature_type} feature with meter type {feature.meter_type}, "
            "not a NUMBER feature with meter type INCREMENTAL"
        )
    if feature.meter is None:
        return "it has no meter (its usage is reported, not counted from events)"
    aggregation = feature.meter.get("aggregation") or {}
    if aggregation.get("function") != "UNIQUE" or not aggregation.get("field"):
        return f"its meter aggregates with {aggregation.get('function')}, not UNIQUE user ids"
    return None


def login_meter_problem(feature: Feature, event_name: str) -> str | None:
    """Why `feature` cannot count the users of the logins named `event_name`, or None."""
    problem = active_users_problem(feature)
    if problem is None and not counts_event(feature, event_name):
        problem = f"its meter does not count events named '{event_name}'"
    return problem


def counts_event(feature: Feature, event_name: str) -> bool:
    """Whether the meter of a feature that counts unique users counts such login events."""
    assert feature.meter is not None
    sample = meters.Event(event_name, "", None, {user_field(feature): "user"})
    return meters.matches(feature.meter, sample)


def user_field(feature: Feature) -> str:
    """The dimension a feature that counts unique users counts."""
    assert feature.meter is not None
    return str(feature.meter["aggregation"]["field"])


def find_feature(session: Session, environment_id: int, ref_id: str) -> Feature | None:
    return session.scalar(
        select(Feature).where(Feature.environment_id == environment_id, Feature.ref_id == ref_id)
    )
