"""Re-evaluate one user or company and write only the differences.

Shared by the stream consumer, the rebuild workers, segment builds and recheck. Orchestration
over storage functions: no boto3 here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from segmentation.engine import Workspace
from segmentation.engine.fields import Target
from segmentation.messaging import auto
from segmentation.storage import memberships, upkeep_records
from segmentation.storage.records import KEY_ATTRIBUTE
from segmentation.storage.segments import load_workspace
from segmentation.upkeep.diff import company_ids, plan_update, record_rev

# Another upkeep writer (same rev, other segments) can win a race; re-read and retry this often.
_RACE_ATTEMPTS = 3


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # nothing to write (or only recheck_at when it moved)
    APPLIED = "applied"
    STALE = "stale"  # the item changed (rev) or is gone: a newer stream record will handle it


def current_workspace() -> Workspace:
    """The workspace's segments, compiled (cached and revalidated by the segments storage)."""
    return load_workspace()


def with_user_counts(companies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Company items with `user_count` from the exact link counts."""
    items = list(companies)
    found = memberships.counts(memberships.company_group(c["company_id"]) for c in items)
    return [{**c, "user_count": found[memberships.company_group(c["company_id"])]} for c in items]


def companies_for(workspace: Workspace, users: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The companies of a page of users, in one batch read, when user segments read company.*."""
    if not workspace.uses_company_fields:
        return {}
    wanted = {c for user in users for c in company_ids(user)}
    if not wanted:
        return {}
    found = upkeep_records.get_records("companies", wanted)
    return {c["company_id"]: c for c in with_user_counts(found.values())}


def _evaluable(
    workspace: Workspace,
    target: Target,
    record: Mapping[str, Any],
    companies: Mapping[str, dict[str, Any]],
    count_users: bool,
) -> dict[str, Any]:
    """The record as the engine reads it: a user with its companies, a company with user_count."""
    if target == "users" and workspace.uses_company_fields:
        return {**record, "companies": [companies[c] for c in sorted(company_ids(record)) if c in companies]}
    if target == "companies" and count_users:
        return with_user_counts([dict(record)])[0]
    return dict(record)


def refresh(
    workspace: Workspace,
    target: Target,
    record: Mapping[str, Any],
    now: float,
    *,
    companies: Mapping[str, dict[str, Any]] | None = None,
    current_links: frozenset[str] | None = None,
) -> Outcome:
    """Evaluate `record` at `now` and move its stored membership to the result.

    `companies`: the user's company items (see `companies_for`); read here when None and needed.
    For a company, None means its user_count is still to be attached.
    `current_links`: the user's stored company links when its company_ids changed (else None).
    """
    key = KEY_ATTRIBUTE[target]
    member_id = str(record[key])
    count_users = target == "companies" and companies is None
    if companies is None:
        companies = companies_for(workspace, [record]) if target == "users" else {}
    for attempt in range(_RACE_ATTEMPTS):
        evaluable = _evaluable(workspace, target, record, companies, count_users or attempt > 0)
        segments = frozenset(workspace.segments_of(evaluable, now, target))
        next_change = workspace.next_change(evaluable, now, target) if target == "users" else None
        update = plan_update(target, record, segments, next_change, current_links=current_links)
        if target == "users":
            # Before the membership write: were the write to land and this to fail, a retry would
            # see the new segments as already stored and never queue the message. Claims are
            # idempotent, so running it again on a retry costs nothing but a refused write.
            auto.queue_auto_messages(
                workspace, {**evaluable, "segments": segments}, now, update.stored_segments
            )
        if update.is_noop or memberships.apply_update(update):
            return Outcome.APPLIED if update.changes_membership else Outcome.UNCHANGED
        fresh = upkeep_records.get_record(target, member_id)
        if fresh is None or record_rev(fresh) != update.rev:
            return Outcome.STALE
        record = fresh
        if current_links is not None:
            current_links = memberships.member_groups(member_id, memberships.COMPANY_PREFIX)
    return Outcome.STALE


def refresh_many(
    workspace: Workspace, target: Target, records: list[dict[str, Any]], now: float
) -> dict[Outcome, int]:
    """Refresh a page of records with one batch read of their companies."""
    tally = dict.fromkeys(Outcome, 0)
    companies = companies_for(workspace, records) if target == "users" else {}
    if target == "companies":
        records = with_user_counts(records)
    for record in records:
        tally[refresh(workspace, target, record, now, companies=companies)] += 1
    return tally


def refresh_ids(
    workspace: Workspace, target: Target, member_ids: Iterable[str], now: float
) -> dict[Outcome, int]:
    records = list(upkeep_records.get_records(target, member_ids).values())
    return refresh_many(workspace, target, records, now)
