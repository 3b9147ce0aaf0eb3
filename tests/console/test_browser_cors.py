"""A customer's web app calls the identity routes from its own origin, in a real browser (Chromium).

A local stack of its own runs with ALLOWED_ORIGINS naming one origin; a tiny page server stands
for the customer's app, on two more ports: the listed origin and one that is not. From the listed
one the page logs a user in with X-User-Hash and reads the JSON answer (the browser's preflight
passes), and it can read a 401 too; from the other, fetch rejects and nothing reaches the API. An
admin route answers no preflight, so no page can call it. The same rules are checked over plain
HTTP against the local gateway, which serves OPTIONS only where template.yaml routes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import PageFactory
from tests.e2e.harness import RunningStack, free_port, start_stack, stop_stack

# The customer's page: a button that logs its user in, and `callApi` for other calls.
APP_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The customer's app</title></head>
<body><main>
<button id="login" type="button">Log in</button>
<output id="result"></output>
<script>
const params = new URLSearchParams(location.search);
async function callApi(method, path, headers, body) {
  try {
    const answer = await fetch(params.get("api") + path, {method, headers, body});
    return {status: answer.status, body: await answer.json()};
  } catch (error) {
    return {rejected: String(error)};
  }
}
window.callApi = callApi;
document.getElementById("login").addEventListener("click", async () => {
  const path = "/v1/users/" + encodeURIComponent(params.get("user")) + "/logins";
  const headers = {"Content-Type": "application/json", "X-User-Hash": params.get("hash")};
  document.getElementById("result").textContent = JSON.stringify(await callApi("POST", path, headers, "{}"));
});
</script>
</main></body></html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(APP_PAGE)))
        self.end_headers()
        self.wfile.write(APP_PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def _serve_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="app-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def listed_origin() -> Iterator[str]:
    yield from _serve_page()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    yield from _serve_page()


@pytest.fixture(scope="module")
def cors_stack(listed_origin: str) -> Iterator[RunningStack]:
    running = start_stack({"ALLOWED_ORIGINS": listed_origin})
    yield running
    code = stop_stack(running)
    assert code == 0, f"the local stack exited with {code} on SIGTERM:\n{running.log_text()}"


def _hash(stack: RunningStack, user_id: str) -> str:
    return hmac.new(stack.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _new_user(stack: RunningStack, user_id: str) -> None:
    answer = stack.request("POST", "/v1/users", {"user_id": user_id}, key=stack.ingest_key)
    assert answer.status == 201, answer.body


def _session_count(stack: RunningStack, user_id: str) -> int:
    answer = stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key)
    assert answer.status == 200, answer.body
    return int(answer.json()["session_count"])


def _open_app(page: Page, origin: str, stack: RunningStack, user_id: str) -> None:
    query = urlencode({"api": stack.base_url, "user": user_id, "hash": _hash(stack, user_id)})
    page.goto(f"{origin}/?{query}")


def _log_in(page: Page) -> dict[str, Any]:
    page.get_by_role("button", name="Log in").click()
    result = page.locator("#result")
    expect(result).not_to_be_empty()
    answer: dict[str, Any] = json.loads(result.text_content() or "")
    return answer


def _call(page: Page, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = page.evaluate(
        "([method, path, headers]) => window.callApi(method, path, headers)", [method, path, headers]
    )
    return answer


def test_a_page_of_the_listed_origin_logs_its_user_in_and_reads_the_answers(
    cors_stack: RunningStack, listed_origin: str, new_page: PageFactory
) -> None:
    _new_user(cors_stack, "browser-ada")
    page = new_page()
    _open_app(page, listed_origin, cors_stack, "browser-ada")
    login = _log_in(page)
    assert login.get("status") == 200, login
    assert login["body"]["user"]["user_id"] == "browser-ada"
    assert login["body"]["user"]["session_count"] == 1 and isinstance(login["body"]["segments"], list)
    messages = _call(
        page, "GET", "/v1/users/browser-ada/messages", {"X-User-Hash": _hash(cors_stack, "browser-ada")}
    )
    assert messages.get("status") == 200 and messages["body"]["data"] == [], messages
    # An error is readable too: the page learns why it was refused.
    refused = _call(page, "POST", "/v1/users/browser-ada/logins", {"X-User-Hash": "00" * 32})
    assert refused.get("status") == 401 and refused["body"]["error"]["code"] == "unauthorized", refused
    missing = _call(page, "POST", "/v1/users/nobody/logins", {"X-User-Hash": _hash(cors_stack, "nobody")})
    assert missing.get("status") == 404 and missing["body"]["error"]["code"] == "not_found", missing
    assert _session_count(cors_stack, "browser-ada") == 1


def test_a_page_of_an_origin_not_listed_cannot_call(
    cors_stack: RunningStack, other_origin: str, new_page: PageFactory
) -> None:
    _new_user(cors_stack, "browser-grace")
    page = new_page()
    _open_app(page, other_origin, cors_stack, "browser-grace")
    login = _log_in(page)
    assert "rejected" in login and "status" not in login, login
    # The preflight failed, so the browser never sent the login.
    assert _session_count(cors_stack, "browser-grace") == 0


def test_no_page_can_call_an_admin_route(
    cors_stack: RunningStack, listed_origin: str, new_page: PageFactory
) -> None:
    page = new_page()
    _open_app(page, listed_origin, cors_stack, "anyone")
    for key in (cors_stack.admin_key, "sk_not_a_key_at_all"):  # not even API Gateway's own 401
        answer = _call(page, "GET", "/v1/segments", {"Authorization": f"Bearer {key}"})
        assert "rejected" in answer and "status" not in answer, answer


def _cors_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name.lower(): value for name, value in headers.items() if name.lower().startswith("access-control-")
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/users/u-1/logins"), ("POST", "/v1/users/u-1/events"), ("GET", "/v1/users/u-1/messages")],
)
def test_the_local_gateway_answers_the_identity_routes_preflights(
    cors_stack: RunningStack, listed_origin: str, other_origin: str, method: str, path: str
) -> None:
    request = {"Origin": listed_origin, "Access-Control-Request-Method": method}
    answer = cors_stack.request("OPTIONS", path, headers=request)
    assert answer.status == 204
    assert _cors_headers(answer.headers) == {
        "access-control-allow-origin": listed_origin,
        "access-control-allow-methods": method,
        "access-control-allow-headers": "Content-Type, X-User-Hash",
        "access-control-max-age": "600",
    }
    assert answer.headers["Vary"] == "Origin"
    refused = cors_stack.request(method, path, headers={"Origin": listed_origin, "X-User-Hash": "0" * 64})
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == listed_origin
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    stranger = cors_stack.request("OPTIONS", path, headers={**request, "Origin": other_origin})
    assert stranger.status == 204 and _cors_headers(stranger.headers) == {}


def test_the_local_gateway_answers_no_preflight_elsewhere(
    cors_stack: RunningStack, listed_origin: str
) -> None:
    for path in ("/v1/segments", "/v1/api_keys", "/v1/users/u-1", "/v1/messages"):
        headers = {"Origin": listed_origin, "Access-Control-Request-Method": "GET"}
        answer = cors_stack.request("OPTIONS", path, headers=headers)
        assert answer.status == 405 and _cors_headers(answer.headers) == {}, path
        keyed = cors_stack.request("GET", path, key=cors_stack.admin_key, headers={"Origin": listed_origin})
        assert keyed.status in (200, 404) and _cors_headers(keyed.headers) == {}, path
