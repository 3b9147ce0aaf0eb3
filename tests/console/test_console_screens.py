"""Every screen at 1280x800 and 390x844: axe-core finds no serious or critical violation, nothing
overflows the window sideways, the keyboard alone gets through, focus is visible, and the list
never asks the API for more than a page."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.console.conftest import PageFactory
from tests.console.screens import DOC_SHOTS, SCREENS, SIZES, Screen, screenshot, visit
from tests.console.support import PHONE, assert_accessible, console_url, match_count, settled, sign_in
from tests.e2e.harness import RunningStack


def _no_sideways_scroll(page: Page, screen: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{screen} is {widths[0]} px wide in a {widths[1]} px window"


@pytest.mark.parametrize("size", list(SIZES))
def test_every_screen_passes_axe_and_fits_the_window(
    size: str, console_stack: RunningStack, browser: Browser, tmp_path: Path
) -> None:
    """...and the screenshots of docs/ come out of the same walk (`make screenshots` takes them)."""
    seen: list[str] = []
    shots = {name for name, shot_size in DOC_SHOTS if shot_size == size}

    def check(screen: Screen, page: Page) -> None:
        where = f"{screen.name} at {size}"
        assert_accessible(page, where)
        _no_sideways_scroll(page, where)
        if screen.name in shots:
            path = screenshot(page, tmp_path / f"{screen.name}-{size}.png")
            assert _png_size(path) == (SIZES[size]["width"], SIZES[size]["height"])
        seen.append(screen.name)

    visit(console_stack, browser, size, [screen.name for screen in SCREENS], check)
    assert seen == [screen.name for screen in SCREENS]
    assert {path.stem.rsplit("-", 1)[0] for path in tmp_path.glob("*.png")} == shots


def test_the_phone_layout_keeps_navigation_segments_filters_and_list_usable(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page(PHONE)
    sign_in(page, console_stack.base_url, console_keys["write"])
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Users", "Companies", "Messages", "Settings"):
        box = nav.get_by_role("link", name=name, exact=True).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
        assert box["height"] >= 24, f"{name} is too small to tap"
    page.get_by_role("button", name="Add filter", exact=True).click()
    for label in ("Field", "Operator"):
        box = page.get_by_label(label, exact=True).bounding_box()
        assert box and box["width"] >= 200 and box["x"] + box["width"] <= PHONE["width"], label
    page.get_by_label("Field", exact=True).select_option("session_count")
    page.get_by_label("Value", exact=True).fill("0")
    expect(match_count(page)).to_contain_text("match")
    page.get_by_role("button", name="New message").click()
    dialog = page.get_by_role("dialog", name="New message")
    box = dialog.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    for label in ("Name", "Type", "Channel", "Subject", "Body"):
        expect(dialog.get_by_label(label, exact=True)).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def _focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return {tag: e.tagName, text: (e.textContent || '').trim(),"
        " label: e.getAttribute('aria-label') || '', id: e.id, outline: s.outlineStyle,"
        " width: s.outlineWidth}; }"
    )


def _tab_to(page: Page, predicate_text: str, limit: int = 60) -> dict[str, str]:
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = _focused(page)
        if focused["text"] == predicate_text or focused["label"] == predicate_text:
            return focused
    raise AssertionError(f"Tab never reached {predicate_text!r}")


def test_the_keyboard_alone_signs_in_filters_and_saves_with_visible_focus(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page()
    page.goto(console_url(console_stack.base_url))
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(console_keys["admin"])
    page.keyboard.press("Enter")
    expect(match_count(page)).to_contain_text("match")

    focused = _tab_to(page, "Add filter")
    assert focused["outline"] != "none" and focused["width"] != "0px", focused
    page.keyboard.press("Enter")
    field = page.get_by_label("Field", exact=True)
    expect(field).to_be_focused()  # focus follows the new condition
    field.select_option("session_count")
    expect(field).to_be_focused()  # and stays on it when the condition is redrawn
    page.keyboard.press("Tab")
    expect(page.get_by_label("Operator", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Value", exact=True)).to_be_focused()
    page.keyboard.type("0")
    # Asked of the API: other tests of this session add users of their own to the stack.
    expected = console_stack.request(
        "POST",
        "/v1/users/count",
        {"filter": {"field": "session_count", "op": "eq", "value": 0}},
        key=console_stack.admin_key,
    ).json()["count"]
    expect(match_count(page)).to_have_text(f"{expected} users match")

    _tab_to(page, "Save segment")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Save segment")
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="Save segment")).to_be_focused()  # focus comes back


def test_the_list_asks_for_one_page_at_a_time_and_debounces_counts(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    calls: list[Request] = []
    page.on("request", lambda request: calls.append(request) if "/v1/users/" in request.url else None)
    page.get_by_role("button", name="Add filter", exact=True).click()
    page.get_by_label("Field", exact=True).select_option("custom_attributes.photos_uploaded")
    page.get_by_label("Operator", exact=True).select_option("gt")
    page.get_by_label("Value", exact=True).press_sequentially("120.25", delay=30)  # typed, not pasted
    expected = console_stack.request(
        "POST",
        "/v1/users/count",
        {"filter": {"field": "custom_attributes.photos_uploaded", "op": "gt", "value": 120.25}},
        key=console_keys["read"],
    ).json()["count"]
    expect(match_count(page)).to_have_text(f"{expected} users match")
    counts = [c for c in calls if c.url.endswith("/v1/users/count")]
    searches = [c for c in calls if c.url.endswith("/v1/users/search")]
    # One count per pause in typing (six keys here), none for edits the API would not see.
    assert 1 <= len(counts) <= 3, [c.post_data for c in counts]
    assert all("photos_uploaded" in (c.post_data or "") for c in counts)
    assert all(json.loads(c.post_data or "{}")["limit"] <= 25 for c in searches)
    first_page = page.locator("tbody th").all_inner_texts()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator(".page-number")).to_have_text("Page 2")
    settled(page)
    assert not set(page.locator("tbody th").all_inner_texts()) & set(first_page)
    assert json.loads(searches[-1].post_data or "{}")["limit"] == 25


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)
