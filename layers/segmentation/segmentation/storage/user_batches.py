"""Many users' changes from one request (a Segment batch), written in a few calls.

BatchWriteItem takes no conditions and no updates, so the unit is one UpdateItem per user that
merges all of that user's changes (fields, custom attributes, company links, event summaries),
computed from the item as read (one consistent BatchGetItem per 100 users) and conditioned on
it (`rev` and `incarnation`, which every write through records.py and events.py moves). Each
change that carries a key (a message id) also puts (user_id, key) in the EventIds table with
`attribute_not_exists`, in the same transaction as the update: a change is applied once, with
its key, or not at all. Many users' updates share one TransactWriteItems (100 actions).

A cancelled transaction tells, per action, what failed: a key already recorded (a retried
message: its change is dropped), or a user item that moved since it was read (DynamoDB returns
it: the update is computed again from it). The rest of that transaction was not written and is
tried again; a user that failed goes alone from then on, so one busy user does not hold up the
others.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.engine import event_budget
from segmentation.engine.events import added
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.storage.events import ID_TTL_SECONDS, ROOM
from segmentation.storage.records import INCARNATION, Expression, resets_due, too_large
from segmentation.storage.users import NEW_USER_DEFAULTS, RESETS
from segmentation.values import epoch_millis

# One action of each transaction is a user's update; its keys' puts come with it.
MAX_KEYS_PER_WRITE = dynamo.TRANSACTION_LIMIT - 1
# TransactWriteItems takes at most 4 MB: keep well under it (sizes are estimated from JSON).
_TRANSACTION_BYTES = 3 * 1024 * 1024
_ROUNDS = 12


@dataclass(frozen=True)
class Change:
    """One message's change to a user. `key`: recorded with it in EventIds (None: not recorded)."""

    key: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)  # None removes the field
    attribute_sets: Mapping[str, Any] = field(default_factory=dict)
    attribute_removes: tuple[str, ...] = ()
    company_id: str | None = None  # a company to link the user to
    event: tuple[str, Decimal] | None = None  # (name, at)


@dataclass
class Outcome:
    duplicates: set[tuple[str, str]] = field(default_factory=set)  # (user_id, key) recorded before
    failed: dict[str, str] = field(default_factory=dict)  # user_id -> why nothing of it was written


def _users_table() -> str:
    return get_settings().users_table


def _ids_table() -> str:
    return get_settings().event_ids_table


def recorded(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (user_id, key) pairs are in EventIds already (BatchGetItem, 100 a call)."""
    keys = [{"user_id": user_id, "event_id": key} for user_id, key in pairs]
    found = dynamo.batch_get(_ids_table(), keys, consistent=True, projection="user_id, event_id")
    return {(item["user_id"], item["event_id"]) for item in found}


def write(changes: Mapping[str, Sequence[Change]], now: float) -> Outcome:
    """Apply each user's changes, in order, in one update of that user (at most
    MAX_KEYS_PER_WRITE keyed changes a user). Returns the duplicates dropped and the users
    that could not be written (their record would pass DynamoDB's 400 KB)."""
    pending = {user_id: list(found) for user_id, found in changes.items() if found}
    for user_id, found in pending.items():
        if sum(1 for change in found if change.key) > MAX_KEYS_PER_WRITE:
            raise ValueError(f"at most {MAX_KEYS_PER_WRITE} keyed changes a write, not for {user_id!r}")
    read = dynamo.batch_get(_users_table(), [{"user_id": user_id} for user_id in pending], consistent=True)
    items: dict[str, dict[str, Any] | None] = dict.fromkeys(pending)
    items.update({item["user_id"]: item for item in read})
    outcome = Outcome()
    alone: set[str] = set()
    for round_number in range(_ROUNDS):
        if not pending:
            return outcome
        if round_number >= 2:  # others write these users at the same moment: step aside a while
            dynamo.backoff(round_number)
        groups = {
            user_id: _actions(user_id, items[user_id], found, now) for user_id, found in pending.items()
        }
        for chunk in _chunks(groups, alone):
            for user_id, verdict in _commit(chunk).items():
                if verdict is _WRITTEN:
                    del pending[user_id]
                    continue
                if isinstance(verdict, _Failed):
                    outcome.failed[user_id] = verdict.reason
                    del pending[user_id]
                    continue
                if isinstance(verdict, _Refused):
                    if verdict.duplicate_keys or verdict.stale:
                        alone.add(user_id)  # it failed on its own account: it goes alone from now on
                    duplicates = verdict.duplicate_keys
                    outcome.duplicates |= {(user_id, key) for key in duplicates}
                    pending[user_id] = [change for change in pending[user_id] if change.key not in duplicates]
                    if verdict.stale:
                        items[user_id] = verdict.item
                    if not pending[user_id]:
                        del pending[user_id]
    raise errors.Retryable("users of this batch kept changing while it was written; retry")


# --- one user's actions -------------------------------------------------------------------


def _actions(user_id: str, item: dict[str, Any] | None, found: Sequence[Change], now: float) -> list[dict]:
    """The EventIds puts of the keyed changes, then the user's update (always last)."""
    actions: list[dict[str, Any]] = []
    for change in found:
        if change.key is None:
            continue
        at = change.event[1] if change.event else epoch_millis(now)
        actions.append(
            {
                "Put": {
                    "TableName": _ids_table(),
                    "Item": {
                        "user_id": user_id,
                        "event_id": change.key,
                        "at": at,
                        "expires_at": int(now + ID_TTL_SECONDS),
                    },
                    "ConditionExpression": "attribute_not_exists(event_id)",
                }
            }
        )
    actions.append({"Update": _update(user_id, item, found, now)})
    return actions


@dataclass
class _Merged:
    fields: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    removes: set[str] = field(default_factory=set)
    companies: list[str] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)


