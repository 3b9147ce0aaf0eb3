"""Deliver one queued (message, user): the sender's whole decision, with at-most-once per user,
at the pace SES allows, and with every kind of SES refusal put where it belongs.

Steps and AWS calls for an email (the message definition and the workspace settings are
cached per process):
1. queued → sending, in one transaction with a check that the message is still live/sent and
   not held. When a frequency cap is set, the user's email ledger is read first (one GetItem)
   and the same transaction takes this email's slot in it, or checks that the window is full
   (messaging.frequency_cap): two senders never both take the last slot;
2. read the user (and their first company, only if a template reads `company`);
3. wait for this instance's next send slot (messaging.pacing), then SES SendEmail, with the
   one-click unsubscribe headers of RFC 8058 (auth.unsubscribe_links; the same URL is the
   templates' `{{ unsubscribe_url }}`);
4. sending → sent, in one transaction with the message's counters.

Only the worker whose step 1 succeeds goes on, so a redelivered job or a second worker never
sends again. What SES answers decides the rest (storage.email):

- throttled, or never reached: nothing went out. The delivery goes back to `queued` and a new
  job is queued with a short delay (the job in hand is then done), so a slow account never uses
  up a job's receives and never fails anybody; the pace slows down.
- refused for the whole account (sending paused, unverified sender, daily quota...): the
  message is held (`paused_reason`; an auto message goes to `paused`) in one transaction with
  this delivery parked (queued, no job). Jobs of a held message park their deliveries too;
  `resume` queues them again.
- refused for this recipient: `failed` with `ses_<code>`.
- no answer after the request went out: `failed` with `outcome_unknown`, never sent again.

A slot taken in the ledger is given back in the transaction of every move that means the email
did not go out (skipped, failed, back to queued, parked); it stays for `sent` and for
`outcome_unknown` (SES may have sent it).

If the process dies after SES accepted the email and before step 4, the delivery stays
`sending`; whoever finds it so for longer than STALE_SENDING_SECONDS (this job coming back, or
the reconciler) records it as failed with `outcome_unknown` and sends nothing (at most once:
possibly zero). A younger `sending` is another worker's: the job is retried later. For in-app
messages the inbox entry is written in step 4's transaction, so a stale `sending` there means
nothing was delivered: it goes back to `queued` and is delivered by its job (exactly once).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segmentation import clock, errors
from segmentation.auth import unsubscribe_links
from segmentation.jobs import DeliveryJob
from segmentation.messaging import frequency_cap, rendering, send_rate, templates, workspace_settings
from segmentation.messaging.model import Message
from segmentation.messaging.pacing import Pacer
from segmentation.settings import get_settings
from segmentation.storage import deliveries, email, inbox, messages, queues
from segmentation.storage import users as user_store

log = logging.getLogger(__name__)

# Longer than the SenderFunction timeout: a `sending` this old has no live worker behind it.
STALE_SENDING_SECONDS = 300.0
_FINISH_ATTEMPTS = 3
# A job put back after SES said slow down (or could not be reached) comes back after this long,
# doubling with each such answer in a row, up to the longest delay SQS allows.
RETRY_DELAY_SECONDS = 2
MAX_RETRY_DELAY_SECONDS = 900
# Rereads of a user's email ledger when other sends to that user keep moving it.
_LEDGER_ATTEMPTS = 5
# RFC 8058: the provider POSTs this body to the List-Unsubscribe URL.
ONE_CLICK = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")

Actions = Sequence[Mapping[str, Any]]

_definitions: dict[str, Message] = {}
_lock = threading.Lock()
_pacer = Pacer(rate=send_rate.FALLBACK_RATE)
_refusals_in_a_row = 0


def retry_delay(receives: int) -> int:
    """Seconds before a job that found another worker busy comes back: 5 s doubling, at most 5 min."""
    return int(min(5 * 2 ** max(receives - 1, 0), 300))


def back_off(receipt_handle: str, receives: int) -> None:
    """A job that found another worker busy, or a fault, comes back after `retry_delay`, not after
    the queue's whole visibility timeout."""
    queues.delay_delivery(receipt_handle, retry_delay(receives))


def reset_cache() -> None:
    global _pacer, _refusals_in_a_row
    with _lock:
        _definitions.clear()
        _pacer = Pacer(rate=send_rate.FALLBACK_RATE)
        _refusals_in_a_row = 0
    send_rate.reset_cache()
    workspace_settings.reset_cache()


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


