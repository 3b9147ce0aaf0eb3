"""Everything messaging reads from the other parts (users, companies, segments, memberships,
attribute types), in one place, so the rest of messaging depends on these few functions only."""

from __future__ import annotations

from typing import Any

from segmentation.engine import SegmentDef, Workspace
from segmentation.engine.segments import reads_company_fields
from segmentation.storage import attributes, companies, memberships, segments, upkeep_records, users


def user(user_id: str) -> dict[str, Any] | None:
    return users.get(user_id)


def first_company(record: dict[str, Any]) -> dict[str, Any] | None:
    ids = record.get("company_ids") or []
    return companies.get(ids[0]) if ids else None


def users_by_ids(user_ids: list[str], *, with_companies: bool) -> list[dict[str, Any]]:
    by_id = upkeep_records.get_records("users", user_ids)
    found = [by_id[user_id] for user_id in user_ids if user_id in by_id]
    if with_companies:
        attach_companies(found)
    return found


def attach_companies(records: list[dict[str, Any]]) -> None:
    """Give each user record the `companies` the engine reads for company.* conditions."""
    wanted = sorted({cid for record in records for cid in record.get("company_ids") or ()})
    by_id = {item["company_id"]: item for item in companies.get_many(wanted)} if wanted else {}
    for record in records:
        record["companies"] = [by_id[cid] for cid in record.get("company_ids") or () if cid in by_id]


Key = dict[str, Any]


def users_page(cursor: Key | None, limit: int) -> tuple[list[dict[str, Any]], Key | None]:
    """One page of a scan of the users table (for audiences given by a filter only); the cursor
    is DynamoDB's LastEvaluatedKey (plain JSON: the user id)."""
    return upkeep_records.scan_slice("users", 0, 1, cursor, limit)


def members_page(segment_id: str, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
    """One page of a segment's stored members: (user ids, next cursor or None)."""
    return memberships.members_page(segment_id, limit, cursor)


def workspace() -> Workspace:
    return segments.load_workspace()


def segment_target(segment_id: str) -> str | None:
    """The target of a segment, None when there is no such segment."""
    record = segments.get(segment_id, check_now=True)
    return record.target if record is not None else None


def segment_defs() -> dict[str, SegmentDef]:
    return segments.segment_defs(check_now=True)


def attribute_types() -> dict[str, dict[str, str]]:
    return {target: attributes.all_types(target) for target in ("users", "companies")}


def reads_companies(filter_: dict[str, Any]) -> bool:
    """Whether evaluating a user filter reads company.* (then records need their companies)."""
    return reads_company_fields(filter_, {sid: d.filter for sid, d in segments.segment_defs().items()})
