"""Sign-in and the controls each role gets: what the screen offers matches what the API allows."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.console.conftest import PageFactory
from tests.console.support import add_condition, console_url, segment_button, settled, sign_in, wait_for_count
from tests.e2e.harness import RunningStack

# (role, what the badge says, buttons on a stored segment, buttons it must not have)
ROLES = [
    ("admin", "admin", ["Save segment", "Save changes", "Delete segment", "New message"], []),
    ("write", "write", ["Save segment", "New message"], ["Save changes", "Delete segment"]),
    ("read", "read only", [], ["Save segment", "Save changes", "Delete segment", "New message"]),
]


def _seed_message(stack: RunningStack) -> dict[str, str]:
    answer = stack.request("GET", "/v1/messages", key=stack.admin_key)
    return next(m for m in answer.json()["data"] if m["name"] == "Welcome, trial users")


def _trial_users(stack: RunningStack) -> dict[str, object]:
    answer = stack.request("GET", "/v1/segments", key=stack.admin_key)
    return next(s for s in answer.json()["data"] if s["name"] == "Trial users")


@pytest.mark.parametrize(("role", "badge", "has", "lacks"), ROLES, ids=[r[0] for r in ROLES])
def test_each_role_sees_only_the_controls_it_may_use(
    role: str,
    badge: str,
    has: list[str],
    lacks: list[str],
    console_stack: RunningStack,
    console_keys: dict[str, str],
    new_page: PageFactory,
) -> None:
    page = new_page()
    sign_in(page, console_stack.base_url, console_keys[role])
    expect(page.locator("#role-badge")).to_contain_text(badge)
    nav = page.get_by_role("navigation", name="Main")
    for link in ("Users", "Companies", "Messages", "Settings"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add filter", exact=True)).to_be_visible()  # reading is for all

    trial = _trial_users(console_stack)
    segment_button(page, "Trial users").click()
    wait_for_count(page, int(str(trial["count"])))
    for name in has:
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    for name in lacks:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)

    # A predefined segment: nobody gets Save changes or Delete segment.
    segment_button(page, "New").click()
    expect(page.get_by_text("Predefined segment")).to_be_visible()
    for name in ("Save changes", "Delete segment"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)

    # The seed's live auto message: write and admin may pause it, only admin may delete it.
    message = _seed_message(console_stack)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Welcome, trial users").click()
    expect(page.get_by_role("heading", name="Welcome, trial users", level=1)).to_be_visible()
    expect(page.get_by_text(message["state"], exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(1 if role != "read" else 0)
    expect(page.get_by_role("button", name="Delete message")).to_have_count(1 if role == "admin" else 0)


def _try_sign_in(page: Page, stack: RunningStack, key: str) -> None:
    page.goto(console_url(stack.base_url))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_key_shows_the_apis_message_and_an_ingest_key_is_refused(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page()
    wrong = console_stack.request("GET", "/v1/me", key="sk_not_a_key")
    assert wrong.status == 401
    _try_sign_in(page, console_stack, "sk_not_a_key")
    expect(page.get_by_role("alert")).to_contain_text(wrong.json()["error"]["message"])
    assert page.evaluate("() => sessionStorage.length") == 0

    ingest = console_stack.request("GET", "/v1/me", key=console_keys["ingest"])
    assert ingest.status == 200 and ingest.json()["role"] == "ingest"
    _try_sign_in(page, console_stack, console_keys["ingest"])
    expect(page.get_by_role("alert")).to_contain_text("This key has the role 'ingest'")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


@pytest.mark.parametrize("role", ["read", "write", "admin"])
def test_signing_in_asks_the_api_once_who_the_key_is(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory, role: str
) -> None:
    page = new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(f"{request.method} {urlsplit(request.url).path}"))
    _try_sign_in(page, console_stack, console_keys[role])
    expect(page.locator("#role-badge")).to_contain_text(f"Role: {role}")
    api_calls = [call for call in asked if "/v1/" in call]
    assert api_calls[0] == "GET /v1/me" and api_calls.count("GET /v1/me") == 1, api_calls
    assert not [call for call in api_calls if "/v1/api_keys" in call or "/v1/messages/preview" in call]


def test_the_key_is_kept_in_session_storage_only_and_sign_out_clears_it(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    page = new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    key = console_keys["write"]
    sign_in(page, console_stack.base_url, key)
    storage = page.evaluate(
        "() => ({session: Object.values(sessionStorage), local: localStorage.length,"
        " cookie: document.cookie})"
    )
    assert storage == {"session": [key], "local": 0, "cookie": ""}
    assert page.context.cookies() == []
    assert all(key not in url for url in urls), "the key went into a URL"
    assert key not in page.url

    # A reload keeps the tab signed in (sessionStorage), a new tab of another context does not.
    page.reload()
    expect(page.locator(".match-count")).to_contain_text("match")
    other = new_page()
    other.goto(console_url(console_stack.base_url))
    expect(other.get_by_label("API key")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("() => [sessionStorage.length, localStorage.length]") == [0, 0]


def test_signing_in_loads_the_list_once_and_a_filter_begun_at_once_is_kept(
    console_stack: RunningStack, console_keys: dict[str, str], new_page: PageFactory
) -> None:
    """Sign-in sets the route (#/users) and shows the list. Were the route change to show it a
    second time, that second load's answer, arriving late, would reset the filter the teammate
    has begun: here any second load of the fields (only the list asks for them) is held until a
    condition is added."""
    page = new_page()
    loads: list[str] = []
    held: list[Route] = []

    def hold_the_second_load(route: Route) -> None:
        loads.append(route.request.url)
        if len(loads) == 2:
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/fields?*", hold_the_second_load)
    sign_in(page, console_stack.base_url, console_keys["read"])
    add_condition(page, "custom_attributes.plan", "eq", "pro")
    for route in held:
        with page.expect_response(lambda response: "/v1/fields" in response.url):
            route.continue_()
    settled(page)
    expect(page.get_by_label("Value", exact=True)).to_have_value("pro")
    assert len(loads) == 1, loads
