"""Deliveries table (key `message_id`, `user_id`): one item per (message, user), ever.

`status` moves queued → sending → sent | skipped | failed (or sending → queued when SES throttles,
queued → skipped when the message was paused or deleted meanwhile). Each move is a conditional
write on the expected status, in one transaction with the message's counters, so exactly one
worker makes each move and the counters stay exact. Attributes: `status`, `reason`, `at` (time
of the last move), `queued_at`, `sending_at`.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo, messages

_CURSOR_FIELDS = ("message_id", "user_id")


def _table_name() -> str:
    return get_settings().deliveries_table


def _key(message_id: str, user_id: str) -> dict[str, Any]:
    return {"message_id": message_id, "user_id": user_id}


PENDING_SHARDS = 8
BY_PENDING_INDEX = "by_pending"


def pending_shard(message_id: str, user_id: str) -> int:
    return zlib.crc32(f"{message_id}\n{user_id}".encode()) % PENDING_SHARDS


def pending_before(shard: int, before: float) -> list[dict[str, Any]]:
    """Deliveries of one shard not settled (queued or sending) since before `before`."""
    return dynamo.query_all(
        TableName=_table_name(),
        IndexName=BY_PENDING_INDEX,
        KeyConditionExpression="pending_shard = :s AND pending_since < :before",
        ExpressionAttributeValues={":s": shard, ":before": dynamo.number(before)},
    )


def requeued(message_id: str, user_id: str, *, seen_since: Any, now: float) -> bool:
    """Mark a still-queued delivery as queued again now (its job is sent again). False when it
    moved meanwhile (a sender took it, or another reconciler run did this)."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_key(message_id, user_id),
            UpdateExpression="SET pending_since = :now ADD requeues :one",
            ConditionExpression="#st = :queued AND pending_since = :seen",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={
                ":now": dynamo.number(now),
                ":one": 1,
                ":queued": "queued",
                ":seen": seen_since,
            },
        )
        return True
    except dynamo.ConditionFailed:
        return False


class Claim(enum.Enum):
    CLAIMED = "claimed"  # new delivery, counted as queued: enqueue it
    ALREADY_QUEUED = "already_queued"  # claimed before, not yet sent (maybe a crash before the enqueue)
    ALREADY_DONE = "already_done"  # this user has had (or is having) this message
    MESSAGE_INACTIVE = "message_inactive"  # the message is not in the required state: stop


