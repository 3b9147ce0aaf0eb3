"""Small helpers shared by the e2e tests: unique ids, time, bounded polling, paging, keys."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import Response, RunningStack

# The stack promises stream and queue work within 2 s; poll up to a little more than twice that.
POLL_TIMEOUT = 5.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stack_now(stack: RunningStack) -> datetime:
    return parse_iso(stack.request("GET", "/_local/clock").json()["now"])


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(stack: RunningStack, **delta: float) -> str:
    return iso(stack_now(stack) - timedelta(**delta))


def user_hash(stack: RunningStack, user_id: str) -> str:
    return hmac.new(stack.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def ok(response: Response, status: int = 200) -> Any:
    assert response.status == status, f"expected {status}, got {response.status}: {response.body[:2000]!r}"
    return response.json()


def wait_for[T](probe: Callable[[], T], until: Callable[[T], bool], timeout: float = POLL_TIMEOUT) -> T:
    """Calls `probe` until `until(result)` holds or `timeout` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def upsert_user(stack: RunningStack, user: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    response = stack.request("POST", "/v1/users", user, key=key or stack.ingest_key)
    assert response.status in (200, 201), response.body
    return response.json()


def create_segment(stack: RunningStack, name: str, filter_: dict[str, Any], target: str = "users") -> str:
    body = {"name": name, "target": target, "filter": filter_}
    return str(ok(stack.request("POST", "/v1/segments", body, key=stack.admin_key), 201)["id"])


def all_pages(stack: RunningStack, path: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every item of a GET list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    separator = "&" if "?" in path else "?"
    for _ in range(1000):
        url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(stack.request("GET", url, key=stack.admin_key))
        items.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError(f"{path} did not end")


def member_ids(stack: RunningStack, segment_id: str, id_field: str = "user_id") -> set[str]:
    return {item[id_field] for item in all_pages(stack, f"/v1/segments/{segment_id}/members")}


def segment_count(stack: RunningStack, segment_id: str) -> int:
    return int(ok(stack.request("GET", f"/v1/segments/{segment_id}", key=stack.admin_key))["count"])


def search_ids(stack: RunningStack, filter_: dict[str, Any], target: str = "users") -> set[str]:
    id_field = "user_id" if target == "users" else "company_id"
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(1000):
        body = {"filter": filter_, "limit": 100, "cursor": cursor}
        page = ok(stack.request("POST", f"/v1/{target}/search", body, key=stack.admin_key))
        found |= {item[id_field] for item in page["data"]}
        cursor = page["next_cursor"]
        if not cursor:
            return found
    raise AssertionError("search did not end")


def user_segments(stack: RunningStack, user_id: str) -> set[str]:
    return set(ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))["segments"])


def new_key(stack: RunningStack, role: str) -> dict[str, Any]:
    body = {"role": role, "name": unique(f"e2e-{role}")}
    return ok(stack.request("POST", "/v1/api_keys", body, key=stack.admin_key), 201)


def error_code(response: Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.fixture(scope="session")
def role_keys(stack: RunningStack) -> dict[str, str]:
    """One key of each role, created through the API with the admin key (import this fixture)."""
    keys = {role: str(new_key(stack, role)["key"]) for role in ("ingest", "read", "write")}
    return {**keys, "admin": stack.admin_key}
