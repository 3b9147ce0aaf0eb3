"""Many users' changes from one request (a Segment batch), written in a few calls.

BatchWriteItem takes no conditions and no updates, so the unit is one UpdateItem per user that
merges all of that user's changes (fields, custom attributes, company links, event summaries),
computed from the item as read (one consistent BatchGetItem per 100 users) and conditioned on
it (`rev` and `incarnation`, which every write through people_items.py and events.py moves). Each
change that carries a key (a message id) also puts (user_id, key) in the EventIds table with
`attribute_not_exists`, in the same transaction as the update: a change is applied once, with
its key, or not at all. Many users' updates share one TransactWriteItems (100 actions).

A cancelled transaction tells, per action, what failed: a key already recorded (a retried
message: its change is dropped), or a user item that moved since it was read (DynamoDB returns
it: the update is computed again from it). The rest of that transaction was not written and is
tried again; a user that failed goes alone from then on, so one busy user does not hold up the
others.

Tags: a user's `tag_ids` (a string set) moves with its tag links in Memberships (`tag#<id>`, the
user) in the same transaction, and each transaction moves each tag's count item once by what its
links added and removed, beside a check that each tag it adds still exists: a tag's count is
always the number of its links, and no link is written for a tag once it is deleted (its cleanup
pages the links it had). A link left by a deleted incarnation of the user is taken over (checked,
already counted) rather than written again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.event_summaries import budget
from segmentation.event_summaries.stored import added
from segmentation.settings import get_settings
from segmentation.storage import dynamo, memberships, tag_links, tags
from segmentation.storage.events import ID_TTL_SECONDS, ROOM
from segmentation.storage.people_items import INCARNATION, Expression, resets_due, too_large
from segmentation.storage.users import NEW_USER_DEFAULTS, RESETS
from segmentation.values import epoch_millis
from segmentation.vocabulary import TAG_IDS

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
    tags_added: tuple[str, ...] = ()  # tag ids the user gets (they must exist)
    tags_removed: tuple[str, ...] = ()  # tag ids the user loses


@dataclass
class Outcome:
    duplicates: set[tuple[str, str]] = field(default_factory=set)  # (user_id, key) recorded before
    failed: dict[str, str] = field(default_factory=dict)  # user_id -> why nothing of it was written
    missing: set[str] = field(default_factory=set)  # users that do not exist (create=False)
    unchanged: set[str] = field(default_factory=set)  # users the changes left as they were
    tagged: dict[str, int] = field(default_factory=dict)  # tag id -> users that got it
    untagged: dict[str, int] = field(default_factory=dict)  # tag id -> users that lost it


class TagGone(errors.Conflict):
    """A tag to add was deleted meanwhile: nothing of the transaction that named it was written."""

    code = "tag_not_found"

    def __init__(self, tag_ids: frozenset[str]):
        super().__init__(f"The tag {', '.join(sorted(tag_ids))} was deleted meanwhile.")
        self.tag_ids = tag_ids


def _users_table() -> str:
    return get_settings().users_table


def _ids_table() -> str:
    return get_settings().event_ids_table


def recorded(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (user_id, key) pairs are in EventIds already (BatchGetItem, 100 a call)."""
    keys = [{"user_id": user_id, "event_id": key} for user_id, key in pairs]
    found = dynamo.batch_get(_ids_table(), keys, consistent=True, projection="user_id, event_id")
    return {(item["user_id"], item["event_id"]) for item in found}


def write(
    changes: Mapping[str, Sequence[Change]], now: float, *, create: bool = True, skip_unchanged: bool = False
) -> Outcome:
    """Apply each user's changes, in order, in one update of that user (at most
    MAX_KEYS_PER_WRITE keyed changes a user). A user that does not exist is created, or, with
    `create` False, left out (`missing`). With `skip_unchanged`, a user the changes would leave as
    it is (no keyed change) is not written at all (`unchanged`): no `rev`, no `updated_at`.
    Returns what was done; raises TagGone when a tag to add was deleted meanwhile."""
    pending = {user_id: list(found) for user_id, found in changes.items() if found}
    for user_id, found in pending.items():
        if sum(1 for change in found if change.key) > MAX_KEYS_PER_WRITE:
            raise ValueError(f"at most {MAX_KEYS_PER_WRITE} keyed changes a write, not for {user_id!r}")
    read = dynamo.batch_get(_users_table(), [{"user_id": user_id} for user_id in pending], consistent=True)
    items: dict[str, dict[str, Any] | None] = dict.fromkeys(pending)
    items.update({item["user_id"]: item for item in read})
    links = _links_of(pending)
    outcome = Outcome()
    alone: set[str] = set()
    for round_number in range(_ROUNDS):
        if round_number >= 2:  # others write these users at the same moment: step aside a while
            dynamo.backoff(round_number)
        plans: dict[str, _Plan] = {}
        for user_id, found in list(pending.items()):
            item = items[user_id]
            if item is None and not create:
                outcome.missing.add(user_id)
                del pending[user_id]
                continue
            plan = _plan(user_id, item, found, links, now)
            if skip_unchanged and plan.unchanged:
                outcome.unchanged.add(user_id)
                del pending[user_id]
                continue
            plans[user_id] = plan
        if not plans:
            return outcome
        for chunk in _chunks(plans, alone):
            for user_id, verdict in _commit(chunk).items():
                if verdict is _WRITTEN:
                    _count(outcome, plans[user_id])
                    del pending[user_id]
                    continue
                if isinstance(verdict, _Failed):
                    outcome.failed[user_id] = verdict.reason
                    del pending[user_id]
                    continue
                if isinstance(verdict, _Refused):
                    if verdict.duplicate_keys or verdict.stale or verdict.links_moved:
                        alone.add(user_id)  # it failed on its own account: it goes alone from now on
                    duplicates = verdict.duplicate_keys
                    outcome.duplicates |= {(user_id, key) for key in duplicates}
                    pending[user_id] = [change for change in pending[user_id] if change.key not in duplicates]
                    if verdict.stale:
                        items[user_id] = verdict.item
                    if verdict.links_moved:
                        fresh = _links_of({user_id: pending[user_id]})
                        links = {pair for pair in links if pair[1] != user_id} | fresh
                    if not pending[user_id]:
                        del pending[user_id]
    if not pending:
        return outcome
    raise errors.Retryable("users of this batch kept changing while it was written; retry")


