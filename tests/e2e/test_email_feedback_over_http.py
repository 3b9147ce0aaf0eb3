"""SES's bounces, complaints and deliveries over HTTP, through the local stack as deployed: the
email goes out through the configuration set, `POST /_local/ses/events` makes SES publish its
event to the default bus, the template's rule routes it to EmailFeedbackFunction."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import all_pages, ok, unique, upsert_user, wait_for

pytestmark = pytest.mark.e2e


def _send(stack: RunningStack, user_ids: list[str]) -> str:
    body = {
        "name": unique("feedback"),
        "type": "manual",
        "channel": "email",
        "audience": {"filter": {"field": "user_id", "op": "in", "value": user_ids}},
        "subject": "Hello {{ user.name }}",
        "body": "Hi",
    }
    message_id = str(ok(stack.request("POST", "/v1/messages", body, key=stack.admin_key), 201)["id"])
    ok(stack.request("POST", f"/v1/messages/{message_id}/send", key=stack.admin_key), 202)
    return message_id


def _deliveries(stack: RunningStack, message_id: str) -> dict[str, dict[str, Any]]:
    return {d["user_id"]: d for d in all_pages(stack, f"/v1/messages/{message_id}/deliveries")}


def _settled(stack: RunningStack, message_id: str, count: int) -> dict[str, dict[str, Any]]:
    found = wait_for(
        lambda: _deliveries(stack, message_id),
        lambda rows: len(rows) == count and all(r["status"] != "queued" for r in rows.values()),
    )
    assert len(found) == count, found
    return found


def _user(stack: RunningStack, user_id: str) -> dict[str, Any]:
    return ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))


def _stats(stack: RunningStack, message_id: str) -> dict[str, int]:
    return ok(stack.request("GET", f"/v1/messages/{message_id}", key=stack.admin_key))["stats"]


def _report(stack: RunningStack, kind: str, email: str, **extra: Any) -> dict[str, Any]:
    body = {"type": kind, "email": email, **extra}
    return ok(stack.request("POST", "/_local/ses/events", body))


def test_bounces_and_complaints_come_back_through_eventbridge(stack: RunningStack) -> None:
    prefix = unique("fb")
    domain = f"{prefix}.example"
    ada, bob = f"{prefix}-ada", f"{prefix}-bob"
    upsert_user(stack, {"user_id": ada, "name": "Ada", "email": f"ada@{domain}"})
    upsert_user(stack, {"user_id": bob, "name": "Bob", "email": f"bob@{domain}"})
    message_id = _send(stack, [ada, bob])
    assert {row["status"] for row in _settled(stack, message_id, 2).values()} == {"sent"}
    emails = [e for e in ok(stack.request("GET", "/_local/outbox"))["data"] if e["to"][0].endswith(domain)]
    assert len(emails) == 2 and all(e["ses_message_id"] and isinstance(e["headers"], dict) for e in emails)

    reported = _report(stack, "Bounce", f"ada@{domain}", bounce_type="Permanent")
    assert reported["ses_message_id"] in {e["ses_message_id"] for e in emails}
    assert reported["rules"] == ["EmailEventsRule"]
    assert (
        wait_for(lambda: _user(stack, ada), lambda u: u["email_status"] == "bounced")["email_status"]
        == "bounced"
    )
    rows = wait_for(lambda: _deliveries(stack, message_id), lambda r: r[ada]["feedback"] == "bounced")
    assert rows[ada]["feedback"] == "bounced" and rows[bob]["feedback"] is None
    assert _user(stack, bob)["email_status"] == "ok"

    _report(stack, "Delivery", f"bob@{domain}")
    _report(stack, "Complaint", f"bob@{domain}")
    _report(stack, "Complaint", f"bob@{domain}")  # SES may repeat itself: counted once
    complained = wait_for(lambda: _user(stack, bob), lambda u: u["email_status"] == "complained")
    assert complained["email_status"] == "complained" and complained["unsubscribed_from_emails"] is True
    stats = wait_for(
        lambda: _stats(stack, message_id), lambda s: s["complained"] == 1 and s["delivered"] == 1
    )
    assert {k: stats[k] for k in ("sent", "delivered", "bounced", "complained")} == {
        "sent": 2,
        "delivered": 1,
        "bounced": 1,
        "complained": 1,
    }
    assert _deliveries(stack, message_id)[bob]["feedback"] == "complained"  # over "delivered"

    # Ada's address bounced: skipped until the app gives her a new one.
    again = _send(stack, [ada])
    assert _settled(stack, again, 1)[ada] | {"at": None} == {
        "user_id": ada,
        "status": "skipped",
        "reason": "bounced",
        "at": None,
        "feedback": None,
    }
    assert upsert_user(stack, {"user_id": ada, "email": f"ada2@{domain}"})["email_status"] == "ok"
    third = _send(stack, [ada])
    assert _settled(stack, third, 1)[ada]["status"] == "sent"


def test_a_transient_bounce_counts_for_the_email_but_not_against_the_address(stack: RunningStack) -> None:
    prefix = unique("fbt")
    cy = f"{prefix}-cy"
    upsert_user(stack, {"user_id": cy, "email": f"cy@{prefix}.example"})
    message_id = _send(stack, [cy])
    _settled(stack, message_id, 1)
    _report(stack, "Bounce", f"cy@{prefix}.example", bounce_type="Transient")
    rows = wait_for(lambda: _deliveries(stack, message_id), lambda r: r[cy]["feedback"] == "bounced")
    assert rows[cy]["feedback"] == "bounced" and _stats(stack, message_id)["bounced"] == 1
    assert _user(stack, cy)["email_status"] == "ok"


def test_ses_events_for_no_email_are_404_and_bad_bodies_422(stack: RunningStack) -> None:
    missing = stack.request(
        "POST", "/_local/ses/events", {"type": "Bounce", "email": f"{unique('no')}@x.example"}
    )
    assert missing.status == 404 and missing.json()["error"]["code"] == "not_found"
    for body in (
        {},
        {"type": "Open", "email": "a@x.example"},
        {"type": "Bounce"},
        {"type": "Bounce", "email": "not-an-address"},
        {"type": "Bounce", "email": "a@x.example", "bounce_type": "Soft"},
        {"type": "Bounce", "email": "a@x.example", "extra": 1},
        ["Bounce"],
    ):
        reply = stack.request("POST", "/_local/ses/events", body)
        assert reply.status == 422, (body, reply.status)
        error = reply.json()["error"]
        assert error["code"] == "invalid_request" and error["message"] and error["details"], body
    assert stack.request("GET", "/_local/ses/events").status == 405
