"""Messages table (key `message_id`): message definitions, their state and delivery counters.

Items:
- a message: `message_id`, `name`, `type`, `channel`, `audience_json` (the audience as JSON
  text), `audience_segment_id`, `subject`, `body`, `state`,
  `created_at`, `updated_at`, `sent_at`, `fanned_out_at` (a manual message's audience was read
  whole; epoch seconds), counters `stat_queued`, `stat_sent`,
  `stat_skipped`, `stat_failed` (ADDed in the same transactions as the delivery transitions) and
  `stat_delivered`, `stat_bounced`, `stat_complained` (ADDed in the same transaction as the
  delivery's feedback: storage.deliveries.record_feedback; missing on older messages: 0).
  A deleted message keeps its item with state `deleted` so in-flight deliveries can be
  recorded as skipped; the API no longer shows it.
- `#auto_live`: `live_ids` (string set of the live auto messages) and `version` (+1 on every
  change of that set), written in the same transaction as the state change, so the upkeep path
  can revalidate its cache of live auto messages with one GetItem. Also `listing_backfilled`
  (true once the messages made before the `by_listing` index have been given its attributes).

GET /v1/messages pages through the sparse index `by_listing` (KEYS_ONLY): a message not deleted
carries `listing` (always LISTING: one partition, newest first by `listing_order`, which is
`<created_at, zero-padded>#<message_id>`); the delete removes both in the same update. Only the
keys are projected, so the counters ADDed on every delivery never write to the index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

LIVE_META_ID = "#auto_live"
STATS = ("queued", "sent", "skipped", "failed")
# What SES reported back about the emails sent (each delivery counted once per kind).
FEEDBACK_STATS = ("delivered", "bounced", "complained")
LISTING = "messages"
LISTING_INDEX = "by_listing"


def table_name() -> str:
    return get_settings().messages_table


def put_new(item: dict[str, Any], also: Sequence[Mapping[str, Any]] = ()) -> list[dynamo.Reason] | None:
    """Store a new message; with `also` (checks its audience depends on), in one transaction:
    None when it went through, else the reasons (the first is the message's own)."""
    item = {
        **item,
        **{f"stat_{name}": 0 for name in STATS + FEEDBACK_STATS},
        **_listing(item["message_id"], item["created_at"]),
    }
    put = {"TableName": table_name(), "Item": item, "ConditionExpression": "attribute_not_exists(message_id)"}
    if also:
        return dynamo.transact([{"Put": put}, *also])
    dynamo.call("put_item", **put)
    return None


def get(message_id: str) -> dict[str, Any] | None:
    """The item, deleted ones included (callers decide), or None."""
    if message_id == LIVE_META_ID:
        return None
    item: dict[str, Any] | None = dynamo.call(
        "get_item", TableName=table_name(), Key={"message_id": message_id}, ConsistentRead=True
    ).get("Item")
    return item


def scan_all() -> list[dict[str, Any]]:
    """Every message not deleted. The table holds definitions only (tens to hundreds of items)."""
    return dynamo.scan_all(
        TableName=table_name(),
        FilterExpression="#s <> :deleted AND message_id <> :meta",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":deleted": "deleted", ":meta": LIVE_META_ID},
    )


def mark_fanned_out(message_id: str, at: float) -> None:
    """A manual message's audience has been read whole (`fanned_out_at`)."""
    dynamo.call(
        "update_item",
        TableName=table_name(),
        Key={"message_id": message_id},
        UpdateExpression="SET fanned_out_at = if_not_exists(fanned_out_at, :at)",
        ExpressionAttributeValues={":at": dynamo.number(at)},
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
    expression += _unlisting(to_state)
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
    also: Sequence[Mapping[str, Any]] = (),
) -> list[dynamo.Reason] | None:
    """Move a message to `to_state` if it is in one of `from_states`. `live_set` True/False adds
    it to / removes it from the live auto set in the same transaction, with the actions `also`
    (checks of the segments its audience names). None when it went through; else the reasons:
    the first is the message's own (its state was not one of `from_states`)."""
    actions = [_state_update(message_id, to_state, from_states, now)]
    if live_set is not None:
        actions.append(_live_set_update(message_id, add=live_set))
    return dynamo.transact([*actions, *also])


def live_auto_state() -> tuple[int, frozenset[str]]:
    """(version, ids of the live auto messages): one GetItem."""
    item = dynamo.call("get_item", TableName=table_name(), Key={"message_id": LIVE_META_ID}).get("Item") or {}
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


