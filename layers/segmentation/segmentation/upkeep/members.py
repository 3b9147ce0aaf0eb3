"""One member's stored membership brought in line with its item as it is now, or with its
absence: after a delete, for company links a stale stream record could not write, and for
records parked alone (MembersJob). Every write here is conditioned on the item as it is when
the write lands, so the order in which a delete, a re-creation and their stream records are
seen never matters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.storage import membership_writes, memberships, people_scans
from segmentation.storage.people_items import INCARNATION
from segmentation.upkeep.company_users import companies_moved
from segmentation.upkeep.diff import company_ids, stored_segments, stored_sequences
from segmentation.upkeep.refresh import Outcome, RefreshRun
from segmentation.vocabulary import TAG_IDS, Target


def forget(target: Target, member_id: str, old: Mapping[str, Any] | None) -> frozenset[str]:
    """A deleted member leaves every segment (and a user every company and tag) it was in, unless
    it was created again and its new incarnation holds them. `old`: the deleted item, when known.
    Returns the companies whose links it touched (their user_count may have moved)."""
    segments = stored_segments(old or {}) | memberships.member_groups(member_id, memberships.SEGMENT_PREFIX)
    links: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    if target == "users":
        links = company_ids(old) | memberships.member_groups(member_id, memberships.COMPANY_PREFIX)
        # A deleted user's tag links too, so that each tag's count drops.
        held = (old or {}).get(TAG_IDS)
        tags = frozenset(held if isinstance(held, set) else ()) | memberships.member_groups(
            member_id, memberships.TAG_PREFIX
        )
    membership_writes.forget(target, member_id, segments, links, stored_sequences(old or {}), tags)
    return links


def relink(user_id: str, also_unlink: frozenset[str] = frozenset()) -> frozenset[str]:
    """Make a user's company links follow its item as it is now (or its absence). Returns the
    companies that may have gained or lost a link."""
    current = people_scans.get_item("users", user_id)
    wanted = company_ids(current)
    have = memberships.member_groups(user_id, memberships.COMPANY_PREFIX)
    unlink = (have | also_unlink) - wanted
    membership_writes.forget("users", user_id, (), unlink)
    if current is not None and wanted - have:
        membership_writes.link_companies(user_id, current.get(INCARNATION), wanted - have)
    return unlink | (wanted - have)


def reconcile(upkeep: RefreshRun, target: Target, member_id: str, now: float) -> Outcome | None:
    """Bring a member fully in line: segments and (for a user) company links, from its item now;
    or remove what a deleted member left behind. None when the member is gone."""
    current = people_scans.get_item(target, member_id)
    if current is None:
        companies_moved(upkeep, forget(target, member_id, None), now)
        return None
    if target == "companies":
        return upkeep.refresh(target, current, now)
    links = memberships.member_groups(member_id, memberships.COMPANY_PREFIX)
    outcome = upkeep.refresh(target, current, now, current_links=links)
    touched = links ^ company_ids(current)
    if outcome is Outcome.STALE:
        touched |= relink(member_id)
    companies_moved(upkeep, touched, now)
    return outcome