def _merged(item: dict[str, Any] | None, found: Sequence[Change], now: float) -> _Merged:
    """The user's changes in order: a later value wins; events added to the stored summaries."""
    merged = _Merged()
    stored = (item or {}).get("events")
    stored_events: dict[str, Any] = stored if isinstance(stored, dict) else {}
    for change in found:
        merged.fields.update(change.fields)
        for name, value in change.attribute_sets.items():
            merged.sets[name] = value
            merged.removes.discard(name)
        for name in change.attribute_removes:
            merged.sets.pop(name, None)
            merged.removes.add(name)
        if change.company_id is not None and change.company_id not in merged.companies:
            merged.companies.append(change.company_id)
        if change.event is not None:
            name, at = change.event
            current = merged.summaries.get(name, stored_events.get(name))
            merged.summaries[name] = added(current if isinstance(current, dict) else None, at, now)
    return merged


def _update(user_id: str, item: dict[str, Any] | None, found: Sequence[Change], now: float) -> dict[str, Any]:
    merged = _merged(item, found, now)
    expression = Expression()
    stamp = epoch_millis(now)
    uid = expression.name("user_id")
    if item is None:
        values: dict[str, Any] = {
            **NEW_USER_DEFAULTS,
            **{name: value for name, value in merged.fields.items() if value is not None},
            "custom_attributes": merged.sets,
            **_bounded_events({}, merged.summaries, now),
            "created_at": stamp,
            "updated_at": stamp,
            "rev": Decimal(1),
            INCARNATION: secrets.token_hex(8),
        }
        if merged.companies:
            values["company_ids"] = merged.companies
        for name, value in values.items():
            expression.sets.append(f"{expression.name(name)} = {expression.value(value)}")
        condition = f"attribute_not_exists({uid})"
    else:
        _set_changes(expression, item, merged, now)
        expression.sets.append(f"{expression.name('updated_at')} = {expression.value(stamp)}")
        expression.adds.append(f"{expression.name('rev')} {expression.value(Decimal(1))}")
        condition = f"attribute_exists({uid})"
        for name in ("rev", INCARNATION):
            placeholder = expression.name(name)
            if name in item:
                condition += f" AND {placeholder} = {expression.value(item[name])}"
            else:
                condition += f" AND attribute_not_exists({placeholder})"
    return {
        "TableName": _users_table(),
        "Key": {"user_id": user_id},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        **expression.arguments(condition),
    }