def _links_of(changes: Mapping[str, Sequence[Change]]) -> set[tuple[str, str]]:
    """The existing links of the tags these changes add, as (tag id, user id)."""
    wanted = {(tag, user_id) for user_id, found in changes.items() for c in found for tag in c.tags_added}
    return tag_links.tag_links(wanted) if wanted else set()


def _count(outcome: Outcome, plan: _Plan) -> None:
    for tag in plan.added:
        outcome.tagged[tag] = outcome.tagged.get(tag, 0) + 1
    for tag in plan.removed:
        outcome.untagged[tag] = outcome.untagged.get(tag, 0) + 1


# --- one user's actions -------------------------------------------------------------------


@dataclass
class _Plan:
    """One user's actions: the EventIds puts of its keyed changes, its tag links, then its update
    (always last); the tags it gains and loses, and the links those write (Put: counted, kept:
    already counted, Delete: uncounted)."""

    actions: list[dict[str, Any]]
    keys: int  # how many EventIds puts lead
    links: int  # how many link actions follow them
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    counted: dict[str, int] = field(default_factory=dict)  # tag id -> its count's move
    unchanged: bool = False


def _plan(
    user_id: str,
    item: dict[str, Any] | None,
    found: Sequence[Change],
    links: set[tuple[str, str]],
    now: float,
) -> _Plan:
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
    keys = len(actions)
    merged = _merged(item, found, now)
    stored = _stored_tags(item)
    added, removed = merged.tags - stored, stored - merged.tags
    counted: dict[str, int] = {}
    for tag in sorted(added):
        if (tag, user_id) in links:
            actions.append(tag_links.tag_link_kept(tag, user_id))
        else:
            actions.append(tag_links.tag_link_put(tag, user_id))
            counted[tag] = 1
    for tag in sorted(removed):
        actions.append(tag_links.tag_link_delete(tag, user_id))
        counted[tag] = -1
    unchanged = item is not None and keys == 0 and _leaves_as_is(item, merged)
    actions.append({"Update": _update(user_id, item, merged, now)})
    return _Plan(actions, keys, len(actions) - keys - 1, added, removed, counted, unchanged)


def _stored_tags(item: Mapping[str, Any] | None) -> frozenset[str]:
    held = (item or {}).get(TAG_IDS)
    return frozenset(str(tag) for tag in held) if isinstance(held, set | frozenset | list) else frozenset()


def _leaves_as_is(item: Mapping[str, Any], merged: _Merged) -> bool:
    """Whether the merged changes would write nothing new to the item as it is."""
    if merged.summaries or merged.tags != _stored_tags(item):
        return False
    if any(item.get(name) != value for name, value in merged.fields.items()):
        return False
    custom = item.get("custom_attributes")
    custom = custom if isinstance(custom, dict) else {}
    if any(custom.get(name) != value for name, value in merged.sets.items()):
        return False
    if any(name in custom for name in merged.removes):
        return False
    stored = item.get("company_ids")
    current = list(stored) if isinstance(stored, list) else []
    return all(company in current for company in merged.companies)


@dataclass
class _Merged:
    fields: dict[str, Any] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    removes: set[str] = field(default_factory=set)
    companies: list[str] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()  # the tags the user holds after the changes


def _merged(item: dict[str, Any] | None, found: Sequence[Change], now: float) -> _Merged:
    """The user's changes in order: a later value wins; events added to the stored summaries."""
    merged = _Merged(tags=_stored_tags(item))
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
        merged.tags = (merged.tags | frozenset(change.tags_added)) - frozenset(change.tags_removed)
    return merged


