"""Membership diffs: pure functions from (stored state, fresh evaluation) to the writes upkeep needs.

No boto3, no event shapes. A `MemberUpdate` is what storage turns into TransactWriteItems.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from segmentation.storage.changes import Cause
from segmentation.storage.membership_writes import EVALUATED_AT, SEQUENCES, MemberUpdate
from segmentation.storage.people_items import INCARNATION, KEY_ATTRIBUTE
from segmentation.vocabulary import Target

# Attributes only upkeep writes: a stream record changing nothing else needs no re-evaluation.
UPKEEP_ATTRIBUTES = frozenset({"segments", "recheck_at", "recheck_shard", SEQUENCES, EVALUATED_AT})
# What every API write moves, whatever it changes.
_BOOKKEEPING = frozenset({"rev", "updated_at"})
_LOGIN_FIELDS = frozenset({"last_seen_at", "session_count"})
_EVENT_FIELDS = frozenset({"events", "events_room"})  # storage.events: the summaries and their room


def recheck_value(next_change: float | None) -> Decimal | None:
    """Round up to the millisecond: a recheck must never run before the result has flipped."""
    if next_change is None:
        return None
    return Decimal(math.ceil(next_change * 1000)) / Decimal(1000)


def stored_segments(record: Mapping[str, Any]) -> frozenset[str]:
    value = record.get("segments")
    return frozenset(value) if value else frozenset()


def stored_sequences(record: Mapping[str, Any]) -> dict[str, int] | None:
    value = record.get(SEQUENCES)
    return None if value is None else {str(k): int(v) for k, v in value.items()}


def evaluated_at(record: Mapping[str, Any]) -> float | None:
    """When the stored segments were last evaluated (else when the record was last written)."""
    value = record.get(EVALUATED_AT, record.get("updated_at"))
    return None if value is None else float(value)


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
    causes: Mapping[str, str] | None = None,
    now: float | None = None,
) -> MemberUpdate:
    """The update taking `record` (its stored `segments`, `recheck_at`) to the evaluated membership.

    `current_links`: the user's stored company links, when the caller read them because the
    record's company_ids changed; None leaves links alone. `causes`: why each segment changes
    (cause_of_changes); `now`: the instant evaluated, stored with the result.
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
        causes=dict(causes or {}),
        sequences=stored_sequences(record),
        evaluated_at=None if now is None else Decimal(str(now)),
    )


def write_cause(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Cause:
    """What an API write of a user was, from its stream images: a login, an event, or a change
    of attributes (a new user, its fields, its companies, tags...)."""
    if old is None:
        return "attributes"
    changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)} - UPKEEP_ATTRIBUTES - _BOOKKEEPING
    if changed and changed <= _LOGIN_FIELDS:
        return "login"
    if changed & _EVENT_FIELDS and changed <= _EVENT_FIELDS | _LOGIN_FIELDS:
        return "event"
    return "attributes"


def written_since_evaluated(record: Mapping[str, Any]) -> bool:
    """The record holds a write upkeep has not evaluated yet (its stream record is still on its
    way, or was lost): written after its last evaluation, or never evaluated by upkeep."""
    evaluated = record.get(EVALUATED_AT)
    written = record.get("updated_at")
    return evaluated is None or (written is not None and Decimal(str(written)) > Decimal(str(evaluated)))


def cause_of_changes(
    changed: frozenset[str],
    stored: frozenset[str],
    *,
    then: frozenset[str] | None,
    before_now: frozenset[str],
    cause: Cause,
    scope: frozenset[str] | None = None,
    otherwise: Cause | None = None,
) -> dict[str, Cause]:
    """Why each changed segment changes: `time` when the clock alone moved it, else `cause`
    (for a segment outside `scope`, when given: `otherwise`).

    The clock alone moved a segment when the data before this write (the same record, for a
    writer with no write of its own: recheck, rebuild, builds) gave the stored answer at the
    instant it was last evaluated (`then`), and gives the new answer now (`before_now`). A
    segment that the data change itself flips, or whose stored answer was already out of date
    for another reason (a missed change, an edited definition), takes the writer's cause.
    """
    causes: dict[str, Cause] = {}
    for segment_id in changed:
        was = segment_id in stored
        by_clock = then is not None and (segment_id in then) == was and (segment_id in before_now) != was
        if by_clock:
            causes[segment_id] = "time"
        elif scope is not None and segment_id not in scope and otherwise is not None:
            causes[segment_id] = otherwise
        else:
            causes[segment_id] = cause
    return causes


def only_upkeep_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """True when a MODIFY record changed nothing but upkeep-owned attributes (our own writes)."""
    if old is None or new is None:
        return False
    keys = (set(old) | set(new)) - UPKEEP_ATTRIBUTES
    return all(old.get(k) == new.get(k) for k in keys)


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
