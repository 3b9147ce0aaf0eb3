"""Email that arrives (issue 18), in the console: the composer's unsubscribe link, what SES reports
back (a user's email_status, the message stats, each delivery's feedback) and the settings page
with the email frequency cap.

SES's reports are real: the local stack's `POST /_local/ses/events` makes SES publish its event for
the last email sent to an address onto the default bus, and the template's rule hands it to the
feedback function, as deployed. The settings are the shared stack's: a fixture puts them back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import PageFactory
from tests.console.support import (
    DELIVERY_TIMEOUT_S,
    PHONE,
    add_condition,
    assert_accessible,
    console_url,
    poll,
    settled,
    sign_in,
    wait_for_count,
)
from tests.e2e.harness import RunningStack

BOUNCED_NOTE = "emails are skipped until the app sets a new email"
COMPLAINED_NOTE = "The user complained"


def _api(
    stack: RunningStack, method: str, path: str, body: Any = None, status: int = 200, key: str = ""
) -> Any:
    answer = stack.request(method, path, body, key=key or stack.admin_key)
    assert answer.status == status, (answer.status, answer.body)
    return answer.json()


def _report(stack: RunningStack, kind: str, email: str) -> None:
    """SES reports `kind` about the last email sent to `email`, through EventBridge."""
    answer = stack.request("POST", "/_local/ses/events", {"type": kind, "email": email})
    assert answer.status == 200 and answer.json()["rules"] == ["EmailEventsRule"], answer.body


def _outbox(stack: RunningStack, domain: str) -> list[dict[str, Any]]:
    data = _api(stack, "GET", "/_local/outbox")["data"]
    return [email for email in data if email["to"][0].endswith("@" + domain)]


def _no_sideways_scroll(page: Page, screen: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{screen} is {widths[0]} px wide in a {widths[1]} px window"


def _cells(page: Page, table: Locator, row: Locator) -> dict[str, str]:
    """A row of a data table as {column header: text} (without the selection column of a list a
    key that may tag sees). The row first: the list may still be loading when its count has come."""
    expect(row).to_be_visible()
    headers = table.locator("thead th").all_inner_texts()
    texts = [row.locator("th").first.inner_text(), *row.locator("td:not(.select-cell)").all_inner_texts()]
    assert len(headers) == len(texts), (headers, texts)
    return dict(zip(headers, texts, strict=True))


@pytest.fixture
def restored_settings(console_stack: RunningStack) -> Iterator[dict[str, Any]]:
    """The settings as they were; put back after the test, whatever happens (the stack is shared)."""
    before = _api(console_stack, "GET", "/v1/settings")
    yield before
    _api(console_stack, "PUT", "/v1/settings", {"email_frequency_cap": before["email_frequency_cap"]})
    assert _api(console_stack, "GET", "/v1/settings") == before


def test_an_email_composed_with_its_unsubscribe_link_then_what_ses_reports_shows_everywhere(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    prefix = f"ses-{uuid.uuid4().hex[:10]}-"
    domain = prefix.strip("-") + ".example"
    people = {name: f"{prefix}{name.lower()}" for name in ("Ada", "Bob", "Cy")}
    for name, user_id in people.items():
        _api(
            console_stack,
            "POST",
            "/v1/users",
            {"user_id": user_id, "name": f"{name} {prefix}", "email": f"{name.lower()}@{domain}"},
            status=201,
            key=console_stack.ingest_key,
        )
    ada, bob, cy = people["Ada"], people["Bob"], people["Cy"]

    # Composed in the console: the unsubscribe link is offered for email only, and goes in the body.
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["admin"])
    add_condition(page, "user_id", "starts_with", prefix)
    wait_for_count(page, 3)
    page.get_by_role("button", name="New message").click()
    composer = page.get_by_role("dialog", name="New message")
    insert = composer.get_by_role("button", name="Insert unsubscribe link")
    composer.get_by_label("Channel").select_option("in_app")
    expect(insert).to_be_hidden()
    composer.get_by_label("Channel").select_option("email")
    expect(insert).to_be_visible()
    name = f"News {prefix}"
    composer.get_by_label("Name").fill(name)
    composer.get_by_label("Subject").fill("News for {{ user.name }}")
    body = composer.get_by_label("Body")
    body.fill("Hi {{ user.name }}, news.\n\nUnsubscribe: ")
    body.press("End")
    insert.click()
    expect(body).to_have_value("Hi {{ user.name }}, news.\n\nUnsubscribe: {{ unsubscribe_url }}")
    expect(body).to_be_focused()
    composer.get_by_role("button", name="Preview").click()
    # A preview has no delivery, so its link is the API's placeholder (it leads nowhere).
    expect(composer.locator(".preview-body")).to_contain_text(f"{console_stack.base_url}/u/preview")
    composer.get_by_role("button", name="Send").click()
    expect(composer.get_by_text("was sent")).to_be_visible()
    composer.get_by_role("link", name="Open its delivery log").click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    message_id = page.url.rsplit("/", 1)[1]

    # Each email's body has that email's own link, the one its List-Unsubscribe header names.
    emails = poll(
        lambda: _outbox(console_stack, domain),
        lambda found: len(found) == 3,
        DELIVERY_TIMEOUT_S,
        "the emails",
    )
    links = set()
    for email in emails:
        link = email["headers"]["List-Unsubscribe"].strip("<>")
        assert email["text"].endswith(f"Unsubscribe: {link}"), email["text"]
        links.add(link)
    assert len(links) == 3

    # SES reports: Ada's address bounced for good, Bob complained, Cy's email was delivered.
    _report(console_stack, "Bounce", f"ada@{domain}")
    _report(console_stack, "Complaint", f"bob@{domain}")
    _report(console_stack, "Delivery", f"cy@{domain}")
    stats = poll(
        lambda: _api(console_stack, "GET", f"/v1/messages/{message_id}")["stats"],
        lambda found: (found["delivered"], found["bounced"], found["complained"]) == (1, 1, 1),
        DELIVERY_TIMEOUT_S,
        "the message's feedback counters",
    )
    assert stats["sent"] == 3, stats
    feedback = {
        d["user_id"]: d["feedback"]
        for d in _api(console_stack, "GET", f"/v1/messages/{message_id}/deliveries")["data"]
    }
    assert feedback == {ada: "bounced", bob: "complained", cy: "delivered"}
    statuses = {
        user_id: _api(console_stack, "GET", f"/v1/users/{user_id}")["email_status"]
        for user_id in people.values()
    }
    assert statuses == {ada: "bounced", bob: "complained", cy: "ok"}

    # The message's page: the new counters, and each delivery's feedback in the log.
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator(".message-view")).not_to_contain_text("null")
    stat_list = page.get_by_role("list", name="Stats")
    for stat in ("sent", "delivered", "bounced", "complained"):
        expect(stat_list.locator("li").filter(has_text=re.compile(rf"^\d+{stat}$"))).to_have_text(
            f"{stats[stat]}{stat}"
        )
    log = page.get_by_role("region", name="Delivery log")
    table = log.locator("table")
    for user_id, kind in feedback.items():
        row = log.locator("tbody tr").filter(has=page.get_by_role("link", name=user_id, exact=True))
        expect(row.locator("td").last).to_have_text(kind)
        assert _cells(page, table, row) | {"At": ""} == {
            "User": user_id,
            "Status": "sent",
            "Reason": "—",
            "At": "",
            "Feedback": kind,
        }
    assert_accessible(page, "a message with SES's feedback")

    # The list: the same counters in their columns; an in-app message (the newest) has none.
    in_app_name = f"In-app {prefix}"
    in_app_message = {
        "name": in_app_name,
        "type": "manual",
        "channel": "in_app",
        "audience": {"filter": {"field": "user_id", "op": "eq", "value": ada}},
        "body": "Hi",
    }
    in_app_id = _api(console_stack, "POST", "/v1/messages", in_app_message, status=201)["id"]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    listing = page.get_by_role("region", name="Messages list")
    expect(listing.get_by_role("link", name=name)).to_be_visible()
    row = listing.locator("tbody tr").filter(has=page.get_by_role("link", name=name))
    cells = _cells(page, listing.locator("table"), row)
    assert {k: cells[k] for k in ("Sent", "Delivered", "Bounced", "Complained")} == {
        k.title(): str(stats[k]) for k in ("sent", "delivered", "bounced", "complained")
    }
    in_app = listing.locator("tbody tr").filter(has=page.get_by_role("link", name=in_app_name))
    assert {
        k: v
        for k, v in _cells(page, listing.locator("table"), in_app).items()
        if k in ("Delivered", "Bounced", "Complained")
    } == {"Delivered": "—", "Bounced": "—", "Complained": "—"}
    assert_accessible(page, "the messages list with feedback counters")
    _api(console_stack, "DELETE", f"/v1/messages/{in_app_id}", status=204)

    # Each user's page says what their status means.
    for user_id, status, note in (
        (ada, "bounced", BOUNCED_NOTE),
        (bob, "complained", COMPLAINED_NOTE),
        (cy, "ok", None),
    ):
        page.goto(console_url(console_stack.base_url) + f"#/users/u/{user_id}")
        fact = page.locator(".email-status")
        expect(fact.locator(".state")).to_have_text(status)
        if note:
            expect(fact).to_contain_text(note)
        else:
            expect(fact.locator(".email-status-note")).to_have_count(0)
    page.goto(console_url(console_stack.base_url) + f"#/users/u/{bob}")
    expect(page.locator(".email-status")).to_contain_text("unsubscribed")
    assert_accessible(page, "a user who complained")

    # The users list marks the reported addresses; a filter on Email status finds them.
    page.goto(console_url(console_stack.base_url) + "#/users")
    page.reload()
    add_condition(page, "user_id", "starts_with", prefix)
    wait_for_count(page, 3)
    users = page.get_by_role("region", name="Users list")
    for user_id, status in statuses.items():
        row = users.locator("tbody tr").filter(has_text=user_id)
        email_cell = _cells(page, users.locator("table"), row)["Email"]
        assert email_cell == (
            f"{user_id.rsplit('-', 1)[1]}@{domain}" + ("" if status == "ok" else f" {status}")
        ), email_cell
    add_condition(page, "email_status", "eq", "bounced")
    suggested = page.get_by_label("Value", exact=True).last.get_attribute("list")
    assert page.locator(f"datalist#{suggested} option").evaluate_all("(os) => os.map((o) => o.value)") == [
        "ok",
        "bounced",
        "complained",
    ]
    wait_for_count(page, 1)
    expect(users.locator("tbody tr")).to_have_count(1)
    expect(users.get_by_text(ada)).to_be_visible()

    # A read key on a phone: the same, fitting the window.
    phone = new_page(PHONE)
    sign_in(phone, console_stack.base_url, console_keys["read"])
    for route, what in (
        (f"#/messages/{message_id}", "a message's feedback"),
        ("#/messages", "the messages list"),
        (f"#/users/u/{ada}", "a bounced user"),
    ):
        phone.goto(console_url(console_stack.base_url) + route)
        settled(phone)
        expect(phone.locator("h1")).to_be_visible()
        if route.startswith("#/users/u/"):
            expect(phone.locator(".email-status")).to_contain_text(BOUNCED_NOTE)
        elif route == "#/messages":
            expect(phone.get_by_role("link", name=name)).to_be_visible()
        else:
            expect(
                phone.get_by_role("region", name="Delivery log").get_by_text("complained", exact=True)
            ).to_be_visible()
        assert_accessible(phone, f"{what} at 390 px")
        _no_sideways_scroll(phone, f"{what} at 390 px")


def test_an_admin_sets_and_removes_the_cap_and_sees_the_apis_422_at_its_fields(
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
    restored_settings: dict[str, Any],
) -> None:
    _api(console_stack, "PUT", "/v1/settings", {"email_frequency_cap": None})
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_focused()
    cap = page.get_by_role("region", name="Email frequency cap")
    expect(cap.locator(".current-cap")).to_have_text(re.compile("^No cap"))
    expect(cap.get_by_role("button", name="Remove cap")).to_be_hidden()
    zone = page.get_by_role("region", name="Time zone")
    expect(zone.locator(".timezone")).to_have_text(restored_settings["timezone"])
    expect(zone.get_by_role("textbox")).to_have_count(0)  # set at deploy: shown, never edited

    # Out of bounds: the API's 422 names each field, and each message is shown at its field.
    maximum, days = cap.get_by_label("Maximum emails per user"), cap.get_by_label("Window in days")
    maximum.fill("0")
    days.fill("91")
    cap.get_by_role("button", name="Save cap").click()
    refused = console_stack.request(
        "PUT", "/v1/settings", {"email_frequency_cap": {"max": 0, "days": 91}}, key=console_keys["admin"]
    )
    assert refused.status == 422
    details = {d["path"]: d["message"] for d in refused.json()["error"]["details"]}
    for control, path in ((maximum, "email_frequency_cap.max"), (days, "email_frequency_cap.days")):
        expect(control).to_have_attribute("aria-invalid", "true")
        error_id = control.get_attribute("aria-describedby").split()[-1]
        expect(page.locator(f"#{error_id}")).to_have_text(details[path])
    expect(maximum).to_be_focused()
    expect(cap.get_by_role("alert")).to_have_text(refused.json()["error"]["message"])
    assert _api(console_stack, "GET", "/v1/settings")["email_frequency_cap"] is None
    assert_accessible(page, "the settings with the API's 422")

    # A fraction is the API's to refuse too (a whole number of emails).
    maximum.fill("2.5")
    days.fill("7")
    cap.get_by_role("button", name="Save cap").click()
    expect(maximum).to_have_attribute("aria-invalid", "true")
    expect(days).not_to_have_attribute("aria-invalid", "true")
    assert _api(console_stack, "GET", "/v1/settings")["email_frequency_cap"] is None

    # A cap: saved, shown, and what the API now answers; a reload shows it in the form.
    maximum.fill("3")
    cap.get_by_role("button", name="Save cap").click()
    expect(cap.locator(".ok")).to_contain_text("Saved. At most 3 emails per user in any 7 days.")
    expect(maximum).not_to_have_attribute("aria-invalid", "true")
    expect(cap.locator(".field-error:visible")).to_have_count(0)
    assert _api(console_stack, "GET", "/v1/settings")["email_frequency_cap"] == {"max": 3, "days": 7}
    page.reload()
    cap = page.get_by_role("region", name="Email frequency cap")
    expect(cap.locator(".current-cap")).to_have_text("At most 3 emails per user in any 7 days.")
    expect(cap.get_by_label("Maximum emails per user")).to_have_value("3")
    expect(cap.get_by_label("Window in days")).to_have_value("7")
    assert_accessible(page, "the settings with a cap")

    # Removed: no cap any more, for the API too.
    cap.get_by_role("button", name="Remove cap").click()
    expect(cap.locator(".ok")).to_have_text("The cap is removed.")
    expect(cap.locator(".current-cap")).to_have_text(re.compile("^No cap"))
    expect(cap.get_by_role("button", name="Remove cap")).to_be_hidden()
    expect(cap.get_by_label("Maximum emails per user")).to_have_value("")
    assert _api(console_stack, "GET", "/v1/settings")["email_frequency_cap"] is None


@pytest.mark.parametrize("role", ["read", "write"])
def test_read_and_write_keys_see_the_settings_read_only(
    role: str,
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
    restored_settings: dict[str, Any],
) -> None:
    _api(console_stack, "PUT", "/v1/settings", {"email_frequency_cap": {"max": 4, "days": 30}})
    page = new_page(PHONE)
    sign_in(page, console_stack.base_url, console_keys[role])
    page.goto(console_url(console_stack.base_url) + "#/settings")
    cap = page.get_by_role("region", name="Email frequency cap")
    expect(cap.locator(".current-cap")).to_have_text("At most 4 emails per user in any 30 days.")
    expect(cap).to_contain_text("Only an admin key can change the cap.")
    expect(page.get_by_role("region", name="Time zone").locator(".timezone")).to_have_text(
        restored_settings["timezone"]
    )
    expect(page.locator("main input")).to_have_count(0)
    for control in ("Save cap", "Remove cap"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    assert_accessible(page, f"the settings for a {role} key at 390 px")
    _no_sideways_scroll(page, f"the settings for a {role} key")
    # The API agrees: only an admin changes them.
    refused = console_stack.request(
        "PUT", "/v1/settings", {"email_frequency_cap": None}, key=console_keys[role]
    )
    assert refused.status == 403, refused.body
