"""Membership changes in the console, for real through the local stack: a segment's chart and its
latest changes against the API, a user's segment history paged, and a webhook made in the console
that a receiver on 127.0.0.1 gets signed POSTs from (its secret rotated, disabled by 3 days of
failures, re-enabled, deleted), and for admin keys only.

Membership moves as it would for a user: users upserted through the API, the stack's clock moved
(`POST /_local/clock`) and the nightly rebuild run (`POST /_local/invoke/RebuildCoordinatorFunction`)
so that the segment's stats have days. The clock is put back (which runs every schedule, the
rebuild included) and the webhooks deleted, whatever happens.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, Request, Route, expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.console.conftest import PageFactory
from tests.console.support import (
    DELIVERY_TIMEOUT_S,
    PHONE,
    assert_accessible,
    console_url,
    poll,
    settled,
    sign_in,
)
from tests.e2e.harness import RunningStack
from tests.e2e.helpers import create_segment, ok, unique, upsert_user

DAY = 86_400
# What the console says for each cause of API.md (js/changes.js CAUSES).
CAUSES = {
    "attributes": "Attributes changed",
    "login": "Login",
    "event": "Event",
    "company": "Company changed",
    "time": "Time passed",
    "segment_created": "Segment created",
    "segment_edited": "Segment edited",
    "rebuild": "Nightly rebuild",
    "deleted": "Deleted",
}
LATEST = 8  # js/changes.js LATEST_CHANGES
HISTORY_PAGE = 10  # js/changes.js HISTORY_PAGE


def _get(stack: RunningStack, path: str) -> Any:
    return ok(stack.request("GET", path, key=stack.admin_key))


def _shown_time(at: str) -> str:
    """dom.js formatTime: "2026-12-01 10:00 UTC"."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")