def sendable_check(message_id: str, state: str) -> dict[str, Any]:
    """A transaction action that holds only while the message is in `state` and not held; on
    failure the cancellation reason carries the message item (to tell held, paused, deleted)."""
    return {
        "ConditionCheck": {
            "TableName": table_name(),
            "Key": {"message_id": message_id},
            "ConditionExpression": "#s = :state AND attribute_not_exists(paused_reason)",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":state": state},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def hold_check(message_id: str) -> dict[str, Any]:
    """A transaction action that holds only while the message is held (has a paused_reason)."""
    return {
        "ConditionCheck": {
            "TableName": table_name(),
            "Key": {"message_id": message_id},
            "ConditionExpression": "attribute_exists(paused_reason)",
        }
    }


def hold_actions(message_id: str, *, auto: bool, code: str, text: str, now: float) -> list[dict[str, Any]]:
    """Transaction actions that hold a sending message: `paused_reason` {code, message, at} set
    (a manual message stays `sent`; an auto one goes live → paused and leaves the live set).
    They fail when the message is already held, or no longer sending (paused by hand, deleted)."""
    active = "live" if auto else "sent"
    expression = "SET paused_reason = :reason, updated_at = :now"
    at = dynamo.number(now)
    reason = {"code": code, "message": text, "at": at}
    values: dict[str, Any] = {":reason": reason, ":now": at, ":active": active}
    if auto:
        expression += ", #s = :paused"
        values[":paused"] = "paused"
    actions = [
        {
            "Update": {
                "TableName": table_name(),
                "Key": {"message_id": message_id},
                "UpdateExpression": expression,
                "ConditionExpression": "#s = :active AND attribute_not_exists(paused_reason)",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": values,
            }
        }
    ]
    if auto:
        actions.append(_live_set_update(message_id, add=False))
    return actions


def release_hold(
    message_id: str, *, auto: bool, now: float, also: Sequence[Mapping[str, Any]] = ()
) -> list[dynamo.Reason] | None:
    """Clear a message's hold (`resume`): an auto message goes back to live and into the live
    set, with the actions `also` (checks of the segments its audience names). None when it went
    through; else the reasons, the first the message's own (it was not held)."""
    expression = "SET updated_at = :now REMOVE paused_reason"
    values: dict[str, Any] = {":now": dynamo.number(now)}
    names: dict[str, str] = {}
    condition = "attribute_exists(paused_reason)"
    if auto:
        expression = "SET updated_at = :now, #s = :live REMOVE paused_reason"
        condition += " AND #s = :paused"
        names["#s"] = "state"
        values.update({":live": "live", ":paused": "paused"})
    update: dict[str, Any] = {
        "TableName": table_name(),
        "Key": {"message_id": message_id},
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
    }
    if names:
        update["ExpressionAttributeNames"] = names
    actions: list[Mapping[str, Any]] = [{"Update": update}]
    if auto:
        actions.append(_live_set_update(message_id, add=True))
    return dynamo.transact([*actions, *also])


# --- the list, newest first, through by_listing ---------------------------------------------------

Position = tuple[Decimal, str]  # (created_at, message_id) of a listed message


def _listing_order(created_at: Decimal, message_id: str) -> str:
    # Epoch seconds zero-padded to a fixed width, so text order is time order.
    return f"{Decimal(created_at):020.6f}#{message_id}"


def _listing(message_id: str, created_at: Decimal) -> dict[str, Any]:
    """The attributes that put a message in by_listing."""
    return {"listing": LISTING, "listing_order": _listing_order(created_at, message_id)}


def _unlisting(to_state: str) -> str:
    """The clause of a state update taking a deleted message out of by_listing."""
    return " REMOVE listing, listing_order" if to_state == "deleted" else ""


def listed_page(limit: int, after: Position | None) -> tuple[list[dict[str, Any]], Position | None]:
    """Messages not deleted, newest first: up to `limit` after the position `after`, and the
    position of the last one when more follow. One Query of the index (limit + 1 keys, to know
    whether more follow) and one consistent BatchGetItem of the items; a message deleted while
    the index catches up is left out by its state."""
    _ensure_listed()
    query: dict[str, Any] = {
        "TableName": table_name(),
        "IndexName": LISTING_INDEX,
        "KeyConditionExpression": "listing = :listing",
        "ExpressionAttributeValues": {":listing": LISTING},
        "ScanIndexForward": False,
        "Limit": limit + 1,
    }
    if after is not None:
        created_at, message_id = after
        query["ExclusiveStartKey"] = {"message_id": message_id, **_listing(message_id, created_at)}
    rows = dynamo.call("query", **query).get("Items", [])  # keys only: message_id, listing, listing_order
    more = len(rows) > limit
    rows = rows[:limit]
    found = {
        item["message_id"]: item
        for item in dynamo.batch_get(
            table_name(), ({"message_id": row["message_id"]} for row in rows), consistent=True
        )
    }
    page = [
        found[row["message_id"]]
        for row in rows
        if row["message_id"] in found and found[row["message_id"]].get("state") != "deleted"
    ]
    return page, _position(rows[-1]["listing_order"]) if more else None


def _position(listing_order: str) -> Position:
    created_at, _, message_id = listing_order.partition("#")
    return Decimal(created_at), message_id


# The dynamodb resource whose Messages table was seen backfilled: a new one (a new mock or local
# stack) is checked again.
_backfilled_on: Any = None


def _ensure_listed() -> None:
    """Messages created before by_listing existed get its attributes, once per table (a flag on
    `#auto_live` says it was done; each process reads it once). Idempotent and safe to race: a
    message deleted meanwhile is never listed again."""
    global _backfilled_on
    resource = aws.dynamodb()
    if _backfilled_on is resource:
        return
    meta = dynamo.call(
        "get_item",
        TableName=table_name(),
        Key={"message_id": LIVE_META_ID},
        ProjectionExpression="listing_backfilled",
        ConsistentRead=True,
    ).get("Item")
    if not (meta or {}).get("listing_backfilled"):
        for item in scan_all():
            if "listing" not in item:
                _backfill(item["message_id"], item["created_at"])
        dynamo.call(
            "update_item",
            TableName=table_name(),
            Key={"message_id": LIVE_META_ID},
            UpdateExpression="SET listing_backfilled = :yes",
            ExpressionAttributeValues={":yes": True},
        )
    _backfilled_on = resource


def _backfill(message_id: str, created_at: Decimal) -> None:
    # A message deleted since the scan fails the condition: it stays out of the list.
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.call(
            "update_item",
            TableName=table_name(),
            Key={"message_id": message_id},
            UpdateExpression="SET listing = :listing, listing_order = :order",
            ConditionExpression="attribute_exists(message_id) AND #s <> :deleted",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":listing": LISTING,
                ":order": _listing_order(created_at, message_id),
                ":deleted": "deleted",
            },
        )
