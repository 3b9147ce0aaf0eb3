"""Deliveries stuck on the way: settled by a schedule, so none stays `queued` or `sending` for
good after its job went to the dead-letter queue (or was lost).

- `queued` for longer than STUCK_AFTER_SECONDS: its job is sent again (harmless if the old one
  still comes: only one sender can move a delivery out of `queued`), up to MAX_REQUEUES times;
  then it is `failed` with the reason `stuck_queued`.
- `sending` for longer than the sender's STALE_SENDING_SECONDS: an email may have gone out, so
  it is `failed` with `outcome_unknown` and never sent again; an in-app message was not
  delivered (its inbox entry is written with the final status), so it goes back to `queued` and
  its job is sent again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from segmentation.messaging.model import Message
from segmentation.messaging.sender import STALE_SENDING_SECONDS, settle_interrupted
from segmentation.storage import deliveries, messages, queues

# Longer than the DeliveryQueue's retries (5 receives x 360 s visibility) take to give up.
STUCK_AFTER_SECONDS = 45 * 60.0
MAX_REQUEUES = 3


def reconcile(now: float) -> Counter[str]:
    """One pass over every shard; returns how many deliveries were settled, by outcome."""
    tally: Counter[str] = Counter()
    channels: dict[str, str | None] = {}
    for shard in range(deliveries.PENDING_SHARDS):
        for item in deliveries.pending_before(shard, now - min(STUCK_AFTER_SECONDS, STALE_SENDING_SECONDS)):
            message_id, user_id = str(item["message_id"]), str(item["user_id"])
            if message_id not in channels:
                found = messages.get(message_id)
                channels[message_id] = Message.from_item(found).channel if found else None
            tally[_settle(item, message_id, user_id, channels[message_id], now)] += 1
    return tally


def _settle(item: dict[str, Any], message_id: str, user_id: str, channel: str | None, now: float) -> str:
    status = item.get("status")
    since = float(item.get("pending_since", now))
    if status == "queued" and now - since >= STUCK_AFTER_SECONDS:
        if int(item.get("requeues", 0)) < MAX_REQUEUES:
            if deliveries.requeued(message_id, user_id, seen_since=item["pending_since"], now=now):
                queues.send_deliveries([(message_id, user_id)])
                return "requeued"
            return "moved"
        done = deliveries.finish(
            message_id, user_id, from_status="queued", to_status="failed", reason="stuck_queued", now=now
        )
        return "failed_stuck" if done else "moved"
    sending_at = item.get("sending_at")
    if status == "sending" and sending_at is not None and now - float(sending_at) >= STALE_SENDING_SECONDS:
        if not settle_interrupted(message_id, user_id, channel, sending_at, now):
            return "moved"
        if channel == "in_app":
            queues.send_deliveries([(message_id, user_id)])
            return "requeued"
        return "failed_outcome_unknown"
    return "waiting"
