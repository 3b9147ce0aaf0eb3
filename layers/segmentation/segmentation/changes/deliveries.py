"""Webhook deliveries: changes batched per endpoint, each POST signed and retried until delivered.

- `fan_out`: the changes of a stream batch, each to every enabled endpoint that wants its segment
  and existed when it was recorded, up to 100 a POST. A delivery's id (the `webhook-id` header)
  is a digest of its endpoint and its changes, so a replayed batch makes no second delivery.
- `attempt`: one POST of one delivery (a WebhookJob). The attempt is claimed first (a conditional
  write: two copies of a job never both send); the URL is checked and resolved again, the POST
  goes to the address checked, signed at the attempt's real time. A 2xx is delivered; anything
  else, or no answer within 15 s, waits for the next attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
  and 10 h after the one before (8 attempts over about 27.6 hours), following the stack's clock.
- Retries up to 15 minutes away also go on the WebhookQueue with that delay (SQS's most); every
  pending delivery also waits in the table's `by_due` index, which `send_due` (every minute)
  reads: so a retry hours away costs nothing until it is due, and a lost job or a crashed
  attempt is picked up again once due.
- An endpoint whose attempts have failed for 3 days (no success since its first failure) is
  disabled, with the reason; its pending deliveries then fail without a POST.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from segmentation import clock
from segmentation.changes import addresses, signing, transport
from segmentation.changes.history import change_json
from segmentation.jobs import WebhookJob
from segmentation.settings import get_settings
from segmentation.storage import queues
from segmentation.storage import webhooks as store
from segmentation.storage.webhooks import Webhook
from segmentation.values import epoch_millis, format_timestamp

logger = logging.getLogger(__name__)

EVENT_TYPE = "segment.membership.changed"
CHANGES_PER_POST = 100
# Seconds from a failed attempt to the next (Standard Webhooks' reference schedule).
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
DISABLE_AFTER_SECONDS = 3 * 86400
# An attempt holds its delivery this long (the POST's 15 s and more): a crashed one is tried again after.
LEASE_SECONDS = 60
USER_AGENT = "segmentation-webhooks/1"


def _wants(hook: Webhook, item: Mapping[str, Any]) -> bool:
    """Only the segments it names (or all), and only changes recorded while it existed."""
    if hook.segment_ids is not None and str(item["segment_id"]) not in hook.segment_ids:
        return False
    return Decimal(item["at"]) >= hook.created_at


def _delivery_id(hook: Webhook, batch: Sequence[Mapping[str, Any]]) -> str:
    keys = "\n".join(f"{item['pair']}#{int(item['sequence'])}" for item in batch)
    return "msg_" + hashlib.sha256(f"{hook.id}\n{keys}".encode()).hexdigest()[:32]


def body_of(batch: Sequence[Mapping[str, Any]], now: float) -> str:
    """The POST's body: the same bytes for every attempt (they are what is signed)."""
    document = {
        "type": EVENT_TYPE,
        "timestamp": format_timestamp(epoch_millis(now)),
        "data": {"changes": [change_json(item) for item in batch]},
    }
    return json.dumps(document, separators=(",", ":"))


def fan_out(items: Sequence[Mapping[str, Any]], now: float) -> int:
    """Deliveries of recorded changes to every endpoint that wants them; returns how many were made."""
    if not items:
        return 0
    jobs: list[WebhookJob] = []
    at = epoch_millis(now)
    for hook in store.all_enabled():
        wanted = [item for item in items if _wants(hook, item)]
        for start in range(0, len(wanted), CHANGES_PER_POST):
            batch = wanted[start : start + CHANGES_PER_POST]
            delivery_id = _delivery_id(hook, batch)
            if store.add_delivery(hook.id, delivery_id, body_of(batch, now), len(batch), at):
                jobs.append(WebhookJob(webhook_id=hook.id, delivery_id=delivery_id, due_at=str(at)))
    if jobs:
        queues.send_webhook_jobs(jobs)
    return len(jobs)


def attempt(job: WebhookJob, now: float) -> str:
    """Make the job's delivery attempt if it is due; returns what happened (for logs and tests)."""
    at = epoch_millis(now)
    delivery = store.claim(job.webhook_id, job.delivery_id, at, Decimal(job.due_at), at + LEASE_SECONDS)
    if delivery is None:
        return "not_due"
    number = delivery.attempts
    hook = store.get(job.webhook_id)
    if hook is None or hook.state != "enabled":
        store.settle(job.webhook_id, delivery.id, number, state="failed", due_at=None)
        logger.info("delivery dropped: its webhook is gone or disabled", extra={"webhook_id": job.webhook_id})
        return "dropped"
    timestamp = int(clock.real_now())
    try:
        target = addresses.resolve(hook.url, get_settings().webhook_allow_local)
        assert target is not None
    except addresses.Refused as refused:
        answer = transport.Answer(None, 0, refused.reason)
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.sign(hook.secret, delivery.id, timestamp, delivery.body),
        }
        answer = transport.post(target, headers, delivery.body.encode("utf-8"))
    delivered = answer.status_code is not None and 200 <= answer.status_code < 300
    store.log_attempt(
        hook.id,
        delivery.id,
        number,
        at=at,
        status_code=answer.status_code,
        duration_ms=answer.duration_ms,
        changes=delivery.changes,
        outcome="delivered" if delivered else "failed",
        error=answer.error,
    )
    if delivered:
        store.settle(hook.id, delivery.id, number, state="delivered", due_at=None)
        if hook.failing_since is not None:
            store.succeeded(hook.id)
        return "delivered"
    return _after_failure(hook, delivery.id, number, at)


def _after_failure(hook: Webhook, delivery_id: str, number: int, at: Decimal) -> str:
    since = store.failed_since(hook.id, at)
    if since is not None and at - since >= DISABLE_AFTER_SECONDS:
        reason = f"Every attempt has failed since {format_timestamp(since)}, for 3 days or more."
        store.disable(hook.id, reason, at)
        store.settle(hook.id, delivery_id, number, state="failed", due_at=None)
        logger.warning("webhook disabled", extra={"webhook_id": hook.id})
        return "disabled"
    if number > len(RETRY_DELAYS):
        store.settle(hook.id, delivery_id, number, state="failed", due_at=None)
        return "failed"
    delay = RETRY_DELAYS[number - 1]
    due = at + delay
    waiting = store.settle(hook.id, delivery_id, number, state="pending", due_at=due)
    if waiting and delay <= queues.MAX_DELAY_SECONDS:
        job = WebhookJob(webhook_id=hook.id, delivery_id=delivery_id, due_at=str(due))
        queues.send_webhook_jobs([job], delay_seconds=delay)
    return "retrying"


def send_due(now: float) -> int:
    """Queue an attempt of every pending delivery that is due (the retry schedule's run): each
    moved a lease ahead first, so the next run sends no second job for it meanwhile."""
    at = epoch_millis(now)
    lease = at + LEASE_SECONDS
    jobs = [
        WebhookJob(webhook_id=webhook_id, delivery_id=delivery_id, due_at=str(lease))
        for shard in range(store.DUE_SHARDS)
        for webhook_id, delivery_id, due_at in store.due(shard, at)
        if store.postpone(webhook_id, delivery_id, due_at, lease)
    ]
    if jobs:
        queues.send_webhook_jobs(jobs)
    return len(jobs)
