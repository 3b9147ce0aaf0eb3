"""The ApiKeys table (keys stored only as SHA-256 hashes) and the secrets the authorizer reads.

Key lookups are not cached: a revoked key stops working on the next request (locally at once;
deployed, API Gateway's own authorizer cache may keep answering for up to its TTL).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from segmentation.errors import NotFound
from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo
from segmentation.values import epoch_millis

BY_ID_INDEX = "by_id"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    name: str | None
    created_at: float
    revoked: bool


def _table_name() -> str:
    return get_settings().api_keys_table


def _from_item(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"],
        role=item["role"],
        name=item.get("name"),
        created_at=float(item["created_at"]),
        revoked=bool(item.get("revoked", False)),
    )


def put_key(key_hash: str, key_id: str, role: str, name: str | None, now: float) -> ApiKey:
    """Store a key by its hash (the raw key is never stored)."""
    key = ApiKey(key_id=key_id, role=role, name=name, created_at=now, revoked=False)
    item: dict[str, Any] = {
        "key_hash": key_hash,
        "key_id": key.key_id,
        "role": role,
        "created_at": epoch_millis(now),
        "revoked": False,
    }
    if name is not None:
        item["name"] = name
    dynamo.call("put_item", TableName=_table_name(), Item=item)
    return key


def put_key_if_absent(key_hash: str, key_id: str, role: str, name: str | None, now: float) -> ApiKey:
    """Store a key unless one with that hash exists (a revoked one stays revoked); the stored key."""
    item: dict[str, Any] = {
        "key_hash": key_hash,
        "key_id": key_id,
        "role": role,
        "created_at": epoch_millis(now),
        "revoked": False,
    }
    if name is not None:
        item["name"] = name
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


def find_by_hash(key_hash: str) -> ApiKey | None:
    item = dynamo.call(
        "get_item", TableName=_table_name(), Key={"key_hash": key_hash}, ConsistentRead=True
    ).get("Item")
    return _from_item(item) if item else None


def list_keys(limit: int, start_key: dict[str, Any] | None) -> tuple[list[ApiKey], dict[str, Any] | None]:
    """One page of keys (a Scan: the table holds a handful) and the key to continue from."""
    arguments: dict[str, Any] = {"Limit": limit}
    if start_key:
        # A client's cursor: only the table's key, else DynamoDB refuses it (a 500, not a 400).
        if set(start_key) != {"key_hash"} or not isinstance(start_key["key_hash"], str):
            raise cursors.InvalidCursor()
        arguments["ExclusiveStartKey"] = start_key
    response = dynamo.call("scan", TableName=_table_name(), **arguments)
    keys = sorted((_from_item(item) for item in response.get("Items", [])), key=lambda key: key.created_at)
    return keys, response.get("LastEvaluatedKey")


def revoke(key_id: str, now: float) -> None:
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
