"""Manual sends and auto messages end to end under moto: API-level commands, FanoutFunction
pages, upkeep's hook, and the sender; each user gets a message at most once, ever."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock, definitions, errors, health
from segmentation.jobs import FanoutJob
from segmentation.messaging import auto, fanout, service
from segmentation.messaging.model import MessageCreate
from segmentation.people.evaluable import Evaluator
from segmentation.segments import service as segment_service
from segmentation.storage import attributes, deliveries, messages, queues
from segmentation.storage import segments as segment_store

from tests.support.messaging import Stack, jobs_in, load_handler, put_user, run_queue, sent_emails
from tests.support.messaging import sim_time as sim_time
from tests.support.messaging import stack as stack

fanout_handler = load_handler("fanout")
sender_handler = load_handler("sender")


def new_message(kind: str, audience: dict[str, Any], channel: str = "email") -> str:
    body = {
        "name": f"{kind} test",
        "type": kind,
        "channel": channel,
        "audience": audience,
        "subject": "Hello {{ user.name | default: 'there' }}",
        "body": "Plan: {{ user.custom_attributes.plan }}",
    }
    return service.create(MessageCreate.model_validate(body), clock.now()).id


def deliver_everything(stack: Stack) -> None:
    run_queue(stack.fanout_queue, fanout_handler)
    run_queue(stack.delivery_queue, sender_handler)


def recipients() -> list[str]:
    return sorted(address for m in sent_emails() for address in m.destinations["ToAddresses"])


def trial_user(stack: Stack, user_id: str, plan: str = "trial") -> dict[str, Any]:
    return put_user(stack, user_id, email=f"{user_id}@example.com", custom_attributes={"plan": plan})


def make_trial_segment() -> str:
    attributes.register("users", {"plan": "string"})
    record = segment_service.create_segment(
        "Trial", "users", {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}, clock.now()
    )
    return record.id


def test_a_manual_send_pages_through_a_filter_audience_and_reaches_each_user_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(7):
        trial_user(stack, f"u{index}", plan="trial" if index % 3 else "paid")
    from segmentation.storage import attributes

    attributes.register("users", {"plan": "string"})
    monkeypatch.setattr(fanout, "PAGE_SIZE", 2)  # 7 users: four pages, each its own job
    message_id = new_message(
        "manual", {"filter": {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}}
    )

    sent = service.send(message_id, clock.now())
    assert sent.state == "sent" and sent.sent_at is not None
    assert len(jobs_in(stack.fanout_queue)) == 1

    first_page = fanout.run_job(FanoutJob.model_validate(jobs_in(stack.fanout_queue)[0]), page_size=2)
    assert first_page.next_cursor is not None  # more pages follow, as new jobs

    deliver_everything(stack)
    expected = sorted(f"u{i}@example.com" for i in range(7) if i % 3)
    assert recipients() == expected
    stats = service.require(message_id).stats
    assert stats == {
        "queued": 0,
        "sent": len(expected),
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }

    with pytest.raises(errors.Conflict):
        service.send(message_id, clock.now())
    trial_user(stack, "late")  # matches only after the send: never gets it
    deliver_everything(stack)
    assert "late@example.com" not in recipients()


def test_a_redelivered_fanout_job_sends_nobody_twice(stack: Stack) -> None:
    trial_user(stack, "u1")
    trial_user(stack, "u2")
    from segmentation.storage import attributes

    attributes.register("users", {"plan": "string"})
    message_id = new_message(
        "manual", {"filter": {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}}
    )
    service.send(message_id, clock.now())
    job = FanoutJob.model_validate(jobs_in(stack.fanout_queue)[0])
    fanout.run_job(job)
    fanout.run_job(job)  # SQS gave the same job again
    deliver_everything(stack)
    assert recipients() == ["u1@example.com", "u2@example.com"]


def test_a_manual_send_to_a_segment_uses_its_stored_members(stack: Stack) -> None:
    trial_user(stack, "u1")
    trial_user(stack, "u2", plan="paid")
    segment_id = make_trial_segment()
    message_id = new_message("manual", {"segment_id": segment_id})
    service.send(message_id, clock.now())
    deliver_everything(stack)
    assert recipients() == ["u1@example.com"]
    assert [d["user_id"] for d in service.list_deliveries(message_id, 50, None)[0]] == ["u1"]


def _upkeep(stack: Stack, user_id: str, **changes: Any) -> None:
    """A change to a user, then what the stream consumer does with it: upkeep's refresh moves
    the stored membership and calls auto messaging's hook."""
    from segmentation.upkeep import refresh

    table = stack.table("USERS_TABLE")
    record = table.get_item(Key={"user_id": user_id})["Item"]
    record.update(changes)
    record["rev"] = record.get("rev", 0) + 1
    table.put_item(Item=record)
    upkeep = refresh.RefreshRun()
    upkeep.refresh("users", record, clock.now())
    upkeep.finish()


