"""What the users' and companies' stream records mean for membership.

Called once per record, in stream order, within one `RefreshRun` per batch (settled at the end of the
batch). Images are plain dicts (as boto3 returns items).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from segmentation.storage import memberships
from segmentation.upkeep.company_users import companies_moved, refresh_users_of
from segmentation.upkeep.diff import company_ids, only_upkeep_changed, write_cause
from segmentation.upkeep.members import forget, relink
from segmentation.upkeep.refresh import Outcome, RefreshRun

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
Image = Mapping[str, Any] | None


def on_user_change(upkeep: RefreshRun, event: EventName, old: Image, new: Image, now: float) -> str:
    """Apply one user's stream record; returns what happened (for logs and tests)."""
    if event == "REMOVE":
        assert old is not None
        companies_moved(upkeep, forget("users", str(old["user_id"]), old), now)
        return "removed"
    assert new is not None
    if event == "MODIFY" and only_upkeep_changed(old, new):
        return "skipped"
    user_id = str(new["user_id"])
    links_changed = company_ids(old) != company_ids(new)
    current_links: frozenset[str] | None = None
    if links_changed:
        # A new user has no links of its own yet, so no read: links left by an earlier incarnation
        # are in place already (the conditional puts find them) or removed by its REMOVE record.
        current_links = (
            frozenset() if old is None else memberships.member_groups(user_id, memberships.COMPANY_PREFIX)
        )
    outcome = upkeep.refresh(
        "users", new, now, current_links=current_links, cause=write_cause(old, new), previous=old
    )
    if links_changed:
        touched = company_ids(old) | company_ids(new)
        if outcome is Outcome.STALE:
            # A newer write exists; its own record may not change company_ids, so links follow the item now.
            touched |= relink(user_id, company_ids(old) | company_ids(new))
        companies_moved(upkeep, touched, now)
    return outcome.value


def on_company_change(
    upkeep: RefreshRun,
    event: EventName,
    old: Image,
    new: Image,
    now: float,
    time_left: Callable[[], float] | None = None,
) -> str:
    """Apply one company's stream record: its own segments, and its users' when they read company.*."""
    if event == "MODIFY" and only_upkeep_changed(old, new):
        return "skipped"
    image = new if new is not None else old
    assert image is not None
    company_id = str(image["company_id"])
    if event == "REMOVE":
        forget("companies", company_id, old)
        outcome = "removed"
    else:
        assert new is not None
        outcome = upkeep.refresh("companies", new, now, cause="attributes", previous=old).value
    if upkeep.workspace.uses_company_fields:
        refresh_users_of(upkeep, company_id, now, time_left)
    return outcome
