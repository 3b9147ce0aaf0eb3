"""Messages table (key `message_id`): message definitions, their state and delivery counters.

Items:
- a message: `message_id`, `name`, `type`, `channel`, `audience_json` (the audience as JSON
  text), `audience_segment_id` (for `messages_targeting`), `subject`, `body`, `state`,
  `created_at`, `updated_at`, `sent_at` (epoch seconds), counters `stat_queued`, `stat_sent`,
  `stat_skipped`, `stat_failed` (ADDed in the same transactions as the delivery transitions).
  A deleted message keeps its item with state `deleted` so in-flight deliveries can be
  recorded as skipped; the API no longer shows it.
- `#auto_live`: `live_ids` (string set of the live auto messages) and `version` (+1 on every
  change of that set), written in the same transaction as the state change, so the upkeep path
  can revalidate its cache of live auto messages with one GetItem.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

LIVE_META_ID = "#auto_live"
STATS = ("queued", "sent", "skipped", "failed")


def table_name() -> str:
    return get_settings().messages_table


def _table() -> Any:
    return aws.table(table_name())


def put_new(item: dict[str, Any]) -> None:
    item = {**item, **{f"stat_{name}": 0 for name in STATS}}
    try:
        _table().put_item(Item=item, ConditionExpression="attribute_not_exists(message_id)")
    except ClientError as exc:
        raise dynamo.retryable_from(exc) from exc


def get(message_id: str) -> dict[str, Any] | None:
    """The item, deleted ones included (callers decide), or None."""
    if message_id == LIVE_META_ID:
        return None
    try:
        item = _table().get_item(Key={"message_id": message_id}, ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise dynamo.retryable_from(exc) from exc
    return item


def scan_all() -> list[dict[str, Any]]:
    """Every message not deleted. The table holds definitions only (tens to hundreds of items)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "FilterExpression": "#s <> :deleted AND message_id <> :meta",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":deleted": "deleted", ":meta": LIVE_META_ID},
    }
    while True:
        page = _table().scan(**kwargs)
        items.extend(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def messages_targeting(segment_id: str) -> list[str]:
    """Ids of the live or paused auto messages whose audience segment is `segment_id`."""
    return sorted(
        item["message_id"]
        for item in scan_all()
        if item.get("audience_segment_id") == segment_id
        and item.get("type") == "auto"
        and item.get("state") in ("live", "paused")
    )


def _state_update(message_id: str, to_state: str, from_states: tuple[str, ...], now: float) -> dict[str, Any]:
    values: dict[str, Any] = {":to": to_state, ":now": dynamo.number(now)}
    conditions = []
    for index, state in enumerate(from_states):
        values[f":f{index}"] = state
        conditions.append(f"#s = :f{index}")
    expression = "SET #s = :to, updated_at = :now"
    if to_state == "sent":
        expression += ", sent_at = :now"
    return {
        "Update": {
            "TableName": table_name(),
            "Key": {"message_id": message_id},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(message_id) AND (" + " OR ".join(conditions) + ")",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": values,
        }
    }


def _live_set_update(message_id: str, *, add: bool) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table_name(),
            "Key": {"message_id": LIVE_META_ID},
            "UpdateExpression": "ADD version :one, live_ids :ids"
            if add
            else "ADD version :one DELETE live_ids :ids",
            "ExpressionAttributeValues": {":one": 1, ":ids": {message_id}},
        }
    }


def change_state(
    message_id: str,
    *,
    to_state: str,
    from_states: tuple[str, ...],
    now: float,
    live_set: bool | None = None,
) -> bool:
    """Move a message to `to_state` if it is in one of `from_states`. `live_set` True/False adds
    it to / removes it from the live auto set in the same transaction. False when the state
    was not one of `from_states` (a concurrent change)."""
    actions = [_state_update(message_id, to_state, from_states, now)]
    if live_set is not None:
        actions.append(_live_set_update(message_id, add=live_set))
    return dynamo.transact(actions) is None


def live_auto_state() -> tuple[int, frozenset[str]]:
    """(version, ids of the live auto messages): one GetItem."""
    try:
        item = _table().get_item(Key={"message_id": LIVE_META_ID}).get("Item") or {}
    except ClientError as exc:
        raise dynamo.retryable_from(exc) from exc
    return int(item.get("version", 0)), frozenset(item.get("live_ids", set()))


def stats_update(
    message_id: str, changes: dict[str, int], *, require_state: str | None = None
) -> dict[str, Any]:
    """A transaction action ADDing to the counters, e.g. {"queued": -1, "sent": 1}. It requires
    the message item to exist so a late delivery never recreates a half item, and, given
    `require_state`, the message to be in that state (a claim needs it live or sent); on
    failure the cancellation reason carries the message item."""
    names = {f"#{name}": f"stat_{name}" for name in changes}
    values: dict[str, Any] = {f":{name}": delta for name, delta in changes.items()}
    condition = "attribute_exists(message_id)"
    if require_state is not None:
        names["#s"] = "state"
        values[":state"] = require_state
        condition += " AND #s = :state"
    return {
        "Update": {
            "TableName": table_name(),
            "Key": {"message_id": message_id},
            "UpdateExpression": "ADD " + ", ".join(f"#{name} :{name}" for name in changes),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def state_check(message_id: str, state: str) -> dict[str, Any]:
    """A transaction action that holds only while the message is in `state`; on failure the
    cancellation reason carries the message item (to tell paused from deleted)."""
    return {
        "ConditionCheck": {
            "TableName": table_name(),
            "Key": {"message_id": message_id},
            "ConditionExpression": "#s = :state",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":state": state},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
