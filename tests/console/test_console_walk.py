"""The seed walk of issue 12, in a real browser, checked against the API's own answers."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import PageFactory
from tests.console.support import (
    DELIVERY_TIMEOUT_S,
    add_condition,
    poll,
    segment_button,
    sign_in,
    wait_for_count,
)
from tests.e2e.harness import RunningStack

TRIAL_FILTER = {
    "and": [
        {"field": "signed_up_at", "op": "less_than_days_ago", "value": 14},
        {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"},
    ]
}


def _api(stack: RunningStack, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    answer = stack.request(method, path, body, key=stack.admin_key)
    assert answer.status == status, answer.body
    return answer.json()


def test_seed_walk_filter_count_save_message_deliveries_and_read_only(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    expected = _api(console_stack, "POST", "/v1/users/count", {"filter": TRIAL_FILTER})
    assert expected["exact"] and expected["count"] > 0
    members = _api(console_stack, "POST", "/v1/users/search", {"filter": TRIAL_FILTER, "limit": 100})["data"]

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["admin"])

    # Filter "signed up less than 14 days ago" AND "plan is free trial": count and list follow.
    add_condition(page, "signed_up_at", "less_than_days_ago", "14")
    add_condition(page, "custom_attributes.plan", "eq", "free trial")
    wait_for_count(page, expected["count"])
    rows = page.get_by_role("region", name="Users list").locator("tbody tr")
    expect(rows).to_have_count(len(members))
    for member in members:
        expect(page.get_by_role("link", name=member["name"] or member["user_id"]).first).to_be_visible()

    # Save segment "Trial users 2": it appears in the bar on top, selected, with its count.
    page.get_by_role("button", name="Save segment").click()
    dialog = page.get_by_role("dialog", name="Save segment")
    dialog.get_by_label("Name").fill("Trial users 2")
    # With the dialog open, the page behind it is hidden: its own "Save segment" is the only one.
    expect(page.get_by_role("button", name="Save segment")).to_have_count(1)
    page.get_by_role("button", name="Save segment").click()
    expect(dialog).to_have_count(0)
    chip = segment_button(page, "Trial users 2")
    expect(chip).to_have_accessible_name(f"Trial users 2 {expected['count']}")
    expect(chip).to_have_attribute("aria-pressed", "true")
    segments = _api(console_stack, "GET", "/v1/segments")["data"]
    saved = next(s for s in segments if s["name"] == "Trial users 2")
    assert saved["filter"] == TRIAL_FILTER and saved["count"] == expected["count"]
    assert page.url.endswith(f"#/users/s/{saved['id']}")
    wait_for_count(page, expected["count"])

    # A manual in-app message to it, previewed for one member, then sent.
    page.get_by_role("button", name="New message").click()
    composer = page.get_by_role("dialog", name="New message")
    expect(composer.get_by_text("Trial users 2")).to_be_visible()
    composer.get_by_label("Name").fill("Trial welcome 2")
    composer.get_by_label("Type").select_option("manual")
    composer.get_by_label("Channel").select_option("in_app")
    composer.get_by_label("Subject").fill("Welcome, {{ user.name }}")
    composer.get_by_label("Body").fill("Hi {{ user.name | default: 'there' }}, thanks for trying us.")
    composer.get_by_role("button", name="Preview").click()
    first = composer.get_by_label("Preview as user ID").input_value()
    assert first in {m["user_id"] for m in members}
    name = next(m["name"] for m in members if m["user_id"] == first)
    expect(composer.locator(".preview-body")).to_have_text(f"Hi {name}, thanks for trying us.")
    expect(composer.get_by_role("button", name="Put live")).to_have_count(0)
    composer.get_by_role("button", name="Send").click()
    expect(composer.get_by_text("was sent")).to_be_visible()

    messages = _api(console_stack, "GET", "/v1/messages")["data"]
    message = next(m for m in messages if m["name"] == "Trial welcome 2")
    assert message["state"] == "sent" and message["audience"] == {"segment_id": saved["id"]}

    # The deliveries show up in its log, as the API lists them.
    composer.get_by_role("link", name="Open its delivery log").click()
    expect(page.get_by_role("heading", name="Trial welcome 2", level=1)).to_be_visible()
    poll(
        lambda: _api(console_stack, "GET", f"/v1/messages/{message['id']}/deliveries?limit=100")["data"],
        lambda data: len(data) == expected["count"] and all(d["status"] == "sent" for d in data),
        DELIVERY_TIMEOUT_S,
        "deliveries",
    )
    log = page.get_by_role("region", name="Delivery log")
    expect(log.locator("tbody tr")).to_have_count(expected["count"], timeout=int(DELIVERY_TIMEOUT_S * 1000))
    expect(log.get_by_text("sent", exact=True)).to_have_count(expected["count"])
    for member in members:
        expect(log.get_by_role("link", name=member["user_id"], exact=True)).to_be_visible()

    # A member's page shows the in-app message they received.
    log.get_by_role("link", name=first, exact=True).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    expect(page.get_by_text(f"Welcome, {name}")).to_be_visible()

    # Signed out, then in with a read key: the segment is there, and nothing can edit it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    sign_in(page, console_stack.base_url, console_keys["read"])
    segment_button(page, "Trial users 2").click()
    wait_for_count(page, expected["count"])
    expect(page.get_by_label("Value", exact=True).first).to_have_value("14")
    for write_control in ("Save changes", "Delete segment", "Save segment", "New message"):
        expect(page.get_by_role("button", name=write_control)).to_have_count(0)
    refused = console_stack.request(
        "PUT", f"/v1/segments/{saved['id']}", {"name": "Mine now"}, key=console_keys["read"]
    )
    assert refused.status == 403
    expect(page.get_by_role("region", name="Users list").locator("tbody tr")).to_have_count(len(members))
    assert re.search(r"read", page.locator("#role-badge").inner_text())
