"""Inbox table: the in-app messages delivered to each user (key `user_id`, `sort_key`).

The sort key starts with the delivery time, zero-padded so that string order is time order,
then the message id, so one user's inbox reads newest first with one Query.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import aws


def _table() -> Any:
    return aws.table(get_settings().inbox_table)


def sort_key(delivered_at: float, message_id: str) -> str:
    # 17 characters hold epoch seconds with 6 decimals until the year 5138.
    return f"{delivered_at:017.6f}#{message_id}"


def inbox_item(
    user_id: str, message_id: str, subject: str | None, body: str, delivered_at: float
) -> dict[str, Any]:
    """The item to put (the sender writes it inside its delivery transaction)."""
    return {
        "user_id": user_id,
        "sort_key": sort_key(delivered_at, message_id),
        "message_id": message_id,
        "subject": subject,
        "body": body,
        "delivered_at": Decimal(f"{delivered_at:.6f}"),
    }


def _iso(seconds: Any) -> str:
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_for_user(user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The in-app messages delivered to a user, newest first, bodies rendered:
    [{"message_id", "subject", "body", "delivered_at" (ISO 8601 UTC)}]."""
    response = _table().query(
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": user_id},
        ScanIndexForward=False,
        Limit=max(1, min(limit, 100)),
    )
    return [
        {
            "message_id": item["message_id"],
            "subject": item.get("subject"),
            "body": item.get("body", ""),
            "delivered_at": _iso(item["delivered_at"]),
        }
        for item in response.get("Items", [])
    ]
