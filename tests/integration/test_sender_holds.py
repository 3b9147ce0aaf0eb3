"""SES refusing for the whole account holds the message, never fails its users, and resume sends
what waits, once each; a refusal of one recipient fails that one delivery only."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from segmentation import clock, errors
from segmentation.messaging import service
from segmentation.storage import aws, deliveries, messages

from infra.local import outbox
from tests.integration.test_sender import _patch_ses, handler, make_message, queue_for, stats, status
from tests.support.messaging import Stack, jobs_in, load_handler, put_user, run_queue, sent_emails
from tests.support.messaging import stack as stack

fanout = load_handler("fanout")
SENDER = "no-reply@example.com"


def _client_error(code: str, message: str, status_code: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status_code}},
        "SendEmail",
    )


class _RefusingSes:
    """The real sesv2 client, but every send raises `error` while `refusing`."""

    def __init__(self, real: Any, error: Exception):
        self.real, self.error, self.refusing, self.calls = real, error, True, 0

    def get_account(self) -> Any:
        return self.real.get_account()

    def send_email(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.refusing:
            raise self.error
        return self.real.send_email(**kwargs)


ACCOUNT_REFUSALS = [
    (_client_error("SendingPausedException", "Sending is paused for this account."), "sending_paused"),
    (_client_error("AccountSuspendedException", "Account suspended."), "account_suspended"),
    (
        _client_error("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified."),
        "mail_from_domain_not_verified",
    ),
    (
        _client_error(
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region "
            f"US-EAST-1: {SENDER}",
        ),
        "sender_not_verified",
    ),
    (_client_error("LimitExceededException", "Daily message quota exceeded."), "daily_quota_exceeded"),
    (_client_error("AccessDeniedException", "not authorized to perform ses:SendEmail", 403), "access_denied"),
    (NoCredentialsError(), "no_credentials"),
]


def _users(stack: Stack, count: int) -> list[str]:
    ids = [f"u{i}" for i in range(count)]
    for user_id in ids:
        put_user(stack, user_id, email=f"{user_id}@example.com")
    return ids


def _parked(message_id: str) -> list[str]:
    items, _ = deliveries.in_stage(
        deliveries.stage_of(deliveries.PARKED, message_id, ""), before=None, limit=100
    )
    return sorted(str(item["user_id"]) for item in items)


@pytest.mark.parametrize(("error", "code"), ACCOUNT_REFUSALS, ids=[c for _, c in ACCOUNT_REFUSALS])
def test_an_account_wide_refusal_holds_the_message_and_fails_nobody(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, error: Exception, code: str
) -> None:
    users = _users(stack, 4)
    message_id = make_message()
    queue_for(message_id, *users)
    ses = _RefusingSes(aws.client("sesv2"), error)
    _patch_ses(monkeypatch, ses)

    run_queue(stack.delivery_queue, handler)

    assert ses.calls == 1, "one refusal holds the message: the other jobs do not try SES"
    held = service.require(message_id).to_json()
    assert held["state"] == "sent"
    assert held["paused_reason"]["code"] == code and held["paused_reason"]["at"].endswith("Z")
    assert all(status(message_id, u) == ("queued", None) for u in users)
    assert _parked(message_id) == users
    assert stats(message_id) == {"queued": 4, "sent": 0, "skipped": 0, "failed": 0}
    assert jobs_in(stack.delivery_queue) == [] and sent_emails() == []

    ses.refusing = False
    assert service.resume(message_id, clock.now()).paused_reason is None
    run_queue(stack.fanout_queue, fanout)
    run_queue(stack.delivery_queue, handler)
    assert sorted(m.destinations["ToAddresses"][0] for m in sent_emails()) == [
        f"{u}@example.com" for u in users
    ]
    assert stats(message_id) == {"queued": 0, "sent": 4, "skipped": 0, "failed": 0}
    assert _parked(message_id) == []


def test_a_held_auto_message_is_paused_and_resume_puts_it_live(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _users(stack, 2)
    message_id = make_message(kind="auto")
    assert (
        messages.change_state(
            message_id, to_state="live", from_states=("live",), now=clock.now(), live_set=True
        )
        is None
    )
    queue_for(message_id, *users, require_state="live")
    ses = _RefusingSes(aws.client("sesv2"), _client_error("SendingPausedException", "paused"))
    _patch_ses(monkeypatch, ses)
    run_queue(stack.delivery_queue, handler)

    paused = service.require(message_id)
    assert paused.state == "paused" and paused.paused_reason is not None
    assert message_id not in messages.live_auto_state()[1]
    with pytest.raises(errors.Conflict) as refused:
        service.put_live(message_id, clock.now())
    assert refused.value.code == "message_held"

    ses.refusing = False
    resumed = service.resume(message_id, clock.now())
    assert resumed.state == "live" and message_id in messages.live_auto_state()[1]
    run_queue(stack.fanout_queue, fanout)
    run_queue(stack.delivery_queue, handler)
    assert len(sent_emails()) == 2 and stats(message_id)["sent"] == 2


def test_resume_of_a_message_that_is_not_held_is_a_conflict(stack: Stack) -> None:
    message_id = make_message()
    with pytest.raises(errors.Conflict) as refused:
        service.resume(message_id, clock.now())
    assert refused.value.code == "nothing_to_resume"


def test_a_job_still_in_the_queue_after_resume_sends_once_and_nothing_is_queued_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs that had not reached a sender when the message was held are still on their way:
    resume queues only the parked deliveries, so no delivery gets a second job."""
    users = _users(stack, 3)
    message_id = make_message()
    queue_for(message_id, *users)
    ses = _RefusingSes(aws.client("sesv2"), _client_error("SendingPausedException", "paused"))
    _patch_ses(monkeypatch, ses)
    run_queue(stack.delivery_queue, handler, rounds=1, batch_size=1)  # one job: it holds the message
    assert len(_parked(message_id)) == 1 and len(jobs_in(stack.delivery_queue)) == 2

    ses.refusing = False
    service.resume(message_id, clock.now())
    run_queue(stack.fanout_queue, fanout)
    assert sorted(j["user_id"] for j in jobs_in(stack.delivery_queue)) == users  # one job each
    run_queue(stack.delivery_queue, handler)
    assert len(sent_emails()) == 3 and stats(message_id)["sent"] == 3


