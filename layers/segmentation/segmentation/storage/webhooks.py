"""The Webhooks table: endpoints, their deliveries and each delivery attempt.

Items (key `webhook_id`, `item`):
- (`wh_…`, `#config`): the endpoint: `url`, `segment_ids` (absent: every segment),
  `description`, `state` (enabled/disabled), `disabled_reason`, `secret` (whsec_…, encrypted at
  rest with the table), `created_at`, `updated_at`, `failing_since` (the first failed attempt
  since the last success); `listing` + `listing_order` put it in the sparse index `by_listing`.
- (`wh_…`, `delivery#<msg id>`): one POST of up to 100 changes: `body` (the exact bytes signed,
  the same for every attempt), `changes` (how many), `state` (pending/delivered/failed),
  `attempts`, and while pending `due_at` + `due_shard`: the sparse index `by_due` holds every
  delivery whose next attempt is waiting, so a retry hours away costs nothing until it is due.
- (`wh_…`, `attempt#<at in ms>#<msg id>#<n>`): one attempt, for GET /v1/webhooks/{id}/deliveries.
- (`#meta`, `#count`): `n`, the number of endpoints, moved in the same transaction as each.
Deliveries and attempts carry `expires_at` (TTL, 30 days).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo

CONFIG = "#config"
DELIVERY_PREFIX = "delivery#"
ATTEMPT_PREFIX = "attempt#"
LISTING = "webhooks"
BY_LISTING_INDEX = "by_listing"
BY_DUE_INDEX = "by_due"
DUE_SHARDS = 4
KEEP_SECONDS = 30 * 86400
_META_KEY = {"webhook_id": "#meta", "item": "#count"}
# The keys a page cursor holds: the table's, and the listing index's besides.
_ATTEMPT_KEY = {"webhook_id": str, "item": str}
_LISTING_KEY = {**_ATTEMPT_KEY, "listing": str, "listing_order": str}


def _table_name() -> str:
    return get_settings().webhooks_table


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    segment_ids: tuple[str, ...] | None  # None: every segment
    description: str | None
    state: str
    disabled_reason: str | None
    secret: str
    created_at: Decimal
    updated_at: Decimal
    failing_since: Decimal | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Webhook:
        segment_ids = item.get("segment_ids")
        return cls(
            id=str(item["webhook_id"]),
            url=str(item["url"]),
            segment_ids=None if segment_ids is None else tuple(str(s) for s in segment_ids),
            description=item.get("description"),
            state=str(item["state"]),
            disabled_reason=item.get("disabled_reason"),
            secret=str(item["secret"]),
            created_at=Decimal(item["created_at"]),
            updated_at=Decimal(item.get("updated_at", item["created_at"])),
            failing_since=None if item.get("failing_since") is None else Decimal(item["failing_since"]),
        )


def _config_key(webhook_id: str) -> dict[str, str]:
    return {"webhook_id": webhook_id, "item": CONFIG}


# ---- endpoints ---------------------------------------------------------------------------------


def create(webhook: Webhook, limit: int) -> None:
    """Store a new endpoint; errors.Invalid `limit_reached` when `limit` exist already."""
    item: dict[str, Any] = {
        **_config_key(webhook.id),
        "url": webhook.url,
        "state": webhook.state,
        "secret": webhook.secret,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "listing": LISTING,
        "listing_order": f"{int(webhook.created_at * 1000):015d}#{webhook.id}",
    }
    if webhook.segment_ids is not None:
        item["segment_ids"] = list(webhook.segment_ids)
    if webhook.description is not None:
        item["description"] = webhook.description
    reasons = dynamo.transact(
        [
            {
                "Put": {
                    "TableName": _table_name(),
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(webhook_id)",
                }
            },
            {
                "Update": {
                    "TableName": _table_name(),
                    "Key": _META_KEY,
                    "UpdateExpression": "ADD #n :one",
                    "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":one": 1, ":limit": limit},
                }
            },
        ]
    )
    if reasons is not None:
        if reasons[1].condition_failed:
            raise errors.Invalid(
                f"This workspace has {limit} webhooks, the most it may have: delete one first.",
                [{"path": "url", "message": f"at most {limit} webhooks"}],
                code="limit_reached",
            )
        raise errors.Retryable("a webhook id was taken twice; try again")


def get(webhook_id: str) -> Webhook | None:
    item = dynamo.call(
        "get_item", TableName=_table_name(), Key=_config_key(webhook_id), ConsistentRead=True
    ).get("Item")
    return None if item is None else Webhook.from_item(item)


def page(limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
    """Endpoints, oldest first, and the cursor of the next page."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_LISTING_INDEX,
        "KeyConditionExpression": "#l = :l",
        "ExpressionAttributeNames": {"#l": "listing"},
        "ExpressionAttributeValues": {":l": LISTING},
        "Limit": limit,
    }
    if cursor:
        params["ExclusiveStartKey"] = cursors.decode(cursor, fields=_LISTING_KEY)
    answer = dynamo.call("query", **params)
    return [Webhook.from_item(i) for i in answer.get("Items", [])], _cursor(answer, _LISTING_KEY)


