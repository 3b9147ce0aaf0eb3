"""Search of users and companies by a filter on current data, and pages of a segment's members.

Search scans the table a page at a time, in its scan order, until `limit` records match or the
table ends. Segment conditions are resolved by meaning (the engine evaluates the referenced
filters), so a result is never incomplete, even for a segment created a moment ago. The cursor
holds the key of the last record returned: the next page resumes just after it, so pages follow
one stable order.

Orchestration over storage functions: no boto3 here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segmentation import definitions
from segmentation.engine import validate_filter
from segmentation.people.attributes import all_types as all_attribute_types
from segmentation.people.evaluable import Evaluator
from segmentation.storage import cursors, memberships, people_scans
from segmentation.storage.people_items import KEY_ATTRIBUTE
from segmentation.vocabulary import Target

# One request reads at most this many records; past it, it answers with what it found and a
# cursor, so a rare match on a large table costs several calls instead of a Lambda timeout.
MAX_SCANNED_PER_REQUEST = 20_000
_MIN_SCAN_PAGE = 100


@dataclass(frozen=True)
class Found:
    """A user or company item with what its JSON needs besides the item itself."""

    item: dict[str, Any]
    segments: frozenset[str]
    user_count: int = 0  # companies only


@dataclass(frozen=True)
class Page:
    data: list[Found]
    next_cursor: str | None


# The search cursor holds {"k": the key of the last record returned}: the next page resumes the
# table scan just after it, so the order is the table's scan order, stable across pages. It is
# scoped to the search's target and filter: good only for the search that made it.
_CURSOR_FIELDS = {"k": str}
_INVALID_CURSOR = (
    "The cursor is not valid for this search: pass back a next_cursor exactly as it was returned, "
    "with the same filter."
)


def _scan_page(target: Target, after: str | None, size: int) -> tuple[list[dict[str, Any]], str | None]:
    key = KEY_ATTRIBUTE[target]
    items, last = people_scans.scan_slice(target, 0, 1, {key: after} if after else None, size)
    return items, (str(last[key]) if last else None)


def search(target: Target, raw_filter: Any, limit: int, cursor: str | None, now: float) -> Page:
    defs = definitions.segment_defs()
    validate_filter(
        raw_filter, target=target, attributes=all_attribute_types(raw_filter), segments=defs, path="filter"
    )
    scope = [target, raw_filter]
    after: str | None = None
    if cursor:
        after = cursors.decode(cursor, scope=scope, fields=_CURSOR_FIELDS, message=_INVALID_CURSOR)["k"]
    evaluator = Evaluator(definitions.load_workspace())
    matches = evaluator.workspace.predicate(raw_filter, target)
    with_companies = target == "users" and evaluator.reads_company_fields(raw_filter)
    key = KEY_ATTRIBUTE[target]
    found: list[dict[str, Any]] = []
    scanned = 0
    while True:
        items, last = _scan_page(target, after, max(limit, _MIN_SCAN_PAGE))
        for index, record in enumerate(evaluator.of(target, items, companies=with_companies or None)):
            if matches(record, now):
                found.append(record)
                if len(found) == limit:
                    more = index < len(items) - 1 or last is not None
                    next_cursor = cursors.encode({"k": str(record[key])}, scope=scope) if more else None
                    return Page(_described(evaluator, target, found, now), next_cursor)
        scanned += len(items)
        if last is None:
            return Page(_described(evaluator, target, found, now), None)
        after = last
        if scanned >= MAX_SCANNED_PER_REQUEST:
            return Page(_described(evaluator, target, found, now), cursors.encode({"k": after}, scope=scope))


def members(target: Target, segment_id: str, limit: int, cursor: str | None, now: float) -> Page:
    """A page of a segment's stored members, as they are now (members deleted meanwhile are left out)."""
    ids, next_cursor = memberships.members_page(segment_id, limit, cursor)
    by_id = people_scans.get_items(target, ids)
    evaluator = Evaluator(definitions.load_workspace())
    found = evaluator.of(target, [by_id[member_id] for member_id in ids if member_id in by_id])
    return Page(_described(evaluator, target, found, now), next_cursor)


def matching_page(
    target: Target, raw_filter: Any, after: dict[str, Any] | None, limit: int, now: float
) -> tuple[list[Found], dict[str, Any] | None, int]:
    """One page of the table scan for a job (an export, tagging by a filter): the records that
    match, evaluated and described as search does; the key to go on after (None at the end);
    how many records were read. The filter was validated when the job was made."""
    evaluator = Evaluator(definitions.load_workspace())
    matches = evaluator.workspace.predicate(raw_filter, target)
    with_companies = target == "users" and evaluator.reads_company_fields(raw_filter)
    items, last = people_scans.scan_slice(target, 0, 1, after, limit)
    found = [r for r in evaluator.of(target, items, companies=with_companies or None) if matches(r, now)]
    return _described(evaluator, target, found, now), last, len(items)


def member_page(
    target: Target, segment_id: str, after: str | None, limit: int, now: float
) -> tuple[list[Found], str | None]:
    """A page of a segment's members after member `after` for a job, as `members` gives them,
    and the last member id read when more may follow."""
    ids, last = memberships.group_ids_after(memberships.segment_group(segment_id), limit, after)
    by_id = people_scans.get_items(target, ids)
    evaluator = Evaluator(definitions.load_workspace())
    found = evaluator.of(target, [by_id[member_id] for member_id in ids if member_id in by_id])
    return _described(evaluator, target, found, now), last


def _described(evaluator: Evaluator, target: Target, found: list[dict[str, Any]], now: float) -> list[Found]:
    """Each record with the segments it is in now (as GET /v1/users/{id} shows them)."""
    if target == "users" and evaluator.workspace.uses_company_fields:
        found = [r if "companies" in r else evaluator.users([r])[0] for r in found]
    return [
        Found(record, evaluator.segments_of(target, record, now), int(record.get("user_count", 0)))
        for record in found
    ]
