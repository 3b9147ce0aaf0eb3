"""SenderFunction under moto: each (message, user) goes out at most once, whatever SQS or SES do."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from segmentation import clock, errors
from segmentation.jobs import DeliveryJob
from segmentation.messaging import sender
from segmentation.messaging.model import Audience, Message, new_message_id
from segmentation.storage import aws, deliveries, email, inbox, messages, queues

from tests.support.client_calls import operations_called
from tests.support.messaging import (
    Stack,
    jobs_in,
    load_handler,
    put_user,
    receive,
    release,
    run_queue,
    sent_emails,
)
from tests.support.messaging import sim_time as sim_time
from tests.support.messaging import stack as stack
from tests.support.moto_atomic import atomic_moto_writes

handler = load_handler("sender")


def make_message(
    *,
    channel: str = "email",
    kind: str = "manual",
    subject: str | None = "Hi {{ user.name }}",
    body: str = "Hello",
) -> str:
    now = clock.now()
    message = Message(
        id=new_message_id(),
        name="test",
        type=kind,
        channel=channel,
        audience=Audience(None, {"field": "email", "op": "exists"}),
        subject=subject,
        body=body,
        state="draft",
        stats={},
        created_at=now,
        updated_at=now,
        sent_at=None,
    )
    messages.put_new(message.to_item())
    active = "sent" if kind == "manual" else "live"
    assert (
        messages.change_state(message.id, to_state=active, from_states=("draft",), now=now, live_set=None)
        is None
    )
    return message.id


def queue_for(message_id: str, *user_ids: str, require_state: str = "sent") -> None:
    for user_id in user_ids:
        assert deliveries.claim(message_id, user_id, now=clock.now(), require_state=require_state) is (
            deliveries.Claim.CLAIMED
        )
    queues.send_deliveries((message_id, u) for u in user_ids)


def stats(message_id: str) -> dict[str, int]:
    item = messages.get(message_id) or {}
    return {name: int(item.get(f"stat_{name}", 0)) for name in ("queued", "sent", "skipped", "failed")}


def status(message_id: str, user_id: str) -> tuple[str, str | None]:
    item = deliveries.get(message_id, user_id) or {}
    return item.get("status", "missing"), item.get("reason")


def test_an_email_is_rendered_and_sent_once_even_when_sqs_delivers_the_job_twice(stack: Stack) -> None:
    put_user(stack, "u1", email="ada@example.com", name="Ada")
    message_id = make_message(
        subject="Welcome, {{ user.name }}", body="Hi {{ user.name | default: 'there' }}!"
    )
    queue_for(message_id, "u1")
    queues.send_deliveries([(message_id, "u1")])  # the same job again

    run_queue(stack.delivery_queue, handler)

    emails = sent_emails()
    assert len(emails) == 1
    assert emails[0].destinations["ToAddresses"] == ["ada@example.com"]
    assert emails[0].subject == "Welcome, Ada"
    assert "Hi Ada!" in emails[0].body
    assert status(message_id, "u1") == ("sent", None)
    assert stats(message_id) == {"queued": 0, "sent": 1, "skipped": 0, "failed": 0}
    assert jobs_in(stack.delivery_queue) == []


def test_default_filter_fills_in_a_missing_name(stack: Stack) -> None:
    put_user(stack, "u1", email="x@example.com")
    message_id = make_message(subject="News", body="Hi {{ user.name | default: 'there' }}")
    queue_for(message_id, "u1")
    run_queue(stack.delivery_queue, handler)
    assert "Hi there" in sent_emails()[0].body


def test_two_workers_racing_for_one_delivery_send_one_email(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_moto_writes(monkeypatch)
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def work() -> None:
        start.wait()
        try:
            outcomes.append(sender.deliver(DeliveryJob(message_id=message_id, user_id="u1"), clock.now()))
        except errors.Retryable:
            outcomes.append("retry")

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[-1] == "sent" and outcomes.count("sent") == 1
    assert len(sent_emails()) == 1
    assert stats(message_id)["sent"] == 1


class _FlakySes:
    """Wraps the real sesv2 client: the first `fail_times` sends raise `code`."""

    def __init__(self, real: Any, code: str, fail_times: int, status: int = 400):
        self.real, self.code, self.left, self.status, self.calls = real, code, fail_times, status, 0

    def get_account(self) -> Any:
        return self.real.get_account()

    def send_email(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            response: Any = {
                "Error": {"Code": self.code, "Message": "injected"},
                "ResponseMetadata": {"HTTPStatusCode": self.status},
            }
            raise ClientError(response, "SendEmail")
        return self.real.send_email(**kwargs)


def _patch_ses(monkeypatch: pytest.MonkeyPatch, fake: Any) -> None:
    real_client = aws.client

    def client(service: str) -> Any:
        return fake if service == "sesv2" else real_client(service)

    monkeypatch.setattr(email, "aws", SimpleNamespace(client=client))


def test_ses_throttling_puts_the_delivery_back_with_a_new_job_and_it_is_sent_once_later(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, sim_time: Any
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    fake = _FlakySes(aws.client("sesv2"), "TooManyRequestsException", fail_times=1, status=429)
    _patch_ses(monkeypatch, fake)

    handled = run_queue(stack.delivery_queue, handler, rounds=1)
    assert handled == 1  # the job in hand is done: a new one, delayed, takes its place
    assert status(message_id, "u1") == ("queued", None)
    assert sent_emails() == [] and stats(message_id)["sent"] == 0
    assert run_queue(stack.delivery_queue, handler) == 0  # not due yet

    sim_time.shift(sender.MAX_RETRY_DELAY_SECONDS)
    run_queue(stack.delivery_queue, handler)
    assert len(sent_emails()) == 1
    assert fake.calls == 2
    assert status(message_id, "u1") == ("sent", None)
    assert stats(message_id) == {"queued": 0, "sent": 1, "skipped": 0, "failed": 0}


def test_throttling_however_long_fails_nobody_and_spends_no_receives(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, sim_time: Any
) -> None:
    """SQS counts receives towards the dead-letter queue; a throttled job never adds to them."""
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    fake = _FlakySes(aws.client("sesv2"), "TooManyRequestsException", fail_times=12, status=429)
    _patch_ses(monkeypatch, fake)
    receives: list[int] = []
    for _ in range(40):
        waiting = receive(stack.delivery_queue)
        receives += [int(m["Attributes"]["ApproximateReceiveCount"]) for m in waiting]
        release(stack.delivery_queue, waiting)
        run_queue(stack.delivery_queue, handler)
        if status(message_id, "u1")[0] == "sent":
            break
        sim_time.shift(sender.MAX_RETRY_DELAY_SECONDS)
    assert fake.calls == 13 and len(sent_emails()) == 1
    assert status(message_id, "u1") == ("sent", None)
    assert set(receives) == {1}, "every job the sender saw was a fresh one"
    assert stats(message_id) == {"queued": 0, "sent": 1, "skipped": 0, "failed": 0}


def test_a_permanent_refusal_is_recorded_as_failed_and_not_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="bad@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    fake = _FlakySes(aws.client("sesv2"), "MessageRejected", fail_times=5)
    _patch_ses(monkeypatch, fake)

    run_queue(stack.delivery_queue, handler)

    assert fake.calls == 1
    assert status(message_id, "u1") == ("failed", "ses_message_rejected")
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 0, "failed": 1}
    assert jobs_in(stack.delivery_queue) == []


def test_a_crash_after_ses_accepted_never_sends_again(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    real_send = email.send_email

    def send_then_crash(*args: Any, **kwargs: Any) -> str:
        real_send(*args, **kwargs)
        raise RuntimeError("the process died before recording the send")

    monkeypatch.setattr(email, "send_email", send_then_crash)
    run_queue(stack.delivery_queue, handler, rounds=1)
    assert len(sent_emails()) == 1
    assert status(message_id, "u1")[0] == "sending"

    monkeypatch.setattr(email, "send_email", real_send)
    run_queue(
        stack.delivery_queue, handler, rounds=1
    )  # redelivered at once: another worker may still be on it
    assert len(sent_emails()) == 1
    assert status(message_id, "u1")[0] == "sending"

    monkeypatch.setattr(clock, "_offset_seconds", sender.STALE_SENDING_SECONDS + 1)
    run_queue(stack.delivery_queue, handler)
    assert len(sent_emails()) == 1
    assert status(message_id, "u1") == ("failed", "outcome_unknown")
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 0, "failed": 1}
    assert jobs_in(stack.delivery_queue) == []


def test_a_failure_before_the_send_puts_the_delivery_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    from segmentation.storage import users as user_store

    real_get = user_store.get
    monkeypatch.setattr(
        user_store, "get", lambda user_id: (_ for _ in ()).throw(errors.Retryable("throttled"))
    )
    run_queue(stack.delivery_queue, handler, rounds=1)
    assert status(message_id, "u1") == ("queued", None)

    monkeypatch.setattr(user_store, "get", real_get)
    run_queue(stack.delivery_queue, handler)
    assert len(sent_emails()) == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({}, "no_email"), ({"email": "a@example.com", "unsubscribed_from_emails": True}, "unsubscribed")],
)
def test_users_who_cannot_get_email_are_skipped(stack: Stack, fields: dict[str, Any], reason: str) -> None:
    put_user(stack, "u1", **fields)
    message_id = make_message()
    queue_for(message_id, "u1")
    run_queue(stack.delivery_queue, handler)
    assert sent_emails() == []
    assert status(message_id, "u1") == ("skipped", reason)
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 1, "failed": 0}


def test_a_deleted_user_is_skipped(stack: Stack) -> None:
    message_id = make_message()
    queue_for(message_id, "ghost")
    run_queue(stack.delivery_queue, handler)
    assert status(message_id, "ghost") == ("skipped", "user_deleted")


@pytest.mark.parametrize(
    ("to_state", "reason"), [("paused", "message_paused"), ("deleted", "message_deleted")]
)
def test_nothing_goes_out_once_the_message_is_paused_or_deleted(
    stack: Stack, to_state: str, reason: str
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message(kind="auto")
    queue_for(message_id, "u1", require_state="live")
    assert (
        messages.change_state(message_id, to_state=to_state, from_states=("live",), now=clock.now()) is None
    )

    run_queue(stack.delivery_queue, handler)

    assert sent_emails() == []
    assert status(message_id, "u1") == ("skipped", reason)
    assert stats(message_id)["skipped"] == 1


def test_a_job_for_an_unclaimed_delivery_sends_nothing(stack: Stack) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queues.send_deliveries([(message_id, "u1")])
    run_queue(stack.delivery_queue, handler)
    assert sent_emails() == []
    assert deliveries.get(message_id, "u1") is None


def test_in_app_messages_land_in_the_inbox_newest_first(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", name="Ada", company_ids=["acme"])
    stack.table("COMPANIES_TABLE").put_item(Item={"company_id": "acme", "name": "Acme", "size": Decimal(40)})
    first = make_message(channel="in_app", subject=None, body="Hello {{ user.name }} of {{ company.name }}")
    second = make_message(channel="in_app", subject="Tip", body="{{ company.size | plus: 2 }} seats")
    queue_for(first, "u1")
    run_queue(stack.delivery_queue, handler)
    monkeypatch.setattr(clock, "_offset_seconds", 10.0)
    queue_for(second, "u1")
    queues.send_deliveries([(second, "u1")])  # a duplicate job writes no second entry
    run_queue(stack.delivery_queue, handler)

    listed = inbox.list_for_user("u1")
    assert [m["message_id"] for m in listed] == [second, first]
    assert listed[0]["subject"] == "Tip" and listed[0]["body"] == "42 seats"
    assert listed[1]["subject"] is None and listed[1]["body"] == "Hello Ada of Acme"
    assert listed[0]["delivered_at"].endswith("Z")
    assert sent_emails() == []
    assert status(first, "u1") == ("sent", None)
    assert inbox.list_for_user("someone-else") == []


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Hi", "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}"),
        # The template, its inner bound in a variable (creation refuses the literal one).
        (
            "Hi",
            '{% assign n = 9999 %}{% for i in (1..10000) %}{% assign r = (1..n) | join: "," %}{% endfor %}',
        ),
        ("{% assign n = 100000000 %}{% if (1..n) contains 'x' %}{% endif %}", "Hello"),
    ],
)
def test_a_template_over_its_budget_fails_its_delivery_with_template_budget(
    stack: Stack, subject: str, body: str
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message(subject=subject, body=body)
    queue_for(message_id, "u1")
    assert sender.deliver(DeliveryJob(message_id=message_id, user_id="u1"), clock.now()) == (
        "failed:template_budget"
    )
    assert status(message_id, "u1") == ("failed", "template_budget")
    assert stats(message_id)["failed"] == 1
    assert sent_emails() == []


def test_a_template_that_fails_otherwise_keeps_its_template_error_reason(stack: Stack) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message(body="{{ 7 | divided_by: 0 }}")
    queue_for(message_id, "u1")
    run_queue(stack.delivery_queue, handler)
    state, reason = status(message_id, "u1")
    assert state == "failed" and reason == "template_error: divided_by: can't divide by 0"
    assert sent_emails() == []


def test_an_email_costs_four_aws_calls_once_the_definition_is_cached(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    put_user(stack, "u2", email="b@example.com")
    message_id = make_message()
    queue_for(message_id, "u1", "u2")
    sender.deliver(DeliveryJob(message_id=message_id, user_id="u1"), clock.now())  # warms the cache

    with operations_called(aws.dynamodb().meta.client, aws.client("sesv2")) as calls:
        assert sender.deliver(DeliveryJob(message_id=message_id, user_id="u2"), clock.now()) == "sent"
    assert calls == ["TransactWriteItems", "GetItem", "SendEmail", "TransactWriteItems"]


class _SesThat:
    """Wraps the real sesv2 client: the first send sends for real (or not) and then raises."""

    def __init__(self, real: Any, error: Exception, sends_first: bool):
        self.real, self.error, self.sends_first, self.calls = real, error, sends_first, 0

    def get_account(self) -> Any:
        return self.real.get_account()

    def send_email(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            if self.sends_first:
                self.real.send_email(**kwargs)
            raise self.error
        return self.real.send_email(**kwargs)


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ClientError(
            {"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "SendEmail"
        ),
    ],
)
def test_an_answer_lost_after_the_request_went_out_is_recorded_and_never_sent_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    fake = _SesThat(aws.client("sesv2"), error, sends_first=True)
    _patch_ses(monkeypatch, fake)
    run_queue(stack.delivery_queue, handler)
    queues.send_deliveries([(message_id, "u1")])  # SQS delivers the job again, as it may
    run_queue(stack.delivery_queue, handler)
    assert fake.calls == 1 and len(sent_emails()) == 1
    assert status(message_id, "u1") == ("failed", "outcome_unknown")
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 0, "failed": 1}


@pytest.mark.parametrize(
    "error",
    [
        ConnectTimeoutError(endpoint_url="https://email"),
        EndpointConnectionError(endpoint_url="https://email"),
        ProxyConnectionError(proxy_url="https://proxy"),
        SSLError(endpoint_url="https://email", error="handshake failed"),
    ],
)
def test_a_connection_that_was_never_made_is_retried_and_sent_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, sim_time: Any, error: Exception
) -> None:
    put_user(stack, "u1", email="ada@example.com")
    message_id = make_message()
    queue_for(message_id, "u1")
    fake = _SesThat(aws.client("sesv2"), error, sends_first=False)
    _patch_ses(monkeypatch, fake)
    run_queue(stack.delivery_queue, handler, rounds=1)
    assert status(message_id, "u1") == ("queued", None)
    sim_time.shift(sender.MAX_RETRY_DELAY_SECONDS)
    run_queue(stack.delivery_queue, handler)
    assert fake.calls == 2 and len(sent_emails()) == 1
    assert status(message_id, "u1") == ("sent", None)


def test_the_ses_client_never_retries_on_its_own(stack: Stack) -> None:
    assert aws.client("sesv2").meta.config.retries["total_max_attempts"] == 1  # the first try only
    assert aws.client("sqs").meta.config.retries["total_max_attempts"] > 1