def deliver(job: DeliveryJob, now: float, *, deadline: float | None = None) -> str:
    """Process one delivery job; returns what happened (for logs, metrics and tests): `sent`
    (an email SES accepted), `sent:in_app`, `skipped:<reason>`, `failed:<reason>`... Raises
    errors.Retryable when the job must come back later (another worker busy, or a fault before
    anything was decided). `deadline`: the instant by which this invocation must be done."""
    message_id, user_id = job.message_id, job.user_id
    message = _definition(message_id)
    if message is None:
        return "no_such_message"
    link = unsubscribe_links.make(message_id, user_id) if message.channel == "email" else None
    start = _begin(message, user_id, link, now)
    if not start.begin.started:
        return _not_started(message, user_id, start.begin, now)
    release = start.release
    unsubscribe_url = link.url(get_settings().unsubscribe_base_url) if link is not None else None

    try:
        outcome = _prepare(message, user_id, unsubscribe_url, capped=start.capped)
    except templates.TemplateFailed as exc:
        _finish(message, user_id, "failed", exc.reason, now, release=release)
        return f"failed:{exc.code}"
    except BaseException:
        # Nothing was sent yet: put it back so a retry can deliver it.
        deliveries.revert_to_queued(message_id, user_id, now=now, also=release)
        raise
    if isinstance(outcome, str):
        _finish(message, user_id, "skipped", outcome, now, release=release)
        return f"skipped:{outcome}"
    subject, body, body_html, address = outcome

    if message.channel == "in_app":
        entry = inbox.inbox_item(user_id, message_id, subject, body, now)
        _finish(
            message, user_id, "sent", None, now, also_put={"table": get_settings().inbox_table, "item": entry}
        )
        return "sent:in_app"
    headers = [("List-Unsubscribe", f"<{unsubscribe_url}>"), ONE_CLICK]
    email_parts = (address, subject or "", body, body_html, headers)
    return _send_email(message, user_id, email_parts, deadline, release)


@dataclass(frozen=True)
class _Start:
    begin: deliveries.Begin
    capped: bool = False  # the user's window was full: skip with `frequency_cap`
    release: Actions = ()  # gives back the slot this email took, if it does not go out


def _begin(message: Message, user_id: str, link: unsubscribe_links.Link | None, now: float) -> _Start:
    """Step 1: queued → sending, with the link's reference (a long user id) and, when a cap is
    set for email, the user's email ledger, both in the same transaction."""
    also = [link.reference_put] if link is not None and link.reference_put is not None else []
    cap = workspace_settings.email_cap(now) if message.channel == "email" else None
    if cap is None:
        state = message.active_state
        return _Start(deliveries.begin_sending(message.id, user_id, now=now, require_state=state, also=also))
    for _ in range(_LEDGER_ATTEMPTS):
        sends, version = deliveries.email_ledger(user_id)
        decision = frequency_cap.decide(cap, sends, message.id, now)
        ledger = (
            deliveries.ledger_write(user_id, sends=decision.sends, seen_version=version)
            if decision.allowed
            else deliveries.ledger_check(user_id, seen_version=version)
        )
        begin = deliveries.begin_sending(
            message.id, user_id, now=now, require_state=message.active_state, also=[*also, ledger]
        )
        if not begin.also_refused:  # else another send to this user moved the ledger: again
            taken = decision.allowed and begin.started
            release = (deliveries.ledger_release(user_id, message.id),) if taken else ()
            return _Start(begin, capped=not decision.allowed, release=release)
    raise errors.Retryable("other sends to this user kept moving their email ledger")


def _send_email(
    message: Message,
    user_id: str,
    email_parts: tuple[str, str, str, str, Sequence[tuple[str, str]]],
    deadline: float | None,
    release: Actions,
) -> str:
    global _refusals_in_a_row
    now = clock.now()
    _pacer.set_rate(send_rate.emails_per_second(now), get_settings().sender_concurrency)
    wait = _pacer.reserve(now, deadline)
    if wait is None:  # no slot before this invocation ends: the job comes back when one is due
        return _put_back(message, user_id, math.ceil(_pacer.next_slot - now), "deferred", release)
    clock.sleep(wait)
    try:
        ses_message_id = email.send_email(*email_parts)
    except email.EmailThrottled:
        _pacer.throttled(clock.now())
        return _put_back(message, user_id, _refusal_delay(), "throttled", release)
    except email.EmailNotSent:
        return _put_back(message, user_id, _refusal_delay(), "not_sent", release)
    except email.EmailAccountRefused as exc:
        return _hold(message, user_id, exc, release)
    except email.EmailRejected as exc:
        reason = "ses_" + _snake(exc.code)
        _finish(message, user_id, "failed", reason, clock.now(), release=release)
        return f"failed:{reason}"
    except email.EmailOutcomeUnknown:
        # SES may have sent it: recorded at once, never sent again (at most once: maybe zero).
        _finish(message, user_id, "failed", "outcome_unknown", clock.now())
        return "failed:outcome_unknown"
    _refusals_in_a_row = 0
    _pacer.accepted()
    # SES's id goes with `sent`: its bounce, complaint and delivery events name it (feedback.py).
    sent = deliveries.SentEmail(ses_message_id, email_parts[0])
    _finish(message, user_id, "sent", None, clock.now(), sent_email=sent)
    return "sent"


