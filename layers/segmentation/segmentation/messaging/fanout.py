"""Fan-out: one page of a message's audience per job. Each member is claimed (a Deliveries item,
at most once per user, ever) and queued for the sender; then the job re-queues itself with the
next cursor, so no single invocation holds the whole audience.

Job: segmentation.jobs.FanoutJob (the cursor, and `at`: the instant of the send or of going
live). The audience is evaluated at `at`: a segment's stored members (then the
filter, if any, on each member's current record), or, for a filter alone, a scan of the users.
A redelivered job redoes its page: claims already made are kept, and deliveries still queued are
queued again (harmless: only one sender can move a delivery out of `queued`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segmentation import errors, health
from segmentation.jobs import FanoutJob
from segmentation.messaging import audience as audiences
from segmentation.messaging.model import Message
from segmentation.people.evaluable import Records
from segmentation.storage import deliveries, memberships, messages, queues, upkeep_records
from segmentation.storage.segments import load_workspace

PAGE_SIZE = 100


@dataclass(frozen=True)
class FanoutResult:
    queued: list[str]  # user ids handed to the sender by this page
    next_cursor: str | dict[str, Any] | None
    stopped: bool = False  # the message is no longer live / sent (paused, deleted), or its audience broke


def run_job(job: FanoutJob, *, page_size: int = PAGE_SIZE) -> FanoutResult:
    item = messages.get(job.message_id)
    if item is None:
        return FanoutResult([], None, stopped=True)
    message = Message.from_item(item)
    if message.state != message.active_state:
        return FanoutResult([], None, stopped=True)
    try:
        user_ids, next_cursor = _audience_page(message, job.cursor, job.at, page_size)
    except errors.Invalid as error:
        # The audience cannot be evaluated any more (a segment its filter names is gone): stop here.
        health.skipped("message", message.id, error.message)
        return FanoutResult([], None, stopped=True)
    queued: list[str] = []
    for user_id in user_ids:
        outcome = deliveries.claim(message.id, user_id, now=job.at, require_state=message.active_state)
        if outcome is deliveries.Claim.MESSAGE_INACTIVE:
            _enqueue(message.id, queued)
            return FanoutResult(queued, None, stopped=True)
        if outcome in (deliveries.Claim.CLAIMED, deliveries.Claim.ALREADY_QUEUED):
            queued.append(user_id)
    _enqueue(message.id, queued)
    if next_cursor is not None:
        queues.send_fanout_job(job.model_copy(update={"cursor": next_cursor}))
    elif job.kind == "manual":
        messages.mark_fanned_out(message.id, job.at)  # its segment may be deleted from now on
    return FanoutResult(queued, next_cursor)


def _enqueue(message_id: str, user_ids: list[str]) -> None:
    if user_ids:
        queues.send_deliveries((message_id, user_id) for user_id in user_ids)


def _audience_page(
    message: Message, cursor: str | dict[str, Any] | None, at: float, page_size: int
) -> tuple[list[str], str | dict[str, Any] | None]:
    """One page of the audience and the cursor of the next: a members cursor (str) for a segment
    audience, DynamoDB's LastEvaluatedKey (dict) for a filter-only scan; None at the end."""
    audience = message.audience
    records = Records(load_workspace())
    next_cursor: str | dict[str, Any] | None
    if audience.segment_id is not None:
        member_ids, next_cursor = memberships.members_page(
            audience.segment_id, page_size, cursor if isinstance(cursor, str) else None
        )
        if audience.filter is None:
            return member_ids, next_cursor
        items = upkeep_records.get_records("users", member_ids)
        candidates = [items[user_id] for user_id in member_ids if user_id in items]
        wanted = audience.filter
    else:
        assert audience.filter is not None  # an audience has a segment, a filter or both
        candidates, next_cursor = upkeep_records.scan_slice(
            "users", 0, 1, cursor if isinstance(cursor, dict) else None, page_size
        )
        wanted = audiences.as_filter(audience)
    matches = records.workspace.predicate(wanted, "users")
    evaluable = records.users(candidates, companies=records.reads_company_fields(wanted))
    return [str(r["user_id"]) for r in evaluable if matches(r, at)], next_cursor
