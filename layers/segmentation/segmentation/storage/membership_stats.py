"""A segment's daily statistics in the Memberships table: the day counters not yet settled (on
the segment's count item) and the settled days' rows (`#stats#segment#<segment id>`, day).
"""

from __future__ import annotations

from datetime import UTC, datetime

from segmentation.storage import changes, dynamo
from segmentation.storage.memberships import STATS_PREFIX, count_key, day_counters, segment_group, table_name

# A settled day's row is kept a day longer than the changes themselves.
STATS_KEEP_SECONDS = changes.KEEP_SECONDS + 86400


def _stats_group(segment_id: str) -> str:
    return STATS_PREFIX + segment_group(segment_id)


def day_counts(segment_id: str) -> tuple[int, dict[str, dict[str, int]]]:
    """A segment's count now and the changes of the days not settled yet, by UTC day."""
    item = (
        dynamo.call(
            "get_item",
            TableName=table_name(),
            Key=count_key(segment_group(segment_id)),
            ConsistentRead=True,
        ).get("Item")
        or {}
    )
    return int(item.get("n", 0)), day_counters(item)


def settled_days(segment_id: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
    """The settled days' changes from first_day to last_day (ISO dates, both included)."""
    items = dynamo.query_all(
        TableName=table_name(),
        KeyConditionExpression="group_id = :g AND member_id BETWEEN :a AND :b",
        ExpressionAttributeValues={":g": _stats_group(segment_id), ":a": first_day, ":b": last_day},
    )
    return {
        str(item["member_id"]): {"entered": int(item.get("entered", 0)), "exited": int(item.get("exited", 0))}
        for item in items
    }


def settle_days(segment_id: str, before_day: str) -> int:
    """Move the day counters of days before `before_day` off the count item into the day's stats
    row, each day in one transaction conditioned on the counters as read (so a second run, or a
    late change of that day, never counts anything twice or loses it). Returns the days moved."""
    group = segment_group(segment_id)
    moved = 0
    item = (
        dynamo.call("get_item", TableName=table_name(), Key=count_key(group), ConsistentRead=True).get("Item")
        or {}
    )
    for day, counted in sorted(day_counters(item).items()):
        if day >= before_day:
            continue
        names = {f"#{kind}": f"{kind}@{day}" for kind in changes.CHANGE_KINDS if f"{kind}@{day}" in item}
        condition = " AND ".join(f"{placeholder} = :{placeholder[1:]}" for placeholder in names)
        expires = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) + STATS_KEEP_SECONDS
        row = {
            "Update": {
                "TableName": table_name(),
                "Key": {"group_id": _stats_group(segment_id), "member_id": day},
                "UpdateExpression": "SET #x = :x ADD #e :e, #o :o",
                "ExpressionAttributeNames": {"#x": "expires_at", "#e": "entered", "#o": "exited"},
                "ExpressionAttributeValues": {
                    ":x": expires,
                    ":e": counted["entered"],
                    ":o": counted["exited"],
                },
            }
        }
        off_the_count = {
            "Update": {
                "TableName": table_name(),
                "Key": count_key(group),
                "UpdateExpression": "REMOVE " + ", ".join(names),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":{p[1:]}": counted[p[1:]] for p in names},
            }
        }
        if dynamo.transact([row, off_the_count]) is None:
            moved += 1
    return moved
