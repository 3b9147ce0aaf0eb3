"""ReconcilerFunction: a delivery whose job is really gone (dead-lettered, or kept past the
queue's retention) gets a new job or is settled; one whose job is still on its way, however
long the queue, is left alone; nothing is ever sent twice."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from segmentation import clock, errors
from segmentation.jobs import DeliveryJob
from segmentation.messaging import reconciler, sender
from segmentation.storage import deliveries, queues

from tests.integration.test_sender import make_message, stats, status
from tests.support.messaging import (
    FakeContext,
    Stack,
    jobs_in,
    load_handler,
    put_user,
    receive,
    release,
    run_queue,
    sent_emails,
)
from tests.support.messaging import stack as stack

reconcile = load_handler("reconciler")
send = load_handler("sender")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(clock, "_offset_seconds", clock.offset_seconds() + seconds)


def claim(message_id: str, user_id: str) -> None:
    assert (
        deliveries.claim(message_id, user_id, now=clock.now(), require_state="sent")
        is deliveries.Claim.CLAIMED
    )


def dead_letters(stack: Stack) -> list[Any]:
    return jobs_in(stack.env["DELIVERY_DEAD_LETTER_QUEUE_URL"])


def dead_letter_after_max_receives(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every delivery job in the queue fail until SQS moves it to the dead-letter queue."""

    def broken(message: Any, user_id: str, *_: Any, **__: Any) -> Any:
        raise RuntimeError("the sender crashes on this job")

    with monkeypatch.context() as patched:
        patched.setattr(sender, "_prepare", broken)
        for _ in range(8):  # maxReceiveCount is 5: the 6th receive redrives it
            run_queue(stack.delivery_queue, send, rounds=1)
    assert jobs_in(stack.delivery_queue) == []


def test_a_fresh_delivery_is_left_alone(stack: Stack) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    assert reconcile({}, FakeContext()) == {}
    assert jobs_in(stack.delivery_queue) == [] and status(message_id, "u1") == ("queued", None)


def test_a_job_still_waiting_in_a_long_queue_is_never_given_a_second_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hours in the queue are no sign of a lost job: it is coming."""
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])
    for _ in range(6):
        later(monkeypatch, 12 * 3600)
        assert reconcile({}, FakeContext()).get("requeued", 0) == 0
    assert len(jobs_in(stack.delivery_queue)) == 1
    run_queue(stack.delivery_queue, send)
    assert len(sent_emails()) == 1 and status(message_id, "u1") == ("sent", None)


def test_a_dead_lettered_job_is_replaced_and_the_email_goes_out_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])
    dead_letter_after_max_receives(stack, monkeypatch)
    assert dead_letters(stack) == [{"message_id": message_id, "user_id": "u1"}]

    assert reconcile({}, FakeContext())["requeued"] == 1
    assert dead_letters(stack) == []
    assert jobs_in(stack.delivery_queue) == [{"message_id": message_id, "user_id": "u1"}]
    run_queue(stack.delivery_queue, send)
    assert len(sent_emails()) == 1 and status(message_id, "u1") == ("sent", None)
    assert reconcile({}, FakeContext()) == {}
    assert stats(message_id) == {"queued": 0, "sent": 1, "skipped": 0, "failed": 0}


def test_a_job_that_keeps_dying_is_failed_after_a_few_new_ones(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])
    for _ in range(reconciler.MAX_REQUEUES):
        dead_letter_after_max_receives(stack, monkeypatch)
        assert reconcile({}, FakeContext())["requeued"] == 1
    dead_letter_after_max_receives(stack, monkeypatch)
    assert reconcile({}, FakeContext())["failed_stuck"] == 1
    assert status(message_id, "u1") == ("failed", "stuck_queued")
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 0, "failed": 1}
    assert dead_letters(stack) == [] and jobs_in(stack.delivery_queue) == [] and sent_emails() == []


def test_a_job_kept_past_the_queues_retention_is_replaced(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed, but its job never reached the queue (or expired in it)."""
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    later(monkeypatch, reconciler.QUEUE_RETENTION_SECONDS)
    assert reconcile({}, FakeContext()) == {}  # within the hour between claim and queueing
    later(monkeypatch, reconciler.JOB_RETENTION_SECONDS - reconciler.QUEUE_RETENTION_SECONDS + 1)
    assert reconcile({}, FakeContext())["requeued"] == 1
    assert reconcile({}, FakeContext()) == {}  # its new job restarted its clock
    run_queue(stack.delivery_queue, send)
    assert len(sent_emails()) == 1


