"""Recording events: the summary of each event name on the user item (event_summaries/stored.py
says what it holds, event_summaries/budget.py how big it may grow), and the ids already recorded
(EventIds table: user_id, event_id) so that a retried event counts once.

One event costs one call in the usual case (the same name again the same day, in order): an
UpdateItem (or, with an id, a TransactWriteItems with the id's conditional Put) that adds it in
place, conditioned on the state it assumes. Otherwise (the first of a day or of a name, an
event older than the last) that condition fails, DynamoDB returns the item as it is, and a
second call writes the summary computed from it, conditioned on its version. Concurrent events
for one user all count or are refused: each write is conditioned on what it read, and an event
that loses ATTEMPTS races in a row is a Retryable (429) that changed nothing.

The size bound: `events_room` on the user item is how many more bytes the event summaries may
take (BUDGET_BYTES minus their size, or less). A write that makes them grow takes its growth
out of it, conditioned on enough being left; a write that does not fit, or finds no room
recorded, rewrites the whole `events` map within the budget (budget.fitted) and sets the
room anew, conditioned on the user's `rev` (no write of any kind in between). Every write adds 1
to the user's `rev`, so upkeep (the stream) re-evaluates the user.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.event_summaries import budget
from segmentation.event_summaries.stored import SECONDS_PER_DAY, added, day_key, day_of
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.values import epoch_millis

# From the OS, not a seeded generator: under SnapStart every environment resumes from one
# snapshot, so a module-level PRNG would hand all of them the same "random" waits.
_JITTER = random.SystemRandom()

EVENTS = "events"
ROOM = "events_room"
# A retried event comes back within minutes; an id is remembered this long (then DynamoDB's TTL
# removes it).
ID_TTL_SECONDS = 400 * SECONDS_PER_DAY
# Writes of one event, in all: the usual case takes 1, the first of a day 2; beyond, the user is
# written by others at the same moment, and the caller retries later (429) rather than holding a
# function busy.
ATTEMPTS = 5

_DUPLICATE: Any = object()  # _write's answer when the event's id was recorded before
_BUSY: Any = object()  # _write's answer when DynamoDB cancelled the transaction for a transient reason


def _users_table() -> str:
    return get_settings().users_table


def _ids_table() -> str:
    return get_settings().event_ids_table


def record(user_id: str, name: str, at: Decimal, event_id: str | None, now: float) -> bool:
    """Count one event of `name` at `at`; False when its id was recorded before (nothing changes).
    NotFound when there is no such user, Invalid when the user's event data cannot take it,
    Retryable (nothing recorded) after ATTEMPTS lost races."""
    update = _in_place(name, at, now)
    for attempt in range(ATTEMPTS):
        if attempt >= 2:  # others write this user at the same moment: step aside a random while
            time.sleep(_JITTER.uniform(0, min(0.01 * 2**attempt, 0.2)))
        outcome = _write(user_id, event_id, at, now, update)
        if outcome is _DUPLICATE:
            return False
        if outcome is None:
            return True
        if outcome is not _BUSY:
            update = _recomputed(name, at, now, outcome)
    raise errors.Retryable(f"an event for one user lost {ATTEMPTS} races with other writes of that user")


def _write(user_id: str, event_id: str | None, at: Decimal, now: float, update: dict[str, Any]) -> Any:
    """Run one write. None when it committed; _DUPLICATE when the id was known; _BUSY when a
    transaction was cancelled for a transient reason; else the user item as it is (its condition
    failed). NotFound when the user does not exist."""
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
        # One try: this loop's attempts are the only retries of an event's write.
        reasons = dynamo.transact([{"Put": remember}, {"Update": action}], attempts=1)
    except errors.Retryable:
        return _BUSY
    except ClientError as error:
        raise _too_large(error) from error
    if reasons is None:
        return None
    if reasons[0].condition_failed:
        return _DUPLICATE
    return _existing(user_id, reasons[1].item)


def _too_large(error: ClientError) -> Exception:
    """DynamoDB refused the item's size: the user's other data (attributes, company ids) leave no
    room for its events within 400 KB. A 422 for this event, nothing recorded."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    if dynamo.error_code(error) == "ValidationException" and "size" in message.lower():
        return errors.Invalid(
            "This user's record is full (DynamoDB's 400 KB per item): the event was not recorded.",
            [{"path": "event_name", "message": "no room left in this user's record"}],
        )
    return error


def _existing(user_id: str, item: dict[str, Any] | None) -> dict[str, Any]:
    if item is None:
        raise errors.NotFound(f"No user has the id {user_id!r}.", code="user_not_found")
    return item


