"""The console's browser tests: one local stack with the demo seed, one Chromium, a fresh context per page.

The stack starts like the e2e harness does (a subprocess on a free port) with SEED_DEMO=1 and
known keys; the read and write keys are made through POST /v1/api_keys with the admin key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.console.support import DESKTOP, STEP_TIMEOUT_MS, launch, log_tail
from tests.e2e.harness import RunningStack, start_stack, stop_stack

expect.set_options(timeout=STEP_TIMEOUT_MS)


@pytest.fixture(scope="session")
def console_stack() -> Iterator[RunningStack]:
    running = start_stack({"SEED_DEMO": "1"})
    yield running
    code = stop_stack(running)
    assert code == 0, f"the local stack exited with {code} on SIGTERM:\n{running.log_text()}"


@pytest.fixture(scope="session")
def console_keys(console_stack: RunningStack) -> dict[str, str]:
    """role → key: admin and ingest from the stack's settings, read and write made by the admin."""
    keys = {"admin": console_stack.admin_key, "ingest": console_stack.ingest_key}
    for role in ("read", "write"):
        answer = console_stack.request(
            "POST", "/v1/api_keys", {"role": role, "name": f"console {role}"}, key=console_stack.admin_key
        )
        assert answer.status == 201, answer.body
        keys[role] = answer.json()["key"]
    return keys


@pytest.fixture(scope="session")
def chromium_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chromium") / "chromium.log"


@pytest.fixture(scope="session")
def browser(chromium_log: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright, chromium_log)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A test that finds the browser gone reports why Chromium says it went (its log's end)."""
    report = yield
    chromium = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(chromium, Browser) and not chromium.is_connected():
        log = item.funcargs.get("chromium_log")
        report.sections.append(("Chromium exited; the end of its log", log_tail(log) if log else "(no log)"))
    return report


PageFactory = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[PageFactory]:
    """new_page(viewport=DESKTOP) → a page in a fresh context (empty storage); uncaught script
    errors in any of them fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the console: {errors}"
