"""What the users' and companies' stream records mean for membership.

Called once per record, in stream order. Images are plain dicts (as boto3 returns items).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from segmentation import jobs
from segmentation.engine import Workspace
from segmentation.storage import memberships, rebuild_queue, upkeep_records
from segmentation.upkeep.company_users import refresh_company_users
from segmentation.upkeep.diff import company_ids, only_upkeep_changed, stored_segments
from segmentation.upkeep.refresh import Outcome, refresh, refresh_ids

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
Image = Mapping[str, Any] | None


def on_user_change(workspace: Workspace, event: EventName, old: Image, new: Image, now: float) -> str:
    """Apply one user's stream record; returns what happened (for logs and tests)."""
    if event == "REMOVE":
        assert old is not None
        _forget_user(workspace, str(old["user_id"]), old, now)
        return "removed"
    assert new is not None
    if event == "MODIFY" and only_upkeep_changed(old, new):
        return "skipped"
    user_id = str(new["user_id"])
    links_changed = company_ids(old) != company_ids(new)
    current_links: frozenset[str] | None = None
    if links_changed:
        # A new user has no links yet, so no read; were this a replay, the conditional link
        # writes find them in place and upkeep drops those ops (see memberships.apply_update).
        current_links = (
            frozenset() if old is None else memberships.member_groups(user_id, memberships.COMPANY_PREFIX)
        )
    outcome = refresh(workspace, "users", new, now, current_links=current_links)
    if links_changed:
        touched = company_ids(old) | company_ids(new)
        if outcome is Outcome.STALE:
            # A newer write exists; its own record may not change company_ids, so links follow the item now.
            current = upkeep_records.get_record("users", user_id)
            touched |= _relink(user_id, company_ids(current))
        refresh_ids(workspace, "companies", touched, now)  # their user_count moved
    return outcome.value


def _relink(user_id: str, wanted: frozenset[str]) -> frozenset[str]:
    have = memberships.member_groups(user_id, memberships.COMPANY_PREFIX)
    memberships.set_company_links(user_id, wanted - have, have - wanted)
    return have ^ wanted


def _forget_user(workspace: Workspace, user_id: str, old: Mapping[str, Any], now: float) -> None:
    """A deleted user leaves every segment and company; a re-created one keeps what it has now."""
    current = upkeep_records.get_record("users", user_id)
    kept = stored_segments(current) if current else frozenset()
    listed = memberships.member_groups(user_id, memberships.SEGMENT_PREFIX)
    memberships.remove_memberships("users", user_id, (stored_segments(old) | listed) - kept)
    touched = _relink(user_id, company_ids(current))
    refresh_ids(workspace, "companies", touched, now)


def on_company_change(
    workspace: Workspace,
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
        current = upkeep_records.get_record("companies", company_id)
        kept = stored_segments(current) if current else frozenset()
        listed = memberships.member_groups(company_id, memberships.SEGMENT_PREFIX)
        memberships.remove_memberships("companies", company_id, (stored_segments(old or {}) | listed) - kept)
        outcome = "removed"
    else:
        assert new is not None
        outcome = refresh(workspace, "companies", new, now).value
    if workspace.uses_company_fields:
        rest = refresh_company_users(workspace, company_id, now, time_left=time_left)
        if rest is not None:
            rebuild_queue.send_jobs([jobs.company_users_job(company_id, rest)])
    return outcome
