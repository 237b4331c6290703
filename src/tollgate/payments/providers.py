"""Which payment provider an environment uses: Stripe once connected, manual otherwise."""

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.environments.service import get_environment
from tollgate.errors import InvalidValue, NotFound
from tollgate.payments.gateway import Gateway
from tollgate.payments.models import PaymentProvider, Vendor
from tollgate.payments.stripe_gateway import StripeGateway

DEFAULT_RETRY_DAYS = (1, 3, 5)
MANUAL_ONLY = (
    "this environment takes no payments through a provider (manual: invoices are settled "
    "with invoice/paid); connect Stripe first with `tollgate payments connect-stripe`"
)


def connect_stripe(
    session: Session,
    *,
    environment: str,
    secret_key: str,
    webhook_secret: str | None,
    publishable_key: str | None = None,
    api_base: str | None = None,
    retry_days: Sequence[int] = DEFAULT_RETRY_DAYS,
    now: datetime,
) -> PaymentProvider:
    """Connect (or reconnect, keeping its id and webhook URL) the environment's Stripe
    account. Invoices issued from `now` on are charged through it."""
    if not secret_key.startswith(("sk_", "rk_")):
        raise InvalidValue("a Stripe secret key starts with sk_ (or rk_)", field="secretKey")
    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        raise InvalidValue("a Stripe webhook secret starts with whsec_", field="webhookSecret")
    if publishable_key is not None and not publishable_key.startswith("pk_"):
        raise InvalidValue("a Stripe publishable key starts with pk_", field="publishableKey")
    if any(days < 0 for days in retry_days) or len(retry_days) > 10:
        raise InvalidValue("retry days are at most 10 numbers of 0 or more", field="retryDays")
    environment_id = get_environment(session, name=environment).id
    provider = of_environment(session, environment_id)
    if provider is None:
        provider = PaymentProvider(
            environment_id=environment_id,
            ref_id=f"int_{secrets.token_hex(12)}",
            connected_at=now,
        )
        session.add(provider)
    provider.vendor = Vendor.STRIPE
    provider.secret_key = secret_key
    provider.webhook_secret = webhook_secret
    provider.publishable_key = publishable_key
    provider.api_base = api_base
    provider.retry_days = list(retry_days)
    session.flush()
    return provider


def disconnect(session: Session, *, environment: str) -> None:
    """Back to the manual provider: open invoices wait for invoice/paid again."""
    environment_id = get_environment(session, name=environment).id
    provider = of_environment(session, environment_id)
    if provider is None:
        raise NotFound("payment provider of environment", environment)
    session.delete(provider)


def of_environment(session: Session, environment_id: int) -> PaymentProvider | None:
    return session.scalar(
        select(PaymentProvider).where(PaymentProvider.environment_id == environment_id)
    )


def required(session: Session, environment_id: int) -> PaymentProvider:
    provider = of_environment(session, environment_id)
    if provider is None:
        raise InvalidValue(MANUAL_ONLY)
    return provider


def by_ref(session: Session, ref_id: str) -> PaymentProvider:
    provider = session.scalar(select(PaymentProvider).where(PaymentProvider.ref_id == ref_id))
    if provider is None:
        raise NotFound("integration", ref_id)
    return provider


def gateway(provider: PaymentProvider) -> Gateway:
    return StripeGateway(
        secret_key=provider.secret_key,
        webhook_secret=provider.webhook_secret,
        api_base=provider.api_base,
    )