def all_enabled() -> list[Webhook]:
    """Every enabled endpoint (one Query: there are few)."""
    items = dynamo.query_all(
        TableName=_table_name(),
        IndexName=BY_LISTING_INDEX,
        KeyConditionExpression="#l = :l",
        ExpressionAttributeNames={"#l": "listing"},
        ExpressionAttributeValues={":l": LISTING},
    )
    return [hook for hook in map(Webhook.from_item, items) if hook.state == "enabled"]


def delete(webhook_id: str) -> bool:
    """Remove an endpoint (its deliveries expire with their TTL). False if there was none."""
    reasons = dynamo.transact(
        [
            {
                "Delete": {
                    "TableName": _table_name(),
                    "Key": _config_key(webhook_id),
                    "ConditionExpression": "attribute_exists(webhook_id)",
                }
            },
            {
                "Update": {
                    "TableName": _table_name(),
                    "Key": _META_KEY,
                    "UpdateExpression": "ADD #n :minus",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":minus": -1},
                }
            },
        ]
    )
    return reasons is None


def _update(webhook_id: str, sets: Mapping[str, Any], removes: tuple[str, ...] = ()) -> Webhook:
    names = {f"#a{i}": name for i, name in enumerate([*sets, *removes])}
    values = {f":v{i}": value for i, value in enumerate(sets.values())}
    expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
    if removes:
        expression += " REMOVE " + ", ".join(f"#a{len(sets) + i}" for i in range(len(removes)))
    names["#k"] = "webhook_id"
    try:
        answer = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_config_key(webhook_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(#k)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed as failed:
        raise errors.NotFound(f"No webhook has the id {webhook_id!r}.", code="webhook_not_found") from failed
    return Webhook.from_item(answer["Attributes"])


def set_secret(webhook_id: str, secret: str, now: Decimal) -> Webhook:
    return _update(webhook_id, {"secret": secret, "updated_at": now})


def enable(webhook_id: str, now: Decimal) -> Webhook:
    return _update(webhook_id, {"state": "enabled", "updated_at": now}, ("disabled_reason", "failing_since"))


def disable(webhook_id: str, reason: str, now: Decimal) -> Webhook:
    return _update(webhook_id, {"state": "disabled", "disabled_reason": reason, "updated_at": now})


def failed_since(webhook_id: str, now: Decimal) -> Decimal | None:
    """Note a failed attempt; returns since when the endpoint has been failing (None: it is gone)."""
    try:
        answer = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_config_key(webhook_id),
            UpdateExpression="SET #f = if_not_exists(#f, :now)",
            ConditionExpression="attribute_exists(#k)",
            ExpressionAttributeNames={"#f": "failing_since", "#k": "webhook_id"},
            ExpressionAttributeValues={":now": now},
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed:
        return None
    return Decimal(answer["Attributes"]["failing_since"])


def succeeded(webhook_id: str) -> None:
    """A delivered attempt: the endpoint is not failing (any more)."""
    with contextlib.suppress(dynamo.ConditionFailed):  # it was not failing, or is gone
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_config_key(webhook_id),
            UpdateExpression="REMOVE #f",
            ConditionExpression="attribute_exists(#f)",
            ExpressionAttributeNames={"#f": "failing_since"},
        )


# ---- deliveries --------------------------------------------------------------------------------


def due_shard(delivery_id: str) -> int:
    return zlib.crc32(delivery_id.encode("utf-8")) % DUE_SHARDS


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    id: str
    body: str
    changes: int
    state: str
    attempts: int

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Delivery:
        return cls(
            webhook_id=str(item["webhook_id"]),
            id=str(item["item"])[len(DELIVERY_PREFIX) :],
            body=str(item["body"]),
            changes=int(item["changes"]),
            state=str(item["state"]),
            attempts=int(item.get("attempts", 0)),
        )


def _delivery_key(webhook_id: str, delivery_id: str) -> dict[str, str]:
    return {"webhook_id": webhook_id, "item": DELIVERY_PREFIX + delivery_id}


def add_delivery(webhook_id: str, delivery_id: str, body: str, changes: int, now: Decimal) -> bool:
    """A new pending delivery, due now. False when it exists (a replayed batch made it before)."""
    try:
        dynamo.call(
            "put_item",
            TableName=_table_name(),
            Item={
                **_delivery_key(webhook_id, delivery_id),
                "body": body,
                "changes": changes,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "due_at": now,
                "due_shard": due_shard(delivery_id),
                "expires_at": int(now) + KEEP_SECONDS,
            },
            ConditionExpression="attribute_not_exists(#i)",
            ExpressionAttributeNames={"#i": "item"},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def claim(
    webhook_id: str, delivery_id: str, now: Decimal, expected_due: Decimal, lease_until: Decimal
) -> Delivery | None:
    """Take the delivery's next attempt if it is pending and due (by time, or the very due time
    its job was sent for): its due time moves to the end of the lease (a crashed attempt is tried
    again then) and its attempts count one more. None when it is not pending, not due (another
    copy of the job, an early one), or gone."""
    try:
        answer = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_delivery_key(webhook_id, delivery_id),
            UpdateExpression="SET #due = :lease ADD #n :one",
            ConditionExpression="#s = :pending AND (#due <= :now OR #due = :expected)",
            ExpressionAttributeNames={"#due": "due_at", "#n": "attempts", "#s": "state"},
            ExpressionAttributeValues={
                ":lease": lease_until,
                ":one": 1,
                ":pending": "pending",
                ":now": now,
                ":expected": expected_due,
            },
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed:
        return None
    return Delivery.from_item(answer["Attributes"])


def settle(webhook_id: str, delivery_id: str, attempt: int, *, state: str, due_at: Decimal | None) -> bool:
    """After attempt `attempt`: delivered or failed for good (out of the due index), or pending
    again until `due_at`. Only while no later attempt took it (False then)."""
    key = _delivery_key(webhook_id, delivery_id)
    names = {"#s": "state", "#n": "attempts", "#due": "due_at", "#sh": "due_shard"}
    values: dict[str, Any] = {":s": state, ":n": attempt}
    if due_at is None:
        expression = "SET #s = :s REMOVE #due, #sh"
    else:
        expression = "SET #s = :s, #due = :due"
        values[":due"] = due_at
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=key,
            UpdateExpression=expression,
            ConditionExpression="#n = :n",
            ExpressionAttributeNames=names if due_at is None else {k: names[k] for k in ("#s", "#n", "#due")},
            ExpressionAttributeValues=values,
        )
    except dynamo.ConditionFailed:
        return False
    return True


def due(shard: int, now: Decimal) -> Iterator[tuple[str, str, Decimal]]:
    """(webhook id, delivery id, due at) of every pending delivery of a shard due by `now`."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_DUE_INDEX,
        "KeyConditionExpression": "#sh = :sh AND #due <= :now",
        "ExpressionAttributeNames": {"#sh": "due_shard", "#due": "due_at"},
        "ExpressionAttributeValues": {":sh": shard, ":now": now},
    }
    while True:
        answer = dynamo.call("query", **params)
        for item in answer.get("Items", []):
            yield str(item["webhook_id"]), str(item["item"])[len(DELIVERY_PREFIX) :], Decimal(item["due_at"])
        if "LastEvaluatedKey" not in answer:
            return
        params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def postpone(webhook_id: str, delivery_id: str, seen_due: Decimal, until: Decimal) -> bool:
    """Move a due delivery's due time on (while it is still the one seen): the job sent for it now
    has until then to take it, and no other run sends another meanwhile."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_delivery_key(webhook_id, delivery_id),
            UpdateExpression="SET #due = :until",
            ConditionExpression="#due = :seen AND #s = :pending",
            ExpressionAttributeNames={"#due": "due_at", "#s": "state"},
            ExpressionAttributeValues={":until": until, ":seen": seen_due, ":pending": "pending"},
        )
    except dynamo.ConditionFailed:
        return False
    return True


