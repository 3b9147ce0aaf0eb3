"""Deliveries table (key `message_id`, `user_id`): one item per (message, user), ever.

`status` moves queued → sending → sent | skipped | failed (or sending → queued when SES throttles
or refuses for the whole account, queued → skipped when the message was paused or deleted).
Each move is a conditional write on the expected status, in one transaction with the message's
counters, so exactly one worker makes each move and the counters stay exact. Attributes:
`status`, `reason`, `at` (time of the last move), `queued_at`, `sending_at`, `requeues`; an
email SES accepted also `ses_message_id` and `sent_to` (the address it went to), written with
`sent`, and `feedback_seen` (the kinds SES reported back: delivered, bounced, complained; each
added once, in one transaction with its message counter: `record_feedback`).

The sparse index `by_ses_message` (key `ses_message_id`, projecting `sent_to`) maps an SES event
back to its delivery: one Query.

Until it is settled, a delivery is in the sparse index `by_stage` under `stage`:

- `q#<shard>`: queued, its job on the DeliveryQueue since `stage_since` (the job was queued then);
- `s#<shard>`: being sent since `stage_since` (= `sending_at`);
- `p#<message_id>`: parked: queued, its job dropped while the message is held (SES refused for
  the whole account); `POST /v1/messages/{id}/resume` queues the parked ones again.

So the reconciler reads only what it acts on (a `sending` gone stale, a job older than the
queue keeps jobs), and a resume reads only its message's parked deliveries.

Reserved items (partition keys no message id can take: ids are generated `msg_…`), each in a
partition of its own, so none is a hot key:
- `#cap#<user_id>` / `#`: the user's email ledger for the frequency cap: `sends` (map message id
  -> when its send began, epoch seconds) and `version` (+1 on every change, which every write
  is conditioned on). See messaging.frequency_cap.
- `#link#<digest>` / `#`: what a reference unsubscribe token stands for (`link_message_id`,
  `link_user_id`), for user ids too long to travel in the token (auth.unsubscribe_links).
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo, messages

_CURSOR_FIELDS = {"message_id": str, "user_id": str}  # the table's key
BY_STAGE_INDEX = "by_stage"
BY_SES_MESSAGE_INDEX = "by_ses_message"
STAGE_SHARDS = 8
QUEUED, SENDING, PARKED = "q", "s", "p"
# The reconciler's place in each index partition between runs (a reserved key: message ids are
# generated `msg_…`).
_RECONCILER_KEY = {"message_id": "#reconciler", "user_id": "#cursors"}


def _table_name() -> str:
    return get_settings().deliveries_table


def _key(message_id: str, user_id: str) -> dict[str, Any]:
    return {"message_id": message_id, "user_id": user_id}


def shard_of(message_id: str, user_id: str) -> int:
    return zlib.crc32(f"{message_id}\n{user_id}".encode()) % STAGE_SHARDS


def stage_of(kind: str, message_id: str, user_id: str) -> str:
    if kind == PARKED:
        return f"{PARKED}#{message_id}"
    return f"{kind}#{shard_of(message_id, user_id)}"


def stage_partitions(kind: str) -> list[str]:
    return [f"{kind}#{shard}" for shard in range(STAGE_SHARDS)]


class Claim(enum.Enum):
    CLAIMED = "claimed"  # new delivery, counted as queued: enqueue it
    ALREADY_QUEUED = "already_queued"  # claimed before, not yet sent (maybe a crash before the enqueue)
    ALREADY_DONE = "already_done"  # this user has had (or is having) this message
    MESSAGE_INACTIVE = "message_inactive"  # the message is not in the required state: stop


def claim(message_id: str, user_id: str, *, now: float, require_state: str) -> Claim:
    """Record that `user_id` is to get the message, before anything is sent. Conditional on no
    delivery existing (each user once, ever) and on the message being in `require_state`. The
    caller queues the job at once: its clock (`stage_since`) starts now."""
    at = dynamo.number(now)
    reasons = dynamo.transact(
        [
            {
                "Put": {
                    "TableName": _table_name(),
                    "Item": {
                        **_key(message_id, user_id),
                        "status": "queued",
                        "reason": None,
                        "at": at,
                        "queued_at": at,
                        "stage": stage_of(QUEUED, message_id, user_id),
                        "stage_since": at,
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
    # When not started: the delivery as it is (None if there is none) or, when the message could
    # not send, the message item as it is (None if it is gone).
    delivery: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    message_refused: bool = False
    # The delivery and the message were fine but an action of `also` failed its condition (the
    # user's email ledger moved since it was read): nothing was written; read it and try again.
    also_refused: bool = False


def begin_sending(
    message_id: str, user_id: str, *, now: float, require_state: str, also: Sequence[Mapping[str, Any]] = ()
) -> Begin:
    """queued → sending, while the message is in `require_state` and not held, with the actions
    `also` (the email ledger's slot, an unsubscribe link's reference) in the same transaction.
    Only one worker succeeds."""
    at = dynamo.number(now)
    reasons = dynamo.transact(
        [
            {
                "Update": {
                    "TableName": _table_name(),
                    "Key": _key(message_id, user_id),
                    "UpdateExpression": (
                        "SET #st = :sending, sending_at = :now, #at = :now,"
                        " stage = :stage, stage_since = :now"
                    ),
                    "ConditionExpression": "#st = :queued",
                    "ExpressionAttributeNames": {"#st": "status", "#at": "at"},
                    "ExpressionAttributeValues": {
                        ":sending": "sending",
                        ":queued": "queued",
                        ":now": at,
                        ":stage": stage_of(SENDING, message_id, user_id),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            messages.sendable_check(message_id, require_state),
            *also,
        ]
    )
    if reasons is None:
        return Begin(started=True)
    delivery_reason, message_reason = reasons[:2]
    if delivery_reason.condition_failed:
        return Begin(started=False, delivery=delivery_reason.item or get(message_id, user_id))
    if message_reason.condition_failed:
        return Begin(
            started=False, message=message_reason.item or messages.get(message_id), message_refused=True
        )
    return Begin(started=False, also_refused=True)


def _settle_update(
    message_id: str,
    user_id: str,
    from_status: str,
    to_status: str,
    reason: str | None,
    now: float,
    also_set: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The conditional move to a final status, also setting the attributes `also_set`."""
    values: dict[str, Any] = {
        ":from": from_status,
        ":to": to_status,
        ":reason": reason,
        ":now": dynamo.number(now),
    }
    sets = "SET #st = :to, reason = :reason, #at = :now"
    for name, value in (also_set or {}).items():
        sets += f", {name} = :{name}"
        values[f":{name}"] = value
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": _key(message_id, user_id),
            "UpdateExpression": sets + " REMOVE stage, stage_since",
            "ConditionExpression": "#st = :from",
            "ExpressionAttributeNames": {"#st": "status", "#at": "at"},
            "ExpressionAttributeValues": values,
        }
    }


