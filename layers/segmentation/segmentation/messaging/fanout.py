"""Fan-out: one page of a message's audience per job. Each member is claimed (a Deliveries item,
at most once per user, ever) and queued for the sender; then the job re-queues itself with the
next cursor, so no single invocation holds the whole audience.

Job: segmentation.jobs.FanoutJob (the cursor, and `at`: the instant of the send or of going
live). The audience is evaluated at `at`: a segment's stored members (then the filter, if any,
on each member's current record), or, for a filter alone, a scan of the users. A redelivered
job redoes its page: claims already made are kept, and deliveries still queued are queued again
(harmless: only one sender can move a delivery out of `queued`).

Email goes out at SES's pace, so fan-out keeps ahead of the senders by a few minutes of that
pace and no more (AHEAD_SECONDS): when the delivery queue already holds that much, the job comes
back later instead of claiming. So a job waits in the delivery queue minutes, not hours, and an
audience of millions is queued as it is sent. While the message is held (SES refused for the
whole account), the job waits too.

ParkedJob: a page of a held message's parked deliveries, queued again (resume) or recorded as
skipped (the message was deleted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from segmentation import clock, errors, health
from segmentation.definitions import load_workspace
from segmentation.jobs import FanoutJob, ParkedJob
from segmentation.messaging import audience as audiences
from segmentation.messaging import send_rate
from segmentation.messaging.model import Message
from segmentation.people.evaluable import Evaluator
from segmentation.storage import deliveries, memberships, messages, people_scans, queues

PAGE_SIZE = 100
# The delivery queue may hold this many seconds of sending (at least MIN_BACKLOG jobs).
AHEAD_SECONDS = 300
MIN_BACKLOG = 1000
# A job that found the message held looks again after this long.
HELD_RECHECK_SECONDS = 60


@dataclass(frozen=True)
class FanoutResult:
    queued: list[str]  # user ids handed to the sender by this page
    next_cursor: str | dict[str, Any] | None
    stopped: bool = False  # the message is no longer live / sent (paused, deleted), or its audience broke
    waiting: bool = False  # the job comes back later: the delivery queue is full enough, or the message held


def run(job: FanoutJob | ParkedJob, *, page_size: int | None = None) -> FanoutResult:
    size = page_size or PAGE_SIZE
    if isinstance(job, ParkedJob):
        return run_parked(job, page_size=size)
    return run_job(job, page_size=size)


def run_job(job: FanoutJob, *, page_size: int = PAGE_SIZE) -> FanoutResult:
    item = messages.get(job.message_id)
    if item is None:
        return FanoutResult([], None, stopped=True)
    message = Message.from_item(item)
    if message.state != message.active_state:
        return FanoutResult([], None, stopped=True)
    if message.held:
        queues.send_fanout_job(job, delay_seconds=HELD_RECHECK_SECONDS)
        return FanoutResult([], job.cursor, waiting=True)
    if message.channel == "email" and _wait_for_room(job):
        return FanoutResult([], job.cursor, waiting=True)
    try:
        user_ids, next_cursor = _audience_page(message, job.cursor, job.at, page_size)
    except errors.Invalid as error:
        # The audience cannot be evaluated any more (a segment its filter names is gone): stop here.
        health.skipped("message", message.id, error.message)
        return FanoutResult([], None, stopped=True)
    queued: list[str] = []
    now = clock.now()  # the audience is the one of `at`; the jobs are queued now
    for user_id in user_ids:
        outcome = deliveries.claim(message.id, user_id, now=now, require_state=message.active_state)
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


def _wait_for_room(job: FanoutJob | ParkedJob) -> bool:
    """True (and the job queued again for later) when the delivery queue already holds more
    than AHEAD_SECONDS of sending: claims made now would wait in it for longer."""
    rate = send_rate.emails_per_second(clock.now())
    room = max(MIN_BACKLOG, int(rate * AHEAD_SECONDS))
    backlog = queues.delivery_backlog()
    if backlog < room:
        return False
    # Back when about half of the allowed backlog has been sent.
    delay = math.ceil((backlog - room / 2) / rate)
    queues.send_fanout_job(job, delay_seconds=min(delay, queues.MAX_DELAY_SECONDS))
    return True


def _enqueue(message_id: str, user_ids: list[str]) -> None:
    if user_ids:
        queues.send_deliveries((message_id, user_id) for user_id in user_ids)


def run_parked(job: ParkedJob, *, page_size: int = PAGE_SIZE) -> FanoutResult:
    """One page of the message's parked deliveries: queued again (`resume`; stopped if the
    message is held again, the next resume goes on), or skipped (`drop`: it was deleted). Each
    page leaves the parked partition, so the next page is its first page again."""
    item = messages.get(job.message_id)
    message = Message.from_item(item) if item is not None else None
    resuming = job.kind == "resume"
    if resuming and (message is None or message.held or message.state != message.active_state):
        return FanoutResult([], None, stopped=True)
    if resuming and message is not None and message.channel == "email" and _wait_for_room(job):
        return FanoutResult([], None, waiting=True)
    parked, more = deliveries.in_stage(
        deliveries.stage_of(deliveries.PARKED, job.message_id, ""), before=None, limit=page_size
    )
    user_ids = [str(delivery["user_id"]) for delivery in parked]
    now = clock.now()
    if resuming:
        # The job first, then out of the parked partition: a crash between them repeats the job
        # (harmless: one sender moves a delivery), never loses one.
        _enqueue(job.message_id, user_ids)
        user_ids = [u for u in user_ids if deliveries.unpark(job.message_id, u, now=now)]
    else:
        user_ids = [
            u
            for u in user_ids
            if deliveries.finish(
                job.message_id,
                u,
                from_status="queued",
                to_status="skipped",
                reason="message_deleted",
                now=now,
            )
        ]
    if more:
        queues.send_fanout_job(job)
    return FanoutResult(user_ids, None)


def _skip_deleted(message_id: str, user_id: str, now: float) -> bool:
    return deliveries.finish(
        message_id, user_id, from_status="queued", to_status="skipped", reason="message_deleted", now=now
    )


def _audience_page(
    message: Message, cursor: str | dict[str, Any] | None, at: float, page_size: int
) -> tuple[list[str], str | dict[str, Any] | None]:
    """One page of the audience and the cursor of the next: a members cursor (str) for a segment
    audience, DynamoDB's LastEvaluatedKey (dict) for a filter-only scan; None at the end."""
    audience = message.audience
    evaluator = Evaluator(load_workspace())
    next_cursor: str | dict[str, Any] | None
    if audience.segment_id is not None:
        member_ids, next_cursor = memberships.members_page(
            audience.segment_id, page_size, cursor if isinstance(cursor, str) else None
        )
        if audience.filter is None:
            return member_ids, next_cursor
        items = people_scans.get_items("users", member_ids)
        candidates = [items[user_id] for user_id in member_ids if user_id in items]
        wanted = audience.filter
    else:
        assert audience.filter is not None  # an audience has a segment, a filter or both
        candidates, next_cursor = people_scans.scan_slice(
            "users", 0, 1, cursor if isinstance(cursor, dict) else None, page_size
        )
        wanted = audiences.as_filter(audience)
    matches = evaluator.workspace.predicate(wanted, "users")
    evaluable = evaluator.users(candidates, companies=evaluator.reads_company_fields(wanted))
    return [str(r["user_id"]) for r in evaluable if matches(r, at)], next_cursor
