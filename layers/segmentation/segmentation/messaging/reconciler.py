"""Deliveries whose job is gone: settled by a schedule, so none stays `queued` or `sending` for
good, and none gets a second job while its first is still on its way.

A delivery job is gone only when SQS gave up on it (the dead-letter queue) or it was kept
longer than the queue keeps messages. A long queue is not a lost job: however many wait, each
is still coming. So each run, within bounds:

1. `sending` for longer than the sender's STALE_SENDING_SECONDS (its worker stopped): an email
   may have gone out, so it is `failed` with `outcome_unknown` and never sent again; an in-app
   message was not delivered (its inbox entry is written with the final status), so it goes
   back to `queued`, and its job (back from SQS, or from the dead-letter queue below) delivers it.
2. `queued` with a job older than the queue keeps jobs (JOB_RETENTION_SECONDS): the job has
   expired (or was never queued: a crash after the claim whose producer gave up). A new job.
3. Each job in the DeliveryQueue's dead-letter queue (SQS gave up after maxReceiveCount
   receives): a delivery still `queued` gets a new job, a stale `sending` is settled as in 1,
   a parked one waits for its message's resume, a settled one needs nothing.

A delivery gets a new job at most MAX_REQUEUES times; after that it is `failed` with
`stuck_queued`. Steps 1 and 2 read a bounded page of the `by_stage` index per partition and run,
and carry on from there on the next run; step 3 takes at most DEAD_LETTERS_PER_RUN jobs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from segmentation.jobs import DeliveryJob
from segmentation.messaging.model import Message
from segmentation.messaging.sender import STALE_SENDING_SECONDS, settle_interrupted
from segmentation.storage import deliveries, messages, queues

# DeliveryQueue's MessageRetentionPeriod (template.yaml), and an hour between claim and queueing.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
JOB_RETENTION_SECONDS = QUEUE_RETENTION_SECONDS + 3600
MAX_REQUEUES = 3
PAGE_PER_PARTITION = 100
DEAD_LETTERS_PER_RUN = 500


class _Channels:
    """The channel of each message met in one run (one GetItem each)."""

    def __init__(self) -> None:
        self._seen: dict[str, str | None] = {}

    def __call__(self, message_id: str) -> str | None:
        if message_id not in self._seen:
            found = messages.get(message_id)
            self._seen[message_id] = Message.from_item(found).channel if found else None
        return self._seen[message_id]


def reconcile(now: float) -> Counter[str]:
    """One run; how many deliveries were settled, by outcome."""
    tally: Counter[str] = Counter()
    channel = _Channels()
    positions = deliveries.reconciler_cursors()
    moved = False
    for kind, age in (
        (deliveries.SENDING, STALE_SENDING_SECONDS),
        (deliveries.QUEUED, JOB_RETENTION_SECONDS),
    ):
        for stage in deliveries.stage_partitions(kind):
            items, last = deliveries.in_stage(
                stage, before=now - age, limit=PAGE_PER_PARTITION, cursor=positions.get(stage)
            )
            moved = moved or last != positions.get(stage)
            positions[stage] = last
            for item in items:
                message_id, user_id = str(item["message_id"]), str(item["user_id"])
                if kind == deliveries.SENDING:
                    tally[_settle_sending(message_id, user_id, item, channel(message_id), now)] += 1
                else:
                    tally[_queue_again(message_id, user_id, item, now)] += 1
    if moved:
        deliveries.save_reconciler_cursors(positions)
    for receipt, job in queues.receive_dead_deliveries(DEAD_LETTERS_PER_RUN):
        outcome = "dead_unreadable" if job is None else _settle_dead_letter(job, channel, now)
        tally[outcome] += 1
        if outcome != "dead_waiting":
            queues.delete_dead_delivery(receipt)
    return tally


def _settle_sending(
    message_id: str, user_id: str, item: dict[str, Any], channel: str | None, now: float
) -> str:
    if not settle_interrupted(message_id, user_id, channel, item.get("sending_at"), now):
        return "moved"
    return "reverted_in_app" if channel == "in_app" else "failed_outcome_unknown"


def _queue_again(message_id: str, user_id: str, item: dict[str, Any], now: float) -> str:
    """A new job for a queued delivery whose job is gone, or `failed` after MAX_REQUEUES."""
    if int(item.get("requeues", 0)) >= MAX_REQUEUES:
        done = deliveries.finish(
            message_id, user_id, from_status="queued", to_status="failed", reason="stuck_queued", now=now
        )
        return "failed_stuck" if done else "moved"
    if not deliveries.job_queued_again(message_id, user_id, now=now, count_requeue=True):
        return "moved"
    queues.send_deliveries([(message_id, user_id)])
    return "requeued"


def _settle_dead_letter(job: DeliveryJob, channel: _Channels, now: float) -> str:
    message_id, user_id = job.message_id, job.user_id
    delivery = deliveries.get(message_id, user_id)
    if delivery is None:
        return "dead_unclaimed"
    status, stage = delivery.get("status"), str(delivery.get("stage", ""))
    if status == "queued":
        if stage.startswith(deliveries.PARKED + "#"):
            return "dead_parked"  # its message's resume queues it
        return _queue_again(message_id, user_id, delivery, now)
    if status == "sending":
        sending_at = delivery.get("sending_at")
        if sending_at is not None and now - float(sending_at) < STALE_SENDING_SECONDS:
            return "dead_waiting"  # its worker may still finish: look again next run
        kind = channel(message_id)
        if not settle_interrupted(message_id, user_id, kind, sending_at, now):
            return "moved"
        if kind != "in_app":
            return "failed_outcome_unknown"
        return _queue_again(message_id, user_id, deliveries.get(message_id, user_id) or {}, now)
    return "dead_settled"