def _refusal_delay() -> int:
    global _refusals_in_a_row
    _refusals_in_a_row += 1
    return min(RETRY_DELAY_SECONDS * 2 ** (_refusals_in_a_row - 1), MAX_RETRY_DELAY_SECONDS)


def _put_back(message: Message, user_id: str, delay: int, outcome: str, release: Actions = ()) -> str:
    """Nothing went out: back to `queued` with a new job due in `delay` seconds. The job in hand
    is then done, so waiting never spends the receives that send a job to the dead-letter queue.
    Were the new job not queued, the job in hand fails and comes back itself."""
    if deliveries.revert_to_queued(message.id, user_id, now=clock.now(), also=release):
        queues.send_deliveries(
            [(message.id, user_id)], delay_seconds=min(max(delay, 0), MAX_RETRY_DELAY_SECONDS)
        )
    return outcome


def _hold(message: Message, user_id: str, refusal: email.EmailAccountRefused, release: Actions) -> str:
    """SES refuses every email for now: hold the message (once, whoever is first) and park this
    delivery with it; `resume` sends what waits."""
    now = clock.now()
    code = _snake(refusal.code)
    text = f"SES refuses to send for the whole account: {refusal.message or refusal.code}"
    log.error("message %s held: %s", message.id, text)
    hold = messages.hold_actions(message.id, auto=message.type == "auto", code=code, text=text, now=now)
    parked = deliveries.park(message.id, user_id, from_status="sending", now=now, hold=hold, also=release)
    if parked is deliveries.Park.PARKED:
        return f"held:{code}"
    if parked is deliveries.Park.NOT_HELD:  # held by another worker already, or paused meanwhile
        parked = deliveries.park(
            message.id,
            user_id,
            from_status="sending",
            now=now,
            hold=[messages.hold_check(message.id)],
            also=release,
        )
        if parked is deliveries.Park.PARKED:
            return "parked"
    if parked is deliveries.Park.NOT_HELD:  # paused or deleted by hand meanwhile: its job decides
        return _put_back(message, user_id, 0, "put_back", release)
    return "moved"


def _not_started(message: Message, user_id: str, begin: deliveries.Begin, now: float) -> str:
    if begin.message_refused:
        return _message_refused(message, user_id, begin.message, now)
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


def _message_refused(message: Message, user_id: str, item: dict[str, Any] | None, now: float) -> str:
    """The message cannot send now: held (park the delivery), or paused by hand or deleted (skip)."""
    if item is not None and item.get("paused_reason") is not None and item.get("state") != "deleted":
        parked = deliveries.park(
            message.id, user_id, from_status="queued", now=now, hold=[messages.hold_check(message.id)]
        )
        if parked is deliveries.Park.NOT_HELD:
            raise errors.Retryable("the message was resumed meanwhile")  # the job comes back and sends
        return "parked" if parked is deliveries.Park.PARKED else "moved"
    reason = "message_deleted" if item is None or item.get("state") == "deleted" else "message_paused"
    deliveries.finish(message.id, user_id, from_status="queued", to_status="skipped", reason=reason, now=now)
    return f"skipped:{reason}"


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


def _prepare(
    message: Message, user_id: str, unsubscribe_url: str | None, *, capped: bool
) -> str | tuple[str | None, str, str, str]:
    """A skip reason, or (subject, text body, html body, email address) rendered from the
    user's data as of now. The user's own reasons come before the cap's (`capped`)."""
    user = user_store.get(user_id)
    if user is None:
        return "user_deleted"
    address = str(user.get("email") or "").strip()
    if message.channel == "email":
        if not address:
            return "no_email"
        if user.get("unsubscribed_from_emails") is True:
            return "unsubscribed"
        if user.get("email_status") == "bounced":  # until the app sets a new email
            return "bounced"
    if capped:
        return "frequency_cap"
    rendered = rendering.render(message.subject, message.body, user, unsubscribe_url=unsubscribe_url)
    return rendered.subject, rendered.text, rendered.html, address


def _finish(
    message: Message,
    user_id: str,
    to_status: str,
    reason: str | None,
    now: float,
    also_put: Any = None,
    release: Actions = (),
    sent_email: deliveries.SentEmail | None = None,
) -> None:
    """sending → final (with `release`, the ledger slot given back, when the email did not go
    out). Retried a few times in process: giving up here leaves `sending`."""
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
                also=release,
                email=sent_email,
            )
            return
        except errors.Retryable:
            if attempt == _FINISH_ATTEMPTS - 1:
                raise


def _snake(code: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", code).lower().replace("exception", "").strip("_") or "rejected"