def claim(message_id: str, user_id: str, *, now: float, require_state: str) -> Claim:
    """Record that `user_id` is to get the message, before anything is sent. Conditional on no
    delivery existing (each user once, ever) and on the message being in `require_state`."""
    at = dynamo.number(now)
    reasons = dynamo.transact(
        [
            {
                "Put": {
                    "TableName": _table_name(),
                    "Item": {
                        "message_id": message_id,
                        "user_id": user_id,
                        "status": "queued",
                        "reason": None,
                        "at": at,
                        "queued_at": at,
                        # Sparse index of deliveries not settled yet (the reconciler reads it).
                        "pending_shard": pending_shard(message_id, user_id),
                        "pending_since": at,
                    },
                    "ConditionExpression": "attribute_not_exists(user_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            messages.stats_update(message_id, {"queued": 1}, require_state=require_state),
        ]
    )
    if reasons is None:
        return Claim.CLAIMED
    delivery_reason = reasons[0]
    if delivery_reason.condition_failed:
        old = delivery_reason.item or get(message_id, user_id) or {}
        return Claim.ALREADY_QUEUED if old.get("status") == "queued" else Claim.ALREADY_DONE
    return Claim.MESSAGE_INACTIVE


@dataclass(frozen=True)
class Begin:
    started: bool
    # When not started: the delivery as it is (None if there is none) and, when the message
    # was not in the required state, the message's state (`deleted`, `paused`, ...).
    delivery: dict[str, Any] | None = None
    message_state: str | None = None


def begin_sending(message_id: str, user_id: str, *, now: float, require_state: str) -> Begin:
    """queued → sending, while the message is in `require_state`. Only one worker succeeds."""
    reasons = dynamo.transact(
        [
            {
                "Update": {
                    "TableName": _table_name(),
                    "Key": _key(message_id, user_id),
                    "UpdateExpression": "SET #st = :sending, sending_at = :now, #at = :now",
                    "ConditionExpression": "#st = :queued",
                    "ExpressionAttributeNames": {"#st": "status", "#at": "at"},
                    "ExpressionAttributeValues": {
                        ":sending": "sending",
                        ":queued": "queued",
                        ":now": dynamo.number(now),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            messages.state_check(message_id, require_state),
        ]
    )
    if reasons is None:
        return Begin(started=True)
    delivery_reason, message_reason = reasons
    if delivery_reason.condition_failed:
        return Begin(started=False, delivery=delivery_reason.item or get(message_id, user_id))
    message = message_reason.item or messages.get(message_id) or {}
    return Begin(started=False, delivery=None, message_state=str(message.get("state", "deleted")))


def finish(
    message_id: str,
    user_id: str,
    *,
    from_status: str,
    to_status: str,
    reason: str | None,
    now: float,
    expected_sending_at: Any = None,
    also_put: dict[str, Any] | None = None,
) -> bool:
    """from_status (queued or sending) → sent | skipped | failed, moving one count from queued
    to `to_status`, and putting `also_put` ({"table", "item"}, e.g. the inbox entry) in the same
    transaction. False when the delivery was not in `from_status` (someone else moved it)."""
    condition = "#st = :from"
    values: dict[str, Any] = {":from": from_status, ":to": to_status, ":reason": reason}
    values[":now"] = dynamo.number(now)
    if expected_sending_at is not None:
        condition += " AND sending_at = :seen"
        values[":seen"] = expected_sending_at
    actions: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": _table_name(),
                "Key": _key(message_id, user_id),
                "UpdateExpression": (
                    "SET #st = :to, reason = :reason, #at = :now REMOVE pending_shard, pending_since"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#st": "status", "#at": "at"},
                "ExpressionAttributeValues": values,
            }
        },
        messages.stats_update(message_id, {"queued": -1, to_status: 1}),
    ]
    if also_put is not None:
        actions.append(
            {
                "Put": {
                    "TableName": also_put["table"],
                    "Item": also_put["item"],
                    "ConditionExpression": "attribute_not_exists(sort_key)",
                }
            }
        )
    return dynamo.transact(actions) is None


def revert_to_queued(message_id: str, user_id: str, *, now: float) -> bool:
    """sending → queued, when we know nothing went out (throttled, or failed before the send)."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_key(message_id, user_id),
            UpdateExpression="SET #st = :queued, #at = :now REMOVE sending_at",
            ConditionExpression="#st = :sending",
            ExpressionAttributeNames={"#st": "status", "#at": "at"},
            ExpressionAttributeValues={
                ":queued": "queued",
                ":sending": "sending",
                ":now": dynamo.number(now),
            },
        )
        return True
    except dynamo.ConditionFailed:
        return False


def get(message_id: str, user_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamo.call(
        "get_item", TableName=_table_name(), Key=_key(message_id, user_id), ConsistentRead=True
    ).get("Item")
    return item


def page(message_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a message's deliveries, in user_id order, and the cursor of the next."""
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "message_id = :m",
        "ExpressionAttributeValues": {":m": message_id},
        "Limit": limit,
    }
    start = dynamo.decode_cursor(cursor, fields=_CURSOR_FIELDS)
    if start is not None:
        if start["message_id"] != message_id:
            raise cursors.InvalidCursor()
        kwargs["ExclusiveStartKey"] = start
    response = dynamo.call("query", TableName=_table_name(), **kwargs)
    items = response.get("Items", [])
    last = response.get("LastEvaluatedKey")
    return items, dynamo.encode_cursor(last) if last and len(items) == limit else None
