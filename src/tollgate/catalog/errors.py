"""Catalog errors, named for the condition so callers (and later domains) can catch them."""

from tollgate.errors import Conflict


class Archived(Conflict):
    """An archived plan, add-on or product is no longer edited or offered."""

    code = "archived"

    def __init__(self, noun: str, ref_id: str, *, field: str | None = None) -> None:
        super().__init__(f"{noun} '{ref_id}' is archived", field=field)
        self.ref_id = ref_id


class DraftRequired(Conflict):
    """Published versions never change; the edit needs a draft."""

    code = "draft_required"

    def __init__(self, noun: str, ref_id: str, *, path_segment: str) -> None:
        super().__init__(
            f"{noun} '{ref_id}' has no draft; published versions never change, so create one "
            f"first with POST /api/v1/{path_segment}/{ref_id}/draft"
        )
        self.ref_id = ref_id


class NotPublished(Conflict):
    code = "not_published"

    def __init__(self, noun: str, ref_id: str, *, field: str) -> None:
        super().__init__(f"{noun} '{ref_id}' is not published yet; publish it first", field=field)
        self.ref_id = ref_id


class StillInUse(Conflict):
    """Refusing to archive or delete something others still name; the message says who."""

    code = "in_use"