@dataclass(frozen=True)
class SentEmail:
    """What SES accepted: its message id (its events name it) and the address it went to."""

    ses_message_id: str
    sent_to: str


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
    also: Sequence[Mapping[str, Any]] = (),
    email: SentEmail | None = None,
) -> bool:
    """from_status (queued or sending) → sent | skipped | failed, moving one count from queued
    to `to_status`, and putting `also_put` ({"table", "item"}, e.g. the inbox entry) and the
    actions `also` (a ledger release) in the same transaction; `email`: what SES accepted, kept
    for its events. False when the delivery was not in `from_status` (someone else moved it)."""
    # An empty id cannot key the index (SES always gives one; a missing one just goes unmatched).
    sent = (
        {"ses_message_id": email.ses_message_id, "sent_to": email.sent_to}
        if email is not None and email.ses_message_id
        else None
    )
    update = _settle_update(message_id, user_id, from_status, to_status, reason, now, sent)
    if expected_sending_at is not None:
        update["Update"]["ConditionExpression"] += " AND sending_at = :seen"
        update["Update"]["ExpressionAttributeValues"][":seen"] = expected_sending_at
    actions: list[Mapping[str, Any]] = [
        update,
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
    actions.extend(also)
    return dynamo.transact(actions) is None


def _to_queued(message_id: str, user_id: str, *, from_status: str, stage: str, now: float) -> dict[str, Any]:
    """The update that puts a delivery back to `queued` in `stage` (its job's clock restarts)."""
    return {
        "TableName": _table_name(),
        "Key": _key(message_id, user_id),
        "UpdateExpression": (
            "SET #st = :queued, #at = :now, stage = :stage, stage_since = :now REMOVE sending_at"
        ),
        "ConditionExpression": "#st = :from",
        "ExpressionAttributeNames": {"#st": "status", "#at": "at"},
        "ExpressionAttributeValues": {
            ":queued": "queued",
            ":from": from_status,
            ":now": dynamo.number(now),
            ":stage": stage,
        },
    }


def revert_to_queued(
    message_id: str, user_id: str, *, now: float, also: Sequence[Mapping[str, Any]] = ()
) -> bool:
    """sending → queued, when nothing went out (throttled, or failed before the send), with the
    actions `also` (a ledger release) in the same transaction. The caller queues its job again
    (or the job in hand comes back)."""
    stage = stage_of(QUEUED, message_id, user_id)
    if also:
        update = _to_queued(message_id, user_id, from_status="sending", stage=stage, now=now)
        return dynamo.transact([{"Update": update}, *also]) is None
    try:
        dynamo.call(
            "update_item", **_to_queued(message_id, user_id, from_status="sending", stage=stage, now=now)
        )
        return True
    except dynamo.ConditionFailed:
        return False


def job_queued_again(message_id: str, user_id: str, *, now: float, count_requeue: bool = False) -> bool:
    """A queued delivery's job is queued anew now (deferred by the sender, or sent again by the
    reconciler after its job was lost: `count_requeue`). False when it is no longer queued and
    unparked (a sender took it, or it was parked): then no job must be sent."""
    expression = "SET stage_since = :now"
    values: dict[str, Any] = {":now": dynamo.number(now), ":queued": "queued", ":q": f"{QUEUED}#"}
    if count_requeue:
        expression += " ADD requeues :one"
        values[":one"] = 1
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_key(message_id, user_id),
            UpdateExpression=expression,
            ConditionExpression="#st = :queued AND begins_with(stage, :q)",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues=values,
        )
        return True
    except dynamo.ConditionFailed:
        return False


