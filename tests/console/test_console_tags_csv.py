"""Tags, CSV imports and exports in the console (issue 20, part 5), in a real browser, checked
against the API's own answers: tagging from the list (by ids, and every match by a job), the tag
filter in the builder, an import with good and bad rows (a body, and a file over 5 MB through the
presigned upload), an export's download link, and what each role is offered."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from tests.console.conftest import PageFactory
from tests.console.support import (
    DELIVERY_TIMEOUT_S,
    PHONE,
    add_condition,
    assert_accessible,
    poll,
    segment_button,
    settled,
    sign_in,
    wait_for_count,
)
from tests.e2e.harness import RunningStack


def _api(stack: RunningStack, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    answer = stack.request(method, path, body, key=stack.admin_key)
    assert answer.status == status, answer.body
    return answer.json()


def _count(stack: RunningStack, filter_: dict[str, Any]) -> int:
    answer = _api(stack, "POST", "/v1/users/count", {"filter": filter_})
    assert answer["exact"]
    return int(answer["count"])


def _search_ids(stack: RunningStack, filter_: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        page = _api(stack, "POST", "/v1/users/search", {"filter": filter_, "limit": 100, "cursor": cursor})
        found |= {user["user_id"] for user in page["data"]}
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _member_ids(stack: RunningStack, segment_id: str) -> set[str]:
    found: set[str] = set()
    cursor = ""
    while True:
        page = _api(stack, "GET", f"/v1/segments/{segment_id}/members?limit=100{cursor}")
        found |= {user["user_id"] for user in page["data"]}
        if not page["next_cursor"]:
            return found
        cursor = f"&cursor={page['next_cursor']}"


def _tag(stack: RunningStack, name: str) -> dict[str, Any] | None:
    return next((t for t in _api(stack, "GET", "/v1/tags")["data"] if t["name"] == name), None)


def _row(page: Page, user_id: str) -> Any:
    return page.get_by_role("region", name="Users list").get_by_role("row").filter(has_text=user_id)


def _ids_filter(ids: list[str]) -> dict[str, Any]:
    return {"field": "user_id", "op": "in", "value": ids}


def test_tagging_from_the_list_moves_users_into_a_segment_with_a_tag_filter(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    picked = ["u-0101", "u-0102", "u-0103"]
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["write"])

    # Three users picked on the list, tagged with a tag made in the dialog.
    add_condition(page, "user_id", "in", ", ".join([*picked, "u-0104"]))
    wait_for_count(page, 4)
    settled(page)  # the list too, not only its count: a new list forgets the selection
    for user_id in picked:
        _row(page, user_id).get_by_role("checkbox").check()
    expect(page.get_by_text("3 users selected")).to_be_visible()
    page.get_by_role("button", name="Tag", exact=True).click()
    dialog = page.get_by_role("dialog", name="Tag users")
    expect(dialog.get_by_label(re.compile(r"^The 3 selected users"))).to_be_checked()
    expect(dialog.get_by_label("Tag", exact=True)).to_have_value("__new__")  # no tag yet
    dialog.get_by_label("New tag name").fill("Console VIP")
    assert_accessible(page, "the Tag dialog")
    dialog.get_by_role("button", name="Tag users").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Tagged 3 users with “Console VIP”.")).to_be_visible()
    tag = _tag(console_stack, "Console VIP")
    assert tag is not None and tag["count"] == 3
    has_tag = {"field": "tag", "op": "has_tag", "value": tag["id"]}
    assert _search_ids(console_stack, has_tag) == set(picked)

    # A segment on the tag, made in the builder: tagging more users from the list moves them in.
    page.reload()
    settled(page)
    add_condition(page, "tag", "has_tag")
    page.get_by_label("Value", exact=True).select_option(label="Console VIP")
    wait_for_count(page, 3)
    page.get_by_role("button", name="Save segment").click()
    page.get_by_role("dialog", name="Save segment").get_by_label("Name").fill("Console VIP users")
    page.get_by_role("dialog", name="Save segment").get_by_role("button", name="Save segment").click()
    expect(segment_button(page, "Console VIP users")).to_have_attribute("aria-pressed", "true")
    segment = next(
        s for s in _api(console_stack, "GET", "/v1/segments")["data"] if s["name"] == "Console VIP users"
    )
    assert segment["filter"] == has_tag

    # Every user of a filter (more than the page's checkboxes): a job, its progress followed.
    page.get_by_role("button", name="All users", exact=True).click()
    settled(page)
    team = {"field": "user_id", "op": "starts_with", "value": "u-011"}
    add_condition(page, "user_id", "starts_with", "u-011")
    wait_for_count(page, _count(console_stack, team))
    settled(page)
    page.get_by_role("button", name="Tag", exact=True).click()
    dialog = page.get_by_role("dialog", name="Tag users")
    expect(dialog.get_by_label(re.compile(r"^All 10 users of the list"))).to_be_checked()
    dialog.get_by_label("Tag", exact=True).select_option(label="Console VIP (3)")
    dialog.get_by_role("button", name="Tag users").click()
    bar = dialog.get_by_role("progressbar", name="Tagging progress")
    expect(bar).to_be_visible()
    expect(dialog.get_by_text("Tagged 10 users with “Console VIP”.")).to_be_visible()
    expect(bar).to_have_attribute("aria-valuetext", re.compile(r"^\d+ users read$"))
    assert_accessible(page, "a finished tagging job")
    dialog.get_by_role("button", name="Close").click()
    expected = set(picked) | _search_ids(console_stack, team)
    assert len(expected) == 13
    poll(
        lambda: _member_ids(console_stack, segment["id"]),
        lambda members: members == expected,
        DELIVERY_TIMEOUT_S,
        "the tag segment's members",
    )

    # Untagging one user from the list moves them out.
    page.reload()
    settled(page)
    add_condition(page, "user_id", "in", "u-0101")
    wait_for_count(page, 1)
    settled(page)  # the list too, not only its count: a new list forgets the selection
    expect(page.get_by_role("region", name="Users list").locator("tbody tr")).to_have_count(1)
    page.get_by_role("checkbox", name="Select every user on this page").check()
    expect(_row(page, "u-0101").get_by_role("checkbox")).to_be_checked()
    page.get_by_role("button", name="Tag", exact=True).click()
    dialog = page.get_by_role("dialog", name="Tag users")
    dialog.get_by_label("Remove the tag").check()
    dialog.get_by_label("Tag", exact=True).select_option(label="Console VIP (13)")
    dialog.get_by_role("button", name="Untag users").click()
    expect(page.get_by_text("Removed “Console VIP” from 1 user.")).to_be_visible()
    poll(
        lambda: _member_ids(console_stack, segment["id"]),
        lambda members: members == expected - {"u-0101"},
        DELIVERY_TIMEOUT_S,
        "the tag segment's members after untagging",
    )
    segment_button(page, "Console VIP users").click()
    wait_for_count(page, 12)


def test_the_tag_filter_in_the_builder_chooses_a_tag_by_name_and_keeps_its_id(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    tag = _api(console_stack, "POST", "/v1/tags", {"name": "Builder beta"}, status=201)
    _api(console_stack, "POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ["u-0150", "u-0151"]})
    has_tag = {"field": "tag", "op": "has_tag", "value": tag["id"]}
    not_has_tag = {**has_tag, "op": "not_has_tag"}

    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    add_condition(page, "tag", "has_tag")
    value = page.get_by_label("Value", exact=True)
    expect(value.locator("option", has_text="Builder beta")).to_have_count(1)
    value.select_option(label="Builder beta")
    expect(value).to_have_value(tag["id"])
    wait_for_count(page, _count(console_stack, has_tag))
    rows = page.get_by_role("region", name="Users list").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(_row(page, "u-0150")).to_have_count(1)
    page.get_by_label("Operator", exact=True).select_option(label="does not have tag")
    expect(value).to_have_value(tag["id"])
    wait_for_count(page, _count(console_stack, not_has_tag))
    settled(page)
    assert_accessible(page, "a tag filter")

    # A saved segment's tag condition shows the tag's name.
    saved = _api(
        console_stack,
        "POST",
        "/v1/segments",
        {"name": "Builder beta users", "target": "users", "filter": has_tag},
        201,
    )
    page.reload()
    segment_button(page, "Builder beta users").click()
    settled(page)
    expect(page.get_by_label("Value", exact=True)).to_have_value(tag["id"])
    expect(page.get_by_label("Value", exact=True).locator("option:checked")).to_have_text("Builder beta")
    wait_for_count(page, 2)
    _api(console_stack, "DELETE", f"/v1/segments/{saved['id']}", status=204)


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


IMPORT_ROWS = [
    ["user_id", "email", "name", "signed_up_at", "tags", "import_batch"],
    ["csv-1", "one@example.com", "Csv One", "2026-01-02T03:04:05Z", "csv-imported", "console"],
    ["", "nobody@example.com", "No Id", "", "", "console"],  # line 3: no user_id
    ["csv-2", "two@example.com", "Csv Two", "", "csv-imported", "console"],
    ["csv-3", "three@example.com", "Csv Three", "last tuesday", "", "console"],  # line 5: a bad time
    ["csv-4", "four@example.com", "Csv Four", "", "csv-imported", "console"],
]


def test_an_import_with_good_and_bad_rows_shows_progress_rejected_rows_and_the_users(
    console_stack: RunningStack, new_page: PageFactory
) -> None:
    page = new_page()
    sign_in(page, console_stack.base_url, console_stack.admin_key)
    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import CSV")
    dialog.get_by_label("CSV file").set_input_files(
        {"name": "users.csv", "mimeType": "text/csv", "buffer": _csv(IMPORT_ROWS)}
    )
    with page.expect_response(re.compile(r"/v1/imports$")) as started:
        dialog.get_by_role("button", name="Import").click()
    assert started.value.status == 202
    assert started.value.request.headers["content-type"] == "text/csv"
    job_id = started.value.json()["job_id"]
    bar = dialog.get_by_role("progressbar", name="Import progress")
    expect(bar).to_be_visible()
    expect(dialog.get_by_text("Imported 3 rows; 2 rows were rejected.")).to_be_visible()
    expect(bar).to_have_attribute("aria-valuetext", "5 of 5 rows, 2 rejected")
    job = _api(console_stack, "GET", f"/v1/jobs/{job_id}")
    assert job["state"] == "done" and [e["line"] for e in job["errors"]] == [3, 5]
    rejected = dialog.get_by_role("region", name="Rejected rows list").locator("tbody tr")
    expect(rejected).to_have_count(2)
    for index, error in enumerate(job["errors"]):
        expect(rejected.nth(index).locator("td")).to_have_text([str(error["line"]), error["reason"]])
    assert_accessible(page, "a finished import with rejected rows")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # The users are there: the new custom attribute is a field, the new tag a tag.
    batch = {"field": "custom_attributes.import_batch", "op": "eq", "value": "console"}
    assert _search_ids(console_stack, batch) == {"csv-1", "csv-2", "csv-4"}
    add_condition(page, "custom_attributes.import_batch", "eq", "console")
    wait_for_count(page, 3)
    for user_id in ("csv-1", "csv-2", "csv-4"):
        expect(_row(page, user_id)).to_have_count(1)
    page.reload()
    settled(page)
    add_condition(page, "tag", "has_tag")
    page.get_by_label("Value", exact=True).select_option(label="csv-imported")
    wait_for_count(page, 3)


def test_an_import_header_refused_shows_the_apis_error(
    console_stack: RunningStack, new_page: PageFactory
) -> None:
    page = new_page()
    sign_in(page, console_stack.base_url, console_stack.admin_key)
    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import CSV")
    dialog.get_by_label("CSV file").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"email,name\nada@example.com,Ada\n"}
    )
    with page.expect_response(re.compile(r"/v1/imports$")) as answered:
        dialog.get_by_role("button", name="Import").click()
    error = answered.value.json()["error"]
    assert answered.value.status == 422
    expect(dialog.get_by_role("alert")).to_contain_text(error["message"])
    expect(dialog.get_by_role("button", name="Import")).to_be_enabled()


def test_a_file_over_5_mb_goes_through_the_presigned_upload(
    console_stack: RunningStack, new_page: PageFactory
) -> None:
    rows = _csv(
        [["user_id", "name", "import_batch"], ["big-1", "Big One", "big"], ["big-2", "Big Two", "big"]]
    )
    # Blank lines are no rows: a file over the body's 5 MB that imports two users.
    content = rows + b"\n" * (5 * 1024 * 1024 + 1 - len(rows))
    page = new_page()
    sign_in(page, console_stack.base_url, console_stack.admin_key)
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import CSV")
    dialog.get_by_label("CSV file").set_input_files(
        {"name": "big.csv", "mimeType": "text/csv", "buffer": content}
    )
    dialog.get_by_role("button", name="Import").click()
    expect(dialog.get_by_text("Imported 2 rows.")).to_be_visible(timeout=60_000)
    posted = next(r for r in sent if r.url.endswith("/v1/imports"))
    assert posted.method == "POST" and json.loads(posted.post_data or "") == {"filename": "big.csv"}
    put = next(r for r in sent if r.method == "PUT")
    assert put.url.startswith(f"{console_stack.base_url}/_local/s3/") and "authorization" not in put.headers
    assert _search_ids(
        console_stack, {"field": "custom_attributes.import_batch", "op": "eq", "value": "big"}
    ) == {
        "big-1",
        "big-2",
    }


def _download(url: str) -> list[dict[str, str]]:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return list(csv.DictReader(io.StringIO(answer.read().decode("utf-8"))))


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_an_export_of_a_segment_gives_a_link_to_its_members_rows(
    viewport: dict[str, int] | None, console_stack: RunningStack, new_page: PageFactory
) -> None:
    trial = next(s for s in _api(console_stack, "GET", "/v1/segments")["data"] if s["name"] == "Trial users")
    members = _member_ids(console_stack, trial["id"])
    assert members
    page = new_page(viewport)
    sign_in(page, console_stack.base_url, console_stack.admin_key)
    segment_button(page, "Trial users").click()
    settled(page)
    page.get_by_role("button", name="Export CSV").click()
    dialog = page.get_by_role("dialog", name="Export CSV")
    expect(dialog.get_by_text("Members of the segment “Trial users”")).to_be_visible()
    link = dialog.get_by_role("link", name=re.compile(r"^Download the CSV"))
    expect(link).to_have_accessible_name(f"Download the CSV ({len(members)} rows)")
    expect(link).to_be_focused()
    expect(dialog.get_by_role("progressbar", name="Export progress")).to_have_attribute(
        "aria-valuetext", re.compile(r"^\d+ records read$")
    )
    assert_accessible(page, f"a finished export ({'phone' if viewport else 'desktop'})")
    rows = _download(str(link.get_attribute("href")))
    assert {row["user_id"] for row in rows} == members
    assert len(rows) == len(members)
    for row in rows:
        user = _api(console_stack, "GET", f"/v1/users/{row['user_id']}")
        assert (row["email"], row["name"]) == (user["email"] or "", user["name"] or ""), row


def test_each_role_is_offered_what_it_may_do(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    offered = {
        "read": {"Tag": 0, "Import CSV": 0, "Export CSV": 0, "checkboxes": 0},
        "write": {"Tag": 1, "Import CSV": 0, "Export CSV": 0, "checkboxes": 1},
        "admin": {"Tag": 1, "Import CSV": 1, "Export CSV": 1, "checkboxes": 1},
    }
    for role, controls in offered.items():
        page = new_page()
        sign_in(page, console_stack.base_url, console_keys[role])
        settled(page)
        expect(page.locator("tbody tr").first).to_be_visible()
        for name in ("Tag", "Import CSV", "Export CSV"):
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(controls[name])
        boxes = page.get_by_role("checkbox", name="Select every user on this page")
        expect(boxes).to_have_count(controls["checkboxes"])
        page.close()


def test_the_keyboard_alone_selects_a_page_and_opens_the_tag_dialog(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["write"])
    settled(page)
    select_page = page.get_by_role("checkbox", name="Select every user on this page")
    for _ in range(80):
        page.keyboard.press("Tab")
        if select_page.evaluate("box => box === document.activeElement"):
            break
    expect(select_page).to_be_focused()
    page.keyboard.press("Space")
    rows = page.get_by_role("region", name="Users list").locator("tbody tr").count()
    expect(page.get_by_text(f"{rows} users selected")).to_be_visible()
    expect(page.get_by_role("region", name="Users list").locator("tbody input:checked")).to_have_count(rows)
    tag_button = page.get_by_role("button", name="Tag", exact=True)
    tag_button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Tag users")
    expect(dialog.get_by_label("Tag", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(tag_button).to_be_focused()
