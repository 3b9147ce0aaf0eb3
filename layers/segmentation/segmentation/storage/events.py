"""Recording events: the summary of each event name on the user item (engine/events.py says what
it holds), and the ids already recorded (EventIds table: user_id, event_id) so that a retried
event counts once.

One event costs one call in the usual case (the same name again the same day, in order): an
UpdateItem (or, with an id, a TransactWriteItems with the id's conditional Put) that adds it in
place, conditioned on the state it assumes. Otherwise (the first of a day or of a name, an
event older than the last, a day past its kept times) that condition fails, DynamoDB returns
the item as it is, and a second call writes the summary computed from it, conditioned on its
version. Concurrent events for one user all count: each write is conditioned on what it read.
Every write adds 1 to the user's `rev`, so upkeep (the stream) re-evaluates the user.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.engine.events import DAY_SLOTS, SECONDS_PER_DAY, TIMES_PER_DAY, added, day_of
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.values import epoch_millis

# From the OS, not a seeded generator: under SnapStart every environment resumes from one
# snapshot, so a module-level PRNG would hand all of them the same "random" waits.
_JITTER = random.SystemRandom()

EVENTS = "events"
# A retried event comes back within minutes; an id is remembered this long (then DynamoDB's TTL
# removes it).
ID_TTL_SECONDS = 400 * SECONDS_PER_DAY
_ATTEMPTS = 40  # concurrent writers for one user: each retry starts from the item as it is


def _users_table() -> str:
    return get_settings().users_table


def _ids_table() -> str:
    return get_settings().event_ids_table


def record(user_id: str, name: str, at: Decimal, event_id: str | None, now: float) -> bool:
    """Count one event of `name` at `at`; False when its id was recorded before (nothing changes).
    NotFound when there is no such user."""
    update = _in_place(user_id, name, at, now)
    for attempt in range(_ATTEMPTS):
        item = _write(user_id, event_id, at, now, update)
        if item is _DUPLICATE:
            return False
        if item is None:
            return True
        if attempt >= 2:  # others write this user at the same moment: step aside a random while
            time.sleep(_JITTER.uniform(0, min(0.005 * 2**attempt, 0.2)))
        update = _recomputed(user_id, name, at, now, item)
    raise errors.Retryable("too many concurrent events for this user; retry")


_DUPLICATE: Any = object()  # _write's answer when the event's id was recorded before


def _write(
    user_id: str, event_id: str | None, at: Decimal, now: float, update: dict[str, Any]
) -> dict[str, Any] | None:
    """Run one write. None when it committed; _DUPLICATE when the id was known; else the user
    item as it is (its condition failed). NotFound when the user does not exist."""
    action = {
        "TableName": _users_table(),
        "Key": {"user_id": user_id},
        **update,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if event_id is None:
        try:
            dynamo.call("update_item", **action)
            return None
        except dynamo.ConditionFailed as failed:
            return _existing(user_id, failed.item)
        except ClientError as error:
            raise _too_large(error) from error
    remember = {
        "TableName": _ids_table(),
        "Item": {
            "user_id": user_id,
            "event_id": event_id,
            "at": at,
            "expires_at": int(now + ID_TTL_SECONDS),
        },
        "ConditionExpression": "attribute_not_exists(event_id)",
    }
    try:
        reasons = dynamo.transact([{"Put": remember}, {"Update": action}])
    except ClientError as error:
        raise _too_large(error) from error
    if reasons is None:
        return None
    if reasons[0].condition_failed:
        return _DUPLICATE
    return _existing(user_id, reasons[1].item)


def _too_large(error: ClientError) -> Exception:
    """The user item would pass DynamoDB's 400 KB: a 422 for this event, nothing recorded."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    if dynamo.error_code(error) == "ValidationException" and "size" in message.lower():
        return errors.Invalid(
            "This user's record is full (DynamoDB's 400 KB per item): the event was not recorded.",
            [{"path": "event_name", "message": "no room left in this user's event summaries"}],
        )
    return error


def _existing(user_id: str, item: dict[str, Any] | None) -> dict[str, Any]:
    if item is None:
        raise errors.NotFound(f"No user has the id {user_id!r}.", code="user_not_found")
    return item


def _in_place(user_id: str, name: str, at: Decimal, now: float) -> dict[str, Any]:
    """The one-call write of the usual case: today's bucket exists and has room, and the event is
    not older than the last one (so `first_at` stays)."""
    day = day_of(float(at))
    return {
        "UpdateExpression": (
            "SET #ev.#nm.#n = #ev.#nm.#n + :one, #ev.#nm.#l = :at, #ev.#nm.#v = #ev.#nm.#v + :one, "
            "#ev.#nm.#d.#slot.#n = #ev.#nm.#d.#slot.#n + :one, "
            "#ev.#nm.#d.#slot.#t = list_append(#ev.#nm.#d.#slot.#t, :ats), #up = :now ADD #rev :one"
        ),
        "ConditionExpression": (
            "attribute_exists(#uid) AND #ev.#nm.#d.#slot.#day = :day AND size(#ev.#nm.#d.#slot.#t) < :room "
            "AND #ev.#nm.#l <= :at"
        ),
        "ExpressionAttributeNames": {
            "#uid": "user_id",
            "#ev": EVENTS,
            "#nm": name,
            "#n": "n",
            "#l": "l",
            "#v": "v",
            "#d": "d",
            "#slot": str(day % DAY_SLOTS),
            "#day": "day",
            "#t": "t",
            "#up": "updated_at",
            "#rev": "rev",
        },
        "ExpressionAttributeValues": {
            ":one": 1,
            ":at": at,
            ":ats": [at],
            ":day": day,
            ":room": TIMES_PER_DAY,
            ":now": epoch_millis(now),
        },
    }


def _recomputed(user_id: str, name: str, at: Decimal, now: float, item: dict[str, Any]) -> dict[str, Any]:
    """The write of the whole summary, computed from the item as it is, conditioned on it."""
    events = item.get(EVENTS)
    names = {"#uid": "user_id", "#ev": EVENTS, "#up": "updated_at", "#rev": "rev"}
    values: dict[str, Any] = {":one": 1, ":now": epoch_millis(now)}
    if not isinstance(events, dict):  # an item written before events existed
        values[":events"] = {name: added(None, at, now)}
        return {
            "UpdateExpression": "SET #ev = :events, #up = :now ADD #rev :one",
            "ConditionExpression": "attribute_exists(#uid) AND attribute_not_exists(#ev)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    current = events.get(name) if isinstance(events.get(name), dict) else None
    names["#nm"] = name
    values[":summary"] = added(current, at, now)
    if current is None:
        condition = "attribute_exists(#uid) AND attribute_not_exists(#ev.#nm)"
    else:
        condition = "attribute_exists(#uid) AND #ev.#nm.#v = :version"
        names["#v"] = "v"
        values[":version"] = current.get("v", 0)
    return {
        "UpdateExpression": "SET #ev.#nm = :summary, #up = :now ADD #rev :one",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
