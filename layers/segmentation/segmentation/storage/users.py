"""The Users table: upserts, reads, deletes and logins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from segmentation.errors import NotFound
from segmentation.settings import get_settings
from segmentation.storage import dynamo, records
from segmentation.values import epoch_millis

# Written on creation so filters see a real 0 / false rather than an unknown value.
NEW_USER_DEFAULTS = {"session_count": Decimal(0), "unsubscribed_from_emails": False, "events": {}}


def _table_name() -> str:
    return get_settings().users_table


def get(user_id: str) -> dict[str, Any] | None:
    return records.get(_table_name(), {"user_id": user_id})


def upsert(
    user_id: str,
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: Iterable[str],
    now: float,
) -> tuple[dict[str, Any], bool]:
    """Returns (the user item after the write, whether it was created)."""
    return records.upsert(
        _table_name(),
        {"user_id": user_id},
        fields,
        attribute_sets,
        attribute_removes,
        now,
        NEW_USER_DEFAULTS,
    )


def delete(user_id: str) -> dict[str, Any]:
    return records.delete(_table_name(), {"user_id": user_id}, "user")


def record_login(user_id: str, at: Decimal, now: float) -> dict[str, Any]:
    """Count a login and move last_seen_at forward to `at` (never back). Returns the new item.

    One atomic UpdateItem in the usual case; when `at` is not later than the stored value the
    condition fails and a second UpdateItem only counts the session. Concurrent logins all count.
    """
    updated_at = epoch_millis(now)
    names = {
        "#id": "user_id",
        "#seen": "last_seen_at",
        "#count": "session_count",
        "#rev": "rev",
        "#up": "updated_at",
    }
    try:
        response = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"user_id": user_id},
            UpdateExpression="SET #seen = :at, #up = :now ADD #count :one, #rev :one",
            ConditionExpression="attribute_exists(#id) AND (attribute_not_exists(#seen) OR #seen < :at)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": at, ":now": updated_at, ":one": Decimal(1)},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        item: dict[str, Any] = response["Attributes"]
        return item
    except dynamo.ConditionFailed as failed:
        if failed.item is None:
            raise NotFound(f"No user has the id {user_id!r}.") from failed
    try:
        response = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"user_id": user_id},
            UpdateExpression="SET #up = :now ADD #count :one, #rev :one",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={key: names[key] for key in ("#id", "#count", "#rev", "#up")},
            ExpressionAttributeValues={":now": updated_at, ":one": Decimal(1)},
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed as failed:
        raise NotFound(f"No user has the id {user_id!r}.") from failed
    item = response["Attributes"]
    return item
