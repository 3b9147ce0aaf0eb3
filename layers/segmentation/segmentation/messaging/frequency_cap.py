"""The email frequency cap: at most `max` emails to one user in any `days` days (a sliding
window of `days` times 24 hours, not calendar days), counting only emails that went out.

Each user has a ledger (storage.deliveries.email_ledger): message id -> when its send began.
The sender reads it and, in the transaction that begins the send (queued → sending), either
takes a slot (the ledger with this message added, conditioned on the version it read) or, when
the window is full, checks that the ledger is still at that version and skips the email with
`frequency_cap`. Two senders that read the same version cannot both write: one transaction
fails its condition, and that sender reads again and decides again. So the last slot goes to
exactly one email.

A slot is given back (storage.deliveries.ledger_release, in the same transaction as the move)
when the send did not go out after all: skipped, failed, throttled, parked. It stays when the
email went out, and when its outcome is unknown (SES may have sent it).

The ledger keeps the newest MAX_EMAILS sends of the last MAX_DAYS days: enough to decide any
cap within those bounds exactly, so an admin may change the cap at any time and it holds at
once over what was already sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DAY_SECONDS = 86_400
MAX_EMAILS = 100  # the largest `max` a cap may have
MAX_DAYS = 90  # the largest `days`


@dataclass(frozen=True)
class Cap:
    max: int
    days: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # When allowed: the ledger to write (this send added, what is past the horizon dropped).
    sends: dict[str, Decimal]


def decide(cap: Cap, sends: Mapping[str, Any], message_id: str, now: float) -> Decision:
    """Whether one more email (this message's) fits in the window at `now`."""
    horizon = now - MAX_DAYS * DAY_SECONDS
    window_start = now - cap.days * DAY_SECONDS
    kept = {mid: Decimal(str(at)) for mid, at in sends.items() if mid != message_id and float(at) > horizon}
    in_window = sum(1 for at in kept.values() if float(at) > window_start)
    if in_window >= cap.max:
        return Decision(allowed=False, sends={})
    kept[message_id] = Decimal(f"{now:.6f}")
    newest = sorted(kept.items(), key=lambda entry: entry[1], reverse=True)[:MAX_EMAILS]
    return Decision(allowed=True, sends=dict(newest))
