"""The real Segment and RudderStack Python libraries (from PyPI), pointed at the local stack,
as an app would configure them: only the host changes. Each sends identify, track, group and page
calls the way it does by default (Segment's: the key in the body and as Basic auth, plain JSON;
RudderStack's: Basic auth, gzip), and the users, companies, events and segment memberships they
imply appear within seconds."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import create_segment, ok, unique, upsert_user, user_segments, wait_for

# Segments need their fields known first: one REST call each registers the names these use.
PLAN_TRAIT = "sources_plan_tier"


@pytest.fixture(scope="module")
def segments(stack: RunningStack) -> dict[str, str]:
    upsert_user(stack, {"user_id": unique("names"), "custom_attributes": {PLAN_TRAIT: "free"}})
    ok(
        stack.request(
            "POST", "/v1/companies", {"company_id": unique("names"), "plan": "free"}, key=stack.ingest_key
        ),
        201,
    )
    named = unique("names")
    upsert_user(stack, {"user_id": named})
    ok(
        stack.request(
            "POST", f"/v1/users/{named}/events", {"event_name": "order_completed"}, key=stack.ingest_key
        ),
        202,
    )
    ok(
        stack.request(
            "POST", f"/v1/users/{named}/events", {"event_name": "page_viewed"}, key=stack.ingest_key
        ),
        202,
    )
    return {
        "buyers": create_segment(
            stack,
            unique("Pro buyers"),
            {
                "and": [
                    {"field": f"custom_attributes.{PLAN_TRAIT}", "op": "eq", "value": "pro"},
                    {"field": "event.order_completed.count", "op": "gte", "value": 1},
                ]
            },
        ),
        "enterprise": create_segment(
            stack,
            unique("Enterprise readers"),
            {
                "and": [
                    {"field": "company.plan", "op": "eq", "value": "enterprise"},
                    {"field": "event.page_viewed.count", "op": "gte", "value": 1},
                ]
            },
        ),
    }


def segment_client(stack: RunningStack, on_error: Callable[..., None]) -> Any:
    client = SegmentClient(stack.ingest_key, host=stack.base_url, on_error=on_error, max_retries=0)
    assert client.gzip is False  # as it comes
    return client


def rudder_client(stack: RunningStack, on_error: Callable[..., None]) -> Any:
    client = RudderClient(stack.ingest_key, host=stack.base_url, on_error=on_error, max_retries=0)
    assert client.gzip is True  # as it comes
    return client


@pytest.mark.parametrize("make_client", [segment_client, rudder_client], ids=["segment", "rudderstack"])
def test_a_real_library_feeds_users_companies_events_and_segments(
    stack: RunningStack, segments: dict[str, str], make_client: Callable[..., Any]
) -> None:
    errors: list[Any] = []
    client = make_client(stack, lambda error, batch: errors.append((error, batch)))
    user_id, company_id = unique("lib-user"), unique("lib-co")
    client.identify(user_id, {"email": f"{user_id}@example.com", "firstName": "Ada", PLAN_TRAIT: "pro"})
    client.track(user_id, "Order Completed", {"revenue": 42.5, "currency": "EUR"})
    client.group(user_id, company_id, {"name": "Acme", "plan": "enterprise", "employees": 40})
    client.page(user_id, category="Docs", name="Pricing", properties={"path": "/pricing"})
    client.flush()
    assert errors == []

    user = wait_for(
        lambda: stack.request("GET", f"/v1/users/{user_id}", key=stack.ingest_key),
        lambda answer: answer.status == 200 and answer.json()["company_ids"] == [company_id],
    )
    body = ok(user)
    assert (body["email"], body["name"]) == (f"{user_id}@example.com", "Ada")
    assert body["custom_attributes"] == {PLAN_TRAIT: "pro"}
    company = ok(stack.request("GET", f"/v1/companies/{company_id}", key=stack.admin_key))
    assert (company["name"], company["plan"], company["custom_attributes"]) == (
        "Acme",
        "enterprise",
        {"employees": 40},
    )
    events = ok(stack.request("GET", f"/v1/users/{user_id}/events", key=stack.ingest_key))["data"]
    assert {(e["event_name"], e["count"]) for e in events} == {("order_completed", 1), ("page_viewed", 1)}
    wanted = {segments["buyers"], segments["enterprise"]}
    assert wanted <= wait_for(lambda: user_segments(stack, user_id), lambda found: wanted <= found)
    company_users = wait_for(
        lambda: ok(stack.request("GET", f"/v1/companies/{company_id}", key=stack.admin_key))["user_count"],
        lambda count: count == 1,
    )
    assert company_users == 1


def post_batch(stack: RunningStack, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.base_url + "/v1/batch", data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_batch_sent_twice_counts_once_and_a_bad_key_is_a_401(stack: RunningStack) -> None:
    user_id = unique("retry")
    messages = [
        {"type": "track", "userId": user_id, "event": "Retried", "messageId": f"{user_id}-{n}"}
        for n in range(3)
    ]
    raw = gzip.compress(json.dumps({"batch": messages}).encode())
    auth = "Basic " + base64.b64encode(f"{stack.ingest_key}:".encode()).decode()
    for _ in range(2):
        request = urllib.request.Request(
            stack.base_url + "/v1/batch",
            data=raw,
            method="POST",
            headers={"Authorization": auth, "Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.loads(answer.read()) == {"success": True, "accepted": 3, "rejected": []}
    events = ok(stack.request("GET", f"/v1/users/{user_id}/events", key=stack.ingest_key))["data"]
    assert events == [
        {
            "event_name": "retried",
            "count": 3,
            "first_at": events[0]["first_at"],
            "last_at": events[0]["last_at"],
        }
    ]
    status, body = post_batch(stack, {"batch": messages, "writeKey": "sk_not_a_key_at_all"}, {})
    assert status == 401 and body["error"]["code"] == "unauthorized"
