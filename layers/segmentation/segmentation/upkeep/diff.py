"""Membership diffs: pure functions from (stored state, fresh evaluation) to the writes upkeep needs.

No boto3, no event shapes. A `MemberUpdate` is what storage turns into TransactWriteItems.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from segmentation.engine.fields import Target
from segmentation.storage.memberships import MemberUpdate
from segmentation.storage.records import INCARNATION, KEY_ATTRIBUTE

# Attributes only upkeep writes: a stream record changing nothing else needs no re-evaluation.
UPKEEP_ATTRIBUTES = frozenset({"segments", "recheck_at", "recheck_shard"})


def recheck_value(next_change: float | None) -> Decimal | None:
    """Round up to the millisecond: a recheck must never run before the result has flipped."""
    if next_change is None:
        return None
    return Decimal(math.ceil(next_change * 1000)) / Decimal(1000)


def stored_segments(record: Mapping[str, Any]) -> frozenset[str]:
    value = record.get("segments")
    return frozenset(value) if value else frozenset()


def record_rev(record: Mapping[str, Any]) -> int | None:
    value = record.get("rev")
    return None if value is None else int(value)


def company_ids(record: Mapping[str, Any] | None) -> frozenset[str]:
    if not record:
        return frozenset()
    value = record.get("company_ids") or ()
    return frozenset(str(c) for c in value)


def plan_update(
    target: Target,
    record: Mapping[str, Any],
    evaluated: frozenset[str],
    next_change: float | None = None,
    *,
    current_links: frozenset[str] | None = None,
) -> MemberUpdate:
    """The update taking `record` (its stored `segments`, `recheck_at`) to the evaluated membership.

    `current_links`: the user's stored company links, when the caller read them because the
    record's company_ids changed; None leaves links alone.
    """
    key = KEY_ATTRIBUTE[target]
    stored = stored_segments(record)
    recheck: tuple[Literal["set", "remove"], Decimal | None] | None = None
    if target == "users":
        wanted = recheck_value(next_change)
        have = record.get("recheck_at")
        have_value = None if have is None else Decimal(str(have))
        if wanted != have_value:
            recheck = ("set", wanted) if wanted is not None else ("remove", None)
    linked: frozenset[str] = frozenset()
    unlinked: frozenset[str] = frozenset()
    if current_links is not None:
        desired = company_ids(record)
        linked, unlinked = desired - current_links, current_links - desired
    return MemberUpdate(
        target=target,
        member_id=str(record[key]),
        incarnation=None if record.get(INCARNATION) is None else str(record[INCARNATION]),
        rev=record_rev(record),
        stored_segments=stored,
        segments=evaluated,
        added=evaluated - stored,
        removed=stored - evaluated,
        recheck=recheck,
        linked_companies=linked,
        unlinked_companies=unlinked,
    )


def only_upkeep_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """True when a MODIFY record changed nothing but upkeep-owned attributes (our own writes)."""
    if old is None or new is None:
        return False
    keys = (set(old) | set(new)) - UPKEEP_ATTRIBUTES
    return all(old.get(k) == new.get(k) for k in keys)


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