def test_auto_message_reaches_current_and_later_matchers_once_ever(stack: Stack) -> None:
    trial_user(stack, "early")
    trial_user(stack, "later", plan="paid")
    segment_id = make_trial_segment()
    message_id = new_message("auto", {"segment_id": segment_id})

    assert service.put_live(message_id, clock.now()).state == "live"
    deliver_everything(stack)
    assert recipients() == ["early@example.com"]

    # "later" comes to match: upkeep's hook claims and queues it.
    _upkeep(stack, "later", custom_attributes={"plan": "trial"})
    deliver_everything(stack)
    assert recipients() == ["early@example.com", "later@example.com"]

    # leaves and re-enters: no second message
    _upkeep(stack, "later", custom_attributes={"plan": "paid"})
    _upkeep(stack, "later", custom_attributes={"plan": "trial"})
    deliver_everything(stack)
    assert recipients() == ["early@example.com", "later@example.com"]

    # pause, a new matcher meanwhile gets nothing; resume: they get it, the others not again
    assert service.pause(message_id, clock.now()).state == "paused"
    trial_user(stack, "during_pause", plan="paid")
    _upkeep(stack, "during_pause", custom_attributes={"plan": "trial"})
    deliver_everything(stack)
    assert "during_pause@example.com" not in recipients()

    service.put_live(message_id, clock.now())
    deliver_everything(stack)
    assert recipients() == ["during_pause@example.com", "early@example.com", "later@example.com"]
    assert service.require(message_id).stats["sent"] == 3


