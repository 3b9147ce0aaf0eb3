"""The API's errors, shown where they belong: a 422 at the condition its path names, a 409's dependents."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import PageFactory
from tests.console.support import add_condition, segment_button, sign_in, wait_for_count
from tests.e2e.harness import RunningStack


def test_a_422_is_shown_next_to_the_condition_its_path_names(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    bad = {
        "and": [
            {"field": "custom_attributes.plan", "op": "eq", "value": "pro"},
            {"field": "signed_up_at", "op": "exactly_days_ago", "value": 1.5},
        ]
    }
    answer = console_stack.request("POST", "/v1/users/count", {"filter": bad}, key=console_keys["read"])
    assert answer.status == 422
    [detail] = answer.json()["error"]["details"]
    assert detail["path"] == "filter.and[1].value"

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    add_condition(page, "custom_attributes.plan", "eq", "pro")
    add_condition(page, "signed_up_at", "exactly_days_ago", "1.5")
    second = page.get_by_role("group", name="Filter 2", exact=True)
    expect(second.get_by_text(detail["message"])).to_be_visible()
    expect(second.get_by_label("Value", exact=True)).to_have_attribute("aria-invalid", "true")
    first = page.get_by_role("group", name="Filter 1", exact=True)
    expect(first.locator(".field-error")).to_have_count(0)
    expect(page.locator(".match-count")).to_contain_text("Fix the filter")

    # Fixed, the error goes and the count comes back.
    second.get_by_label("Value", exact=True).fill("2")
    expect(second.locator(".field-error")).to_have_count(0)
    expect(page.locator(".match-count")).to_contain_text("match")


def test_deleting_a_segment_in_use_shows_the_409_and_its_dependents(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    segments = console_stack.request("GET", "/v1/segments", key=console_stack.admin_key).json()["data"]
    trial = next(s for s in segments if s["name"] == "Trial users")
    refused = console_stack.request("DELETE", f"/v1/segments/{trial['id']}", key=console_stack.admin_key)
    assert refused.status == 409
    error = refused.json()["error"]
    [dependent] = error["details"]
    messages = console_stack.request("GET", "/v1/messages", key=console_stack.admin_key).json()["data"]
    depending = next(m for m in messages if m["id"] == dependent["message_id"])

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["admin"])
    segment_button(page, "Trial users").click()
    page.get_by_role("button", name="Delete segment").click()
    dialog = page.get_by_role("dialog", name="Delete segment")
    expect(dialog).to_contain_text("Trial users")
    dialog.get_by_role("button", name="Delete segment").click()
    expect(dialog.get_by_role("alert")).to_contain_text(error["message"])
    link = dialog.get_by_role("link", name=depending["name"])
    expect(link).to_have_attribute("href", f"#/messages/{depending['id']}")

    # Cancel keeps it; the segment is still there, and its dependent is one click away.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(segment_button(page, "Trial users")).to_be_visible()
    still = console_stack.request("GET", f"/v1/segments/{trial['id']}", key=console_stack.admin_key)
    assert still.status == 200


def test_groups_build_the_filter_the_api_counts_and_companies_work_alike(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    def count(target: str, filter_: dict[str, object]) -> int:
        body = {"filter": filter_}
        answer = console_stack.request("POST", f"/v1/{target}/count", body, key=console_keys["read"])
        assert answer.status == 200, answer.body
        return int(answer.json()["count"])

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    add_condition(page, "custom_attributes.plan", "in", "starter, pro")
    page.get_by_role("button", name="Add group").click()
    group = page.get_by_role("group", name="Group 2")
    group.get_by_label("Field", exact=True).select_option("custom_attributes.downloaded_mobile_app")
    group.get_by_role("button", name="Add condition to group").click()
    group.get_by_label("Field", exact=True).last.select_option("session_count")
    group.get_by_label("Operator", exact=True).last.select_option("gt")
    group.get_by_label("Value", exact=True).last.fill("3")
    group.get_by_label("Match").select_option("none")
    expected = count(
        "users",
        {
            "and": [
                {"field": "custom_attributes.plan", "op": "in", "value": ["starter", "pro"]},
                {
                    "not": {
                        "or": [
                            {"field": "custom_attributes.downloaded_mobile_app", "op": "is_true"},
                            {"field": "session_count", "op": "gt", "value": 3},
                        ]
                    }
                },
            ]
        },
    )
    wait_for_count(page, expected)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Companies").click()
    add_condition(page, "monthly_spend", "gte", "100")
    wait_for_count(
        page, count("companies", {"field": "monthly_spend", "op": "gte", "value": 100}), "companies"
    )
    expect(page.get_by_role("region", name="Companies list").locator("tbody tr").first).to_be_visible()
