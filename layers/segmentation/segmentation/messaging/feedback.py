"""What SES reports back about an email (a delivery, a bounce, a complaint) applied to its
delivery, its message's counters and its user.

- The delivery is found by SES's message id (stored with `sent` by the sender; one Query).
- Only the recipients an event names act, and only when one of them is the address this
  delivery went to (an SES event may list other destinations: they are not ours to act on).
- The kind is added to the delivery's `feedback_seen` and counted in the message's stats in one
  transaction, conditioned on the kind not being there yet: repeated events count once, and
  since each kind has its own flag, their order does not matter. The delivery shows the
  strongest kind seen (`strongest`).
- In that same transaction: a permanent bounce sets the user's `email_status` to bounced, if
  their email is still the address that bounced; a complaint sets `complained` and unsubscribes
  them. When that part does not hold (the address changed, a complaint already stands, the user
  is gone), the delivery's feedback is recorded alone.

AWS calls for one event: the Query and one transaction (2); one more transaction when the
user's part does not hold (3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from segmentation import errors
from segmentation.messaging.ses_events import BOUNCED, COMPLAINED, DELIVERED, SesFeedback
from segmentation.storage import deliveries
from segmentation.storage import users as user_store

# Weakest first. A complaint is the recipient's own word that the email was unwanted (and the
# rate SES and mailbox providers watch most closely); a bounce says it never arrived, which
# outweighs an earlier "delivered" (an asynchronous bounce comes after the receiving server
# first accepted the message); "delivered" is what any later report refines.
STRENGTH = (DELIVERED, BOUNCED, COMPLAINED)
# An event whose email is not found is tried again while the email is younger than this: the
# index that finds it is eventually consistent. Older, it is an email whose `sent` was never
# recorded (the sender's crash window): counted as unmatched and dropped.
UNMATCHED_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Applied:
    outcome: str  # recorded | already_recorded | unmatched | not_a_recipient
    user_updated: bool = False  # the user's email_status (and, complained, unsubscribe) was set


def strongest(seen: Iterable[Any] | None) -> str | None:
    """The feedback a delivery shows: the strongest kind SES reported, None before any."""
    kinds = set(seen or ())
    return next((kind for kind in reversed(STRENGTH) if kind in kinds), None)


def apply(feedback: SesFeedback, now: float) -> Applied:
    """Record one SES event. Raises errors.Retryable when it should be tried again later."""
    delivery = deliveries.find_by_ses_message_id(feedback.ses_message_id)
    if delivery is None:
        if feedback.sent_at is not None and now - feedback.sent_at < UNMATCHED_RETRY_SECONDS:
            raise errors.Retryable(f"no delivery shows SES message {feedback.ses_message_id} yet")
        return Applied("unmatched")
    sent_to = str(delivery.get("sent_to") or "")
    if not any(_same_address(recipient, sent_to) for recipient in feedback.recipients):
        return Applied("not_a_recipient")
    message_id, user_id = str(delivery["message_id"]), str(delivery["user_id"])
    user_action = _user_action(feedback, user_id, sent_to, now)
    also = [user_action] if user_action is not None else []
    outcome, _ = deliveries.record_feedback(message_id, user_id, feedback.kind, also=also)
    if outcome is deliveries.Feedback.REFUSED:
        outcome, _ = deliveries.record_feedback(message_id, user_id, feedback.kind)
        return Applied(_name(outcome))
    return Applied(_name(outcome), user_updated=outcome is deliveries.Feedback.RECORDED and bool(also))


def _user_action(feedback: SesFeedback, user_id: str, sent_to: str, now: float) -> dict[str, Any] | None:
    if feedback.kind == BOUNCED and feedback.permanent:  # a transient bounce says nothing lasting
        return user_store.bounced_action(user_id, sent_to, now)
    if feedback.kind == COMPLAINED:
        return user_store.complained_action(user_id, now)
    return None


def _same_address(named: str, sent_to: str) -> bool:
    # Mailbox providers treat addresses case-insensitively; SES may report another spelling.
    return bool(sent_to) and named.strip().casefold() == sent_to.strip().casefold()


def _name(outcome: deliveries.Feedback) -> str:
    return "already_recorded" if outcome is deliveries.Feedback.ALREADY_RECORDED else "recorded"
