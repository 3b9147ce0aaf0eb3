"""The sender's pace: each sender instance spaces its emails so that all of them together stay
within the account's SES rate, and slows down when SES says it is sending too fast.

Every instance gets an equal share: `rate / concurrency` emails a second (the SenderFunction's
event source runs at most `concurrency` instances). SES throttling halves the share (down to a
tenth) and each email accepted wins back a little (additive increase, multiplicative decrease),
so a rate set too high, or another sender in the same account, costs a few retried emails and
never a failed one. Pure: the caller reads the clock and sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_FACTOR = 0.1
RECOVERY_PER_SEND = 0.05


@dataclass
class Pacer:
    rate: float  # emails a second for the whole account (all instances together)
    concurrency: int = 1  # how many instances share it
    factor: float = 1.0  # below 1 after throttling
    next_slot: float = float("-inf")  # the earliest instant of this instance's next send

    @property
    def interval(self) -> float:
        """Seconds between two sends of this instance."""
        return max(self.concurrency, 1) / (max(self.rate, 1e-6) * self.factor)

    def reserve(self, now: float, deadline: float | None = None) -> float | None:
        """Take the next send slot: how long to wait before sending (0 when it is free now), or
        None, reserving nothing, when that slot is later than `deadline`."""
        slot = max(now, self.next_slot)
        if deadline is not None and slot > deadline:
            return None
        self.next_slot = slot + self.interval
        return slot - now

    def accepted(self) -> None:
        self.factor = min(1.0, self.factor + RECOVERY_PER_SEND)

    def throttled(self, now: float) -> None:
        """SES said slow down: half the pace, and a pause of a few of the new intervals."""
        self.factor = max(MIN_FACTOR, self.factor / 2)
        self.next_slot = max(self.next_slot, now) + 2 * self.interval

    def set_rate(self, rate: float, concurrency: int) -> None:
        self.rate, self.concurrency = rate, concurrency
