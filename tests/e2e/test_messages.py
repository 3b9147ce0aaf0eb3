"""Messages over HTTP: manual email through SES to the outbox, auto in-app messages at most once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import (
    all_pages,
    create_segment,
    error_code,
    new_key,
    ok,
    unique,
    upsert_user,
    user_hash,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _outbox_for(stack: RunningStack, domain: str) -> list[dict[str, Any]]:
    """Email sent to addresses of this test's own domain."""
    data = ok(stack.request("GET", "/_local/outbox"))["data"]
    return [email for email in data if any(address.endswith("@" + domain) for address in email["to"])]


def _message(stack: RunningStack, body: dict[str, Any]) -> dict[str, Any]:
    return ok(stack.request("POST", "/v1/messages", body, key=stack.admin_key), 201)


def _inbox(stack: RunningStack, user_id: str) -> list[dict[str, Any]]:
    return ok(stack.request("GET", f"/v1/users/{user_id}/messages", key=stack.admin_key))["data"]


def _deliveries(stack: RunningStack, message_id: str) -> dict[str, dict[str, Any]]:
    return {d["user_id"]: d for d in all_pages(stack, f"/v1/messages/{message_id}/deliveries")}


def test_manual_email_goes_once_to_each_member_with_an_email(stack: RunningStack) -> None:
    prefix = unique("u-mail") + "-"
    domain = prefix.strip("-") + ".example"
    ada, bob, nomail, unsub = (prefix + name for name in ("ada", "bob", "nomail", "unsub"))
    upsert_user(stack, {"user_id": ada, "name": "Ada", "email": f"ada@{domain}"})
    upsert_user(stack, {"user_id": bob, "email": f"bob@{domain}"})
    upsert_user(stack, {"user_id": nomail, "name": "No mail"})
    upsert_user(stack, {"user_id": unsub, "email": f"unsub@{domain}", "unsubscribed_from_emails": True})
    segment_id = create_segment(
        stack, f"Mail {prefix}", {"field": "user_id", "op": "starts_with", "value": prefix}
    )

    message = _message(
        stack,
        {
            "name": "Welcome",
            "type": "manual",
            "channel": "email",
            "audience": {"segment_id": segment_id},
            "subject": "Welcome, {{ user.name | default: 'there' }}",
            "body": "Hi {{ user.name | default: 'there' }}, you have {{ user.session_count }} sessions.",
        },
    )
    assert message["state"] == "draft" and message["stats"] == {
        "queued": 0,
        "sent": 0,
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    sent = stack.request("POST", f"/v1/messages/{message['id']}/send", key=stack.admin_key)
    assert ok(sent, 202)["state"] == "sent"

    stats = wait_for(
        lambda: ok(stack.request("GET", f"/v1/messages/{message['id']}", key=stack.admin_key))["stats"],
        lambda found: found["sent"] + found["skipped"] == 4,
    )
    assert stats == {
        "queued": 0,
        "sent": 2,
        "skipped": 2,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    outbox = _outbox_for(stack, domain)
    assert sorted(address for email in outbox for address in email["to"]) == [
        f"ada@{domain}",
        f"bob@{domain}",
    ]
    by_to = {email["to"][0]: email for email in outbox}
    assert by_to[f"ada@{domain}"]["subject"] == "Welcome, Ada"
    assert by_to[f"bob@{domain}"]["subject"] == "Welcome, there"
    assert "Hi there, you have 0 sessions." in by_to[f"bob@{domain}"]["text"]

    deliveries = _deliveries(stack, message["id"])
    assert set(deliveries) == {ada, bob, nomail, unsub}
    assert deliveries[ada]["status"] == deliveries[bob]["status"] == "sent"
    assert (deliveries[nomail]["status"], deliveries[nomail]["reason"]) == ("skipped", "no_email")
    assert (deliveries[unsub]["status"], deliveries[unsub]["reason"]) == ("skipped", "unsubscribed")

    again = stack.request("POST", f"/v1/messages/{message['id']}/send", key=stack.admin_key)
    assert again.status == 409
    # A user who matches later never gets a manual message.
    upsert_user(stack, {"user_id": prefix + "late", "email": f"late@{domain}"})
    wait_for(lambda: _members(stack, segment_id), lambda found: prefix + "late" in found)
    assert len(_outbox_for(stack, domain)) == 2
    assert prefix + "late" not in _deliveries(stack, message["id"])


def test_message_validation(stack: RunningStack) -> None:
    segment_id = create_segment(stack, unique("Msgval"), {"field": "name", "op": "eq", "value": unique("n")})
    base = {
        "name": "x",
        "type": "manual",
        "channel": "email",
        "audience": {"segment_id": segment_id},
        "body": "b",
    }
    assert (
        stack.request("POST", "/v1/messages", base, key=stack.admin_key).status == 422
    )  # email without subject
    broken = {**base, "subject": "s", "body": "{% if %}"}
    response = stack.request("POST", "/v1/messages", broken, key=stack.admin_key)
    assert response.status == 422 and any("body" in d["path"] for d in response.json()["error"]["details"])
    missing = {**base, "subject": "s", "audience": {"segment_id": "seg_nope"}}
    assert stack.request("POST", "/v1/messages", missing, key=stack.admin_key).status == 422
    empty = {**base, "subject": "s", "audience": {}}
    assert stack.request("POST", "/v1/messages", empty, key=stack.admin_key).status == 422
    assert stack.request("GET", "/v1/messages/msg_nope", key=stack.admin_key).status == 404


def test_auto_in_app_message_reaches_each_matching_user_once(stack: RunningStack) -> None:
    prefix = unique("u-auto") + "-"
    early, late, never = prefix + "early", prefix + "late", prefix + "never"
    upsert_user(stack, {"user_id": early, "name": "Early", "custom_attributes": {"photos_uploaded": 50}})
    upsert_user(stack, {"user_id": late, "custom_attributes": {"photos_uploaded": 1}})
    upsert_user(stack, {"user_id": never, "custom_attributes": {"photos_uploaded": 0}})
    segment_id = create_segment(
        stack,
        f"Auto {prefix}",
        {
            "and": [
                {"field": "user_id", "op": "starts_with", "value": prefix},
                {"field": "custom_attributes.photos_uploaded", "op": "gte", "value": 10},
            ]
        },
    )
    message = _message(
        stack,
        {
            "name": "Hot",
            "type": "auto",
            "channel": "in_app",
            "audience": {"segment_id": segment_id},
            "body": "Hello {{ user.name | default: 'there' }}",
        },
    )
    message_id = message["id"]
    assert (
        ok(stack.request("POST", f"/v1/messages/{message_id}/live", key=stack.admin_key))["state"] == "live"
    )
    assert stack.request("POST", f"/v1/messages/{message_id}/send", key=stack.admin_key).status == 409

    # The current matcher gets it, in GET messages and in the login answer.
    inbox = wait_for(lambda: _inbox(stack, early), lambda found: len(found) == 1)
    assert [(m["message_id"], m["body"]) for m in inbox] == [(message_id, "Hello Early")]
    assert set(inbox[0]) >= {"message_id", "subject", "body", "delivered_at"}
    login = ok(
        stack.request("POST", f"/v1/users/{early}/logins", headers={"X-User-Hash": user_hash(stack, early)})
    )
    assert [m["message_id"] for m in login["messages"]] == [message_id]

    # A user who comes to match later gets it once.
    upsert_user(stack, {"user_id": late, "custom_attributes": {"photos_uploaded": 11}})
    inbox = wait_for(lambda: _inbox(stack, late), lambda found: len(found) == 1)
    assert [(m["message_id"], m["body"]) for m in inbox] == [(message_id, "Hello there")]

    # Leaving and re-entering does not resend.
    upsert_user(stack, {"user_id": late, "custom_attributes": {"photos_uploaded": 0}})
    wait_for(lambda: segment_id in _segments(stack, late), lambda inside: not inside)
    upsert_user(stack, {"user_id": late, "custom_attributes": {"photos_uploaded": 12}})
    wait_for(lambda: _members(stack, segment_id), lambda found: late in found)

    # Pause then resume does not resend.
    assert (
        ok(stack.request("POST", f"/v1/messages/{message_id}/pause", key=stack.admin_key))["state"]
        == "paused"
    )
    paused_block = stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key)
    assert paused_block.status == 409 and message_id in paused_block.json()["error"]["message"]
    assert (
        ok(stack.request("POST", f"/v1/messages/{message_id}/live", key=stack.admin_key))["state"] == "live"
    )
    # A login while live again: the user who was never in the audience gets nothing.
    ok(stack.request("POST", f"/v1/users/{never}/logins", key=stack.ingest_key))

    stats = wait_for(
        lambda: ok(stack.request("GET", f"/v1/messages/{message_id}", key=stack.admin_key))["stats"],
        lambda found: found["queued"] == 0,
    )
    assert stats == {
        "queued": 0,
        "sent": 2,
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert len(_inbox(stack, early)) == 1 and len(_inbox(stack, late)) == 1
    assert _inbox(stack, never) == []
    assert set(_deliveries(stack, message_id)) == {early, late}

    # Deleting the segment is blocked while the live message targets it, naming the message.
    blocked = stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key)
    assert blocked.status == 409 and error_code(blocked) == "segment_in_use"
    assert message_id in blocked.json()["error"]["message"]

    # Delete the message: 204, then it is gone and nothing more goes out.
    assert stack.request("DELETE", f"/v1/messages/{message_id}", key=stack.admin_key).status == 204
    assert stack.request("GET", f"/v1/messages/{message_id}", key=stack.admin_key).status == 404
    newcomer = prefix + "newcomer"
    upsert_user(stack, {"user_id": newcomer, "custom_attributes": {"photos_uploaded": 99}})
    wait_for(lambda: _members(stack, segment_id), lambda found: newcomer in found)
    assert _inbox(stack, newcomer) == []
    assert stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key).status == 204


