"""The delivery benchmark's simulation at a few thousand users, as a test: a manual email through
fan-out, the senders and the reconciler, against a local SES slower than the stack believes, so
that SES throttles. Everyone gets it exactly once; nobody fails; no job is queued twice."""

from __future__ import annotations

import pytest

from bench import delivery

AUDIENCE = 2_000


@pytest.mark.long
def test_a_large_send_at_a_throttling_ses_reaches_everyone_exactly_once() -> None:
    # The stack is told 7 emails a second; the local SES takes 5.
    run = delivery.run(AUDIENCE, ses_rate=5.0, sender_rate=7)
    assert run.throttled > 0, "SES must have throttled, or this tests nothing about throttling"
    assert run.exactly_once == AUDIENCE
    assert run.failed == 0
    assert run.duplicate_jobs == 0
    # At 5 a second (SES's bucket starts with one second's worth) the send takes at least this long.
    assert run.simulated_seconds >= (AUDIENCE - 5) / 5.0
