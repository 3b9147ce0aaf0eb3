"""The console's screens, each reached the way a teammate reaches it, on the demo seed.

Used by the accessibility tests (axe-core on every screen, at both sizes) and by the screenshots
in docs/ (`make screenshots`, or `python -m tests.console.screens docs/console`). Opening a screen
changes nothing: dialogs are opened, never submitted.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console.support import (
    DESKTOP,
    PHONE,
    STEP_TIMEOUT_MS,
    add_condition,
    console_url,
    launch,
    segment_button,
    settled,
    sign_in,
)
from tests.e2e.harness import RunningStack, start_stack, stop_stack


@dataclass(frozen=True)
class Seed:
    """Ids of the demo seed that the screens open."""

    trial_segment: str
    trial_user: str
    trial_user_name: str
    company: str
    message: str

    @classmethod
    def read(cls, stack: RunningStack) -> Seed:
        def get(path: str, body: Any = None) -> Any:
            answer = stack.request("POST" if body else "GET", path, body, key=stack.admin_key)
            assert answer.status == 200, answer.body
            return answer.json()

        trial = next(s for s in get("/v1/segments")["data"] if s["name"] == "Trial users")
        member = get(f"/v1/segments/{trial['id']}/members?limit=1")["data"][0]
        welcome = next(m for m in get("/v1/messages")["data"] if m["name"] == "Welcome, trial users")
        company = member["company_ids"][0] if member["company_ids"] else "co-01"
        return cls(trial["id"], member["user_id"], member["name"], company, welcome["id"])


def _go(page: Page, base_url: str, route: str, fresh: bool = False) -> None:
    """Opens a route; `fresh` reloads the page, so that no filter is left from the screen before."""
    page.goto(console_url(base_url) + route)
    if fresh:
        page.reload()


def _signed_out(page: Page, base_url: str, seed: Seed) -> None:
    page.goto(console_url(base_url))
    expect(page.get_by_label("API key")).to_be_visible()


def _users(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, "#/users", fresh=True)
    expect(segment_button(page, "All users", count=False)).to_have_attribute("aria-pressed", "true")
    settled(page)
    expect(page.locator(".match-count")).to_have_text(re.compile(r"^\d+ users match"))
    expect(page.locator("tbody tr").first).to_be_visible()


def _segment(page: Page, base_url: str, seed: Seed) -> None:
    _users(page, base_url, seed)
    chip = segment_button(page, "Trial users")
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    settled(page)
    expect(page.get_by_label("Value", exact=True).first).to_have_value("14")
    expect(page.locator(".match-count")).to_have_text(re.compile(r"^\d+ users? match"))
    expect(page.get_by_role("img", name=re.compile(r"^Members of Trial users, a day"))).to_be_visible()
    latest = page.get_by_role("list", name="Latest changes, newest first")
    expect(latest.get_by_role("listitem").first).to_be_visible()


def _filtering(page: Page, base_url: str, seed: Seed) -> None:
    _users(page, base_url, seed)
    add_condition(page, "signed_up_at", "less_than_days_ago", "14")
    add_condition(page, "custom_attributes.plan", "eq", "free trial")
    page.get_by_role("button", name="Add group").click()
    group = page.get_by_role("group", name="Group 3")
    group.get_by_label("Field", exact=True).select_option("custom_attributes.downloaded_mobile_app")
    page.locator(".columns-picker summary").click()
    page.get_by_label("photos_uploaded").check()
    page.locator(".columns-picker summary").click()
    settled(page)
    expect(page.locator(".match-count")).to_have_text(re.compile(r"^\d+ users? match"))
    expect(page.get_by_role("columnheader", name="photos_uploaded")).to_be_visible()


def _save_dialog(page: Page, base_url: str, seed: Seed) -> None:
    _users(page, base_url, seed)
    add_condition(page, "custom_attributes.photos_uploaded", "gt", "100")
    page.get_by_role("button", name="Save segment").click()
    dialog = page.get_by_role("dialog", name="Save segment")
    dialog.get_by_label("Name").fill("Power uploaders")


def _tag_dialog(page: Page, base_url: str, seed: Seed) -> None:
    _users(page, base_url, seed)
    page.get_by_role("region", name="Users list").get_by_role("checkbox").nth(1).check()
    page.get_by_role("button", name="Tag", exact=True).click()
    dialog = page.get_by_role("dialog", name="Tag users")
    dialog.get_by_label("Tag", exact=True).select_option("__new__")
    dialog.get_by_label("New tag name").fill("VIP")


def _import_dialog(page: Page, base_url: str, seed: Seed) -> None:
    _users(page, base_url, seed)
    page.get_by_role("button", name="Import CSV").click()
    expect(page.get_by_role("dialog", name="Import CSV").get_by_label("CSV file")).to_be_visible()


def _composer(page: Page, base_url: str, seed: Seed) -> None:
    _segment(page, base_url, seed)
    page.get_by_role("button", name="New message").click()
    dialog = page.get_by_role("dialog", name="New message")
    dialog.get_by_label("Name").fill("Trial tips")
    dialog.get_by_label("Body").fill("Hi {{ user.name | default: 'there' }}, three tips for your trial.")
    dialog.get_by_role("button", name="Preview").click()
    expect(dialog.locator(".preview-body")).to_contain_text("three tips")
    expect(dialog.locator(".audience-count")).to_have_text(re.compile(r"\d+ users? now"))


def _delete_conflict(page: Page, base_url: str, seed: Seed) -> None:
    _segment(page, base_url, seed)
    page.get_by_role("button", name="Delete segment").click()
    dialog = page.get_by_role("dialog", name="Delete segment")
    dialog.get_by_role("button", name="Delete segment").click()
    expect(dialog.get_by_role("alert")).to_be_visible()


def _companies(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, "#/companies", fresh=True)
    settled(page)
    expect(page.locator(".match-count")).to_have_text(re.compile(r"^\d+ compan(y|ies) match"))
    expect(page.locator("tbody tr").first).to_be_visible()


def _company(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, f"#/companies/c/{seed.company}")
    expect(page.locator(".plain-list li").first).to_be_visible()


def _user(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, f"#/users/u/{seed.trial_user}")
    expect(page.get_by_role("heading", name=seed.trial_user_name, level=1)).to_be_visible()
    expect(page.locator(".inbox li").first).to_be_visible()
    expect(page.locator(".tag-list li").first).to_be_visible()
    expect(page.get_by_role("region", name="Segment history").get_by_role("listitem").first).to_be_visible()


def _messages(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, "#/messages")
    expect(page.get_by_role("link", name="Welcome, trial users")).to_be_visible()


def _message(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, f"#/messages/{seed.message}")
    expect(page.get_by_role("region", name="Delivery log").locator("tbody tr").first).to_be_visible()
    expect(page.locator(".message-view")).not_to_contain_text("null")  # a part left out is left out


def _settings(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, "#/settings")
    expect(page.get_by_role("heading", name="Email frequency cap")).to_be_visible()
    expect(page.get_by_label("Maximum emails per user")).to_be_visible()


def _webhooks(page: Page, base_url: str, seed: Seed) -> None:
    _go(page, base_url, "#/webhooks")
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="New webhook")).to_be_visible()


def _new_webhook(page: Page, base_url: str, seed: Seed) -> None:
    _webhooks(page, base_url, seed)
    page.get_by_role("button", name="New webhook").click()
    dialog = page.get_by_role("dialog", name="New webhook")
    dialog.get_by_label("URL").fill("https://hooks.example.com/segments")
    dialog.get_by_label("Trial users", exact=True).check()  # other tests may add "Trial users 2"


@dataclass(frozen=True)
class Screen:
    name: str
    open: Callable[[Page, str, Seed], None]
    signed_in: bool = True


SCREENS = [
    Screen("sign-in", _signed_out, signed_in=False),
    Screen("users", _users),
    Screen("segment", _segment),
    Screen("filters", _filtering),
    Screen("save-segment", _save_dialog),
    Screen("new-message", _composer),
    Screen("tag-users", _tag_dialog),
    Screen("import-csv", _import_dialog),
    Screen("delete-segment-409", _delete_conflict),
    Screen("companies", _companies),
    Screen("company", _company),
    Screen("user", _user),
    Screen("messages", _messages),
    Screen("message", _message),
    Screen("settings", _settings),
    Screen("webhooks", _webhooks),
    Screen("new-webhook", _new_webhook),
]
# What docs/ shows: (screen, size name).
DOC_SHOTS = [
    ("segment", "desktop"),
    ("filters", "desktop"),
    ("new-message", "desktop"),
    ("message", "desktop"),
    ("user", "desktop"),
    ("settings", "desktop"),
    ("new-webhook", "desktop"),
    ("segment", "phone"),
    ("message", "phone"),
]
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def visit(
    stack: RunningStack,
    browser: Browser,
    size: str,
    names: list[str],
    on_screen: Callable[[Screen, Page], None],
) -> None:
    """Opens each named screen at `size` (a window of SIZES), as the admin, and hands it over."""
    seed = Seed.read(stack)
    context = browser.new_context(viewport=SIZES[size])
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        signed_out = context.new_page()
        page = context.new_page()
        signed_in = False
        for screen in SCREENS:
            if screen.name not in names:
                continue
            target = page if screen.signed_in else signed_out
            if screen.signed_in and not signed_in:
                sign_in(page, stack.base_url, stack.admin_key)
                signed_in = True
            screen.open(target, stack.base_url, seed)
            settled(target)
            on_screen(screen, target)
            target.keyboard.press("Escape")  # closes a dialog the screen opened
            expect(target.locator("dialog[open]")).to_have_count(0)
    finally:
        context.close()


def screenshot(page: Page, path: Path) -> Path:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path), animations="disabled")
    return path


def screenshots(stack: RunningStack, out_dir: Path, browser: Browser | None = None) -> list[Path]:
    """Writes DOC_SHOTS as <screen>-<size>.png into out_dir (the admin's view of the demo seed),
    in `browser`, or in a Chromium of its own."""
    if browser is None:
        with sync_playwright() as playwright:
            own = launch(playwright, Path(tempfile.gettempdir()) / "console-screens-chromium.log")
            try:
                return screenshots(stack, out_dir, own)
            finally:
                own.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for size in SIZES:

        def shoot(screen: Screen, page: Page, size: str = size) -> None:
            written.append(screenshot(page, out_dir / f"{screen.name}-{size}.png"))

        visit(stack, browser, size, [name for name, shot_size in DOC_SHOTS if shot_size == size], shoot)
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path("docs/console")
    stack = start_stack({"SEED_DEMO": "1"})
    try:
        for path in screenshots(stack, out_dir):
            print(path)
    finally:
        stop_stack(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
