"""Behavioural events in the filter builder: a count over all time, or within the last N days."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import PageFactory
from tests.console.support import add_condition, segment_button, sign_in, wait_for_count
from tests.e2e.harness import RunningStack

FIELD = "event.uploaded_photo.count"


def test_an_event_count_within_days_is_the_filter_the_api_counts(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    def count(filter_: dict[str, object]) -> int:
        answer = console_stack.request(
            "POST", "/v1/users/count", {"filter": filter_}, key=console_keys["read"]
        )
        assert answer.status == 200, answer.body
        return int(answer.json()["count"])

    ever = count({"field": FIELD, "op": "gte", "value": 3})
    lately = count({"field": FIELD, "op": "gte", "value": 3, "within_days": 2})
    assert ever > lately, "the seed's uploads spread over ten days: a two-day window must count fewer"

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    add_condition(page, FIELD, "gte", "3")
    wait_for_count(page, ever)
    condition = page.get_by_role("group", name="Filter 1", exact=True)
    condition.get_by_label("Within days (optional)").fill("2")
    wait_for_count(page, lately)

    # Out of range: the API's 422 is shown at the window, and nothing is counted.
    condition.get_by_label("Within days (optional)").fill("91")
    expect(condition.get_by_label("Within days (optional)")).to_have_attribute("aria-invalid", "true")
    expect(condition.locator(".field-error")).to_contain_text("within_days is a whole number")
    expect(page.locator(".match-count")).to_contain_text("Fix the filter")

    # The seeded segment on the same field shows its members.
    segment_button(page, "Engaged uploaders").click()
    wait_for_count(page, count({"field": FIELD, "op": "gte", "value": 3, "within_days": 7}))
