"""Constrained scalar types shared by request models."""

from typing import Annotated

from pydantic import Field, StringConstraints

RefId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][\w.:\-]*$"
    ),
]
"""An id chosen by the SaaS (`plan-pro`, `feature-seats`): letters, digits, `_ . : -`."""

CustomerId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][\w|.@-]*$"
    ),
]
"""A customer's (or resource's) id, the SaaS's own: a user id such as `auth0|5f7c...` or an
email, an organization id; letters, digits and `_ | . @ -`, as Stigg allows."""

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Metadata = Annotated[dict[str, str], Field(max_length=100)]

ShortText = Annotated[str, StringConstraints(max_length=255)]
"""Free text stored in a 255-character column: units, billing ids, label overrides."""
