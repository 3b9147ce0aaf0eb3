"""Driving the console in Chromium with Playwright: launching, signing in, axe-core.

Playwright's own browser download cannot run here, so the browser is Debian's Chromium (the
Makefile installs it when missing and it may) or the one `CHROMIUM=/path` names
(tests/console/browser.py), started with only the flags this machine's closed network needs.
Chromium's log goes to a file, shown with any test that ran while the browser died. axe-core
comes from node_modules (npm, pinned by package-lock.json) and is injected by the test through the
DevTools protocol, so the console's Content-Security-Policy ('self' only) stays on while it runs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

from tests.console.browser import chromium_executable

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Every wait has a deadline; none is a fixed sleep.
STEP_TIMEOUT_MS = 15_000
DELIVERY_TIMEOUT_S = 20.0


def launch(playwright: Playwright, log_file: Path) -> Browser:
    """Chromium (tests/console/browser.py), headless, logging to `log_file`. Playwright gives every
    launch a fresh, temporary user-data-dir."""
    args = [*CHROMIUM_ARGS, "--enable-logging", f"--log-file={log_file}"]
    return playwright.chromium.launch(executable_path=str(chromium_executable()), args=args, headless=True)


def log_tail(log_file: Path, lines: int = 60) -> str:
    """The end of Chromium's log, without the D-Bus complaints of a machine that has no bus."""
    if not log_file.is_file():
        return "(no log)"
    kept = [line for line in log_file.read_text(errors="replace").splitlines() if "dbus" not in line]
    return "\n".join(kept[-lines:]) or "(only D-Bus complaints)"


def console_url(base_url: str) -> str:
    return f"{base_url}/console/"


def sign_in(page: Page, base_url: str, key: str) -> None:
    """Opens the console, signs in with `key` and waits for the user list's count."""
    page.goto(console_url(base_url))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(match_count(page)).to_have_text(re.compile(r"^\d+ users? match"))


def settled(page: Page) -> None:
    """Waits until no count, list or log is loading (they are aria-busy from the first change)."""
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


def match_count(page: Page) -> Any:
    return page.locator(".match-count")


def wait_for_count(page: Page, count: int, noun: str = "users") -> None:
    one = {"users": "user", "companies": "company"}[noun]
    text = f"{count} {one} matches" if count == 1 else f"{count} {noun} match"
    expect(match_count(page)).to_have_text(text)


def add_condition(page: Page, field: str, op: str, value: str | None = None) -> None:
    """Adds a condition with the "Add filter" button and fills its last Field / Operator / Value."""
    page.get_by_role("button", name="Add filter", exact=True).click()
    page.get_by_label("Field", exact=True).last.select_option(field)
    page.get_by_label("Operator", exact=True).last.select_option(op)
    if value is not None:
        page.get_by_label("Value", exact=True).last.fill(value)


def segment_button(page: Page, name: str, count: bool = True) -> Any:
    """The segment bar's button for a segment (its accessible name is "<name> <count>"; "All users"
    has no count)."""
    bar = page.get_by_role("group", name=re.compile(r"segments$"))
    pattern = rf"^{re.escape(name)} \d+$" if count else rf"^{re.escape(name)}$"
    return bar.get_by_role("button", name=re.compile(pattern))


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    results = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
    )
    return [v for v in results if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Page, screen: str) -> None:
    violations = run_axe(page)
    assert not violations, f"axe-core on {screen}: {json.dumps(violations, indent=1)}"


def poll[T](probe: Callable[[], T], until: Callable[[T], bool], timeout: float, what: str) -> T:
    """Calls `probe` until `until(result)` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {result!r} after {timeout} s")
        time.sleep(0.2)
