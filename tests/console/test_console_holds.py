"""A message SES refuses to send for the whole account ("held"): the console shows why and what to
do, offers Resume to write and admin keys, and what waited goes out once resumed.

The hold is real: the local stack's SES refuses as a paused account (`POST /_local/ses
{"sending_paused": true}`, SES's SendingPausedException) and the stack's sender holds the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import PageFactory
from tests.console.support import (
    DELIVERY_TIMEOUT_S,
    PHONE,
    assert_accessible,
    console_url,
    poll,
    sign_in,
)
from tests.e2e.harness import RunningStack

HOLD_TIMEOUT_MS = int(DELIVERY_TIMEOUT_S * 1000)


def _api(stack: RunningStack, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    answer = stack.request(method, path, body, key=stack.admin_key)
    assert answer.status == status, answer.body
    return answer.json()


@pytest.fixture
def ses_paused(console_stack: RunningStack) -> Iterator[Callable[[bool], None]]:
    """ses_paused(True | False) pauses or re-enables the local SES; it is re-enabled after the test
    whatever happens (the stack is shared by every console test)."""

    def set_paused(paused: bool) -> None:
        answer = console_stack.request("POST", "/_local/ses", {"sending_paused": paused})
        assert answer.status == 200 and answer.json()["sending_paused"] is paused, answer.body

    yield set_paused
    set_paused(False)


def _users_with_email(stack: RunningStack, count: int) -> tuple[str, str]:
    """`count` users with an email at a domain of their own: (user id prefix, domain)."""
    prefix = f"held-{uuid.uuid4().hex[:10]}-"
    domain = prefix.strip("-") + ".example"
    for index in range(count):
        user = {"user_id": f"{prefix}{index}", "name": f"Held {index}", "email": f"u{index}@{domain}"}
        answer = stack.request("POST", "/v1/users", user, key=stack.ingest_key)
        assert answer.status in (200, 201), answer.body
    return prefix, domain


def _email_message(stack: RunningStack, name: str, kind: str, prefix: str) -> dict[str, Any]:
    body = {
        "name": name,
        "type": kind,
        "channel": "email",
        "audience": {"filter": {"field": "user_id", "op": "starts_with", "value": prefix}},
        "subject": "Hello {{ user.name }}",
        "body": "Hi {{ user.name }}, this one waited for SES.",
    }
    return _api(stack, "POST", "/v1/messages", body, status=201)


def _message(stack: RunningStack, message_id: str) -> dict[str, Any]:
    return _api(stack, "GET", f"/v1/messages/{message_id}")


def _outbox(stack: RunningStack, domain: str) -> list[str]:
    data = _api(stack, "GET", "/_local/outbox")["data"]
    return sorted(address for email in data for address in email["to"] if address.endswith("@" + domain))


def _wait_held(stack: RunningStack, message_id: str) -> dict[str, Any]:
    return poll(
        lambda: _message(stack, message_id),
        lambda found: found["paused_reason"] is not None,
        DELIVERY_TIMEOUT_S,
        f"the hold of {message_id}",
    )


def _open(page: Page, stack: RunningStack, message: dict[str, Any]) -> None:
    page.goto(console_url(stack.base_url) + f"#/messages/{message['id']}")
    expect(page.get_by_role("heading", name=message["name"], level=1)).to_be_visible()


def _hold_box(page: Page) -> Any:
    return page.get_by_role("region", name="Paused by SES")


def test_a_held_manual_email_shows_why_and_resume_sends_what_waited(
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
    ses_paused: Callable[[bool], None],
) -> None:
    prefix, domain = _users_with_email(console_stack, 3)
    message = _email_message(console_stack, f"Held notice {prefix}", "manual", prefix)
    ses_paused(True)

    # Sent from its page; the page follows the send and shows the hold when SES refuses.
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["admin"])
    _open(page, console_stack, message)
    page.get_by_role("button", name="Send", exact=True).click()
    held = _wait_held(console_stack, message["id"])
    reason = held["paused_reason"]
    assert reason["code"] == "sending_paused" and held["state"] == "sent", held
    assert held["stats"]["queued"] == 3 and held["stats"]["sent"] == 0, held["stats"]
    assert _outbox(console_stack, domain) == []

    box = _hold_box(page)
    expect(box).to_be_visible(timeout=HOLD_TIMEOUT_MS)
    expect(box.locator("code")).to_have_text(reason["code"])
    expect(box).to_contain_text(reason["message"])
    expect(box.locator("time")).to_have_attribute("datetime", reason["at"])
    expect(box).to_contain_text("then re-enable sending in the SES console")
    expect(box).to_contain_text("Then press Resume")
    expect(page.locator(".message-meta")).to_contain_text("paused by SES")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("button", name="Send", exact=True)).to_have_count(0)
    assert_accessible(page, "a held message")

    # The list marks it next to its state, and nothing else.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=message["name"]))
    expect(row.get_by_role("cell").nth(2)).to_have_text("sent paused by SES")
    welcome = page.get_by_role("row").filter(has=page.get_by_role("link", name="Welcome, trial users"))
    expect(welcome).not_to_contain_text("paused by SES")
    assert_accessible(page, "the messages list with a held message")

    # A read key sees the reason, and no Resume (here on a phone: the box fits the window).
    reader = new_page(PHONE)
    sign_in(reader, console_stack.base_url, console_keys["read"])
    _open(reader, console_stack, message)
    expect(_hold_box(reader).locator("code")).to_have_text(reason["code"])
    expect(_hold_box(reader)).to_contain_text("a teammate with a write or admin key resumes it")
    expect(reader.get_by_role("button", name="Refresh")).to_be_visible()
    expect(reader.get_by_role("button", name="Resume")).to_have_count(0)
    assert_accessible(reader, "a held message, read only, on a phone")
    widths = reader.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"a held message is {widths[0]} px wide in a {widths[1]} px window"

    # SES fixed, Resume: the three waiting emails go out, each once, and the page follows them.
    ses_paused(False)
    page.get_by_role("link", name=message["name"]).click()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".panel-status")).to_contain_text("Resumed: the message is sent")
    expect(_hold_box(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    sent = poll(
        lambda: _outbox(console_stack, domain),
        lambda found: len(found) >= 3,
        DELIVERY_TIMEOUT_S,
        "the emails that waited",
    )
    assert sent == [f"u{index}@{domain}" for index in range(3)]
    after = _message(console_stack, message["id"])
    assert after["paused_reason"] is None and after["state"] == "sent"
    stats = page.get_by_role("list", name="Stats")
    expect(stats.locator("li").filter(has_text="sent")).to_have_text("3sent", timeout=HOLD_TIMEOUT_MS)
    expect(page.get_by_role("region", name="Delivery log").get_by_text("sent", exact=True)).to_have_count(3)


def test_a_held_auto_message_offers_resume_not_put_live_and_a_409_shows_as_it_is(
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
    ses_paused: Callable[[bool], None],
) -> None:
    prefix, domain = _users_with_email(console_stack, 2)
    message = _email_message(console_stack, f"Held auto {prefix}", "auto", prefix)
    ses_paused(True)
    _api(console_stack, "POST", f"/v1/messages/{message['id']}/live")
    held = _wait_held(console_stack, message["id"])
    assert held["state"] == "paused" and held["paused_reason"]["code"] == "sending_paused", held
    refused = console_stack.request("POST", f"/v1/messages/{message['id']}/live", key=console_keys["write"])
    assert refused.status == 409 and refused.json()["error"]["code"] == "message_held"

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["write"])
    _open(page, console_stack, message)
    expect(_hold_box(page)).to_contain_text("It is paused and sends nothing new")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    for absent in ("Put live", "Pause", "Send"):
        expect(page.get_by_role("button", name=absent, exact=True)).to_have_count(0)

    # Someone else resumes it first: this page's Resume gets the API's 409 in the error box, and
    # the page then shows the message as it is now (live, no hold, Pause offered).
    ses_paused(False)
    _api(console_stack, "POST", f"/v1/messages/{message['id']}/resume", status=202)
    again = console_stack.request("POST", f"/v1/messages/{message['id']}/resume", key=console_keys["write"])
    assert again.status == 409 and again.json()["error"]["code"] == "nothing_to_resume"
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".error-box")).to_contain_text(again.json()["error"]["message"])
    expect(_hold_box(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.locator(".message-meta .state")).to_have_text("live")
    assert_accessible(page, "a resume refused with a 409")
    poll(
        lambda: _outbox(console_stack, domain),
        lambda found: len(found) >= 2,
        DELIVERY_TIMEOUT_S,
        "the auto emails that waited",
    )
    assert _outbox(console_stack, domain) == [f"u{index}@{domain}" for index in range(2)]
    _api(console_stack, "DELETE", f"/v1/messages/{message['id']}", status=204)
