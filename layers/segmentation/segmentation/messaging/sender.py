"""Deliver one queued (message, user): the sender's whole decision, with at-most-once per user.

Steps and AWS calls for an email (the message definition is cached per process):
1. queued → sending, in one transaction with a check that the message is still live/sent;
2. read the user (and their first company, only if a template reads `company`);
3. SES SendEmail;
4. sending → sent, in one transaction with the message's counters.

Only the worker whose step 1 succeeds goes on, so a redelivered job or a second worker never
sends again. If the process dies after SES accepted the email and before step 4, the delivery
stays `sending`; a redelivery that finds it `sending` for longer than STALE_SENDING_SECONDS
records it as failed with reason `outcome_unknown` and sends nothing (at most once: possibly
zero). A younger `sending` is another worker's: the job is retried later. For in-app messages
the inbox entry is written in step 4's transaction, so a stale `sending` there means nothing was
delivered: it goes back to `queued` and is delivered on the retry (exactly once).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from segmentation import errors
from segmentation.jobs import DeliveryJob
from segmentation.messaging import rendering, templates
from segmentation.messaging.model import Message
from segmentation.settings import get_settings
from segmentation.storage import deliveries, email, inbox, messages
from segmentation.storage import users as user_store

# Longer than the SenderFunction timeout: a `sending` this old has no live worker behind it.
STALE_SENDING_SECONDS = 300.0
_FINISH_ATTEMPTS = 3

_definitions: dict[str, Message] = {}
_lock = threading.Lock()


def retry_delay(receives: int) -> int:
    """Seconds before a throttled delivery is tried again: 5 s doubling per receive, at most 5 min."""
    return int(min(5 * 2 ** max(receives - 1, 0), 300))


def reset_cache() -> None:
    with _lock:
        _definitions.clear()


def _definition(message_id: str) -> Message | None:
    """Definitions never change after creation (only the state does, which step 1 checks)."""
    with _lock:
        cached = _definitions.get(message_id)
    if cached is not None:
        return cached
    item = messages.get(message_id)
    if item is None:
        return None
    message = Message.from_item(item)
    with _lock:
        if len(_definitions) > 1000:
            _definitions.clear()
        _definitions[message_id] = message
    return message


def deliver(job: DeliveryJob, now: float) -> str:
    """Process one delivery job; returns what happened (for logs and tests). Raises
    errors.Retryable when the job must come back later (throttled, or another worker busy)."""
    message_id, user_id = job.message_id, job.user_id
    message = _definition(message_id)
    if message is None:
        return "no_such_message"
    begin = deliveries.begin_sending(message_id, user_id, now=now, require_state=message.active_state)
    if not begin.started:
        return _not_started(message, user_id, begin, now)

    try:
        outcome = _prepare(message, user_id)
    except templates.TemplateFailed as exc:
        _finish(message, user_id, "failed", exc.reason, now)
        return f"failed:{exc.code}"
    except BaseException:
        # Nothing was sent yet: put it back so a retry can deliver it.
        deliveries.revert_to_queued(message_id, user_id, now=now)
        raise
    if isinstance(outcome, str):
        _finish(message, user_id, "skipped", outcome, now)
        return f"skipped:{outcome}"
    subject, body, body_html, address = outcome

    if message.channel == "in_app":
        entry = inbox.inbox_item(user_id, message_id, subject, body, now)
        _finish(
            message, user_id, "sent", None, now, also_put={"table": get_settings().inbox_table, "item": entry}
        )
        return "sent"

    try:
        email.send_email(address, subject or "", body, body_html)
    except email.EmailThrottled as exc:
        deliveries.revert_to_queued(message_id, user_id, now=now)
        raise errors.Retryable(f"SES throttled: {exc}") from exc
    except email.EmailRejected as exc:
        reason = "ses_" + _snake(exc.code)
        _finish(message, user_id, "failed", reason, now)
        return f"failed:{reason}"
    except email.EmailOutcomeUnknown:
        # SES may have sent it: recorded at once, never sent again (at most once: maybe zero).
        _finish(message, user_id, "failed", "outcome_unknown", now)
        return "failed:outcome_unknown"
    _finish(message, user_id, "sent", None, now)
    return "sent"


def _not_started(message: Message, user_id: str, begin: deliveries.Begin, now: float) -> str:
    if begin.message_state is not None:
        reason = "message_deleted" if begin.message_state == "deleted" else "message_paused"
        deliveries.finish(
            message.id, user_id, from_status="queued", to_status="skipped", reason=reason, now=now
        )
        return f"skipped:{reason}"
    delivery = begin.delivery
    if delivery is None:
        return "not_claimed"  # never send what was not claimed first
    if delivery.get("status") != "sending":
        return "already_" + str(delivery.get("status"))
    sending_at = delivery.get("sending_at")
    if sending_at is not None and now - float(sending_at) < STALE_SENDING_SECONDS:
        raise errors.Retryable("another worker is delivering this message to this user")
    settle_interrupted(message.id, user_id, message.channel, sending_at, now)
    if message.channel == "in_app":
        raise errors.Retryable("an interrupted in-app delivery was put back in the queue")
    return "failed:outcome_unknown"


def settle_interrupted(
    message_id: str, user_id: str, channel: str | None, sending_at: Any, now: float
) -> bool:
    """The one rule for a delivery left `sending` by a worker that stopped (the sender on a
    redelivery, the reconciler on a schedule): an in-app message goes back to `queued`, since
    nothing left the service (its inbox entry is written with the final status); an email
    becomes `failed` with `outcome_unknown`, since SES may have sent it, and is never sent again.
    False: another writer moved it first."""
    if channel == "in_app":
        return deliveries.revert_to_queued(message_id, user_id, now=now)
    return deliveries.finish(
        message_id,
        user_id,
        from_status="sending",
        to_status="failed",
        reason="outcome_unknown",
        now=now,
        expected_sending_at=sending_at,
    )


def _prepare(message: Message, user_id: str) -> str | tuple[str | None, str, str, str]:
    """A skip reason, or (subject, text body, html body, email address) rendered from the
    user's data as of now."""
    user = user_store.get(user_id)
    if user is None:
        return "user_deleted"
    address = str(user.get("email") or "").strip()
    if message.channel == "email":
        if not address:
            return "no_email"
        if user.get("unsubscribed_from_emails") is True:
            return "unsubscribed"
    rendered = rendering.render(message.subject, message.body, user)
    return rendered.subject, rendered.text, rendered.html, address


def _finish(
    message: Message, user_id: str, to_status: str, reason: str | None, now: float, also_put: Any = None
) -> None:
    """sending → final. Retried a few times in process: giving up here leaves `sending`."""
    for attempt in range(_FINISH_ATTEMPTS):
        try:
            deliveries.finish(
                message.id,
                user_id,
                from_status="sending",
                to_status=to_status,
                reason=reason,
                now=now,
                also_put=also_put,
            )
            return
        except errors.Retryable:
            if attempt == _FINISH_ATTEMPTS - 1:
                raise


def _snake(code: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", code).lower().replace("exception", "").strip("_") or "rejected"
