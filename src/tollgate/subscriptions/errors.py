"""The subscriptions domain's errors."""

from tollgate.errors import Conflict
from tollgate.subscriptions.models import Subscription


class SubscriptionEnded(Conflict):
    code = "subscription_ended"

    def __init__(self, subscription: Subscription) -> None:
        super().__init__(
            f"subscription '{subscription.ref_id}' is {subscription.status.value}; it can no "
            "longer change"
        )
        self.ref_id = subscription.ref_id
