"""EmailFeedbackFunction under moto: SES's delivery, bounce and complaint events (as EventBridge
hands them over) applied to the deliveries, the message's stats and the users, each once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.messaging import feedback, ses_events
from segmentation.people import users as people
from segmentation.storage import aws, deliveries, dynamo
from segmentation.storage import users as user_store

from tests.support.apigw import call
from tests.support.client_calls import operations_called
from tests.support.messaging import FakeContext, Stack, load_handler, run_queue, sent_emails
from tests.support.messaging import stack as stack
from tests.support.moto_atomic import atomic_moto_writes

handler = load_handler("email_feedback")
fanout = load_handler("fanout")
sender_handler = load_handler("sender")
DOMAIN = "feedback.example"


@pytest.fixture
def ready(stack: Stack, keys: dict[str, str]) -> Iterator[dict[str, str]]:
    """The messaging stack and an API key of each role."""
    yield keys


def upsert(keys: dict[str, str], user_id: str, **fields: Any) -> dict[str, Any]:
    reply = call("POST", "/v1/users", key=keys["ingest"], body={"user_id": user_id, **fields})
    assert reply.status in (200, 201), reply.body
    return dict(reply.body)


def user(keys: dict[str, str], user_id: str) -> dict[str, Any]:
    reply = call("GET", f"/v1/users/{user_id}", key=keys["read"])
    assert reply.status == 200, reply.body
    return dict(reply.body)


def send(stack: Stack, keys: dict[str, str], *user_ids: str) -> str:
    """A manual email to these users, through the API, fan-out and sender: its id."""
    body = {
        "name": "News",
        "type": "manual",
        "channel": "email",
        "audience": {"filter": {"field": "user_id", "op": "in", "value": list(user_ids)}},
        "subject": "Hi {{ user.name }}",
        "body": "Hello",
    }
    created = call("POST", "/v1/messages", key=keys["admin"], body=body)
    assert created.status == 201, created.body
    message_id = str(created.body["id"])
    assert call("POST", f"/v1/messages/{message_id}/send", key=keys["admin"]).status == 202
    run_queue(stack.fanout_queue, fanout)
    run_queue(stack.delivery_queue, sender_handler)
    return message_id


def message(keys: dict[str, str], message_id: str) -> dict[str, Any]:
    return dict(call("GET", f"/v1/messages/{message_id}", key=keys["read"]).body)


def stats(keys: dict[str, str], message_id: str) -> dict[str, int]:
    found = message(keys, message_id)["stats"]
    return {kind: found[kind] for kind in ("sent", "skipped", "delivered", "bounced", "complained")}


def delivery_rows(keys: dict[str, str], message_id: str) -> dict[str, dict[str, Any]]:
    reply = call("GET", f"/v1/messages/{message_id}/deliveries", key=keys["read"])
    assert reply.status == 200, reply.body
    return {row["user_id"]: row for row in reply.body["data"]}


def ses_id(message_id: str, user_id: str) -> str:
    return str((deliveries.get(message_id, user_id) or {})["ses_message_id"])


def ses_event(
    kind: str,
    ses_message_id: str,
    named: list[str],
    *,
    destination: list[str] | None = None,
    bounce_type: str = "Permanent",
    sent_at: str = "2020-01-01T00:00:00.000Z",
) -> dict[str, Any]:
    """An SES event as EventBridge delivers it: `named` are the recipients it is about,
    `destination` every recipient of the email (default: the named ones)."""
    detail: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": sent_at,
            "source": "no-reply@example.com",
            "messageId": ses_message_id,
            "destination": destination or named,
            "tags": {"ses:configuration-set": ["EmailConfigurationSet"]},
        },
    }
    if kind == "Bounce":
        detail["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": a, "action": "failed", "status": "5.1.1"} for a in named],
        }
        detail_type = "Email Bounced"
    elif kind == "Complaint":
        detail["complaint"] = {"complainedRecipients": [{"emailAddress": a} for a in named]}
        detail_type = "Email Complaint Received"
    else:
        detail["delivery"] = {"recipients": named, "smtpResponse": "250 ok"}
        detail_type = "Email Delivered"
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": "2020-01-01T00:00:01Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler(event, FakeContext())
    return result


def two_users_emailed(stack: Stack, keys: dict[str, str]) -> str:
    upsert(keys, "ada", email=f"ada@{DOMAIN}", name="Ada")
    upsert(keys, "bob", email=f"bob@{DOMAIN}", name="Bob")
    return send(stack, keys, "ada", "bob")


def test_the_sender_keeps_what_ses_answered_with_the_delivery(stack: Stack, ready: dict[str, str]) -> None:
    message_id = two_users_emailed(stack, ready)
    ids = {m.id for m in sent_emails()}
    ada = deliveries.get(message_id, "ada") or {}
    assert ada["status"] == "sent" and ada["ses_message_id"] in ids and ada["sent_to"] == f"ada@{DOMAIN}"
    assert deliveries.find_by_ses_message_id(ada["ses_message_id"]) == {
        "message_id": message_id,
        "user_id": "ada",
        "ses_message_id": ada["ses_message_id"],
        "sent_to": f"ada@{DOMAIN}",
    }
    assert {row["feedback"] for row in delivery_rows(ready, message_id).values()} == {None}


def test_a_permanent_bounce_acts_on_the_named_recipient_only(stack: Stack, ready: dict[str, str]) -> None:
    message_id = two_users_emailed(stack, ready)
    others = [f"bob@{DOMAIN}", f"carol@{DOMAIN}"]
    event = ses_event(
        "Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"], destination=[f"ada@{DOMAIN}", *others]
    )
    assert handle(event) == {"outcome": "recorded", "kind": "bounced", "user_updated": True}
    assert user(ready, "ada")["email_status"] == "bounced"
    assert user(ready, "bob")["email_status"] == "ok"  # listed in destination, not named
    rows = delivery_rows(ready, message_id)
    assert rows["ada"]["feedback"] == "bounced" and rows["bob"]["feedback"] is None
    assert stats(ready, message_id) == {
        "sent": 2,
        "skipped": 0,
        "delivered": 0,
        "bounced": 1,
        "complained": 0,
    }


def test_an_event_naming_someone_else_than_the_deliverys_recipient_changes_nothing(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    stranger = f"zed@{DOMAIN}"
    event = ses_event(
        "Complaint", ses_id(message_id, "ada"), [stranger], destination=[f"ada@{DOMAIN}", stranger]
    )
    assert handle(event)["outcome"] == "not_a_recipient"
    assert (
        user(ready, "ada")["email_status"] == "ok" and user(ready, "ada")["unsubscribed_from_emails"] is False
    )
    assert stats(ready, message_id)["complained"] == 0
    assert delivery_rows(ready, message_id)["ada"]["feedback"] is None


def test_the_recipient_is_matched_whatever_the_case_ses_spells_it_in(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    assert (
        handle(ses_event("Bounce", ses_id(message_id, "bob"), [f"BOB@{DOMAIN.upper()}"]))["outcome"]
        == "recorded"
    )
    assert user(ready, "bob")["email_status"] == "bounced"


@pytest.mark.parametrize(
    "order",
    [
        ["Delivery", "Bounce", "Complaint"],
        ["Complaint", "Bounce", "Delivery"],  # out of order: the strongest still shows
        ["Bounce", "Delivery", "Delivery", "Complaint", "Complaint", "Bounce"],  # repeats count once
    ],
)
def test_each_kind_counts_once_per_delivery_in_any_order_and_the_strongest_shows(
    stack: Stack, ready: dict[str, str], order: list[str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    address = f"ada@{DOMAIN}"
    for kind in order:
        handle(ses_event(kind, ses_id(message_id, "ada"), [address]))
    assert stats(ready, message_id) == {
        "sent": 2,
        "skipped": 0,
        "delivered": 1,
        "bounced": 1,
        "complained": 1,
    }
    assert delivery_rows(ready, message_id)["ada"]["feedback"] == "complained"
    found = user(ready, "ada")
    # A complaint outweighs a bounce in whichever order they came; the complainer is unsubscribed.
    assert found["email_status"] == "complained" and found["unsubscribed_from_emails"] is True


def test_a_repeated_complaint_does_not_undo_what_the_app_set_since(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    complaint = ses_event("Complaint", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"])
    assert handle(complaint)["user_updated"] is True
    upsert(ready, "ada", unsubscribed_from_emails=False)  # the app subscribes them again
    assert handle(complaint) == {"outcome": "already_recorded", "kind": "complained", "user_updated": False}
    assert user(ready, "ada")["unsubscribed_from_emails"] is False
    assert stats(ready, message_id)["complained"] == 1


def test_a_bounce_of_an_address_the_user_no_longer_has_does_not_mark_them(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    upsert(ready, "ada", email=f"ada.new@{DOMAIN}")
    applied = handle(ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"]))
    assert applied == {"outcome": "recorded", "kind": "bounced", "user_updated": False}
    assert user(ready, "ada")["email_status"] == "ok"
    # The email itself did bounce: the delivery and the message say so.
    assert delivery_rows(ready, message_id)["ada"]["feedback"] == "bounced"
    assert stats(ready, message_id)["bounced"] == 1


def test_a_transient_bounce_is_counted_but_leaves_the_user_alone(stack: Stack, ready: dict[str, str]) -> None:
    message_id = two_users_emailed(stack, ready)
    event = ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"], bounce_type="Transient")
    assert handle(event) == {"outcome": "recorded", "kind": "bounced", "user_updated": False}
    assert user(ready, "ada")["email_status"] == "ok"
    assert stats(ready, message_id)["bounced"] == 1


def test_a_bounced_user_is_skipped_until_the_app_sets_a_new_email(
    stack: Stack, ready: dict[str, str]
) -> None:
    first = two_users_emailed(stack, ready)
    handle(ses_event("Bounce", ses_id(first, "ada"), [f"ada@{DOMAIN}"]))

    second = send(stack, ready, "ada", "bob")
    rows = delivery_rows(ready, second)
    assert (rows["ada"]["status"], rows["ada"]["reason"]) == ("skipped", "bounced")
    assert rows["bob"]["status"] == "sent"

    # Sending the same address again (apps send whole profiles) changes nothing; other fields neither.
    assert upsert(ready, "ada", email=f"ada@{DOMAIN}", name="Ada L.")["email_status"] == "bounced"
    assert upsert(ready, "ada", email=f"ada@{DOMAIN}.org")["email_status"] == "ok"
    third = send(stack, ready, "ada")
    assert delivery_rows(ready, third)["ada"]["status"] == "sent"


def test_email_status_is_a_filter_field_and_listed_with_the_fields(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    handle(ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"]))
    search = {"filter": {"field": "email_status", "op": "eq", "value": "bounced"}}
    found = call("POST", "/v1/users/search", key=ready["read"], body=search)
    assert [u["user_id"] for u in found.body["data"]] == ["ada"]
    search = {"filter": {"field": "email_status", "op": "eq", "value": "ok"}}  # bob has none stored
    found = call("POST", "/v1/users/search", key=ready["read"], body=search)
    assert [u["user_id"] for u in found.body["data"]] == ["bob"]
    fields = call("GET", "/v1/fields", key=ready["read"], query={"target": "users"}).body["data"]
    [status] = [f for f in fields if f["field"] == "email_status"]
    assert status["type"] == "string" and status["source"] == "standard" and "eq" in status["ops"]


def test_a_complaint_for_a_user_deleted_since_is_counted_without_recreating_them(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    people.delete_user("ada")
    applied = handle(ses_event("Complaint", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"]))
    assert applied == {"outcome": "recorded", "kind": "complained", "user_updated": False}
    assert user_store.get("ada") is None
    assert stats(ready, message_id)["complained"] == 1


def test_an_event_for_an_email_not_found_is_retried_while_young_then_dropped(
    stack: Stack, ready: dict[str, str]
) -> None:
    young = clock.now() - 5
    event = ses_event("Bounce", "never-sent", [f"ada@{DOMAIN}"], sent_at=_iso(young))
    with pytest.raises(errors.Retryable):  # Lambda retries; the index may lag the send
        handle(event)
    old = ses_event(
        "Bounce", "never-sent", [f"ada@{DOMAIN}"], sent_at=_iso(young - feedback.UNMATCHED_RETRY_SECONDS)
    )
    assert handle(old)["outcome"] == "unmatched"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"source": "aws.ses", "detail-type": "Email Bounced", "detail": {"eventType": "Bounce"}},
        {
            "source": "my.app",
            "detail-type": "Email Bounced",
            "detail": {"eventType": "Bounce", "mail": {"messageId": "x"}},
        },
        # A bounce without its bounce record cannot say who bounced.
        {
            "source": "aws.ses",
            "detail-type": "Email Bounced",
            "detail": {"eventType": "Bounce", "mail": {"messageId": "x"}},
        },
    ],
)
def test_an_event_that_is_no_ses_email_event_is_dropped_not_retried(
    stack: Stack, ready: dict[str, str], event: dict[str, Any]
) -> None:
    assert handle(event) == {"outcome": "ignored"}


def test_one_bounce_costs_two_aws_calls_and_three_when_the_users_part_does_not_hold(
    stack: Stack, ready: dict[str, str]
) -> None:
    message_id = two_users_emailed(stack, ready)
    upsert(ready, "bob", email=f"bob.new@{DOMAIN}")
    ada = ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"])
    bob = ses_event("Bounce", ses_id(message_id, "bob"), [f"bob@{DOMAIN}"])
    with operations_called(aws.dynamodb().meta.client) as made:
        handle(ada)
    assert made == ["Query", "TransactWriteItems"]
    with operations_called(aws.dynamodb().meta.client) as made:
        handle(bob)  # bob's address changed: the delivery's feedback goes alone, after the refusal
    assert made == ["Query", "TransactWriteItems", "TransactWriteItems"]


def test_a_throttled_write_records_nothing_and_the_retry_records_once(
    stack: Stack, ready: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = two_users_emailed(stack, ready)
    event = ses_event("Complaint", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"])
    original = dynamo.transact

    def throttled(actions: Any) -> Any:
        raise errors.Retryable("DynamoDB kept cancelling a transaction")

    monkeypatch.setattr(dynamo, "transact", throttled)
    with pytest.raises(errors.Retryable):
        handle(event)
    assert stats(ready, message_id)["complained"] == 0 and user(ready, "ada")["email_status"] == "ok"
    monkeypatch.setattr(dynamo, "transact", original)
    assert handle(event)["outcome"] == "recorded"
    assert stats(ready, message_id)["complained"] == 1


def test_the_same_event_handled_twice_at_once_counts_once(
    stack: Stack, ready: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_moto_writes(monkeypatch)
    message_id = two_users_emailed(stack, ready)
    event = ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"])
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def work() -> None:
        start.wait()
        outcomes.append(feedback.apply(_parsed(event), clock.now()).outcome)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already_recorded", "recorded"]
    assert stats(ready, message_id)["bounced"] == 1


def _parsed(event: dict[str, Any]) -> Any:
    return ses_events.parse(event)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _metrics(printed: str) -> set[str]:
    """The metric names of the EMF documents Powertools printed."""
    names = set()
    for line in printed.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            for group in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names |= {metric["Name"] for metric in group["Metrics"]}
    return names


def test_the_rates_numerators_and_denominator_are_counted_once_per_email(
    stack: Stack, ready: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    message_id = two_users_emailed(stack, ready)
    assert "EmailsSent" in _metrics(capsys.readouterr().out)  # by the sender, per email SES accepted
    permanent = ses_event("Bounce", ses_id(message_id, "ada"), [f"ada@{DOMAIN}"])
    handle(permanent)
    assert {"EmailsBounced", "EmailsBouncedPermanent"} <= _metrics(capsys.readouterr().out)
    handle(permanent)  # a repeat: not counted again
    assert not {"EmailsBounced", "EmailsBouncedPermanent"} & _metrics(capsys.readouterr().out)
    handle(ses_event("Bounce", ses_id(message_id, "bob"), [f"bob@{DOMAIN}"], bounce_type="Transient"))
    printed = _metrics(capsys.readouterr().out)
    assert "EmailsBounced" in printed and "EmailsBouncedPermanent" not in printed
    handle(ses_event("Complaint", ses_id(message_id, "bob"), [f"bob@{DOMAIN}"]))
    assert "EmailsComplained" in _metrics(capsys.readouterr().out)