def _segments(stack: RunningStack, user_id: str) -> set[str]:
    return set(ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))["segments"])


def _members(stack: RunningStack, segment_id: str) -> set[str]:
    return {u["user_id"] for u in all_pages(stack, f"/v1/segments/{segment_id}/members")}


def test_paused_message_also_blocks_segment_delete(stack: RunningStack) -> None:
    segment_id = create_segment(
        stack, unique("Paused target"), {"field": "name", "op": "eq", "value": unique("n")}
    )
    message = _message(
        stack,
        {
            "name": "p",
            "type": "auto",
            "channel": "in_app",
            "audience": {"segment_id": segment_id},
            "body": "b",
        },
    )
    # A draft does not block.
    ok(stack.request("POST", f"/v1/messages/{message['id']}/live", key=stack.admin_key))
    ok(stack.request("POST", f"/v1/messages/{message['id']}/pause", key=stack.admin_key))
    blocked = stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key)
    assert blocked.status == 409 and message["id"] in blocked.json()["error"]["message"]
    assert stack.request("DELETE", f"/v1/messages/{message['id']}", key=stack.admin_key).status == 204
    assert stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key).status == 204


def test_audiences_with_a_filter_and_company_in_templates(stack: RunningStack) -> None:
    prefix = unique("u-aud") + "-"
    domain = prefix.strip("-") + ".example"
    company_id = prefix + "acme"
    ok(
        stack.request(
            "POST", "/v1/companies", {"company_id": company_id, "name": "Acme & Co"}, key=stack.ingest_key
        ),
        201,
    )
    pro, free, bare = prefix + "pro", prefix + "free", prefix + "bare"
    upsert_user(
        stack,
        {
            "user_id": pro,
            "name": "<b>Pro</b>",
            "email": f"pro@{domain}",
            "company_ids": [company_id],
            "custom_attributes": {"plan": "pro"},
        },
    )
    upsert_user(stack, {"user_id": free, "email": f"free@{domain}", "custom_attributes": {"plan": "free"}})
    upsert_user(stack, {"user_id": bare, "custom_attributes": {"plan": "pro"}})
    segment_id = create_segment(
        stack, f"Aud {prefix}", {"field": "user_id", "op": "starts_with", "value": prefix}
    )

    # Manual email: segment members that also match the filter.
    manual = _message(
        stack,
        {
            "name": "pro only",
            "type": "manual",
            "channel": "email",
            "audience": {"segment_id": segment_id, "filter": {"field": "email", "op": "exists"}},
            "subject": "For {{ company.name | default: 'you' }}",
            "body": "Hello {{ user.name }}",
        },
    )
    ok(stack.request("POST", f"/v1/messages/{manual['id']}/send", key=stack.admin_key), 202)
    outbox = wait_for(lambda: _outbox_for(stack, domain), lambda found: len(found) == 2)
    by_to = {email["to"][0]: email for email in outbox}
    assert set(by_to) == {f"pro@{domain}", f"free@{domain}"}
    assert by_to[f"pro@{domain}"]["subject"] == "For Acme & Co"
    assert by_to[f"free@{domain}"]["subject"] == "For you"
    assert "Hello <b>Pro</b>" in by_to[f"pro@{domain}"]["text"]
    assert "<b>Pro</b>" not in by_to[f"pro@{domain}"]["html"]  # user values are escaped in HTML
    assert set(_deliveries(stack, manual["id"])) == {pro, free}

    # Auto in-app with a filter-only audience: matchers now and a later one.
    auto = _message(
        stack,
        {
            "name": "filter only",
            "type": "auto",
            "channel": "in_app",
            "audience": {
                "filter": {
                    "and": [
                        {"field": "user_id", "op": "starts_with", "value": prefix},
                        {"field": "custom_attributes.plan", "op": "eq", "value": "pro"},
                    ]
                }
            },
            "subject": "Pro tips",
            "body": "{{ user.custom_attributes.plan }}",
        },
    )
    ok(stack.request("POST", f"/v1/messages/{auto['id']}/live", key=stack.admin_key))
    for user_id in (pro, bare):
        inbox = wait_for(lambda uid=user_id: _inbox(stack, uid), lambda found: len(found) == 1)  # type: ignore[misc]
        assert [(m["message_id"], m["subject"], m["body"]) for m in inbox] == [
            (auto["id"], "Pro tips", "pro")
        ]
    upsert_user(stack, {"user_id": free, "custom_attributes": {"plan": "pro"}})
    inbox = wait_for(lambda: _inbox(stack, free), lambda found: len(found) == 1)
    assert [m["message_id"] for m in inbox] == [auto["id"]]
    stack.request("DELETE", f"/v1/messages/{auto['id']}", key=stack.admin_key)


