"""Reads of user and company items for segment upkeep: parallel-scan slices, batch gets, recheck due.

The users/companies modules own the API's reads and writes; these are the bulk reads upkeep
needs (a scan page carries each item's stored `segments`, so an unchanged record costs no
extra read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.storage.people_items import KEY_ATTRIBUTE
from segmentation.vocabulary import Target

BY_RECHECK_INDEX = "by_recheck"


def table_of(target: Target) -> str:
    settings = get_settings()
    return settings.users_table if target == "users" else settings.companies_table


def get_item(target: Target, member_id: str) -> dict[str, Any] | None:
    """The current item, read consistently (after a conditional write lost a race)."""
    answer = dynamo.call(
        "get_item", TableName=table_of(target), Key={KEY_ATTRIBUTE[target]: member_id}, ConsistentRead=True
    )
    item: dict[str, Any] | None = answer.get("Item")
    return item


def get_items(target: Target, member_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Items by id (missing ones left out); BatchGetItem with unprocessed keys retried."""
    key = KEY_ATTRIBUTE[target]
    keys = [{key: m} for m in dict.fromkeys(member_ids)]
    return {item[key]: item for item in dynamo.batch_get(table_of(target), keys, consistent=True)}


def scan_slice(
    target: Target, segment: int, total_segments: int, cursor: dict[str, Any] | None, limit: int = 200
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of one parallel-scan segment, and the cursor (LastEvaluatedKey) after it."""
    params: dict[str, Any] = {
        "TableName": table_of(target),
        "Segment": segment,
        "TotalSegments": total_segments,
        "Limit": limit,
    }
    if cursor:
        params["ExclusiveStartKey"] = cursor
    page = dynamo.call("scan", **params)
    return page.get("Items", []), page.get("LastEvaluatedKey")


def approximate_count(target: Target) -> int:
    """DynamoDB's item count (refreshed about every six hours): only to choose inline vs fan-out."""
    table = dynamo.call("describe_table", TableName=table_of(target))["Table"]
    return int(table.get("ItemCount", 0))


def due_for_recheck(shard: int, now: float) -> Iterator[str]:
    """Ids of the users of one shard whose recheck_at is at or before now."""
    params: dict[str, Any] = {
        "TableName": table_of("users"),
        "IndexName": BY_RECHECK_INDEX,
        "KeyConditionExpression": "#s = :s AND #a <= :now",
        "ExpressionAttributeNames": {"#s": "recheck_shard", "#a": "recheck_at"},
        "ExpressionAttributeValues": {":s": shard, ":now": Decimal(str(now))},
    }
    while True:
        page = dynamo.call("query", **params)
        for item in page.get("Items", []):
            yield str(item["user_id"])
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
