"""The customers domain's errors."""

from tollgate.errors import Conflict


class CustomerArchived(Conflict):
    code = "customer_archived"

    def __init__(self, ref_id: str) -> None:
        super().__init__(f"customer '{ref_id}' is archived; unarchive it first")
        self.ref_id = ref_id