def test_the_hook_costs_no_aws_call_when_nothing_is_live_and_the_cache_is_fresh(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial_user(stack, "u1")
    workspace = definitions.load_workspace()
    record = stack.table("USERS_TABLE").get_item(Key={"user_id": "u1"})["Item"]
    auto.queue_auto_messages(workspace, record, clock.now(), None)  # fills the cache

    def no_calls(*_: Any, **__: Any) -> Any:
        raise AssertionError("an AWS call was made")

    monkeypatch.setattr(messages, "live_auto_state", no_calls)
    monkeypatch.setattr(deliveries, "claim", no_calls)
    for _ in range(100):
        auto.queue_auto_messages(workspace, record, clock.now(), None)


def test_a_user_already_in_the_segment_costs_no_claim(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    trial_user(stack, "u1")
    segment_id = make_trial_segment()
    message_id = new_message("auto", {"segment_id": segment_id})
    service.put_live(message_id, clock.now())
    workspace = definitions.load_workspace()
    record = stack.table("USERS_TABLE").get_item(Key={"user_id": "u1"})["Item"]
    claims: list[str] = []

    def claim(message_id: str, user_id: str, **_: Any) -> deliveries.Claim:
        claims.append(user_id)
        return deliveries.Claim.ALREADY_DONE

    monkeypatch.setattr(deliveries, "claim", claim)
    auto.queue_auto_messages(Evaluator(workspace), record, clock.now(), frozenset({segment_id}))
    assert claims == []
    auto.queue_auto_messages(Evaluator(workspace), record, clock.now(), frozenset())
    assert claims == ["u1"]


def test_deleting_a_message_stops_what_is_queued(stack: Stack) -> None:
    trial_user(stack, "u1")
    from segmentation.storage import attributes

    attributes.register("users", {"plan": "string"})
    message_id = new_message(
        "manual", {"filter": {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}}
    )
    service.send(message_id, clock.now())
    run_queue(stack.fanout_queue, fanout_handler)
    service.delete(message_id, clock.now())
    run_queue(stack.delivery_queue, sender_handler)
    assert sent_emails() == []
    assert (deliveries.get(message_id, "u1") or {}).get("reason") == "message_deleted"
    with pytest.raises(errors.NotFound):
        service.require(message_id)


def test_segments_named_by_live_or_paused_messages_are_reported(stack: Stack) -> None:
    trial_user(stack, "u1")
    segment_id = make_trial_segment()
    draft = new_message("auto", {"segment_id": segment_id})
    by_filter = new_message("auto", {"filter": {"field": "segment", "op": "in_segment", "value": segment_id}})
    assert segment_service.dependent_messages(segment_id) == []
    service.put_live(draft, clock.now())
    service.put_live(by_filter, clock.now())
    assert segment_service.dependent_messages(segment_id) == sorted([draft, by_filter])
    service.pause(draft, clock.now())
    assert segment_service.dependent_messages(segment_id) == sorted([draft, by_filter])
    service.delete(draft, clock.now())
    service.delete(by_filter, clock.now())
    assert segment_service.dependent_messages(segment_id) == []


def test_numbers_render_as_json_numbers(stack: Stack) -> None:
    put_user(stack, "u1", email="u1@example.com", session_count=Decimal(12))
    from segmentation.messaging import render_context

    record = stack.table("USERS_TABLE").get_item(Key={"user_id": "u1"})["Item"]
    seen = render_context.context(record, None)["user"]
    assert seen["session_count"] == 12 and type(seen["session_count"]) is int


def test_a_live_message_that_cannot_be_evaluated_is_skipped_and_upkeep_goes_on(stack: Stack) -> None:
    segment_id = make_trial_segment()
    broken = new_message("auto", {"filter": {"field": "segment", "op": "in_segment", "value": segment_id}})
    fine = new_message("auto", {"filter": {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}})
    service.put_live(broken, clock.now())
    service.put_live(fine, clock.now())
    deliver_everything(stack)
    # The segment disappears behind the service's back (a bug, a restore, a hand edit).
    record = definitions.get(segment_id, check_now=True)
    assert record is not None
    with definitions.changing():
        segment_store.delete(record, expected_version=definitions.version(check_now=True))
    health.take_skipped()

    put_user(stack, "u1", email="u1@example.com", custom_attributes={"plan": "trial"})
    _upkeep(stack, "u1", signed_up_at=Decimal(str(clock.now())))
    deliver_everything(stack)
    assert recipients() == ["u1@example.com"]  # the message that can be evaluated went out
    assert "new" in (
        stack.table("USERS_TABLE").get_item(Key={"user_id": "u1"})["Item"].get("segments") or set()
    )
    assert health.take_skipped() >= 1


def test_fan_out_stays_a_few_minutes_of_sending_ahead_of_the_senders(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, sim_time: Any
) -> None:
    """At 2 emails a second and 5 seconds ahead, the delivery queue never holds much more than
    10 jobs (a page may overshoot), however large the audience; everyone still gets it once."""
    monkeypatch.setenv("SES_MAX_SEND_RATE", "2")
    monkeypatch.setattr(fanout, "AHEAD_SECONDS", 5)
    monkeypatch.setattr(fanout, "MIN_BACKLOG", 1)
    monkeypatch.setattr(fanout, "PAGE_SIZE", 4)
    from segmentation.settings import get_settings

    get_settings.cache_clear()
    for i in range(30):
        trial_user(stack, f"u{i:02d}")
    message_id = new_message("manual", {"filter": {"field": "email", "op": "exists"}})
    service.send(message_id, clock.now())
    most_waiting = 0
    for _ in range(400):
        run_queue(stack.fanout_queue, fanout_handler, rounds=1)
        waiting = queues.delivery_backlog()  # (peeking would count as receives)
        most_waiting = max(most_waiting, waiting)
        run_queue(stack.delivery_queue, sender_handler, rounds=1, batch_size=2)
        if len(recipients()) == 30:
            break
        sim_time.shift(1)
    assert recipients() == sorted(f"u{i:02d}@example.com" for i in range(30))
    assert most_waiting <= 10 + 4
    assert messages.get(message_id)["fanned_out_at"] is not None