def _no_sideways_scroll(page: Page, where: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{where} is {widths[0]} px wide in a {widths[1]} px window"


# ---- the stack's clock --------------------------------------------------------------------------


class StackClock:
    """Moves the shared stack's clock ahead in days from where it stood; `restore` puts it back."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.start = float(ok(stack.request("GET", "/_local/clock"))["offset_seconds"])
        self.days = 0.0

    def advance(self, days: float) -> None:
        self.days += days
        ok(self.stack.request("POST", "/_local/clock", {"offset_seconds": self.start + self.days * DAY}))

    def nightly(self) -> None:
        ok(self.stack.request("POST", "/_local/invoke/RebuildCoordinatorFunction"))

    def restore(self) -> None:
        # Backward, the local stack runs every schedule (the rebuild too): memberships that the
        # moved clock changed are put right for the tests that come next.
        ok(self.stack.request("POST", "/_local/clock", {"offset_seconds": self.start}))


@pytest.fixture(scope="module")
def clock(console_stack: RunningStack) -> Iterator[StackClock]:
    moved = StackClock(console_stack)
    try:
        yield moved
    finally:
        moved.restore()


# ---- a segment whose membership moved over three days -----------------------------------------


@dataclass(frozen=True)
class Moved:
    segment: dict[str, Any]
    users: list[str]

    @property
    def flipper(self) -> str:
        return self.users[7]


def _changes_of(stack: RunningStack, user_id: str, segment_id: str) -> list[str]:
    """The user's recorded changes of the segment, newest first."""
    history = _get(stack, f"/v1/users/{user_id}/segment_history?limit=100")["data"]
    return [change["change"] for change in history if change["segment_id"] == segment_id]


def _set_plan(stack: RunningStack, user_id: str, plan: str, segment_id: str) -> None:
    """Upserts the user's plan and waits until the change of membership it makes is recorded (a
    user's `segments` are evaluated when read: the recorded change comes from the stream)."""
    before = len(_changes_of(stack, user_id, segment_id))
    upsert_user(stack, {"user_id": user_id, "custom_attributes": {"plan": plan}})
    expected = "entered" if plan == "pro" else "exited"
    found = poll(
        lambda: _changes_of(stack, user_id, segment_id),
        lambda found: len(found) > before,
        DELIVERY_TIMEOUT_S,
        f"{user_id} {expected} {segment_id}",
    )
    assert len(found) == before + 1 and found[0] == expected, found


@pytest.fixture(scope="module")
def moved(console_stack: RunningStack, clock: StackClock) -> Moved:
    """Day 0: users 0-4 enter, user 7 enters and leaves five times; day 1: 0 and 1 leave, 5 enters;
    day 2: 2 leaves, 0, 6 and 7 enter. A nightly rebuild between days settles their stats."""
    stack = console_stack
    prefix = unique("chg") + "-"
    users = [f"{prefix}{n}" for n in range(8)]
    for n, user_id in enumerate(users):
        upsert_user(
            stack, {"user_id": user_id, "name": f"Changer {n}", "custom_attributes": {"plan": "free"}}
        )
    filter_ = {
        "and": [
            {"field": "user_id", "op": "starts_with", "value": prefix},
            {"field": "custom_attributes.plan", "op": "eq", "value": "pro"},
        ]
    }
    segment_id = create_segment(stack, f"Changes {prefix}", filter_)
    for user_id in users[:5]:
        _set_plan(stack, user_id, "pro", segment_id)
    for flip in range(10):
        _set_plan(stack, users[7], "pro" if flip % 2 == 0 else "free", segment_id)
    clock.advance(1)
    clock.nightly()
    for user_id, plan in ((users[0], "free"), (users[1], "free"), (users[5], "pro")):
        _set_plan(stack, user_id, plan, segment_id)
    clock.advance(1)
    clock.nightly()
    for user_id, plan in ((users[2], "free"), (users[0], "pro"), (users[6], "pro"), (users[7], "pro")):
        _set_plan(stack, user_id, plan, segment_id)
    days = _get(stack, f"/v1/segments/{segment_id}/stats?days=3")["data"]
    # The API's own account (what the console is checked against below).
    assert [(d["count"], d["entered"], d["exited"]) for d in days] == [(5, 10, 5), (4, 1, 2), (6, 3, 1)], days
    return Moved(_get(stack, f"/v1/segments/{segment_id}"), users)


# ---- the segment's page -----------------------------------------------------------------------


def _activity(page: Page) -> Any:
    activity = page.get_by_role("region", name="Members over the last 30 days")
    expect(activity).to_be_visible()
    expect(activity).not_to_have_attribute("aria-busy", "true")
    return activity


def _check_chart(activity: Any, segment: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The chart's text alternative, its table and its marks say what the API's stats say."""
    first, last = rows[0], rows[-1]
    entered = sum(row["entered"] for row in rows)
    exited = sum(row["exited"] for row in rows)
    peak = max(rows, key=lambda row: row["count"])
    chart = activity.get_by_role("img")
    expect(chart).to_have_accessible_name(
        f"Members of {segment['name']}, a day, {first['date']} to {last['date']}"
    )
    expect(chart).to_have_accessible_description(
        f"{first['count']} members on {first['date']}, {last['count']} on {last['date']}; "
        f"at most {peak['count']} ({peak['date']}). "
        f"{entered} entered and {exited} exited in {len(rows)} days."
    )
    expect(activity.locator(".activity-summary")).to_have_text(
        f"{last['count']} now · {entered} entered, {exited} exited in {len(rows)} days"
    )

    activity.get_by_text("Day by day (table)").click()
    table = activity.get_by_role("region", name=re.compile(r"members, entered and exited a day$"))
    shown = [
        [cell.strip() for cell in row.split("\t")] for row in table.locator("tbody tr").all_inner_texts()
    ]
    assert shown == [[r["date"], str(r["count"]), str(r["entered"]), str(r["exited"])] for r in rows]

    # The marks: a bar up for each day with entries, down for each with exits, and the line's
    # points as high as their counts rank.
    svg = activity.locator("svg.size-chart")
    assert svg.locator(".chart-entered").count() == sum(1 for row in rows if row["entered"])
    assert svg.locator(".chart-exited").count() == sum(1 for row in rows if row["exited"])
    points = [
        float(p.split(",")[1]) for p in (svg.locator(".chart-line").get_attribute("points") or "").split()
    ]
    assert len(points) == len(rows)
    for row, y in zip(rows, points, strict=True):
        for other, other_y in zip(rows, points, strict=True):
            if row["count"] > other["count"]:
                assert y < other_y, (row, other)
            elif row["count"] == other["count"]:
                assert y == other_y, (row, other)
    heights = [float(bar.get_attribute("height") or 0) for bar in svg.locator(".chart-entered").all()]
    movers = [row["entered"] for row in rows if row["entered"]]
    assert heights.index(max(heights)) == movers.index(max(movers))


def _check_latest(activity: Any, expected: list[dict[str, Any]]) -> None:
    items = activity.get_by_role("list", name="Latest changes, newest first").get_by_role("listitem")
    expect(items).to_have_count(len(expected))
    for item, change in zip(items.all(), expected, strict=True):
        assert item.get_attribute("data-member-id") == change["member_id"]
        assert item.get_attribute("data-change") == change["change"]
        assert item.get_attribute("data-cause") == change["cause"]
        expect(item.get_by_role("link")).to_have_text(change["member_id"])
        expect(item).to_contain_text("Entered" if change["change"] == "entered" else "Exited")
        expect(item).to_contain_text(CAUSES[change["cause"]])
        expect(item.locator("time")).to_have_text(_shown_time(change["at"]))


def test_a_segments_chart_and_latest_changes_match_the_api(
    moved: Moved, console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    stack = console_stack
    segment = moved.segment
    page = new_page()
    sign_in(page, stack.base_url, console_keys["read"])  # reading them is for every role
    page.goto(console_url(stack.base_url) + f"#/users/s/{segment['id']}")
    activity = _activity(page)
    # Asked after the page's own reads: nothing moves this segment meanwhile.
    rows = _get(stack, f"/v1/segments/{segment['id']}/stats")["data"]
    assert len(rows) == 30 and rows[-1]["count"] == segment["count"] == 6
    _check_chart(activity, segment, rows)

    feed = _get(stack, f"/v1/segments/{segment['id']}/changes?limit=100")["data"]
    assert len(feed) == 22  # all of them: 15 + 3 + 4
    _check_latest(activity, feed[::-1][:LATEST])
    settled(page)
    assert_accessible(page, "a segment's chart and latest changes, its table open")
    _no_sideways_scroll(page, "a segment's activity")

    newest = feed[-1]["member_id"]
    activity.get_by_role("link", name=newest, exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Changer {moved.users.index(newest)}")

    # At 390 x 844: the chart is drawn to the phone's width, nothing scrolls sideways, axe is clean.
    phone = new_page(PHONE)
    sign_in(phone, stack.base_url, console_keys["read"])
    phone.goto(console_url(stack.base_url) + f"#/users/s/{segment['id']}")
    on_phone = _activity(phone)
    box = on_phone.locator("svg.size-chart").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["width"] >= 280, f"the chart is squeezed to {box['width']} px"
    svg_width = float(on_phone.locator("svg.size-chart").get_attribute("width") or 0)
    assert abs(svg_width - box["width"]) < 1, "drawn at the phone's width, not scaled down"
    _check_chart(on_phone, segment, rows)
    _check_latest(on_phone, feed[::-1][:LATEST])
    settled(phone)
    assert_accessible(phone, "a segment's activity on a phone")
    _no_sideways_scroll(phone, "a segment's activity on a phone")


def test_a_users_page_pages_through_its_segment_history(
    moved: Moved, console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    stack = console_stack
    user_id = moved.flipper
    first = _get(stack, f"/v1/users/{user_id}/segment_history?limit={HISTORY_PAGE}")
    assert len(first["data"]) == HISTORY_PAGE and first["next_cursor"], first
    second = _get(
        stack, f"/v1/users/{user_id}/segment_history?limit={HISTORY_PAGE}&cursor={first['next_cursor']}"
    )
    assert second["data"]
    names = {s["id"]: s["name"] for s in _get(stack, "/v1/segments")["data"]}

    page = new_page()
    sign_in(page, stack.base_url, console_keys["read"])
    page.goto(console_url(stack.base_url) + f"#/users/u/{user_id}")
    expect(page.get_by_role("heading", name="Changer 7", level=1)).to_be_visible()
    history = page.get_by_role("region", name="Segment history")

    def check(expected: list[dict[str, Any]]) -> None:
        items = history.get_by_role("listitem")
        expect(items).to_have_count(len(expected))
        for item, change in zip(items.all(), expected, strict=True):
            assert item.get_attribute("data-segment-id") == change["segment_id"]
            assert item.get_attribute("data-change") == change["change"]
            link = item.get_by_role("link")
            expect(link).to_have_text(names[change["segment_id"]])
            expect(link).to_have_attribute("href", f"#/users/s/{change['segment_id']}")
            expect(item).to_contain_text(CAUSES[change["cause"]])
            expect(item.locator("time")).to_have_text(_shown_time(change["at"]))

    assert any(change["segment_id"] == moved.segment["id"] for change in first["data"])
    check(first["data"])  # newest first, as the API gives them
    pages = page.get_by_role("navigation", name="Pages of segment history")
    pages.get_by_role("button", name="Next page").click()
    expect(pages.locator(".page-number")).to_have_text("Page 2")
    check(second["data"])
    pages.get_by_role("button", name="Previous page").click()
    expect(pages.locator(".page-number")).to_have_text("Page 1")
    check(first["data"])
    settled(page)
    assert_accessible(page, "a user's segment history")


def test_a_companys_page_shows_its_segment_history_a_deleted_segment_by_its_id(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    stack = console_stack
    company_id = unique("co-chg")
    kept_id = create_segment(
        stack, f"Pro {company_id}", {"field": "plan", "op": "eq", "value": "pro"}, target="companies"
    )
    gone_id = create_segment(
        stack, f"Named {company_id}", {"field": "company_id", "op": "eq", "value": company_id}, "companies"
    )
    history_path = f"/v1/companies/{company_id}/segment_history?limit=100"
    # One change at a time: a change undone within the same batch of the stream is no change.
    for plan, expected in (("pro", ["entered"]), ("free", ["exited", "entered"])):
        body = {"company_id": company_id, "plan": plan}
        answer = stack.request("POST", "/v1/companies", body, key=stack.ingest_key)
        assert answer.status in (200, 201), answer.body
        history = poll(
            lambda: _get(stack, history_path)["data"],
            lambda found, expected=expected: (
                [c["change"] for c in found if c["segment_id"] == kept_id] == expected
            ),
            DELIVERY_TIMEOUT_S,
            f"{company_id} {plan}: {expected} {kept_id}",
        )
    assert any(change["segment_id"] == gone_id for change in history), history
    ok(stack.request("DELETE", f"/v1/segments/{gone_id}", key=stack.admin_key), 204)
    history = _get(stack, history_path)["data"]
    assert [c["change"] for c in history if c["segment_id"] == kept_id] == ["exited", "entered"]
    assert any(change["segment_id"] == gone_id for change in history), "its history outlives it"
    names = {s["id"]: s["name"] for s in _get(stack, "/v1/segments?target=companies")["data"]}
    assert gone_id not in names

    page = new_page()
    sign_in(page, stack.base_url, console_keys["read"])
    page.goto(console_url(stack.base_url) + f"#/companies/c/{company_id}")
    expect(page.get_by_role("heading", name=company_id, level=1)).to_be_visible()
    items = page.get_by_role("region", name="Segment history").get_by_role("listitem")
    expect(items).to_have_count(len(history))
    for item, change in zip(items.all(), history, strict=True):
        assert item.get_attribute("data-segment-id") == change["segment_id"]
        assert item.get_attribute("data-change") == change["change"]
        expect(item).to_contain_text(CAUSES[change["cause"]])
        expect(item.locator("time")).to_have_text(_shown_time(change["at"]))
        if change["segment_id"] == gone_id:  # deleted: its id, not a link
            expect(item.get_by_role("link")).to_have_count(0)
            expect(item.locator(".change-segment")).to_have_text(gone_id)
        else:
            link = item.get_by_role("link")
            expect(link).to_have_text(names[change["segment_id"]])
            expect(link).to_have_attribute("href", f"#/companies/s/{change['segment_id']}")
    settled(page)
    assert_accessible(page, "a company's segment history")


def _focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => { const e = document.activeElement; return {tag: e.tagName,"
        " text: (e.textContent || '').trim(), label: e.getAttribute('aria-label') || ''}; }"
    )


def _tab_to(page: Page, text: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if text in (_focused(page)["text"], _focused(page)["label"]):
            return
    raise AssertionError(f"Tab never reached {text!r}")


def test_the_keyboard_alone_opens_the_charts_table_and_fills_a_new_webhook(
    moved: Moved, console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    stack = console_stack
    page = new_page()
    sign_in(page, stack.base_url, console_keys["admin"])
    page.goto(console_url(stack.base_url) + f"#/users/s/{moved.segment['id']}")
    activity = _activity(page)
    _tab_to(page, "Day by day (table)")
    page.keyboard.press("Enter")
    expect(activity.locator("details.chart-data")).to_have_attribute("open", "")
    page.keyboard.press("Tab")  # the table's own box scrolls: it takes focus
    assert _focused(page)["label"].endswith("members, entered and exited a day")

    before = _get(stack, "/v1/webhooks?limit=100")["data"]
    page.goto(console_url(stack.base_url) + "#/webhooks")
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    _tab_to(page, "New webhook")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New webhook")
    expect(dialog.get_by_label("URL")).to_be_focused()
    page.keyboard.type("http://10.1.2.3/hook")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Every segment (users and companies)")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the radio group: "Only these segments"
    expect(dialog.get_by_label("Only these segments")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the first segment
    expect(dialog.locator(".segment-choices input:checked")).to_have_count(1)
    _tab_to(page, "Create webhook")
    page.keyboard.press("Enter")
    # Refused by the API (not a public address): said at the URL, which gets the focus back.
    expect(dialog.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("URL")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="New webhook")).to_be_focused()
    assert _get(stack, "/v1/webhooks?limit=100")["data"] == before


# ---- the latest changes of a segment that moved a lot -------------------------------------------


class FakeFeed:
    """GET /v1/segments/seg_busy/changes as API.md has it (oldest first, `since` inclusive, pages
    of `limit`, a cursor), over changes made up here; counts the reads."""

    def __init__(self, moments_ms: list[int]) -> None:
        self.changes = [
            {
                "segment_id": "seg_busy",
                "target": "users",
                "member_id": f"u-{index}",
                "change": "entered" if index % 3 else "exited",
                "at": datetime.fromtimestamp(at / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "cause": "rebuild",
                "sequence": 1,
            }
            for index, at in enumerate(sorted(moments_ms))
        ]
        self.moments = sorted(moments_ms)
        self.reads = 0

    def answer(self, route: Route, request: Request) -> None:
        self.reads += 1
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        limit = int(query.get("limit", "50"))
        if "cursor" in query:
            start = int(query["cursor"])
        else:
            since = datetime.fromisoformat(query["since"].replace("Z", "+00:00"))
            since_ms = round(since.timestamp() * 1000)
            start = next((i for i, at in enumerate(self.moments) if at >= since_ms), len(self.moments))
        page = self.changes[start : start + limit]
        body = {"data": page, "next_cursor": str(start + len(page))}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def stats(self, today: str, days: int = 30) -> list[dict[str, Any]]:
        """The stats rows these changes make (counts made up: the latest changes do not read them)."""
        last = datetime.fromisoformat(today).replace(tzinfo=UTC).timestamp() * 1000
        rows = []
        for back in range(days - 1, -1, -1):
            start = last - back * DAY * 1000
            on_day = [
                c
                for c, at in zip(self.changes, self.moments, strict=True)
                if start <= at < start + DAY * 1000
            ]
            rows.append(
                {
                    "date": datetime.fromtimestamp(start / 1000, UTC).date().isoformat(),
                    "count": 100,
                    "entered": sum(1 for c in on_day if c["change"] == "entered"),
                    "exited": sum(1 for c in on_day if c["change"] == "exited"),
                }
            )
        return rows


@pytest.mark.parametrize(
    ("case", "moments", "most_reads"),
    [
        # A rebuild moved 20,000 members over one night's hour, after 50 changes days before.
        (
            "20,000 in an hour",
            [i * 3_600_000 for i in range(1, 51)]
            + [20 * DAY * 1000 + 7_200_000 + i * 180 for i in range(20_000)],
            25,
        ),
        # 300 in one millisecond, then 3 more: bisecting time cannot split them; the tail is read.
        (
            "300 at once",
            [25 * DAY * 1000 + 5_000] * 300 + [25 * DAY * 1000 + 9_000 + i for i in range(3)],
            40,
        ),
        # A quiet segment: 5 changes over three days, one read.
        ("5 in 3 days", [(27 + i // 2) * DAY * 1000 + 60_000 * i for i in range(5)], 1),
    ],
    ids=["rebuild-hour", "same-millisecond", "quiet"],
)
def test_the_latest_changes_of_a_busy_segment_take_a_few_reads(
    case: str,
    moments: list[int],
    most_reads: int,
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
) -> None:
    """The console's own search for the newest changes (js/changes.js latestChanges) over a feed
    answered in the browser: the newest come back, newest first, in a few reads, not one per 100."""
    base = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    feed = FakeFeed([base + at for at in moments])
    rows = feed.stats(datetime.fromtimestamp((base + 29 * DAY * 1000) / 1000, UTC).date().isoformat())
    assert sum(r["entered"] + r["exited"] for r in rows) == len(feed.changes)
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys["read"])
    page.route(re.compile(r"/v1/segments/seg_busy/changes\?"), feed.answer)
    found = page.evaluate(
        "async (rows) => (await import(new URL('js/changes.js', document.baseURI).href))"
        ".latestChanges('seg_busy', rows)",
        rows,
    )
    expected = feed.changes[::-1][:LATEST]
    assert [c["member_id"] for c in found] == [c["member_id"] for c in expected], case
    assert feed.reads <= most_reads, f"{case}: {feed.reads} reads"


# ---- webhooks -----------------------------------------------------------------------------------


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each POST and answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def members(self, index: int) -> list[str]:
        return [c["member_id"] for c in json.loads(self.posts[index][1])["data"]["changes"]]


@pytest.fixture
def receiver(console_stack: RunningStack) -> Iterator[Receiver]:
    """A receiver, and after the test no webhook left pointing at it (the stack is shared)."""
    made = Receiver()
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        hooks = _get(console_stack, "/v1/webhooks?limit=100")["data"]
        for hook in hooks:
            if hook["url"] == made.url:
                console_stack.request("DELETE", f"/v1/webhooks/{hook['id']}", key=console_stack.admin_key)
        made.server.shutdown()
        made.server.server_close()


def _post_with(receiver: Receiver, member: str) -> tuple[dict[str, str], bytes]:
    index = poll(
        lambda: next((i for i in range(len(receiver.posts)) if member in receiver.members(i)), None),
        lambda found: found is not None,
        DELIVERY_TIMEOUT_S,
        f"a POST with {member}",
    )
    assert index is not None
    return receiver.posts[index]


def _attempt_cells(row: Any) -> list[str]:
    return [cell.strip() for cell in row.inner_text().split("\t")]


def test_a_webhook_made_in_the_console_gets_signed_posts_and_is_managed_there(
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
    clock: StackClock,
    receiver: Receiver,
) -> None:
    stack = console_stack
    prefix = unique("hook") + "-"
    segment_name = f"Hooked {prefix}"
    segment_id = create_segment(
        stack, segment_name, {"field": "user_id", "op": "starts_with", "value": prefix}
    )
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, stack.base_url, console_keys["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()

    # A URL the API refuses: its 422 is shown at the URL field, and nothing is made.
    page.get_by_role("button", name="New webhook").click()
    dialog = page.get_by_role("dialog", name="New webhook")
    refused = stack.request("POST", "/v1/webhooks", {"url": "http://10.1.2.3/hook"}, key=stack.admin_key)
    assert refused.status == 422 and refused.json()["error"]["code"] == "url_not_allowed"
    dialog.get_by_label("URL").fill("http://10.1.2.3/hook")
    dialog.get_by_role("button", name="Create webhook").click()
    expect(dialog.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_role("alert")).to_contain_text(refused.json()["error"]["message"])
    assert_accessible(page, "the new webhook dialog with a refused URL")

    # Made for one segment: the secret is shown once, with Copy and a warning.
    dialog.get_by_label("URL").fill(receiver.url)
    dialog.get_by_label("Only these segments").check()
    dialog.get_by_label(segment_name, exact=True).check()
    dialog.get_by_label("Description (optional)").fill(f"CRM sync {prefix}")
    dialog.get_by_role("button", name="Create webhook").click()
    shown = page.get_by_role("dialog", name="Webhook created")
    secret = shown.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    expect(shown).to_contain_text("Copy this secret now: it is not shown again.")
    shown.get_by_role("button", name="Copy secret").click()
    expect(shown.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    assert_accessible(page, "a new webhook's secret")
    shown.get_by_role("button", name="Done").click()
    expect(page.get_by_role("heading", name=f"CRM sync {prefix}", level=1)).to_be_visible()
    (hook,) = [h for h in _get(stack, "/v1/webhooks?limit=100")["data"] if h["url"] == receiver.url]
    assert hook["segment_ids"] == [segment_id] and hook["state"] == "enabled" and "secret" not in hook
    expect(page.get_by_role("link", name=segment_name)).to_be_visible()

    # A member enters: the receiver gets a POST that verifies with the secret, and the console's
    # log shows the attempt as the API lists it.
    upsert_user(stack, {"user_id": prefix + "a"})
    headers, body = _post_with(receiver, prefix + "a")
    signed = Webhook(secret).verify(body, headers)
    assert [(c["segment_id"], c["member_id"], c["change"]) for c in signed["data"]["changes"]] == [
        (segment_id, prefix + "a", "entered")
    ]
    attempts = poll(
        lambda: _get(stack, f"/v1/webhooks/{hook['id']}/deliveries")["data"],
        lambda found: len(found) >= 1,
        DELIVERY_TIMEOUT_S,
        "the delivery attempt",
    )
    page.get_by_role("button", name="Refresh").click()
    log = page.get_by_role("region", name="Delivery attempts")
    expect(log.locator("tbody tr")).to_have_count(len(attempts))
    first = attempts[0]
    assert (first["status_code"], first["outcome"], first["changes"]) == (200, "delivered", 1)
    assert first["webhook_id_header"] == headers["webhook-id"]
    assert _attempt_cells(log.locator("tbody tr").first) == [
        _shown_time(first["at"]),
        "delivered",
        "200",
        f"{first['duration_ms']} ms",
        "1",
        first["webhook_id_header"],
    ]

    # Rotate: a new secret, shown once; the next POST verifies with it and not with the old one.
    page.get_by_role("button", name="Rotate secret").click()
    page.get_by_role("dialog", name="Rotate secret").get_by_role("button", name="Rotate secret").click()
    rotated = page.get_by_role("dialog", name="New secret")
    new_secret = rotated.get_by_label("Signing secret").input_value()
    assert new_secret.startswith("whsec_") and new_secret != secret
    rotated.get_by_role("button", name="Done").click()
    expect(rotated).to_have_count(0)

    # The receiver fails from now on; 3 days of the stack's clock later, a retry fails again and
    # the webhook is disabled: the console says so, and why.
    receiver.status = 500
    upsert_user(stack, {"user_id": prefix + "b"})
    headers, body = _post_with(receiver, prefix + "b")
    Webhook(new_secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)
    clock.advance(3 + 2 / 1440)  # runs the retry schedule: the next attempt is due
    disabled = poll(
        lambda: _get(stack, f"/v1/webhooks/{hook['id']}"),
        lambda found: found["state"] == "disabled",
        DELIVERY_TIMEOUT_S,
        "the webhook disabled",
    )
    assert disabled["disabled_reason"]
    page.get_by_role("button", name="Refresh").click()
    box = page.get_by_role("region", name="Disabled")
    expect(box).to_contain_text(disabled["disabled_reason"])
    expect(page.locator(".message-meta .state")).to_have_text("disabled")
    failed = _get(stack, f"/v1/webhooks/{hook['id']}/deliveries")["data"]
    expect(log.locator("tbody tr")).to_have_count(len(failed))
    assert _attempt_cells(log.locator("tbody tr").first)[1:3] == ["failed", str(failed[0]["status_code"])]
    assert failed[0]["status_code"] == 500
    assert_accessible(page, "a disabled webhook")

    # The list says it too, on a phone as well.
    phone = new_page(PHONE)
    sign_in(phone, stack.base_url, console_keys["admin"])
    phone.goto(console_url(stack.base_url) + "#/webhooks")
    row = phone.get_by_role("row").filter(has=phone.get_by_role("link", name=receiver.url))
    expect(row).to_contain_text("disabled")
    expect(row).to_contain_text(disabled["disabled_reason"])
    settled(phone)
    assert_accessible(phone, "the webhooks on a phone")
    _no_sideways_scroll(phone, "the webhooks on a phone")

    # Re-enabled, it gets the next change (the receiver answers again).
    receiver.status = 200
    page.get_by_role("button", name="Re-enable").click()
    expect(page.locator(".panel-status")).to_have_text("Re-enabled: new changes are sent to it.")
    expect(page.get_by_role("region", name="Disabled")).to_have_count(0)
    after = _get(stack, f"/v1/webhooks/{hook['id']}")
    assert after["state"] == "enabled" and after["disabled_reason"] is None
    upsert_user(stack, {"user_id": prefix + "c"})
    headers, body = _post_with(receiver, prefix + "c")
    Webhook(new_secret).verify(body, headers)

    # Deleted: gone from the list and from the API.
    page.get_by_role("button", name="Delete webhook").click()
    page.get_by_role("dialog", name="Delete webhook").get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=receiver.url)).to_have_count(0)
    assert stack.request("GET", f"/v1/webhooks/{hook['id']}", key=stack.admin_key).status == 404


@pytest.mark.parametrize("role", ["read", "write"])
def test_webhooks_are_for_admin_keys_only(
    role: str, console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    assert console_stack.request("GET", "/v1/webhooks", key=console_keys[role]).status == 403
    page = new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/v1/webhooks" in request.url else None)
    sign_in(page, console_stack.base_url, console_keys[role])
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Messages")).to_be_visible()
    expect(nav.get_by_role("link", name="Webhooks")).to_have_count(0)
    page.goto(console_url(console_stack.base_url) + "#/webhooks")
    expect(page.get_by_role("alert")).to_have_text(
        f"Webhooks are managed with an admin key; this key is {role}."
    )
    assert asked == []

    admin = new_page()
    sign_in(admin, console_stack.base_url, console_keys["admin"])
    expect(admin.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks")).to_be_visible()
