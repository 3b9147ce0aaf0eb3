"""Behavioural events over HTTP against the local stack: record, enter a segment within seconds,
leave it when the window passes, and an auto message that goes out once."""

from __future__ import annotations

from typing import Any

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import (
    ago,
    create_segment,
    member_ids,
    ok,
    search_ids,
    segment_count,
    unique,
    upsert_user,
    user_hash,
    user_segments,
    wait_for,
)

DAY = 86400


def record(stack: RunningStack, user_id: str, body: dict[str, Any]) -> None:
    ok(stack.request("POST", f"/v1/users/{user_id}/events", body, key=stack.ingest_key), 202)


def test_events_move_membership_in_and_out_of_a_window(stack: RunningStack) -> None:
    prefix = unique("evt") + "-"
    uploader, idle = prefix + "up", prefix + "idle"
    for user_id in (uploader, idle):
        upsert_user(stack, {"user_id": user_id, "custom_attributes": {"cohort": prefix}})
    record(stack, idle, {"event_name": "uploaded_photo", "created_at": ago(stack, days=20)})
    scoped = {"field": "custom_attributes.cohort", "op": "eq", "value": prefix}
    window = {"field": "event.uploaded_photo.count", "op": "gte", "value": 3, "within_days": 7}
    segment_id = create_segment(stack, f"Engaged {prefix}", {"and": [scoped, window]})
    message = ok(
        stack.request(
            "POST",
            "/v1/messages",
            {
                "name": f"Thanks {prefix}",
                "type": "auto",
                "channel": "in_app",
                "audience": {"segment_id": segment_id},
                "body": "Thanks for the photos!",
            },
            key=stack.admin_key,
        ),
        201,
    )
    ok(stack.request("POST", f"/v1/messages/{message['id']}/live", key=stack.admin_key))

    # Three uploads (one retried with its id, one straight from the browser with the user's hash).
    record(stack, uploader, {"event_name": "uploaded_photo", "id": "e1", "created_at": ago(stack, days=3)})
    record(stack, uploader, {"event_name": "uploaded_photo", "id": "e1", "created_at": ago(stack, days=3)})
    record(stack, uploader, {"event_name": "Uploaded_Photo", "created_at": ago(stack, days=1)})
    assert member_ids(stack, segment_id) == set()  # two so far
    browser = stack.request(
        "POST",
        f"/v1/users/{uploader}/events",
        {"event_name": "uploaded_photo"},
        headers={"X-User-Hash": user_hash(stack, uploader)},
    )
    assert browser.status == 202
    assert wait_for(lambda: member_ids(stack, segment_id), lambda m: m == {uploader}) == {uploader}
    assert segment_count(stack, segment_id) == 1 and segment_id in user_segments(stack, uploader)
    assert search_ids(stack, {"and": [scoped, window]}) == {uploader}
    summary = ok(stack.request("GET", f"/v1/users/{uploader}/events", key=stack.admin_key))["data"]
    assert [(e["event_name"], e["count"]) for e in summary] == [("uploaded_photo", 3)]

    def inbox() -> list[Any]:
        reply = stack.request("GET", f"/v1/users/{uploader}/messages", key=stack.admin_key)
        return [m for m in ok(reply)["data"] if m["message_id"] == message["id"]]

    assert len(wait_for(inbox, lambda found: len(found) == 1)) == 1

    try:
        # Eight days later the oldest uploads have left the window: the user leaves the segment.
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 8 * DAY}))
        assert wait_for(lambda: member_ids(stack, segment_id), lambda m: m == set()) == set()
        assert segment_id not in user_segments(stack, uploader)
        login = ok(stack.request("POST", f"/v1/users/{uploader}/logins", key=stack.ingest_key))
        assert segment_id not in login["segments"]
        # Back in: three new uploads, and the message does not come a second time.
        for _ in range(3):
            record(stack, uploader, {"event_name": "uploaded_photo"})
        assert wait_for(lambda: member_ids(stack, segment_id), lambda m: m == {uploader}) == {uploader}
        ok(stack.request("POST", "/_local/invoke/RebuildCoordinatorFunction"))
        assert member_ids(stack, segment_id) == {uploader} and segment_count(stack, segment_id) == 1
        assert len(inbox()) == 1
    finally:
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 0}))


def test_the_fields_list_offers_the_events_seen(stack: RunningStack) -> None:
    user_id = unique("evt-fields")
    upsert_user(stack, {"user_id": user_id})
    record(stack, user_id, {"event_name": "Exported.Report"})
    fields = ok(stack.request("GET", "/v1/fields", key=stack.admin_key))["data"]
    event_fields = {f["field"]: f for f in fields if f["source"] == "event"}
    assert event_fields["event.exported.report.count"]["type"] == "number"
    assert event_fields["event.exported.report.last_at"]["type"] == "timestamp"
