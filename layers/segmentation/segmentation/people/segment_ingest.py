"""Segment messages written (API.md, "Sources"): the same rules as the REST routes, in batches.

Order of work for one request, each step in as few calls as DynamoDB allows:
1. messages whose `messageId` this user already sent (within the request, or recorded before in
   EventIds: one BatchGetItem per 100) are accepted and change nothing;
2. custom attributes are typed against the workspace (people.attributes: the type rule), names
   first seen registered together; a message whose trait clashes with a fixed type, or that
   would pass the cap on names, is rejected alone (event names likewise, at most 120);
3. each company of the group messages is upserted once, its traits merged in message order;
4. each user is written once (storage.user_batches: one update merging its identifies, company
   links and events, with the message ids, many users to a transaction).
Membership follows through the users stream, as after any write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from segmentation.engine.fields import MAX_EVENT_NAMES
from segmentation.errors import Invalid
from segmentation.people.attributes import AttributeChanges, plan_attribute_changes
from segmentation.people.segment_messages import Message, Read, Rejection
from segmentation.storage import attributes as attribute_store
from segmentation.storage import companies as company_store
from segmentation.storage import user_batches
from segmentation.storage.people_items import Upsert
from segmentation.storage.user_batches import MAX_KEYS_PER_WRITE, Change

# Message ids are recorded in EventIds beside the REST API's event ids, in a namespace of their own.
KEY_PREFIX = "segment:"
EVENTS_TARGET = "events"


@dataclass
class Outcome:
    accepted: int
    rejected: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.rejected, key=lambda rejection: rejection.index)
        return {"success": True, "accepted": self.accepted, "rejected": [r.as_json() for r in ordered]}


def ingest(read: Read, now: float) -> Outcome:
    total = len(read.messages) + len(read.rejected)
    rejected = list(read.rejected)
    reject = rejected.append
    messages = [m for m in _not_sent_before(read.messages) if m.kind != "alias"]  # alias: nothing to do
    users = _typed("users", [(m.index, m.user.custom) for m in messages if m.user and m.user.custom], reject)
    companies = _typed(
        "companies", [(m.index, m.company.custom) for m in messages if m.company and m.company.custom], reject
    )
    messages = _not_rejected(messages, rejected)
    unnamed = _unregistered_event_names(messages)
    for message in messages:
        if message.event and message.event.name in unnamed:
            reject(
                Rejection(
                    message.index,
                    "limit_reached",
                    f"A workspace holds at most {MAX_EVENT_NAMES} event names; "
                    f"{message.event.name!r} would be one more.",
                )
            )
    messages = _not_rejected(messages, rejected)
    for index in _upsert_companies([m for m in messages if m.company_id], companies, now):
        reject(Rejection(index, "record_full", "The company's record is full (DynamoDB's 400 KB per item)."))
    for index in _write_users(_not_rejected(messages, rejected), users, now):
        reject(Rejection(index, "record_full", "The user's record is full (DynamoDB's 400 KB per item)."))
    return Outcome(total - len(rejected), rejected)


def _not_rejected(messages: Sequence[Message], rejected: Iterable[Rejection]) -> list[Message]:
    refused = {rejection.index for rejection in rejected}
    return [message for message in messages if message.index not in refused]


def _key(message: Message) -> str | None:
    return None if message.message_id is None else KEY_PREFIX + message.message_id


def _not_sent_before(messages: Sequence[Message]) -> list[Message]:
    """The messages to apply: a messageId seen earlier in the request or recorded before for the
    same user is a retry, accepted without changing anything."""
    first: list[Message] = []
    seen: set[tuple[str, str]] = set()
    for message in messages:
        key = _key(message)
        if key is not None and message.user_id is not None:
            if (message.user_id, key) in seen:
                continue
            seen.add((message.user_id, key))
        first.append(message)
    recorded = user_batches.recorded(seen) if seen else set()
    return [m for m in first if m.user_id is None or (m.user_id, _key(m)) not in recorded]


def _typed(
    target: str, sent: list[tuple[int, dict[str, Any]]], reject: Callable[[Rejection], None]
) -> dict[int, AttributeChanges]:
    """Each message's custom attributes checked against the workspace's types (the first value of
    a name fixes its type, here too: earlier messages first). A message that breaks the rule is
    rejected; the new names of the rest are registered in one go (per message only when that
    fails: the cap reached, or another writer fixing a name's type first)."""
    names = {name for _, custom in sent for name in custom}
    known = dict(attribute_store.types_of(target, names)) if names else {}
    planned: dict[int, AttributeChanges] = {}
    new_types: dict[str, str] = {}
    for index, custom in sent:
        try:
            changes = plan_attribute_changes(custom, {**known, **new_types})
        except Invalid as error:
            reject(Rejection(index, "invalid_traits", _reason(error)))
            continue
        new_types.update(changes.new_types)
        planned[index] = changes
    if not new_types:
        return planned
    try:
        attribute_store.register(target, new_types)
        return planned
    except Invalid:
        pass
    known = dict(attribute_store.types_of(target, names))
    settled: dict[int, AttributeChanges] = {}
    for index, custom in sent:
        if index not in planned:
            continue
        try:
            changes = plan_attribute_changes(custom, known)
            attribute_store.register(target, changes.new_types)
        except Invalid as error:
            reject(Rejection(index, "invalid_traits", _reason(error)))
            continue
        known.update(changes.new_types)
        settled[index] = changes
    return settled


def _reason(error: Invalid) -> str:
    details = "; ".join(str(detail.get("message")) for detail in error.details or [])
    return f"{error.message} {details}".strip() if details else error.message


def _unregistered_event_names(messages: Iterable[Message]) -> set[str]:
    """Register the event names first seen (at most MAX_EVENT_NAMES a workspace); the names that
    found no room."""
    names = list(dict.fromkeys(m.event.name for m in messages if m.event))
    if not names:
        return set()
    known = attribute_store.types_of(EVENTS_TARGET, names)
    new = [name for name in names if name not in known]
    if not new:
        return set()
    try:
        attribute_store.register(EVENTS_TARGET, dict.fromkeys(new, "event"), limit=MAX_EVENT_NAMES)
        return set()
    except Invalid:
        pass
    refused = set()
    for name in new:  # the cap is near: as many as fit, in order of appearance
        try:
            attribute_store.register(EVENTS_TARGET, {name: "event"}, limit=MAX_EVENT_NAMES)
        except Invalid:
            refused.add(name)
    return refused


def _upsert_companies(groups: Sequence[Message], typed: dict[int, AttributeChanges], now: float) -> set[int]:
    """Each company once, its group messages' traits merged in order, all of them in a few calls
    (storage.people_items.upsert_many); the indexes of the messages whose company could not be written."""
    by_company: dict[str, list[Message]] = defaultdict(list)
    for message in groups:
        assert message.company_id is not None
        by_company[message.company_id].append(message)
    upserts: dict[str, Upsert] = {}
    for company_id, found in by_company.items():
        fields: dict[str, Any] = {}
        sets: dict[str, Any] = {}
        removes: dict[str, None] = {}
        for message in found:
            fields.update(message.company.fields if message.company else {})
            changes = typed.get(message.index, AttributeChanges())
            for name, value in changes.sets.items():
                sets[name] = value
                removes.pop(name, None)
            for name in changes.removes:
                sets.pop(name, None)
                removes[name] = None
        upserts[company_id] = Upsert(fields, sets, tuple(removes))
    failed = company_store.upsert_many(upserts, now) if upserts else set()
    return {message.index for company_id in failed for message in by_company[company_id]}


def _write_users(messages: Sequence[Message], typed: dict[int, AttributeChanges], now: float) -> set[int]:
    """Every user once a round (a user with more than MAX_KEYS_PER_WRITE keyed messages takes a
    round per slice of them, in order); the indexes of the messages of users that failed."""
    by_user: dict[str, list[tuple[int, Change]]] = defaultdict(list)
    for message in messages:
        assert message.user_id is not None
        by_user[message.user_id].append((message.index, _change(message, typed)))
    rounds: list[dict[str, list[tuple[int, Change]]]] = []
    for user_id, changes in by_user.items():
        for number, piece in enumerate(_slices(changes)):
            if number == len(rounds):
                rounds.append({})
            rounds[number][user_id] = piece
    failed: set[int] = set()
    for batch in rounds:
        outcome = user_batches.write(
            {user: [change for _, change in pairs] for user, pairs in batch.items()}, now
        )
        for user_id in outcome.failed:
            failed.update(index for index, _ in batch[user_id])
    return failed


def _slices(changes: list[tuple[int, Change]]) -> list[list[tuple[int, Change]]]:
    slices: list[list[tuple[int, Change]]] = [[]]
    keyed = 0
    for pair in changes:
        if pair[1].key is not None:
            if keyed == MAX_KEYS_PER_WRITE:
                slices.append([])
                keyed = 0
            keyed += 1
        slices[-1].append(pair)
    return slices


def _change(message: Message, typed: dict[int, AttributeChanges]) -> Change:
    attributes = typed.get(message.index, AttributeChanges())
    return Change(
        key=_key(message),
        fields=dict(message.user.fields) if message.user else {},
        attribute_sets=attributes.sets,
        attribute_removes=tuple(attributes.removes),
        company_id=message.company_id,
        event=(message.event.name, message.event.at) if message.event else None,
    )