def test_deleting_a_held_message_records_its_waiting_deliveries_as_skipped(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _users(stack, 3)
    message_id = make_message()
    queue_for(message_id, *users)
    _patch_ses(monkeypatch, _RefusingSes(aws.client("sesv2"), _client_error("SendingPausedException", "x")))
    run_queue(stack.delivery_queue, handler)
    service.delete(message_id, clock.now())
    run_queue(stack.fanout_queue, fanout)
    assert all(status(message_id, u) == ("skipped", "message_deleted") for u in users)
    assert stats(message_id) == {"queued": 0, "sent": 0, "skipped": 3, "failed": 0}


def test_one_recipient_refused_fails_that_delivery_only(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "bad", email="not-an-address@")
    put_user(stack, "good", email="good@example.com")
    message_id = make_message()
    queue_for(message_id, "bad", "good")
    real = aws.client("sesv2")

    class _RefusesBad(_RefusingSes):
        def send_email(self, **kwargs: Any) -> Any:
            if kwargs["Destination"]["ToAddresses"] == ["not-an-address@"]:
                raise _client_error("BadRequestException", "Missing final '@domain'")
            return self.real.send_email(**kwargs)

    _patch_ses(monkeypatch, _RefusesBad(real, RuntimeError()))
    run_queue(stack.delivery_queue, handler)
    assert status(message_id, "bad") == ("failed", "ses_bad_request")
    assert status(message_id, "good") == ("sent", None)
    assert service.require(message_id).paused_reason is None


def test_the_local_ses_refuses_while_paused_and_the_message_is_held(stack: Stack) -> None:
    """The local stack's SES (infra/local/outbox.py) answers as a paused account does."""
    users = _users(stack, 2)
    message_id = make_message()
    queue_for(message_id, *users)
    outbox.configure(paused=True)
    run_queue(stack.delivery_queue, handler)
    assert (service.require(message_id).paused_reason or {}).get("code") == "sending_paused"
    outbox.configure(paused=False)
    service.resume(message_id, clock.now())
    run_queue(stack.fanout_queue, fanout)
    run_queue(stack.delivery_queue, handler)
    assert stats(message_id)["sent"] == 2
