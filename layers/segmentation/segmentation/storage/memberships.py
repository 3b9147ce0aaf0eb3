"""The Memberships table: its keys and its reads.

Items:
- (`segment#<segment id>`, member id): a member of a segment (`target`: users or companies;
  `seq`: the sequence of the change that made it enter);
- (`company#<company id>`, user id): a user linked to a company;
- (`tag#<tag id>`, user id): a user holding a tag, written with the user's `tag_ids` by
  storage.user_batches;
- (`#count#<group>`, `#`): the number of members of a group (attribute `n`); for a segment also
  the changes of each day not yet settled (`entered@<UTC day>`, `exited@<UTC day>`);
- (`#stats#segment#<segment id>`, `<UTC day>`): a settled day's `entered` and `exited`, moved
  off the count item by the nightly rebuild (`membership_stats.settle_days`), kept 91 days (TTL
  `expires_at`).
Group ids always start with `segment#`, `company#` or `tag#`, so a count's partition (`#count#...`)
is out of reach of any user, company, segment or tag id, whatever characters it holds.

Writes are elsewhere: memberships, counts and the upkeep-owned attributes of user and company
items in storage.membership_writes, tag links in storage.tag_links (for storage.user_batches),
the daily statistics in storage.membership_stats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import changes, cursors, dynamo
from segmentation.storage.changes import ChangeKind

SEGMENT_PREFIX = "segment#"
COMPANY_PREFIX = "company#"
TAG_PREFIX = "tag#"
COUNT_PREFIX = "#count#"
COUNT_MEMBER = "#"
STATS_PREFIX = "#stats#"
BY_MEMBER_INDEX = "by_member"

Action = dict[str, Any]


def segment_group(segment_id: str) -> str:
    return SEGMENT_PREFIX + segment_id


def company_group(company_id: str) -> str:
    return COMPANY_PREFIX + company_id


def tag_group(tag_id: str) -> str:
    return TAG_PREFIX + tag_id


def count_key(group_id: str) -> dict[str, str]:
    return {"group_id": COUNT_PREFIX + group_id, "member_id": COUNT_MEMBER}


def table_name() -> str:
    return get_settings().memberships_table


def _day(at: Decimal) -> str:
    return datetime.fromtimestamp(float(at), UTC).date().isoformat()


def day_counter(change: ChangeKind, at: Decimal) -> str:
    """The count item's attribute counting a day's changes of one kind (`entered@2026-12-01`)."""
    return f"{change}@{_day(at)}"


def day_counters(item: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """{day: {"entered": n, "exited": m}} from a count item's `<change>@<day>` attributes."""
    days: dict[str, dict[str, int]] = {}
    for name, value in item.items():
        change, at, day = name.partition("@")
        if at and change in changes.CHANGE_KINDS:
            days.setdefault(day, {"entered": 0, "exited": 0})[change] = int(value)
    return days


# ---- reads -------------------------------------------------------------------------------------


_CURSOR_FIELDS = {"m": str}  # the last member id of the previous page


def group_page(group_id: str, limit: int, cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to `limit` member ids of a group in id order, and the cursor of the next page (or None)."""
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "group_id = :g",
        "ExpressionAttributeValues": {":g": group_id},
        "ProjectionExpression": "member_id",
        "Limit": limit + 1,  # one more, to know whether another page follows
    }
    if cursor:
        after = cursors.decode(cursor, fields=_CURSOR_FIELDS)["m"]
        params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": after}
    found = [str(item["member_id"]) for item in dynamo.call("query", **params).get("Items", [])]
    if len(found) > limit:
        return found[:limit], cursors.encode({"m": found[limit - 1]})
    return found, None


def group_ids_after(group_id: str, limit: int, after: str | None) -> tuple[list[str], str | None]:
    """Up to `limit` member ids of a group after `after` (the id order), and the last one when
    more may follow (None at the end): a job's own position, not a client's cursor."""
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "group_id = :g",
        "ExpressionAttributeValues": {":g": group_id},
        "ProjectionExpression": "member_id",
        "Limit": limit,
    }
    if after:
        params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": after}
    page = dynamo.call("query", **params)
    found = [str(item["member_id"]) for item in page.get("Items", [])]
    return found, (found[-1] if found and "LastEvaluatedKey" in page else None)


def members_page(segment_id: str, limit: int, cursor: str | None = None) -> tuple[list[str], str | None]:
    """A page of a segment's member ids (user or company ids)."""
    return group_page(segment_group(segment_id), limit, cursor)


def iter_group(group_id: str, page_size: int = 500) -> Iterator[list[str]]:
    cursor: str | None = None
    while True:
        ids, cursor = group_page(group_id, page_size, cursor)
        if ids:
            yield ids
        if cursor is None:
            return


def count(group_id: str) -> int:
    """Exact number of members of a group ("segment#<id>" or "company#<id>")."""
    item = dynamo.call("get_item", TableName=table_name(), Key=count_key(group_id), ConsistentRead=True).get(
        "Item"
    )
    return int(item["n"]) if item else 0


def counts(group_ids: Iterable[str]) -> dict[str, int]:
    """Counts of many groups (BatchGetItem, 100 keys a call)."""
    wanted = list(dict.fromkeys(group_ids))
    result = dict.fromkeys(wanted, 0)
    found = dynamo.batch_get(table_name(), [count_key(g) for g in wanted], consistent=True)
    for item in found:
        result[str(item["group_id"])[len(COUNT_PREFIX) :]] = int(item["n"])
    return result


def member_groups(member_id: str, prefix: str) -> frozenset[str]:
    """Ids (without prefix) of the groups a member is in, read from the by_member index."""
    items = dynamo.query_all(
        TableName=table_name(),
        IndexName=BY_MEMBER_INDEX,
        KeyConditionExpression="member_id = :m AND begins_with(group_id, :p)",
        ExpressionAttributeValues={":m": member_id, ":p": prefix},
    )
    return frozenset(str(item["group_id"])[len(prefix) :] for item in items)