class Park(enum.Enum):
    PARKED = "parked"
    NOT_HELD = "not_held"  # the message is not held (any more): deliver instead
    MOVED = "moved"  # the delivery is not in the expected status: another worker has it


def park(
    message_id: str,
    user_id: str,
    *,
    from_status: str,
    now: float,
    hold: Sequence[Mapping[str, Any]],
    also: Sequence[Mapping[str, Any]] = (),
) -> Park:
    """Put a delivery aside (queued, parked) while its message is held, in one transaction with
    `hold`: messages.hold_check (the message is held) or messages.hold_actions (hold it now), and
    the actions `also` (a ledger release)."""
    stage = stage_of(PARKED, message_id, user_id)
    update = _to_queued(message_id, user_id, from_status=from_status, stage=stage, now=now)
    reasons = dynamo.transact([{"Update": update}, *hold, *also])
    if reasons is None:
        return Park.PARKED
    return Park.MOVED if reasons[0].condition_failed else Park.NOT_HELD


def unpark(message_id: str, user_id: str, *, now: float) -> bool:
    """parked → queued with a job on its way (the caller has queued it). False when it moved."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key=_key(message_id, user_id),
            UpdateExpression="SET stage = :stage, stage_since = :now",
            ConditionExpression="#st = :queued AND stage = :parked",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={
                ":queued": "queued",
                ":parked": stage_of(PARKED, message_id, user_id),
                ":stage": stage_of(QUEUED, message_id, user_id),
                ":now": dynamo.number(now),
            },
        )
        return True
    except dynamo.ConditionFailed:
        return False


def in_stage(
    stage: str, *, before: float | None, limit: int, cursor: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of the deliveries in `stage` (oldest first), those since before `before` only
    when given, and where the next page starts (None at the end)."""
    condition = "stage = :stage"
    values: dict[str, Any] = {":stage": stage}
    if before is not None:
        condition += " AND stage_since < :before"
        values[":before"] = dynamo.number(before)
    arguments: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_STAGE_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "Limit": limit,
    }
    if cursor:
        arguments["ExclusiveStartKey"] = cursor
    response = dynamo.call("query", **arguments)
    return list(response.get("Items", [])), response.get("LastEvaluatedKey")


def reconciler_cursors() -> dict[str, Any]:
    """Where the reconciler stopped in each index partition ({stage: LastEvaluatedKey})."""
    item = dynamo.call("get_item", TableName=_table_name(), Key=_RECONCILER_KEY).get("Item") or {}
    saved = item.get("cursors")
    return dict(saved) if isinstance(saved, dict) else {}


def save_reconciler_cursors(positions: dict[str, Any]) -> None:
    dynamo.call(
        "put_item",
        TableName=_table_name(),
        Item={**_RECONCILER_KEY, "cursors": {k: v for k, v in positions.items() if v}},
    )


# --- the email ledger of a user (messaging.frequency_cap decides what goes in it) -------------


def _ledger_key(user_id: str) -> dict[str, Any]:
    return {"message_id": f"#cap#{user_id}", "user_id": "#"}


def email_ledger(user_id: str) -> tuple[dict[str, Any], int]:
    """(message id -> when its send began, version) of a user's email ledger; ({}, 0) when none."""
    item = (
        dynamo.call("get_item", TableName=_table_name(), Key=_ledger_key(user_id), ConsistentRead=True).get(
            "Item"
        )
        or {}
    )
    sends = item.get("sends")
    return (dict(sends) if isinstance(sends, dict) else {}), int(item.get("version") or 0)


def _ledger_unchanged(version: int) -> tuple[str, dict[str, Any]]:
    if version == 0:
        return "attribute_not_exists(version)", {}
    return "version = :seen", {":seen": version}


