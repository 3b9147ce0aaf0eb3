"""GET /v1/docs in a browser: Swagger UI renders this stack's document with its content security
policy, and a second load takes Swagger UI's files from the browser's cache (nothing re-sent)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.console.conftest import PageFactory
from tests.e2e.harness import RunningStack


def _watch(page: Page) -> dict[str, list[Any]]:
    """Through Chromium's DevTools protocol: the URL of each request, and which were served from
    the browser's cache (memory or disk) with nothing asked of the server."""
    seen: dict[str, list[Any]] = {"sent": [], "cached": [], "problems": []}
    urls: dict[str, str] = {}
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")

    def sent(event: dict[str, Any]) -> None:
        urls[event["requestId"]] = event["request"]["url"]
        seen["sent"].append(event["request"]["url"])

    session.on("Network.requestWillBeSent", sent)
    session.on(
        "Network.requestServedFromCache", lambda event: seen["cached"].append(urls[event["requestId"]])
    )
    page.on(
        "console", lambda message: seen["problems"].append(message.text) if message.type == "error" else None
    )
    return seen


def test_the_docs_page_renders_and_a_second_load_resends_no_swagger_ui_file(
    console_stack: RunningStack, new_page: PageFactory
) -> None:
    page = new_page()
    seen = _watch(page)
    page.goto(f"{console_stack.base_url}/v1/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_text("/v1/segments/{segment_id}/members").first).to_be_visible()
    files = [url for url in seen["sent"] if "/v1/docs/" in url]
    assert len(files) == 3 and seen["problems"] == [], seen

    for key in ("sent", "cached"):
        seen[key].clear()
    page.goto(f"{console_stack.base_url}/v1/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert sorted(set(seen["cached"]) & set(files)) == sorted(files), seen
    assert seen["problems"] == [], seen
