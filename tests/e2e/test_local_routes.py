"""The local-only routes of the stack, and API Gateway's own answers, over HTTP."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest

from tests.e2e.harness import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_health_is_ok_once_ready(stack: RunningStack) -> None:
    response = stack.request("GET", "/_local/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_clock_moves_every_functions_now_and_is_absolute(stack: RunningStack) -> None:
    try:
        before = stack.request("GET", "/_local/clock").json()
        moved = stack.request("POST", "/_local/clock", {"offset_seconds": 86400 * 3})
        assert moved.status == 200
        after = stack.request("GET", "/_local/clock").json()
        assert after["offset_seconds"] == 86400 * 3
        gap = (_parse(after["now"]) - _parse(before["now"])).total_seconds()
        assert 86400 * 3 - before["offset_seconds"] <= gap < 86400 * 3 - before["offset_seconds"] + 120
        # Absolute, not cumulative: setting the same offset again leaves it where it is.
        stack.request("POST", "/_local/clock", {"offset_seconds": 86400 * 3})
        assert stack.request("GET", "/_local/clock").json()["offset_seconds"] == 86400 * 3
    finally:
        stack.request("POST", "/_local/clock", {"offset_seconds": 0})
    now = _parse(stack.request("GET", "/_local/clock").json()["now"])
    assert abs((now - datetime.now(UTC)).total_seconds()) < 120


@pytest.mark.parametrize("body", [{}, {"offset_seconds": "soon"}, {"offset_seconds": True}, [1], None])
def test_clock_rejects_bad_input_with_422(stack: RunningStack, body: object) -> None:
    response = stack.request("POST", "/_local/clock", body)
    assert response.status == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_invoke_of_an_unknown_function_is_404(stack: RunningStack) -> None:
    response = stack.request("POST", "/_local/invoke/NoSuchFunction")
    assert response.status == 404
    assert response.json()["error"]["code"] == "not_found"


def test_invoke_runs_the_nightly_rebuild_and_waits(stack: RunningStack) -> None:
    response = stack.request("POST", "/_local/invoke/RebuildCoordinatorFunction")
    assert response.status == 200
    assert response.json()["function"] == "RebuildCoordinatorFunction"


def test_outbox_lists_accepted_email_in_its_shape(stack: RunningStack) -> None:
    response = stack.request("GET", "/_local/outbox")
    assert response.status == 200
    body = response.json()
    assert set(body) == {"data"} and isinstance(body["data"], list)
    for message in body["data"]:
        assert set(message) == {"to", "subject", "text", "html", "headers", "ses_message_id", "at"}


def test_a_route_without_a_key_is_refused_by_the_authorizer_with_401(stack: RunningStack) -> None:
    response = stack.request("GET", "/v1/segments")
    assert response.status == 401
    assert response.json()["error"]["code"] == "unauthorized"
    wrong = stack.request("GET", "/v1/segments", key="sk_not_a_key")
    assert wrong.status == 401
    assert wrong.json()["error"]["code"] == "unauthorized"


def test_the_admin_key_from_the_environment_is_installed(stack: RunningStack) -> None:
    response = stack.request("GET", "/v1/segments?target=users", key=stack.admin_key)
    assert response.status == 200
    assert {"new", "active", "slipping_away"} <= {s["id"] for s in response.json()["data"]}


def test_the_harness_runs_the_stack_with_the_per_key_rate_limits_off(stack: RunningStack) -> None:
    # The e2e tests load data fast with the admin key (20 a second when the limits are on).
    assert "per-key rate limits: off (KEY_RATE_LIMITS=off)" in stack.log_text()


def test_an_unknown_route_is_404_in_the_error_shape(stack: RunningStack) -> None:
    response = stack.request("GET", "/v1/nothing/here", key=stack.admin_key)
    assert response.status == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND", "BREW"])
def test_any_method_gets_a_json_error_as_api_gateway_gives(stack: RunningStack, method: str) -> None:
    for path in ("/v1/users", "/v1/nowhere"):
        reply = stack.request(method, path, key=stack.admin_key)
        assert 400 <= reply.status < 500, (method, path, reply.status)
        assert reply.headers.get("Content-Type", "").startswith("application/json")
        assert set(reply.json()["error"]) >= {"code", "message"}


def test_the_openapi_server_is_where_the_document_was_fetched(stack: RunningStack) -> None:
    document = stack.request("GET", "/v1/openapi.json").json()
    assert document["servers"] == [{"url": "/"}]
    # So a client built from it finds the routes: the first documented path answers (not a 404).
    assert stack.request("GET", "/v1/segments", key=stack.admin_key).status == 200


def test_the_stack_stops_cleanly_on_sigint() -> None:
    other = start_stack()
    assert other.request("GET", "/_local/health").status == 200
    assert stop_stack(other, signal.SIGINT) == 0, other.log_text()


def test_a_body_over_256_kb_reaches_the_function_which_answers_413(stack: RunningStack) -> None:
    big = {"user_id": "u-big", "name": "x" * (300 * 1024)}
    response = stack.request("POST", "/v1/users", big, key=stack.ingest_key)
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert stack.request("GET", "/_local/health").status == 200
