"""Auto messages for users who come to match: called by upkeep for every changed, rechecked or
rebuilt user. Built to cost nothing when nothing is live:

- the set of live auto messages is cached per process and revalidated with one GetItem of the
  `#auto_live` item at most every REVALIDATE_SECONDS; definitions never change once created, so
  they are cached for good;
- a segment-only audience claims only when the user enters the segment (it is in the audience
  now and the segment was not in `previous_segments`); an audience with a filter claims whenever
  the user is in it, once per process thanks to a small memo of (message, user) pairs settled.

A claim is a conditional write on Deliveries, so whatever calls this how often, each user gets
each message at most once, ever; only then is the delivery queued for the sender.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segmentation import errors, health
from segmentation.engine import Workspace
from segmentation.messaging import audience as audiences
from segmentation.messaging.model import Message
from segmentation.people.evaluable import Evaluator
from segmentation.storage import deliveries, messages, queues

REVALIDATE_SECONDS = 1.5
_SETTLED_MEMO_SIZE = 50_000


@dataclass
class _LiveCache:
    checked_at: float = float("-inf")
    version: int = -1
    live: tuple[Message, ...] = ()
    definitions: dict[str, Message] = field(default_factory=dict)
    predicates: dict[tuple[int, str], tuple[Workspace, Callable[[Any, float], bool]]] = field(
        default_factory=dict
    )
    reads_companies: dict[str, bool] = field(default_factory=dict)
    settled: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)


_cache = _LiveCache()
_lock = threading.Lock()


def reset_cache() -> None:
    global _cache
    with _lock:
        _cache = _LiveCache()


def invalidate() -> None:
    """Revalidate on the next call: this process just changed which auto messages are live."""
    with _lock:
        _cache.checked_at = float("-inf")


def live_auto_messages(now: float) -> tuple[Message, ...]:
    with _lock:
        if now - _cache.checked_at < REVALIDATE_SECONDS and now >= _cache.checked_at:
            return _cache.live
        version, ids = messages.live_auto_state()
        if version != _cache.version:
            live = []
            for message_id in sorted(ids):
                definition = _cache.definitions.get(message_id)
                if definition is None:
                    item = messages.get(message_id)
                    if item is None:
                        continue
                    definition = Message.from_item(item)
                    _cache.definitions[message_id] = definition
                live.append(definition)
            _cache.live, _cache.version = tuple(live), version
        _cache.checked_at = now
        return _cache.live


def _predicate(workspace: Workspace, message: Message) -> Callable[[Any, float], bool] | None:
    """The audience's predicate; None (skipped, counted, logged) when it cannot be evaluated, such
    as a filter naming a segment that is gone: the other messages and upkeep go on."""
    key = (id(workspace), message.id)
    cached = _cache.predicates.get(key)
    if cached is not None and cached[0] is workspace:
        return cached[1]
    if len(_cache.predicates) > 256:
        _cache.predicates.clear()
    try:
        predicate = audiences.predicate(workspace, message.audience)
    except errors.Invalid as error:
        health.skipped("message", message.id, error.message)
        return None
    _cache.predicates[key] = (workspace, predicate)
    return predicate


def _with_companies(evaluator: Evaluator, record: dict[str, Any], message: Message) -> dict[str, Any]:
    """The record with its companies when the message's own filter reads company.* and upkeep
    did not attach them (it does when a segment reads them)."""
    if "companies" in record or message.audience.filter is None:
        return record
    reads = _cache.reads_companies.get(message.id)
    if reads is None:
        reads = _cache.reads_companies[message.id] = evaluator.reads_company_fields(message.audience.filter)
    return evaluator.users([record], companies=True)[0] if reads else record


def _settle(message_id: str, user_id: str) -> None:
    _cache.settled[(message_id, user_id)] = None
    if len(_cache.settled) > _SETTLED_MEMO_SIZE:
        _cache.settled.popitem(last=False)


def queue_auto_messages(
    evaluator: Evaluator, record: dict[str, Any], now: float, previous_segments: frozenset[str] | None
) -> None:
    """Claim and queue every live auto message the user has just come to match.

    Call it before writing the user's new membership (or make a failed write retry this call
    with the same `previous_segments`): a user whose entry was written but not followed by this
    call is not seen entering again."""
    live = live_auto_messages(now)
    if not live:
        return
    user_id = str(record["user_id"])
    to_queue: list[tuple[str, str]] = []
    settled: list[tuple[str, str]] = []
    for message in live:
        segment_id = message.audience.segment_id
        entered_only = message.audience.filter is None and previous_segments is not None
        if entered_only and segment_id in (previous_segments or ()):
            continue  # already in the segment before: handled when they entered (or at going live)
        if (message.id, user_id) in _cache.settled:
            continue
        predicate = _predicate(evaluator.workspace, message)
        if predicate is None or not predicate(_with_companies(evaluator, record, message), now):
            continue
        outcome = deliveries.claim(message.id, user_id, now=now, require_state="live")
        if outcome is deliveries.Claim.MESSAGE_INACTIVE:
            continue  # paused or deleted since the cache was filled
        if outcome in (deliveries.Claim.CLAIMED, deliveries.Claim.ALREADY_QUEUED):
            to_queue.append((message.id, user_id))
        settled.append((message.id, user_id))
    if to_queue:
        queues.send_deliveries(to_queue)
    for message_id, settled_user in settled:  # only once queued: a failed enqueue is retried
        _settle(message_id, settled_user)
