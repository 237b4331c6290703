"""Wire shapes of the Auth0 login endpoint (Tollgate's own; the compatible platform has no
such endpoint: its integration runs inside its servers)."""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import CustomerId, JsonBool, Moment, RefId, ShortText

MAX_MISSED_LOGINS = 20
Key = Annotated[str, Field(min_length=1, max_length=255)]


class Mode(StrEnum):
    """Who becomes a customer: the user (B2C), the user's organization (B2B), or both."""

    B2C = "B2C"
    B2B = "B2B"
    BOTH = "BOTH"

    @property
    def makes_users(self) -> bool:
        """Whether logins in this mode make the user a customer."""
        return self in (Mode.B2C, Mode.BOTH)

    @property
    def makes_organizations(self) -> bool:
        """Whether logins in this mode make the user's organization a customer."""
        return self in (Mode.B2B, Mode.BOTH)


class Decision(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"


class CustomerKind(StrEnum):
    USER = "USER"
    ORGANIZATION = "ORGANIZATION"


class Auth0User(RequestModel):
    id: CustomerId = Field(description="The Auth0 user id (`event.user.user_id`)")
    email: ShortText | None = None
    name: ShortText | None = None


class Auth0Organization(RequestModel):
    id: CustomerId = Field(description="The Auth0 organization id (`event.organization.id`)")
    name: ShortText | None = None


class InitialPlans(RequestModel):
    """The plan a customer this endpoint creates is subscribed to, per kind of customer;
    none: the customer is created without a subscription."""

    user: RefId | None = None
    organization: RefId | None = None


class MissedLogin(RequestModel):
    """A login of the same user that the Action let through without reaching Tollgate."""

    organization: Auth0Organization | None = None
    logged_in_at: Moment
    idempotency_key: Key


class LoginReport(RequestModel):
    user: Auth0User
    organization: Auth0Organization | None = None
    mode: Mode
    initial_plans: InitialPlans = Field(default_factory=InitialPlans)
    feature_id: RefId = Field(
        "feature-mau", description="The active-users feature: a meter counting UNIQUE users"
    )
    event_name: Key = Field("auth0-login", description="The login event its meter counts")
    idempotency_key: Key = Field(
        description="One login (the Action derives it from the Auth0 transaction): sent "
        "again within 7 days, it gets the first answer back and counts nothing again"
    )
    enforce_limit: JsonBool = Field(
        True, description="Deny a new active user past the limit (false: count and allow)"
    )
    logged_in_at: Moment | None = Field(
        None, description="When the login happened (default: now); it counts in that period"
    )
    client_id: ShortText | None = Field(None, description="The Auth0 application's client id")
    missed_logins: Annotated[list[MissedLogin], Field(max_length=MAX_MISSED_LOGINS)] = Field(
        default_factory=list,
        description="Earlier logins of this user that the Action could not report; each "
        "is counted in its own period under its own key, without enforcement",
    )


class ActiveUsers(WireModel):
    usage: float
    usage_limit: float | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    is_new_active_user: bool = Field(description="Not yet counted in the current period")
    counted: bool


class LoginCustomer(WireModel):
    customer_id: str
    kind: CustomerKind
    is_new: bool = Field(description="Created by this login")
    subscription_id: str | None = Field(description="The subscription this login started")
    active_users: ActiveUsers | None = Field(description="None when nothing was measured")


class MissedLoginRead(WireModel):
    idempotency_key: str
    decision: Literal["ALLOW", "DENY", "ERROR"]
    message: str


class LoginAnswer(WireModel):
    decision: Decision
    message: str
    reason: str | None = Field(description="Why a login was denied (an accessDeniedReason)")
    customer_id: str | None = Field(description="The customer the app acts for")
    customers: list[LoginCustomer]
    replayed: bool = Field(description="The first answer to this idempotency key")
    missed_logins: list[MissedLoginRead]


class LoginEnvelope(WireModel):
    data: LoginAnswer


def wire(model: WireModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