def test_a_paused_ses_account_holds_the_message_and_resume_sends_what_waited(stack: RunningStack) -> None:
    prefix = unique("u-held") + "-"
    domain = prefix.strip("-") + ".example"
    users = [prefix + name for name in ("ada", "bob", "cy")]
    for user_id in users:
        upsert_user(stack, {"user_id": user_id, "email": f"{user_id.rsplit('-', 1)[1]}@{domain}"})
    message = _message(
        stack,
        {
            "name": "Held",
            "type": "manual",
            "channel": "email",
            "audience": {"filter": {"field": "user_id", "op": "starts_with", "value": prefix}},
            "subject": "News",
            "body": "Hello.",
        },
    )
    path = f"/v1/messages/{message['id']}"
    assert error_code(stack.request("POST", f"{path}/resume", key=stack.admin_key)) == "nothing_to_resume"
    ok(stack.request("POST", "/_local/ses", {"sending_paused": True}))
    try:
        ok(stack.request("POST", f"{path}/send", key=stack.admin_key), 202)
        held = wait_for(
            lambda: ok(stack.request("GET", path, key=stack.admin_key)),
            lambda found: found["paused_reason"] is not None and found["stats"]["queued"] == 3,
        )
    finally:
        ok(stack.request("POST", "/_local/ses", {"sending_paused": False}))
    assert held["state"] == "sent" and held["paused_reason"]["code"] == "sending_paused"
    assert held["stats"] == {
        "queued": 3,
        "sent": 0,
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert {d["status"] for d in _deliveries(stack, message["id"]).values()} == {"queued"}
    assert _outbox_for(stack, domain) == []

    read_key = new_key(stack, "read")["key"]
    assert stack.request("POST", f"{path}/resume", key=read_key).status == 403
    resumed = ok(stack.request("POST", f"{path}/resume", key=stack.admin_key), 202)
    assert resumed["paused_reason"] is None
    stats = wait_for(
        lambda: ok(stack.request("GET", path, key=stack.admin_key))["stats"],
        lambda found: found["sent"] == 3,
    )
    assert stats == {
        "queued": 0,
        "sent": 3,
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert sorted(a for email in _outbox_for(stack, domain) for a in email["to"]) == sorted(
        f"{name}@{domain}" for name in ("ada", "bob", "cy")
    )
