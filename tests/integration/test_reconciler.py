"""ReconcilerFunction: deliveries whose job was lost or dead-lettered are re-queued or settled,
never left `queued` or `sending`, and never sent twice."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.messaging import reconciler, sender
from segmentation.storage import deliveries, queues

from tests.integration.test_sender import make_message, stats, status
from tests.support.messaging import (
    FakeContext,
    Stack,
    jobs_in,
    load_handler,
    put_user,
    run_queue,
    sent_emails,
)
from tests.support.messaging import stack as stack

reconcile = load_handler("reconciler")
send = load_handler("sender")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(clock, "_offset_seconds", clock.offset_seconds() + seconds)


def claim_without_a_job(message_id: str, user_id: str) -> None:
    """Claimed, but its job never reaches the sender (lost, or in the dead-letter queue)."""
    assert (
        deliveries.claim(message_id, user_id, now=clock.now(), require_state="sent")
        is deliveries.Claim.CLAIMED
    )


def test_a_fresh_delivery_is_left_alone(stack: Stack) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim_without_a_job(message_id, "u1")
    assert reconcile({}, FakeContext()) == {}
    assert jobs_in(stack.delivery_queue) == [] and status(message_id, "u1") == ("queued", None)


def test_a_lost_job_is_sent_again_and_the_email_goes_out_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim_without_a_job(message_id, "u1")
    later(monkeypatch, reconciler.STUCK_AFTER_SECONDS + 1)
    assert reconcile({}, FakeContext())["requeued"] == 1
    assert jobs_in(stack.delivery_queue) == [{"message_id": message_id, "user_id": "u1"}]
    assert reconcile({}, FakeContext()).get("requeued", 0) == 0  # not again before its time
    run_queue(stack.delivery_queue, send)
    assert len(sent_emails()) == 1 and status(message_id, "u1") == ("sent", None)
    later(monkeypatch, reconciler.STUCK_AFTER_SECONDS + 1)
    assert reconcile({}, FakeContext()) == {}  # settled: out of the index
    assert stats(message_id) == {"queued": 0, "sent": 1, "skipped": 0, "failed": 0}


def test_a_delivery_that_never_gets_through_is_failed_after_a_few_tries(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim_without_a_job(message_id, "u1")
    for _ in range(reconciler.MAX_REQUEUES):
        later(monkeypatch, reconciler.STUCK_AFTER_SECONDS + 1)
        assert reconcile({}, FakeContext())["requeued"] == 1
    later(monkeypatch, reconciler.STUCK_AFTER_SECONDS + 1)
    assert reconcile({}, FakeContext())["failed_stuck"] == 1
    assert status(message_id, "u1") == ("failed", "stuck_queued")
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 0, "failed": 1}
    run_queue(stack.delivery_queue, send)  # the jobs sent again arrive after all: nothing goes out
    assert sent_emails() == []


@pytest.mark.parametrize(
    ("channel", "expected"), [("email", ("failed", "outcome_unknown")), ("in_app", ("sent", None))]
)
def test_a_send_that_died_midway_is_settled_by_channel(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, channel: str, expected: tuple[str, Any]
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message(channel=channel, subject=None if channel == "in_app" else "Hi")
    claim_without_a_job(message_id, "u1")
    assert deliveries.begin_sending(message_id, "u1", now=clock.now(), require_state="sent").started
    later(monkeypatch, sender.STALE_SENDING_SECONDS + 1)
    reconcile({}, FakeContext())
    run_queue(stack.delivery_queue, send)
    assert status(message_id, "u1") == expected
    assert sent_emails() == []  # an email that may have left is never sent again


def test_a_throttled_delivery_comes_back_after_a_growing_backoff(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    delays: list[int] = []
    monkeypatch.setattr(queues, "delay_delivery", lambda receipt, seconds: delays.append(seconds))
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim_without_a_job(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])

    def busy(message: Any, user_id: str) -> Any:
        raise errors.Retryable("busy")

    monkeypatch.setattr(sender, "_prepare", busy)
    run_queue(stack.delivery_queue, send, rounds=1)
    assert delays == [sender.retry_delay(1)] and status(message_id, "u1") == ("queued", None)
    assert [sender.retry_delay(n) for n in (1, 2, 3, 10)] == [5, 10, 20, 300]