def _in_place(name: str, at: Decimal, now: float) -> dict[str, Any]:
    """The one-call write of the usual case: the event's day already has a count and kept times,
    the event is not older than the last one (so `first_at` stays and the day's times stay
    sorted), and the room left takes what the update may add."""
    growth = budget.in_place_growth(at)
    return {
        "UpdateExpression": (
            "SET #ev.#nm.#n = #ev.#nm.#n + :one, #ev.#nm.#l = :at, #ev.#nm.#v = #ev.#nm.#v + :one, "
            "#ev.#nm.#d.#day = #ev.#nm.#d.#day + :one, "
            "#ev.#nm.#t.#day = list_append(#ev.#nm.#t.#day, :ats), #room = #room - :growth, #up = :now "
            "ADD #rev :one"
        ),
        "ConditionExpression": (
            "attribute_exists(#uid) AND attribute_exists(#ev.#nm.#d.#day) "
            "AND attribute_exists(#ev.#nm.#t.#day) AND #ev.#nm.#l <= :at AND #room >= :growth"
        ),
        "ExpressionAttributeNames": {
            "#uid": "user_id",
            "#ev": EVENTS,
            "#nm": name,
            "#n": "n",
            "#l": "l",
            "#v": "v",
            "#d": "d",
            "#t": "t",
            "#day": day_key(day_of(float(at))),
            "#room": ROOM,
            "#up": "updated_at",
            "#rev": "rev",
        },
        "ExpressionAttributeValues": {
            ":one": 1,
            ":at": at,
            ":ats": [at],
            ":growth": growth,
            ":now": epoch_millis(now),
        },
    }


def _recomputed(name: str, at: Decimal, now: float, item: dict[str, Any]) -> dict[str, Any]:
    """The write of the name's whole summary, computed from the item as it is and conditioned on
    it, when the room left takes its growth; else the write of every summary within the budget."""
    events = item.get(EVENTS)
    room = item.get(ROOM)
    current = events.get(name) if isinstance(events, dict) else None
    if not (isinstance(events, dict) and isinstance(room, Decimal | int) and _is_summary_or_none(current)):
        return _refitted(name, at, now, item)  # no room recorded yet (or not a summary there)
    summary = added(current, at, now)
    growth = budget.entry_size(name, summary)
    if current is not None:
        growth -= budget.entry_size(name, current)
    if growth > room:
        return _refitted(name, at, now, item)
    names = {"#uid": "user_id", "#ev": EVENTS, "#nm": name, "#room": ROOM, "#up": "updated_at", "#rev": "rev"}
    values: dict[str, Any] = {":one": 1, ":now": epoch_millis(now), ":summary": summary, ":growth": growth}
    if current is None:
        condition = "attribute_exists(#uid) AND attribute_not_exists(#ev.#nm) AND #room >= :growth"
    else:
        condition = "attribute_exists(#uid) AND #ev.#nm.#v = :version AND #room >= :growth"
        names["#v"] = "v"
        values[":version"] = current["v"]
    return {
        "UpdateExpression": "SET #ev.#nm = :summary, #room = #room - :growth, #up = :now ADD #rev :one",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _is_summary_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and isinstance(value.get("v"), Decimal | int))


def _refitted(name: str, at: Decimal, now: float, item: dict[str, Any]) -> dict[str, Any]:
    """The write of the whole `events` map with the event added, within the budget, and of the
    room it leaves; conditioned on the user's `rev`, so nothing else wrote the user since `item`."""
    stored = item.get(EVENTS)
    events = dict(stored) if isinstance(stored, dict) else {}
    current = events.get(name)
    events[name] = added(current if isinstance(current, dict) else None, at, now)
    fit = budget.fitted(events, now)
    if fit is None:
        raise errors.Invalid(
            f"This user's event history is full: the counts of its events by day alone would pass "
            f"{budget.BUDGET_BYTES // 1024} KB. The event was not recorded.",
            [{"path": "event_name", "message": "no room left in this user's event history"}],
        )
    kept, size = fit
    names = {"#uid": "user_id", "#ev": EVENTS, "#room": ROOM, "#up": "updated_at", "#rev": "rev"}
    values: dict[str, Any] = {
        ":one": 1,
        ":now": epoch_millis(now),
        ":events": kept,
        ":room": budget.BUDGET_BYTES - size,
    }
    if item.get("rev") is None:
        condition = "attribute_exists(#uid) AND attribute_not_exists(#rev)"
    else:
        condition = "attribute_exists(#uid) AND #rev = :rev"
        values[":rev"] = item["rev"]
    return {
        "UpdateExpression": "SET #ev = :events, #room = :room, #up = :now ADD #rev :one",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