def test_the_queues_retention_is_the_one_the_reconciler_assumes() -> None:
    from tests.support.permissions import template

    queue = template()["Resources"]["DeliveryQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == reconciler.QUEUE_RETENTION_SECONDS


@pytest.mark.parametrize(
    ("channel", "expected"), [("email", ("failed", "outcome_unknown")), ("in_app", ("sent", None))]
)
def test_a_send_that_died_midway_is_settled_by_channel_and_its_returning_job_sends_at_most_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, channel: str, expected: tuple[str, Any]
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message(channel=channel, subject=None if channel == "in_app" else "Hi")
    claim(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])
    taken = receive(stack.delivery_queue)  # a sender takes the job, begins, and dies
    assert deliveries.begin_sending(message_id, "u1", now=clock.now(), require_state="sent").started
    later(monkeypatch, sender.STALE_SENDING_SECONDS + 1)
    tally = reconcile({}, FakeContext())
    assert tally == {"failed_outcome_unknown" if channel == "email" else "reverted_in_app": 1}
    assert jobs_in(stack.delivery_queue) == []  # no second job: the first one comes back
    release(stack.delivery_queue, taken)
    run_queue(stack.delivery_queue, send)
    assert status(message_id, "u1") == expected
    assert sent_emails() == []  # an email that may have left is never sent again


def test_each_run_reads_a_bounded_page_and_the_next_carries_on(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciler, "PAGE_PER_PARTITION", 2)
    message_id = make_message()
    users = [f"u{i:02d}" for i in range(40)]
    for user_id in users:
        put_user(stack, user_id, email=f"{user_id}@example.com")
        claim(message_id, user_id)
    later(monkeypatch, reconciler.JOB_RETENTION_SECONDS + 1)
    per_run = []
    for _ in range(10):
        per_run.append(reconcile({}, FakeContext()).get("requeued", 0))
        if sum(per_run) == len(users):
            break
    assert sum(per_run) == len(users)
    assert max(per_run) <= 2 * deliveries.STAGE_SHARDS
    assert len(per_run) > 1
    assert sorted(j["user_id"] for j in jobs_in(stack.delivery_queue)) == users


def test_deliveries_parked_by_a_held_message_wait_for_its_resume(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.storage import messages

    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    hold = messages.hold_actions(message_id, auto=False, code="sending_paused", text="x", now=clock.now())
    assert deliveries.park(message_id, "u1", from_status="queued", now=clock.now(), hold=hold) is (
        deliveries.Park.PARKED
    )
    # A job that died before the hold, in the dead-letter queue as SQS's redrive puts it there.
    boto3.client("sqs").send_message(
        QueueUrl=stack.env["DELIVERY_DEAD_LETTER_QUEUE_URL"],
        MessageBody=DeliveryJob(message_id=message_id, user_id="u1").to_body(),
    )
    later(monkeypatch, reconciler.JOB_RETENTION_SECONDS + 1)
    assert reconcile({}, FakeContext()) == {"dead_parked": 1}
    assert status(message_id, "u1") == ("queued", None) and jobs_in(stack.delivery_queue) == []


def test_a_busy_delivery_comes_back_after_a_growing_backoff(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    delays: list[int] = []
    monkeypatch.setattr(queues, "delay_delivery", lambda receipt, seconds: delays.append(seconds))
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    claim(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])

    def busy(message: Any, user_id: str, *_: Any, **__: Any) -> Any:
        raise errors.Retryable("busy")

    monkeypatch.setattr(sender, "_prepare", busy)
    run_queue(stack.delivery_queue, send, rounds=1)
    assert delays == [sender.retry_delay(1)] and status(message_id, "u1") == ("queued", None)
    assert [sender.retry_delay(n) for n in (1, 2, 3, 10)] == [5, 10, 20, 300]