def _update(user_id: str, item: dict[str, Any] | None, merged: _Merged, now: float) -> dict[str, Any]:
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
        if merged.tags:
            values[TAG_IDS] = set(merged.tags)
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
    if merged.tags != _stored_tags(item):  # a string set cannot be empty: none is no attribute
        if merged.tags:
            expression.sets.append(f"{expression.name(TAG_IDS)} = {expression.value(set(merged.tags))}")
        else:
            expression.removes.append(expression.name(TAG_IDS))


def _bounded_events(stored: Mapping[str, Any], summaries: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The whole `events` map with the new summaries, within the user's event budget, and the room
    it leaves (as storage.events writes it when it rewrites the map; the write is conditioned on
    the user's `rev`, which every event write moves)."""
    fit = budget.fitted({**stored, **summaries}, now)
    if fit is None:  # the days' counts alone pass the budget: not reachable in practice
        raise errors.Invalid(
            "A user's event history is full: the counts of its events by day alone would pass "
            f"{budget.BUDGET_BYTES // 1024} KB.",
            [{"path": "batch", "message": "no room left in a user's event history"}],
        )
    events, size = fit
    return {"events": events, ROOM: budget.BUDGET_BYTES - size}


# --- transactions ---------------------------------------------------------------------------


def _extras(plans: Sequence[_Plan]) -> list[dict[str, Any]]:
    """What a transaction of these users' plans adds after them: each tag's count moved once by
    the net of its links, and a check that each tag added still exists."""
    moves: dict[str, int] = {}
    for plan in plans:
        for tag, delta in plan.counted.items():
            moves[tag] = moves.get(tag, 0) + delta
    extras = [tag_links.count_update(memberships.tag_group(t), d) for t, d in sorted(moves.items()) if d]
    added = sorted({tag for plan in plans for tag in plan.added})
    return extras + [tags.exists_check(tag) for tag in added]


def _extra_room(adding: Set[str], removing: Set[str]) -> int:
    """The most actions `_extras` adds to a transaction whose users add and remove these tags: a
    count and a check per tag added, a count per tag only removed (shared by all its users)."""
    return 2 * len(adding) + len(removing - adding)


def _chunks(plans: Mapping[str, _Plan], alone: set[str]) -> list[dict[str, _Plan]]:
    """Users' plans packed into transactions (100 actions with their extras, ~3 MB); `alone`
    users each in one."""
    chunks: list[dict[str, _Plan]] = [{user_id: plans[user_id]} for user_id in plans if user_id in alone]
    current: dict[str, _Plan] = {}
    count = size = 0
    adding: Set[str] = frozenset()  # the tags the current transaction's users add and remove
    removing: Set[str] = frozenset()
    for user_id, plan in plans.items():
        if user_id in alone:
            continue
        weight = len(json.dumps(plan.actions, default=str))
        with_added, with_removed = adding | plan.added, removing | plan.removed
        room = _extra_room(with_added, with_removed)
        if current and (
            count + len(plan.actions) + room > dynamo.TRANSACTION_LIMIT or size + weight > _TRANSACTION_BYTES
        ):
            chunks.append(current)
            current, count, size = {}, 0, 0
            with_added, with_removed = plan.added, plan.removed
        current[user_id] = plan
        count += len(plan.actions)
        size += weight
        adding, removing = with_added, with_removed
    if current:
        chunks.append(current)
    return chunks


_WRITTEN: Any = object()


@dataclass(frozen=True)
class _Refused:
    duplicate_keys: frozenset[str]
    stale: bool  # the user item moved since it was read; `item` is how it is now (None: absent)
    item: dict[str, Any] | None = None
    links_moved: bool = False  # a tag link was written or removed meanwhile: read them again


@dataclass(frozen=True)
class _Failed:
    reason: str


def _commit(chunk: Mapping[str, _Plan]) -> dict[str, Any]:
    """Write one transaction; per user: _WRITTEN, _Refused (nothing of it written), or _Failed.
    A user whose actions were fine but whose transaction was cancelled by another's is _Refused
    with nothing to change (tried again). TagGone when a tag it adds was deleted."""
    extras = _extras(list(chunk.values()))
    actions = [action for plan in chunk.values() for action in plan.actions] + extras
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
    checks = [action["ConditionCheck"] for action in extras if "ConditionCheck" in action]
    gone = [
        str(check["Key"]["tag_id"])
        for check, reason in zip(checks, reasons[len(reasons) - len(checks) :], strict=True)
        if reason.condition_failed
    ]
    if gone:
        raise TagGone(frozenset(gone))
    verdicts: dict[str, Any] = {}
    position = 0
    for user_id, plan in chunk.items():
        mine = reasons[position : position + len(plan.actions)]
        position += len(plan.actions)
        duplicates = frozenset(
            str(action["Put"]["Item"]["event_id"])
            for action, reason in zip(plan.actions[: plan.keys], mine[: plan.keys], strict=True)
            if reason.condition_failed
        )
        links_moved = any(reason.condition_failed for reason in mine[plan.keys : plan.keys + plan.links])
        stale = mine[-1].condition_failed
        verdicts[user_id] = _Refused(duplicates, stale, mine[-1].item if stale else None, links_moved)
    return verdicts
