"""The email frequency cap under moto: GET/PUT /v1/settings (roles, 422s), emails past the cap
skipped with `frequency_cap`, only emails that went out counted, the last slot taken once under
concurrent sends, and no AWS call for the cap when none is set."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.jobs import DeliveryJob
from segmentation.messaging import sender, workspace_settings
from segmentation.messaging.frequency_cap import DAY_SECONDS
from segmentation.storage import aws, deliveries
from segmentation.storage import workspace_settings as settings_store

from tests.integration.test_sender import _FlakySes, _patch_ses, make_message, queue_for, stats, status
from tests.support.apigw import call
from tests.support.client_calls import operations_called
from tests.support.messaging import Stack, put_user, sent_emails
from tests.support.messaging import stack as stack
from tests.support.moto_atomic import atomic_moto_writes

NO_CAP = {"email_frequency_cap": None, "timezone": "UTC"}


def set_cap(maximum: int | None, days: int = 7) -> None:
    """As PUT /v1/settings does (and the cache of this process forgets the old value)."""
    body = workspace_settings.SettingsUpdate.model_validate(
        {"email_frequency_cap": None if maximum is None else {"max": maximum, "days": days}}
    )
    workspace_settings.update(body)


def deliver(message_id: str, user_id: str, now: float) -> str:
    return sender.deliver(DeliveryJob(message_id=message_id, user_id=user_id), now)


def email_to(user_id: str, *, channel: str = "email") -> str:
    message_id = make_message(channel=channel, kind="manual")
    queue_for(message_id, user_id)
    return message_id


# --- GET/PUT /v1/settings ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["read", "write", "admin"])
def test_readers_see_the_settings_with_no_cap_by_default(keys: dict[str, str], role: str) -> None:
    answer = call("GET", "/v1/settings", key=keys[role])
    assert (answer.status, answer.body) == (200, NO_CAP)


def test_only_an_admin_changes_them_and_an_ingest_key_cannot_read_them(keys: dict[str, str]) -> None:
    body = {"email_frequency_cap": {"max": 3, "days": 7}}
    assert call("GET", "/v1/settings", key=keys["ingest"]).status == 403
    for role in ("ingest", "read", "write"):
        assert call("PUT", "/v1/settings", key=keys[role], body=body).status == 403, role
    assert call("GET", "/v1/settings").status == 401
    assert call("GET", "/v1/settings", key=keys["admin"]).body == NO_CAP


def test_an_admin_sets_changes_and_removes_the_cap(keys: dict[str, str]) -> None:
    put = call("PUT", "/v1/settings", key=keys["admin"], body={"email_frequency_cap": {"max": 3, "days": 7}})
    assert (put.status, put.body) == (200, {"email_frequency_cap": {"max": 3, "days": 7}, "timezone": "UTC"})
    assert call("GET", "/v1/settings", key=keys["read"]).body == put.body
    # A field left out stays; the deployed time zone may be sent back as it is.
    same = call("PUT", "/v1/settings", key=keys["admin"], body={"timezone": "UTC"})
    assert (same.status, same.body) == (200, put.body)
    assert call("PUT", "/v1/settings", key=keys["admin"], body={}).body == put.body
    removed = call("PUT", "/v1/settings", key=keys["admin"], body={"email_frequency_cap": None})
    assert (removed.status, removed.body) == (200, NO_CAP)
    assert call("GET", "/v1/settings", key=keys["read"]).body == NO_CAP


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"email_frequency_cap": {"max": 0, "days": 7}}, "email_frequency_cap.max"),
        ({"email_frequency_cap": {"max": 101, "days": 7}}, "email_frequency_cap.max"),
        ({"email_frequency_cap": {"max": 3, "days": 0}}, "email_frequency_cap.days"),
        ({"email_frequency_cap": {"max": 3, "days": 91}}, "email_frequency_cap.days"),
        ({"email_frequency_cap": {"max": "3", "days": 7}}, "email_frequency_cap.max"),
        ({"email_frequency_cap": {"max": 2.5, "days": 7}}, "email_frequency_cap.max"),
        ({"email_frequency_cap": {"max": True, "days": 7}}, "email_frequency_cap.max"),
        ({"email_frequency_cap": {"max": 3}}, "email_frequency_cap.days"),
        ({"email_frequency_cap": {"max": 3, "days": 7, "per": "user"}}, "email_frequency_cap.per"),
        ({"email_frequency_cap": 3}, "email_frequency_cap"),
        ({"frequency_cap": {"max": 3, "days": 7}}, "frequency_cap"),
    ],
)
def test_a_bad_cap_is_a_422_naming_the_field_and_changes_nothing(
    keys: dict[str, str], body: dict[str, Any], path: str
) -> None:
    answer = call("PUT", "/v1/settings", key=keys["admin"], body=body)
    assert answer.status == 422, answer.body
    assert path in [detail["path"] for detail in answer.body["error"]["details"]]
    assert call("GET", "/v1/settings", key=keys["read"]).body == NO_CAP


@pytest.mark.parametrize("timezone", ["Europe/Paris", "utc", None])
def test_another_time_zone_is_a_422_saying_it_is_set_at_deploy(keys: dict[str, str], timezone: Any) -> None:
    body = {"email_frequency_cap": {"max": 3, "days": 7}, "timezone": timezone}
    answer = call("PUT", "/v1/settings", key=keys["admin"], body=body)
    assert answer.status == 422, answer.body
    assert answer.body["error"]["details"][0]["path"] == "timezone"
    assert "TimeZone" in answer.body["error"]["message"] and "deploy" in answer.body["error"]["message"]
    assert call("GET", "/v1/settings", key=keys["read"]).body == NO_CAP  # the cap was not set either


def test_malformed_json_is_a_400(keys: dict[str, str]) -> None:
    answer = call("PUT", "/v1/settings", key=keys["admin"], raw_body='{"email_frequency_cap": ')
    assert (answer.status, answer.error_code) == (400, "malformed_json")


# --- the cap at send time ------------------------------------------------------------------------


def test_emails_past_the_cap_are_skipped_and_in_app_messages_are_not_capped(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    put_user(stack, "u2", email="b@example.com")
    set_cap(2, days=7)
    now = clock.now()
    first, second, third = (email_to("u1") for _ in range(3))
    assert [deliver(m, "u1", now + i) for i, m in enumerate((first, second, third))] == [
        "sent",
        "sent",
        "skipped:frequency_cap",
    ]
    assert status(third, "u1") == ("skipped", "frequency_cap")
    assert stats(third) == {"queued": 0, "sent": 0, "skipped": 1, "failed": 0}
    assert len(sent_emails()) == 2
    assert deliver(email_to("u2"), "u2", now) == "sent"  # per user
    assert deliver(email_to("u1", channel="in_app"), "u1", now + 5) == "sent:in_app"


def test_the_window_slides_a_slot_frees_when_the_oldest_email_is_days_old(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    set_cap(1, days=2)
    now = float(int(clock.now()))  # whole seconds: the ledger keeps microseconds
    assert deliver(email_to("u1"), "u1", now) == "sent"
    assert deliver(email_to("u1"), "u1", now + 2 * DAY_SECONDS - 1) == "skipped:frequency_cap"
    assert deliver(email_to("u1"), "u1", now + 2 * DAY_SECONDS) == "sent"


def test_a_user_reason_comes_before_the_cap(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    set_cap(1)
    now = clock.now()
    assert deliver(email_to("u1"), "u1", now) == "sent"
    stack.table("USERS_TABLE").update_item(
        Key={"user_id": "u1"},
        UpdateExpression="SET unsubscribed_from_emails = :t",
        ExpressionAttributeValues={":t": True},
    )
    assert deliver(email_to("u1"), "u1", now + 1) == "skipped:unsubscribed"


def test_only_emails_that_went_out_count(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    put_user(stack, "u1", email="a@example.com")
    set_cap(1)
    now = clock.now()
    # A template that fails and a refusal of this recipient: nothing went out, no slot kept.
    broken = make_message(body="{{ 1 | divided_by: 0 }}")
    queue_for(broken, "u1")
    assert deliver(broken, "u1", now).startswith("failed:")
    flaky = _FlakySes(aws.client("sesv2"), "MessageRejected", fail_times=1)
    _patch_ses(monkeypatch, flaky)
    assert deliver(email_to("u1"), "u1", now + 1) == "failed:ses_message_rejected"
    # SES said slow down: back to queued with its slot given back; its retry takes it again.
    throttled = _FlakySes(aws.client("sesv2"), "TooManyRequestsException", fail_times=1, status=429)
    _patch_ses(monkeypatch, throttled)
    retried = email_to("u1")
    assert deliver(retried, "u1", now + 2) == "throttled"
    assert deliveries.email_ledger("u1")[0] == {}
    assert deliver(retried, "u1", now + 3) == "sent"
    assert set(deliveries.email_ledger("u1")[0]) == {retried}
    assert deliver(email_to("u1"), "u1", now + 4) == "skipped:frequency_cap"
    assert len(sent_emails()) == 1


def test_an_email_whose_outcome_is_unknown_keeps_its_slot(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="a@example.com")
    set_cap(1)
    _patch_ses(monkeypatch, _FlakySes(aws.client("sesv2"), "InternalFailure", fail_times=1, status=500))
    now = clock.now()
    assert deliver(email_to("u1"), "u1", now) == "failed:outcome_unknown"  # SES may have sent it
    assert deliver(email_to("u1"), "u1", now + 1) == "skipped:frequency_cap"


def test_two_senders_racing_for_the_last_slot_send_one_email(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_moto_writes(monkeypatch)
    put_user(stack, "u1", email="a@example.com")
    set_cap(2)
    now = clock.now()
    assert deliver(email_to("u1"), "u1", now) == "sent"  # one slot left
    racing = [email_to("u1"), email_to("u1")]
    # Both read the ledger before either writes: the race is on the transaction.
    read = deliveries.email_ledger
    both_read = threading.Barrier(2)

    reads = iter(range(1000))

    def ledger_read_together(user_id: str) -> tuple[dict[str, Any], int]:
        found = read(user_id)
        if next(reads) < 2:  # the first read of each; the loser's second read comes alone
            both_read.wait()
        return found

    monkeypatch.setattr(deliveries, "email_ledger", ledger_read_together)
    outcomes: dict[str, str] = {}

    def work(message_id: str) -> None:
        try:
            outcomes[message_id] = deliver(message_id, "u1", now + 1)
        except errors.Retryable:
            outcomes[message_id] = "retry"

    threads = [threading.Thread(target=work, args=(message_id,)) for message_id in racing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["sent", "skipped:frequency_cap"]
    assert len(sent_emails()) == 2
    assert len(read("u1")[0]) == 2


def test_no_cap_costs_no_call_and_a_cap_costs_one_read(stack: Stack) -> None:
    for user_id in ("u1", "u2", "u3"):
        put_user(stack, user_id, email=f"{user_id}@example.com")
    message_id = make_message()
    queue_for(message_id, "u1", "u2", "u3")
    now = clock.now()
    assert deliver(message_id, "u1", now) == "sent"  # warms the definition and settings caches
    with operations_called(aws.dynamodb().meta.client, aws.client("sesv2")) as calls:
        assert deliver(message_id, "u2", now + 1) == "sent"
    assert calls == ["TransactWriteItems", "GetItem", "SendEmail", "TransactWriteItems"]

    set_cap(3)
    workspace_settings.email_cap(now + 2)  # this process read the new settings once
    with operations_called(aws.dynamodb().meta.client, aws.client("sesv2")) as calls:
        assert deliver(message_id, "u3", now + 2) == "sent"
    assert calls == ["GetItem", "TransactWriteItems", "GetItem", "SendEmail", "TransactWriteItems"]


def test_senders_see_a_cap_set_elsewhere_within_the_cache_time(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    now = clock.now()
    assert workspace_settings.email_cap(now) is None
    settings_store.put_frequency_cap({"max": 1, "days": 1}, now)  # another process's PUT
    assert deliver(email_to("u1"), "u1", now + 1) == "sent"
    assert deliver(email_to("u1"), "u1", now + 2) == "sent"  # this process has not looked again yet
    assert deliveries.email_ledger("u1")[0] == {}  # no cap in force here: nothing recorded
    later = now + workspace_settings.REVALIDATE_SECONDS
    counted = email_to("u1")
    assert deliver(counted, "u1", later) == "sent"  # the cap counts from when this process applies it
    assert set(deliveries.email_ledger("u1")[0]) == {counted}
    assert deliver(email_to("u1"), "u1", later + 1) == "skipped:frequency_cap"


def test_the_ledger_is_stored_apart_from_every_messages_deliveries(stack: Stack) -> None:
    put_user(stack, "u1", email="a@example.com")
    set_cap(5)
    message_id = email_to("u1")
    assert deliver(message_id, "u1", clock.now()) == "sent"
    page, _ = deliveries.page(message_id, limit=10, cursor=None)
    assert [item["user_id"] for item in page] == ["u1"]
    sends, version = deliveries.email_ledger("u1")
    assert set(sends) == {message_id} and isinstance(sends[message_id], Decimal) and version == 1
