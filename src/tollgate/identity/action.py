"""`tollgate auth0 action`: the post-login Action's source, and the secrets that configure
it, checked against the environment's catalog."""

import shlex
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files

from sqlalchemy.orm import Session

from tollgate.environments.models import KeyKind
from tollgate.environments.service import authenticate
from tollgate.errors import AuthenticationFailed, InvalidValue
from tollgate.identity.meters import find_feature, login_meter_problem
from tollgate.identity.schemas import Mode
from tollgate.subscriptions import service as subscriptions

ACTION_NAME = "tollgate-post-login"
API_KEY_PLACEHOLDER = "<a server key>"  # printed as is when no key is given


def action_source() -> str:
    """The Action, exactly as it is pasted into Auth0 (one file, no dependencies)."""
    return files("tollgate.identity").joinpath("auth0_action.js").read_text(encoding="utf-8")


class FailMode(StrEnum):
    """What the Action does when Tollgate cannot answer: let the login in, or refuse it."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ActionSettings:
    url: str
    api_key: str
    mode: Mode
    user_plan: str | None
    organization_plan: str | None
    feature: str
    event_name: str
    client_ids: tuple[str, ...]
    enforce: bool
    timeout_ms: int
    fail_mode: FailMode
    deny_message: str | None
    claim: str | None


def checked_secrets(
    session: Session, *, environment_id: int, settings: ActionSettings
) -> dict[str, str]:
    """The Action's secrets, once what they name is checked: a server key of this
    environment (unless the placeholder is printed), plans anyone may be subscribed to, the
    plan each mode needs, a feature counting unique users of the event name."""
    if settings.api_key != API_KEY_PLACEHOLDER:
        _check_key(session, environment_id, settings.api_key)
    for plan, needed, option in (
        (settings.user_plan, settings.mode.makes_users, "--user-plan"),
        (settings.organization_plan, settings.mode.makes_organizations, "--organization-plan"),
    ):
        if plan is not None:
            subscriptions.check_plan_offered(
                session, environment_id=environment_id, ref_id=plan, field=option
            )
        elif needed and settings.enforce:
            raise InvalidValue(
                f"mode {settings.mode} creates customers, and while logins are enforced a "
                f"customer without a plan is denied: give {option} (or --no-enforce)",
                field=option,
            )
    feature = find_feature(session, environment_id, settings.feature)
    if feature is None:
        raise InvalidValue(
            f"feature '{settings.feature}' was not found; run `tollgate auth0 setup` first",
            field="--feature",
        )
    problem = login_meter_problem(feature, settings.event_name)
    if problem is not None:
        raise InvalidValue(f"feature '{settings.feature}': {problem}", field="--feature")
    secrets = {
        "TOLLGATE_URL": settings.url.rstrip("/"),
        "TOLLGATE_API_KEY": settings.api_key,
        "TOLLGATE_MODE": settings.mode.value,
        "TOLLGATE_USER_PLAN": settings.user_plan or "",
        "TOLLGATE_ORGANIZATION_PLAN": settings.organization_plan or "",
        "TOLLGATE_FEATURE": settings.feature,
        "TOLLGATE_EVENT_NAME": settings.event_name,
        "TOLLGATE_CLIENT_IDS": ",".join(settings.client_ids),
        "TOLLGATE_ENFORCE": "true" if settings.enforce else "false",
        "TOLLGATE_TIMEOUT_MS": str(settings.timeout_ms),
        "TOLLGATE_FAIL_MODE": settings.fail_mode.value,
        "TOLLGATE_DENY_MESSAGE": settings.deny_message or "",
        "TOLLGATE_CLAIM": settings.claim or "",
    }
    return {name: value for name, value in secrets.items() if value}


def _check_key(session: Session, environment_id: int, raw_key: str) -> None:
    try:
        principal = authenticate(session, raw_key=raw_key)
    except AuthenticationFailed:
        raise InvalidValue("--api-key is not a live key of Tollgate", field="--api-key") from None
    if principal.environment_id != environment_id or principal.key_kind is not KeyKind.SERVER:
        raise InvalidValue(
            "--api-key must be a server key of this environment: the Action's logins would "
            "all be refused",
            field="--api-key",
        )


def auth0_cli_commands(secrets: dict[str, str]) -> str:
    """The same set-up with the Auth0 CLI (`auth0`): create the Action with its secrets,
    deploy it, bind it to the post-login trigger."""
    flags = " \\\n  ".join(f"--secret {shlex.quote(f'{k}={v}')}" for k, v in secrets.items())
    binding = (
        '{"bindings":[{"ref":{"type":"action_name","value":"'
        + ACTION_NAME
        + '"},"display_name":"'
        + ACTION_NAME
        + '"}]}'
    )
    return "\n".join(
        [
            "tollgate auth0 action > tollgate-post-login.js",
            f"auth0 actions create --name {ACTION_NAME} --trigger post-login \\",
            '  --code "$(cat tollgate-post-login.js)" \\',
            f"  {flags}",
            "auth0 actions deploy <the id printed by create>",
            "# The PATCH below sets the trigger's whole list: add the Actions already bound",
            "# (auth0 api get actions/triggers/post-login/bindings) or bind in the dashboard.",
            f"auth0 api patch actions/triggers/post-login/bindings --data {shlex.quote(binding)}",
        ]
    )