def ledger_write(user_id: str, *, sends: Mapping[str, Any], seen_version: int) -> dict[str, Any]:
    """The action that replaces the ledger's sends, if it is still at `seen_version`."""
    condition, values = _ledger_unchanged(seen_version)
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": _ledger_key(user_id),
            "UpdateExpression": "SET sends = :sends, version = :next",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {**values, ":sends": dict(sends), ":next": seen_version + 1},
        }
    }


def ledger_check(user_id: str, *, seen_version: int) -> dict[str, Any]:
    """The check that the ledger is still at `seen_version` (a decision was made on it)."""
    condition, values = _ledger_unchanged(seen_version)
    check: dict[str, Any] = {
        "TableName": _table_name(),
        "Key": _ledger_key(user_id),
        "ConditionExpression": condition,
    }
    if values:
        check["ExpressionAttributeValues"] = values
    return {"ConditionCheck": check}


def ledger_release(user_id: str, message_id: str) -> dict[str, Any]:
    """The action that gives back the slot a send took (it did not go out). It moves the
    version, so a writer who read the ledger before it writes nothing and reads again."""
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": _ledger_key(user_id),
            "UpdateExpression": "REMOVE sends.#m ADD version :one",
            # Always there once a slot was taken; REMOVE from a missing map would be an error.
            "ConditionExpression": "attribute_exists(sends)",
            "ExpressionAttributeNames": {"#m": message_id},
            "ExpressionAttributeValues": {":one": 1},
        }
    }


# --- unsubscribe links too long to carry their user id (auth.unsubscribe_links) ----------------


def _link_key(digest: str) -> dict[str, Any]:
    return {"message_id": f"#link#{digest}", "user_id": "#"}


def link_reference_put(digest: str, message_id: str, user_id: str) -> dict[str, Any]:
    """The action that stores what a reference token's digest stands for (the same every time)."""
    item = {**_link_key(digest), "link_message_id": message_id, "link_user_id": user_id}
    return {"Put": {"TableName": _table_name(), "Item": item}}


def link_reference(digest: str) -> tuple[str, str] | None:
    """(message id, user id) stored for a digest, or None."""
    item = dynamo.call("get_item", TableName=_table_name(), Key=_link_key(digest)).get("Item") or {}
    message_id, user_id = item.get("link_message_id"), item.get("link_user_id")
    if isinstance(message_id, str) and isinstance(user_id, str):
        return message_id, user_id
    return None


# --- what SES reported back about an email ------------------------------------------------------


def find_by_ses_message_id(ses_message_id: str) -> dict[str, Any] | None:
    """The delivery SES knows by this message id ({message_id, user_id, sent_to}), or None. One
    Query of by_ses_message (eventually consistent: just after the send it may not show yet)."""
    rows = dynamo.call(
        "query",
        TableName=_table_name(),
        IndexName=BY_SES_MESSAGE_INDEX,
        KeyConditionExpression="ses_message_id = :id",
        ExpressionAttributeValues={":id": ses_message_id},
        Limit=1,
    ).get("Items", [])
    return dict(rows[0]) if rows else None


class Feedback(enum.Enum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"  # this kind was counted for this delivery before
    REFUSED = "refused"  # an action of `also` did not hold (its index in `refused_at`)


def record_feedback(
    message_id: str, user_id: str, kind: str, *, also: Sequence[Mapping[str, Any]] = ()
) -> tuple[Feedback, int | None]:
    """Add `kind` (delivered, bounced, complained) to the delivery's `feedback_seen` and 1 to
    the message's counter of that kind, once per delivery whatever the repeats, in one
    transaction with the actions `also` (the user's email status). (outcome, the index in `also`
    of the action that refused, when REFUSED)."""
    reasons = dynamo.transact(
        [
            {
                "Update": {
                    "TableName": _table_name(),
                    "Key": _key(message_id, user_id),
                    "UpdateExpression": "ADD feedback_seen :kinds",
                    "ConditionExpression": "attribute_exists(user_id) AND NOT contains(feedback_seen, :kind)",
                    "ExpressionAttributeValues": {":kinds": {kind}, ":kind": kind},
                }
            },
            messages.stats_update(message_id, {kind: 1}),
            *also,
        ]
    )
    if reasons is None:
        return Feedback.RECORDED, None
    if reasons[0].condition_failed or reasons[1].condition_failed:
        return Feedback.ALREADY_RECORDED, None  # counted before (or the delivery or message is gone)
    refused = next(index for index, reason in enumerate(reasons[2:]) if reason.condition_failed)
    return Feedback.REFUSED, refused


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
    if cursor:
        start = cursors.decode(cursor, fields=_CURSOR_FIELDS)
        if start["message_id"] != message_id:
            raise cursors.InvalidCursor()
        kwargs["ExclusiveStartKey"] = start
    response = dynamo.call("query", TableName=_table_name(), **kwargs)
    items = response.get("Items", [])
    last = response.get("LastEvaluatedKey")
    return items, cursors.encode(last) if len(items) == limit else None
