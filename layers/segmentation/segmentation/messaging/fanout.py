"""Fan-out: one page of a message's audience per job. Each member is claimed (a Deliveries item,
at most once per user, ever) and queued for the sender; then the job re-queues itself with the
next cursor, so no single invocation holds the whole audience.

Job: {"message_id", "kind": "manual"|"auto", "cursor": str|None, "at": epoch seconds of the send
or of going live}. The audience is evaluated at `at`: a segment's stored members (then the
filter, if any, on each member's current record), or, for a filter alone, a scan of the users.
A redelivered job redoes its page: claims already made are kept, and deliveries still queued are
queued again (harmless: only one sender can move a delivery out of `queued`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segmentation.messaging import audience as audiences
from segmentation.messaging import sources
from segmentation.messaging.model import Message
from segmentation.storage import deliveries, message_queues, messages

PAGE_SIZE = 100


@dataclass(frozen=True)
class FanoutResult:
    queued: list[str]  # user ids handed to the sender by this page
    next_cursor: str | None
    stopped: bool = False  # the message is no longer live / sent (paused, deleted)


def run_job(job: dict[str, Any], *, page_size: int = PAGE_SIZE) -> FanoutResult:
    item = messages.get(str(job["message_id"]))
    if item is None:
        return FanoutResult([], None, stopped=True)
    message = Message.from_item(item)
    if message.state != message.active_state:
        return FanoutResult([], None, stopped=True)

    at = float(job["at"])
    user_ids, next_cursor = _audience_page(message, job.get("cursor"), at, page_size)
    queued: list[str] = []
    for user_id in user_ids:
        outcome = deliveries.claim(message.id, user_id, now=at, require_state=message.active_state)
        if outcome is deliveries.Claim.MESSAGE_INACTIVE:
            _enqueue(message.id, queued)
            return FanoutResult(queued, None, stopped=True)
        if outcome in (deliveries.Claim.CLAIMED, deliveries.Claim.ALREADY_QUEUED):
            queued.append(user_id)
    _enqueue(message.id, queued)
    if next_cursor is not None:
        message_queues.enqueue_fanout({**job, "cursor": next_cursor})
    return FanoutResult(queued, next_cursor)


def _enqueue(message_id: str, user_ids: list[str]) -> None:
    if user_ids:
        message_queues.enqueue_deliveries((message_id, user_id) for user_id in user_ids)


def _audience_page(message: Message, cursor: Any, at: float, page_size: int) -> tuple[list[str], Any]:
    """One page of the audience and the cursor of the next: a members cursor (str) for a segment
    audience, DynamoDB's LastEvaluatedKey (dict) for a filter-only scan; None at the end."""
    audience = message.audience
    if audience.segment_id is not None:
        member_ids, next_cursor = sources.members_page(audience.segment_id, page_size, cursor)
        if audience.filter is None:
            return member_ids, next_cursor
        records = sources.users_by_ids(member_ids, with_companies=sources.reads_companies(audience.filter))
        matches = sources.workspace().predicate(audience.filter, "users")
        return [str(r["user_id"]) for r in records if matches(r, at)], next_cursor

    assert audience.filter is not None  # an audience has a segment, a filter or both
    records, last_key = sources.users_page(cursor, page_size)
    if sources.reads_companies(audience.filter):
        sources.attach_companies(records)
    matches = sources.workspace().predicate(audiences.as_filter(audience), "users")
    return [str(r["user_id"]) for r in records if matches(r, at)], last_key