def _set_changes(expression: Expression, item: Mapping[str, Any], merged: _Merged, now: float) -> None:
    for name, value in merged.fields.items():
        if value is None:
            expression.removes.append(expression.name(name))
        else:
            expression.sets.append(f"{expression.name(name)} = {expression.value(value)}")
    # A new address clears what SES said of the old one (the write is conditioned on the item read).
    for stale in resets_due(item, merged.fields, RESETS):
        expression.removes.append(expression.name(RESETS[stale]))
    if isinstance(item.get("custom_attributes"), dict) and (merged.sets or merged.removes):
        custom = expression.name("custom_attributes")
        for name, value in merged.sets.items():
            expression.sets.append(f"{custom}.{expression.name(name)} = {expression.value(value)}")
        for name in merged.removes:
            expression.removes.append(f"{custom}.{expression.name(name)}")
    elif merged.sets and not isinstance(item.get("custom_attributes"), dict):  # give the item the map
        expression.sets.append(f"{expression.name('custom_attributes')} = {expression.value(merged.sets)}")
    stored = item.get("company_ids")
    current = list(stored) if isinstance(stored, list) else []
    linked = current + [company for company in merged.companies if company not in current]
    if linked != current:
        expression.sets.append(f"{expression.name('company_ids')} = {expression.value(linked)}")
    if merged.summaries:
        stored = item.get("events")
        bounded = _bounded_events(stored if isinstance(stored, dict) else {}, merged.summaries, now)
        for name, value in bounded.items():
            expression.sets.append(f"{expression.name(name)} = {expression.value(value)}")


def _bounded_events(stored: Mapping[str, Any], summaries: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The whole `events` map with the new summaries, within the user's event budget, and the room
    it leaves (as storage.events writes it when it rewrites the map; the write is conditioned on
    the user's `rev`, which every event write moves)."""
    fit = event_budget.fitted({**stored, **summaries}, now)
    if fit is None:  # the days' counts alone pass the budget: not reachable in practice
        raise errors.Invalid(
            "A user's event history is full: the counts of its events by day alone would pass "
            f"{event_budget.BUDGET_BYTES // 1024} KB.",
            [{"path": "batch", "message": "no room left in a user's event history"}],
        )
    events, size = fit
    return {"events": events, ROOM: event_budget.BUDGET_BYTES - size}


# --- transactions ---------------------------------------------------------------------------


def _chunks(groups: Mapping[str, list[dict[str, Any]]], alone: set[str]) -> list[dict[str, list[dict]]]:
    """Users' action groups packed into transactions (100 actions, ~3 MB); `alone` users each in one."""
    chunks: list[dict[str, list[dict]]] = [
        {user_id: groups[user_id]} for user_id in groups if user_id in alone
    ]
    current: dict[str, list[dict]] = {}
    count = size = 0
    for user_id, actions in groups.items():
        if user_id in alone:
            continue
        weight = len(json.dumps(actions, default=str))
        if current and (
            count + len(actions) > dynamo.TRANSACTION_LIMIT or size + weight > _TRANSACTION_BYTES
        ):
            chunks.append(current)
            current, count, size = {}, 0, 0
        current[user_id] = actions
        count += len(actions)
        size += weight
    if current:
        chunks.append(current)
    return chunks


_WRITTEN: Any = object()


@dataclass(frozen=True)
class _Refused:
    duplicate_keys: frozenset[str]
    stale: bool  # the user item moved since it was read; `item` is how it is now (None: absent)
    item: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Failed:
    reason: str


def _commit(chunk: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Write one transaction; per user: _WRITTEN, _Refused (nothing of it written), or _Failed.
    A user whose actions were fine but whose transaction was cancelled by another's is _Refused
    with nothing to change (tried again)."""
    actions = [action for group in chunk.values() for action in group]
    try:
        reasons = dynamo.transact(actions)
    except ClientError as error:
        if not too_large(error):
            raise
        if len(chunk) > 1:  # which user's item would be too large? Each alone says.
            return {
                user_id: verdict for one in chunk for user_id, verdict in _commit({one: chunk[one]}).items()
            }
        return dict.fromkeys(chunk, _Failed("record_full"))
    if reasons is None:
        return dict.fromkeys(chunk, _WRITTEN)
    verdicts: dict[str, Any] = {}
    position = 0
    for user_id, group in chunk.items():
        mine = reasons[position : position + len(group)]
        position += len(group)
        duplicates = frozenset(
            str(action["Put"]["Item"]["event_id"])
            for action, reason in zip(group[:-1], mine[:-1], strict=True)
            if reason.condition_failed
        )
        stale = mine[-1].condition_failed
        verdicts[user_id] = _Refused(duplicates, stale, mine[-1].item if stale else None)
    return verdicts
