"""Time-relative membership under the stack's clock, search pages, and the nightly rebuild."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import (
    ago,
    create_segment,
    error_code,
    member_ids,
    ok,
    search_ids,
    segment_count,
    unique,
    upsert_user,
    user_segments,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _new_views(stack: RunningStack, user_id: str, prefix: str) -> dict[str, Any]:
    """Every way the API tells whether `user_id` is in `new`."""
    members = member_ids(stack, "new")
    return {
        "user": "new" in user_segments(stack, user_id),
        "members": user_id in members,
        "count_matches_members": segment_count(stack, "new") == len(members),
        "search": user_id
        in search_ids(
            stack,
            {
                "and": [
                    {"field": "user_id", "op": "starts_with", "value": prefix},
                    {"field": "segment", "op": "in_segment", "value": "new"},
                ]
            },
        ),
    }


def test_moving_the_clock_takes_a_user_out_of_new_everywhere(stack: RunningStack) -> None:
    prefix = unique("u-clock") + "-"
    user_id = prefix + "fresh"
    upsert_user(stack, {"user_id": user_id, "signed_up_at": ago(stack, hours=23)})
    mine = {"field": "user_id", "op": "starts_with", "value": prefix}
    fresh = create_segment(
        stack, f"Fresh {prefix}", {"and": [mine, {"field": "segment", "op": "in_segment", "value": "new"}]}
    )
    day_old = create_segment(
        stack,
        f"Day old {prefix}",
        {"and": [mine, {"field": "signed_up_at", "op": "more_than_days_ago", "value": 1}]},
    )
    message = ok(
        stack.request(
            "POST",
            "/v1/messages",
            {
                "name": "a day in",
                "type": "auto",
                "channel": "in_app",
                "audience": {"segment_id": day_old},
                "body": "One day",
            },
            key=stack.admin_key,
        ),
        201,
    )
    ok(stack.request("POST", f"/v1/messages/{message['id']}/live", key=stack.admin_key))
    inside = wait_for(lambda: _new_views(stack, user_id, prefix), lambda views: all(views.values()))
    assert inside == {"user": True, "members": True, "count_matches_members": True, "search": True}
    assert member_ids(stack, fresh) == {user_id} and member_ids(stack, day_old) == set()
    assert _inbox(stack, user_id) == []
    try:
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 2 * 3600}))
        outside = wait_for(
            lambda: _new_views(stack, user_id, prefix),
            lambda views: (
                views == {"user": False, "members": False, "count_matches_members": True, "search": False}
            ),
        )
        assert outside == {"user": False, "members": False, "count_matches_members": True, "search": False}
        # Segments that refer to `new` follow it, and a time-based entry reaches a live auto message.
        assert wait_for(lambda: member_ids(stack, fresh), lambda found: not found) == set()
        assert wait_for(lambda: member_ids(stack, day_old), lambda found: bool(found)) == {user_id}
        assert segment_count(stack, fresh) == 0 and segment_count(stack, day_old) == 1
        inbox = wait_for(lambda: _inbox(stack, user_id), lambda found: bool(found))
        assert [m["message_id"] for m in inbox] == [message["id"]]
    finally:
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 0}))
        stack.request("DELETE", f"/v1/messages/{message['id']}", key=stack.admin_key)
    assert ok(stack.request("GET", "/_local/clock"))["offset_seconds"] == 0
    # Back to real time, the user is inside their first day again, in stored membership too.
    back = wait_for(lambda: _new_views(stack, user_id, prefix), lambda views: all(views.values()))
    assert back == {"user": True, "members": True, "count_matches_members": True, "search": True}


def _inbox(stack: RunningStack, user_id: str) -> list[dict[str, Any]]:
    return ok(stack.request("GET", f"/v1/users/{user_id}/messages", key=stack.admin_key))["data"]


def test_search_pages_with_a_cursor(stack: RunningStack) -> None:
    prefix = unique("u-page") + "-"
    expected = {f"{prefix}{n}" for n in range(5)}
    for user_id in expected:
        upsert_user(stack, {"user_id": user_id, "custom_attributes": {"photos_uploaded": 7}})
    upsert_user(stack, {"user_id": prefix + "other", "custom_attributes": {"photos_uploaded": 8}})
    filter_ = {
        "and": [
            {"field": "user_id", "op": "starts_with", "value": prefix},
            {"field": "custom_attributes.photos_uploaded", "op": "eq", "value": 7},
        ]
    }
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = ok(
            stack.request(
                "POST",
                "/v1/users/search",
                {"filter": filter_, "limit": 2, "cursor": cursor},
                key=stack.admin_key,
            )
        )
        assert set(page) == {"data", "next_cursor"}
        assert len(page["data"]) <= 2
        seen.extend(user["user_id"] for user in page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert sorted(seen) == sorted(expected)  # every match once, none twice
    assert pages >= 3


@pytest.mark.parametrize("cursor", ["garbage", "eyJ0IjogMX0", "!!!"])
def test_a_garbage_cursor_is_400(stack: RunningStack, cursor: str) -> None:
    body = {"filter": {"field": "name", "op": "exists"}, "limit": 2, "cursor": cursor}
    response = stack.request("POST", "/v1/users/search", body, key=stack.admin_key)
    assert response.status == 400
    assert error_code(response) == "invalid_cursor"
    for path in ("/v1/segments/active/members", "/v1/messages", "/v1/api_keys"):
        # /v1/messages answered 422 before the fix; every list answers 400 invalid_cursor.
        listed = stack.request("GET", f"{path}?cursor={cursor}", key=stack.admin_key)
        assert listed.status == 400 and error_code(listed) == "invalid_cursor", path


def test_a_cursor_of_another_search_is_400(stack: RunningStack) -> None:
    prefix = unique("u-cur") + "-"
    for n in range(3):
        upsert_user(stack, {"user_id": f"{prefix}{n}", "name": "c"})
    first = {"filter": {"field": "user_id", "op": "starts_with", "value": prefix}, "limit": 1}
    cursor = ok(stack.request("POST", "/v1/users/search", first, key=stack.admin_key))["next_cursor"]
    assert cursor
    other = {"filter": {"field": "name", "op": "eq", "value": "c"}, "limit": 1, "cursor": cursor}
    assert stack.request("POST", "/v1/users/search", other, key=stack.admin_key).status == 400


def test_search_validates_its_filter_and_limit(stack: RunningStack) -> None:
    bad = stack.request(
        "POST", "/v1/users/search", {"filter": {"field": "nope", "op": "exists"}}, key=stack.admin_key
    )
    assert bad.status == 422 and any(d["path"] == "filter.field" for d in bad.json()["error"]["details"])
    for limit in (0, 101):
        body = {"filter": {"field": "name", "op": "exists"}, "limit": limit}
        assert stack.request("POST", "/v1/users/search", body, key=stack.admin_key).status == 422


def test_members_pages_with_a_cursor(stack: RunningStack) -> None:
    prefix = unique("u-mp") + "-"
    expected = {f"{prefix}{n}" for n in range(5)}
    for user_id in expected:
        upsert_user(stack, {"user_id": user_id, "name": "m"})
    segment_id = create_segment(
        stack, f"Pages {prefix}", {"field": "user_id", "op": "starts_with", "value": prefix}
    )
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        path = f"/v1/segments/{segment_id}/members?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = ok(stack.request("GET", path, key=stack.admin_key))
        assert len(page["data"]) <= 2
        seen.extend(user["user_id"] for user in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(expected)


def test_nightly_rebuild_keeps_membership_correct(stack: RunningStack) -> None:
    prefix = unique("u-night") + "-"
    users = {f"{prefix}{n}": n for n in range(4)}
    for user_id, photos in users.items():
        upsert_user(stack, {"user_id": user_id, "custom_attributes": {"photos_uploaded": photos}})
    segment_id = create_segment(
        stack,
        f"Night {prefix}",
        {
            "and": [
                {"field": "user_id", "op": "starts_with", "value": prefix},
                {"field": "custom_attributes.photos_uploaded", "op": "gte", "value": 2},
            ]
        },
    )
    expected = {user_id for user_id, photos in users.items() if photos >= 2}
    assert member_ids(stack, segment_id) == expected

    response = stack.request("POST", "/_local/invoke/RebuildCoordinatorFunction")
    assert ok(response)["function"] == "RebuildCoordinatorFunction"

    assert member_ids(stack, segment_id) == expected
    assert segment_count(stack, segment_id) == len(expected)
    # The invoke returns once its work is done: stored membership then equals evaluation now.
    for predefined in ("new", "active", "slipping_away"):
        stored = member_ids(stack, predefined)
        assert stored == search_ids(stack, {"field": "segment", "op": "in_segment", "value": predefined})
        assert segment_count(stack, predefined) == len(stored)
    for user_id in users:
        assert (segment_id in user_segments(stack, user_id)) == (user_id in expected)