# ---- attempts ----------------------------------------------------------------------------------


def log_attempt(
    webhook_id: str,
    delivery_id: str,
    attempt: int,
    *,
    at: Decimal,
    status_code: int | None,
    duration_ms: int,
    changes: int,
    outcome: str,
    error: str | None,
) -> None:
    item: dict[str, Any] = {
        "webhook_id": webhook_id,
        "item": f"{ATTEMPT_PREFIX}{int(at * 1000):015d}#{delivery_id}#{attempt:02d}",
        "delivery_id": delivery_id,
        "attempt": attempt,
        "at": at,
        "duration_ms": duration_ms,
        "changes": changes,
        "outcome": outcome,
        "expires_at": int(at) + KEEP_SECONDS,
    }
    if status_code is not None:
        item["status_code"] = status_code
    if error is not None:
        item["error"] = error
    dynamo.call("put_item", TableName=_table_name(), Item=item)


def attempts_page(webhook_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of an endpoint's attempts, newest first, and the cursor of the next page (a cursor
    of another endpoint's attempts is a 400)."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "KeyConditionExpression": "#w = :w AND begins_with(#i, :p)",
        "ExpressionAttributeNames": {"#w": "webhook_id", "#i": "item"},
        "ExpressionAttributeValues": {":w": webhook_id, ":p": ATTEMPT_PREFIX},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        start = cursors.decode(cursor, fields=_ATTEMPT_KEY)
        if start["webhook_id"] != webhook_id:
            raise cursors.InvalidCursor()
        params["ExclusiveStartKey"] = start
    answer = dynamo.call("query", **params)
    return answer.get("Items", []), _cursor(answer, _ATTEMPT_KEY)


def _cursor(answer: Mapping[str, Any], fields: Mapping[str, type]) -> str | None:
    last = answer.get("LastEvaluatedKey")
    return None if last is None else cursors.encode({name: last[name] for name in fields})
