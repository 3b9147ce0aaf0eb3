"""The ApiKeys table (keys stored only as SHA-256 hashes).

Key lookups are not cached: a revoked key stops working on the next request (locally at once;
deployed, API Gateway's own authorizer cache may keep answering for up to its TTL, but the key's
usage key is deleted with it, which API Gateway refuses).

A record also holds its usage key (storage.usage_keys): `usage_key` (the value the authorizer
returns as usageIdentifierKey) and `usage_key_id` (API Gateway's id, to delete it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from segmentation.errors import NotFound
from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo
from segmentation.storage.usage_keys import UsageKey
from segmentation.values import epoch_millis

BY_ID_INDEX = "by_id"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    name: str | None
    created_at: float
    revoked: bool
    usage_key: str | None = None
    usage_key_id: str | None = None


def _table_name() -> str:
    return get_settings().api_keys_table


def _from_item(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"],
        role=item["role"],
        name=item.get("name"),
        created_at=float(item["created_at"]),
        revoked=bool(item.get("revoked", False)),
        usage_key=item.get("usage_key"),
        usage_key_id=item.get("usage_key_id"),
    )


def _item(
    key_hash: str, key_id: str, role: str, name: str | None, now: float, usage: UsageKey | None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_hash": key_hash,
        "key_id": key_id,
        "role": role,
        "created_at": epoch_millis(now),
        "revoked": False,
    }
    if name is not None:
        item["name"] = name
    if usage is not None:
        item["usage_key"] = usage.value
        item["usage_key_id"] = usage.id
    return item


def put_key(
    key_hash: str, key_id: str, role: str, name: str | None, now: float, usage: UsageKey | None = None
) -> ApiKey:
    """Store a key by its hash (the raw key is never stored), with its usage key."""
    item = _item(key_hash, key_id, role, name, now, usage)
    dynamo.call("put_item", TableName=_table_name(), Item=item)
    return _from_item(item)


def put_key_if_absent(key_hash: str, key_id: str, role: str, name: str | None, now: float) -> ApiKey:
    """Store a key unless one with that hash exists (a revoked one stays revoked); the stored key."""
    item = _item(key_hash, key_id, role, name, now, None)
    try:
        dynamo.call(
            "put_item",
            TableName=_table_name(),
            Item=item,
            ConditionExpression="attribute_not_exists(key_hash)",
        )
    except dynamo.ConditionFailed:
        existing = find_by_hash(key_hash)
        if existing is not None:
            return existing
    return _from_item(item)


def set_usage_key(key_hash: str, usage: UsageKey) -> bool:
    """Give a stored key that has none its usage key; False when it has one already (or is gone)."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"key_hash": key_hash},
            UpdateExpression="SET usage_key = :value, usage_key_id = :id",
            ConditionExpression="attribute_exists(key_hash) AND attribute_not_exists(usage_key_id)",
            ExpressionAttributeValues={":value": usage.value, ":id": usage.id},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def find_by_hash(key_hash: str) -> ApiKey | None:
    item = dynamo.call(
        "get_item", TableName=_table_name(), Key={"key_hash": key_hash}, ConsistentRead=True
    ).get("Item")
    return _from_item(item) if item else None


def list_keys(limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
    """One page of keys (a Scan: the table holds a handful) and the cursor of the next."""
    arguments: dict[str, Any] = {"Limit": limit}
    if cursor:
        # Only the table's key, else DynamoDB refuses it (a 500, not a 400).
        arguments["ExclusiveStartKey"] = cursors.decode(cursor, fields={"key_hash": str})
    response = dynamo.call("scan", TableName=_table_name(), **arguments)
    keys = sorted((_from_item(item) for item in response.get("Items", [])), key=lambda key: key.created_at)
    return keys, cursors.encode(response.get("LastEvaluatedKey"))


def revoke(key_id: str, now: float) -> list[str]:
    """Mark every record of the key revoked; the ids of their usage keys (to delete next)."""
    items = dynamo.query_all(
        TableName=_table_name(),
        IndexName=BY_ID_INDEX,
        KeyConditionExpression="key_id = :id",
        ExpressionAttributeValues={":id": key_id},
    )
    if not items:
        raise NotFound(f"No API key has the id {key_id!r}.")
    for item in items:
        with contextlib.suppress(dynamo.ConditionFailed):  # deleted meanwhile: nothing to revoke
            dynamo.call(
                "update_item",
                TableName=_table_name(),
                Key={"key_hash": item["key_hash"]},
                UpdateExpression="SET revoked = :yes, revoked_at = :now",
                ConditionExpression="attribute_exists(key_hash)",
                ExpressionAttributeValues={":yes": True, ":now": epoch_millis(now)},
            )
    return [str(item["usage_key_id"]) for item in items if item.get("usage_key_id")]
