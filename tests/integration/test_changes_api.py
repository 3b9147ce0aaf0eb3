"""The changes over HTTP: histories, a segment's feed kept and resumed, a segment's days."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock
from segmentation.storage import attributes, changes, dynamo

from tests.integration.upkeep_support import DAY, FakeContext, Stack, load_handler
from tests.support.apigw import Reply, call

PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


@pytest.fixture
def upkeep(aws: Any, keys: dict[str, str]) -> Callable[[], None]:
    """Runs MembershipStreamFunction over what the users and companies streams hold."""
    attributes.register("users", {"plan": "string"})
    stack = Stack(
        tables=dict(aws.table_names),
        stream_arns={name: arn for arn, name in aws.stream_tables.items()},
        rebuild_queue_url=os.environ["REBUILD_QUEUE_URL"],
    )
    handler = load_handler("membership_stream").lambda_handler

    def run() -> None:
        for table in ("UsersTable", "CompaniesTable"):
            records = stack.stream_records(stack.tables[table])
            if records:
                assert handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}

    run()
    return run


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.body
    return reply.body


def user(keys: dict[str, str], user_id: str, plan: str) -> None:
    body = {"user_id": user_id, "custom_attributes": {"plan": plan}}
    assert call("POST", "/v1/users", key=keys["ingest"], body=body).status in (200, 201)


def segment(keys: dict[str, str], name: str = "Pro") -> str:
    body = {"name": name, "filter": PRO}
    return str(ok(call("POST", "/v1/segments", key=keys["write"], body=body), 201)["id"])


def feed(keys: dict[str, str], segment_id: str, **query: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(
        call("GET", f"/v1/segments/{segment_id}/changes", key=keys["read"], query=query)
    )
    return body


def test_a_users_history_is_newest_first_paged_and_kept_after_a_delete(keys, upkeep):
    seg = segment(keys)
    user(keys, "u1", "pro")
    upkeep()
    user(keys, "u1", "free")
    upkeep()
    user(keys, "u1", "pro")
    upkeep()
    path = "/v1/users/u1/segment_history"
    first = ok(call("GET", path, key=keys["read"], query={"limit": "2"}))
    assert [(c["segment_id"], c["change"], c["sequence"]) for c in first["data"]] == [
        (seg, "entered", 3),
        (seg, "exited", 2),
    ]
    assert first["data"][0] == {
        "segment_id": seg,
        "target": "users",
        "member_id": "u1",
        "change": "entered",
        "at": first["data"][0]["at"],
        "cause": "attributes",
        "sequence": 3,
    }
    assert first["data"][0]["at"].endswith("Z")
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor:
        page = ok(call("GET", path, key=keys["read"], query={"limit": "2", "cursor": cursor}))
        rest += page["data"]
        cursor = page["next_cursor"]
    assert (seg, "entered", 1) in [(c["segment_id"], c["change"], c["sequence"]) for c in rest]

    assert call("DELETE", "/v1/users/u1", key=keys["ingest"]).status == 204
    upkeep()
    after = ok(call("GET", path, key=keys["read"]))["data"]
    assert (after[0]["segment_id"], after[0]["change"], after[0]["cause"]) in {
        (seg, "exited", "deleted"),
        ("new", "exited", "deleted"),
    }
    # Someone never seen is a 404; another user's cursor is refused.
    assert call("GET", "/v1/users/nobody/segment_history", key=keys["read"]).error_code == "user_not_found"
    reply = call(
        "GET", "/v1/users/u2/segment_history", key=keys["read"], query={"cursor": first["next_cursor"]}
    )
    assert reply.status == 400 and reply.error_code == "invalid_cursor"
    assert call("GET", path, key=keys["ingest"]).status == 403


def test_a_companys_history(keys, upkeep):
    body = {"name": "Big", "target": "companies", "filter": {"field": "size", "op": "gte", "value": 100}}
    seg = ok(call("POST", "/v1/segments", key=keys["write"], body=body), 201)["id"]
    call("POST", "/v1/companies", key=keys["ingest"], body={"company_id": "acme", "size": 500})
    upkeep()
    page = ok(call("GET", "/v1/companies/acme/segment_history", key=keys["read"]))
    assert [(c["segment_id"], c["target"], c["change"]) for c in page["data"]] == [
        (seg, "companies", "entered")
    ]
    assert call("GET", "/v1/companies/none/segment_history", key=keys["read"]).status == 404


def test_the_feed_is_oldest_first_and_a_kept_cursor_reads_only_what_came_since(keys, upkeep):
    seg = segment(keys)
    for n in range(5):
        user(keys, f"u{n}", "pro")
    upkeep()
    first = feed(keys, seg, limit="2")
    assert [c["member_id"] for c in first["data"]] == ["u0", "u1"]
    seen = list(first["data"])
    cursor = first["next_cursor"]
    while True:
        page = feed(keys, seg, limit="2", cursor=cursor)
        cursor = page["next_cursor"]
        assert cursor, "a feed always gives a cursor"
        if not page["data"]:
            break
        seen += page["data"]
    assert sorted(c["member_id"] for c in seen) == [f"u{n}" for n in range(5)]
    assert [c["at"] for c in seen] == sorted(c["at"] for c in seen)

    # Nothing new: empty, and still a cursor. Then new changes: only those, once.
    kept = cursor
    again = feed(keys, seg, cursor=kept)
    assert again["data"] == [] and again["next_cursor"]
    user(keys, "u0", "free")
    user(keys, "u9", "pro")
    upkeep()
    resumed = feed(keys, seg, cursor=kept)
    assert [(c["member_id"], c["change"], c["sequence"]) for c in resumed["data"]] == [
        ("u0", "exited", 2),
        ("u9", "entered", 1),
    ]
    assert feed(keys, seg, cursor=resumed["next_cursor"])["data"] == []


def test_the_feed_filters_by_kind_and_since_and_its_cursor_carries_both(keys, upkeep):
    seg = segment(keys)
    user(keys, "u1", "pro")
    user(keys, "u2", "pro")
    upkeep()
    clock.set_offset_seconds(3600)
    try:
        middle = clock.now() - 1
        user(keys, "u1", "free")
        user(keys, "u3", "pro")
        upkeep()
        exits = feed(keys, seg, change="exited")
        assert [(c["member_id"], c["change"]) for c in exits["data"]] == [("u1", "exited")]
        recent = feed(keys, seg, since=str(int(middle)))
        assert [(c["member_id"], c["change"]) for c in recent["data"]] == [
            ("u1", "exited"),
            ("u3", "entered"),
        ]
        iso = feed(keys, seg, since=(clock.now_datetime() + timedelta(seconds=2)).isoformat())
        assert iso["data"] == []

        user(keys, "u2", "free")
        upkeep()
        later = feed(keys, seg, cursor=exits["next_cursor"])  # the cursor still reads exits only
        assert [(c["member_id"], c["change"]) for c in later["data"]] == [("u2", "exited")]
        mismatch = call(
            "GET",
            f"/v1/segments/{seg}/changes",
            key=keys["read"],
            query={"cursor": exits["next_cursor"], "change": "entered"},
        )
        assert mismatch.status == 422
    finally:
        clock.set_offset_seconds(0)


@pytest.mark.parametrize(
    "query",
    [{"change": "left"}, {"since": "yesterday"}, {"since": "2026-12-01"}, {"limit": "0"}, {"limit": "101"}],
)
def test_bad_feed_parameters_are_422(keys, upkeep, query):
    seg = segment(keys)
    reply = call("GET", f"/v1/segments/{seg}/changes", key=keys["read"], query=query)
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"]


def test_a_cursor_of_another_segment_or_forged_is_400_and_an_unknown_segment_404(keys, upkeep):
    one, other = segment(keys, "One"), segment(keys, "Two")
    cursor = feed(keys, one)["next_cursor"]
    reply = call("GET", f"/v1/segments/{other}/changes", key=keys["read"], query={"cursor": cursor})
    assert reply.status == 400 and reply.error_code == "invalid_cursor"
    reply = call("GET", f"/v1/segments/{one}/changes", key=keys["read"], query={"cursor": cursor[:-2] + "xx"})
    assert reply.status == 400
    assert call("GET", "/v1/segments/seg_none/changes", key=keys["read"]).status == 404
    assert call("GET", "/v1/segments/seg_none/stats", key=keys["read"]).status == 404


def test_a_change_committed_after_a_newer_one_was_read_is_still_read_once(aws):
    """A feed page hands out the newest changes at once; one committed late under an older `at`
    (a slow transaction) comes with the next page, and nothing comes twice."""
    now = clock.now()

    def put(member_id: str, age: float) -> None:
        at = Decimal(str(round(now - age, 3)))
        action = changes.put_action(
            segment_id="s",
            target="users",
            member_id=member_id,
            change="entered",
            sequence=1,
            at=at,
            cause="rebuild",
        )
        dynamo.call("put_item", **action["Put"])

    put("early", 10)
    put("newer", 1)
    items, position = changes.feed_page("s", changes.FeedPosition(since_ms=0), None, 10, now)
    assert [i["member_id"] for i in items] == ["early", "newer"]
    put("late", 2)  # older than "newer", committed after it was read
    items, position = changes.feed_page("s", position, None, 10, now + 0.5)
    assert [i["member_id"] for i in items] == ["late"]
    items, position = changes.feed_page("s", position, None, 10, now + 60)
    assert items == []
    # Position survives its JSON form (what the cursor carries).
    assert changes.FeedPosition.from_json(position.to_json()) == position


def test_stats_are_a_row_a_day_with_the_count_at_its_end(keys, upkeep):
    seg = segment(keys)
    user(keys, "u1", "pro")
    user(keys, "u2", "pro")
    upkeep()
    clock.set_offset_seconds(DAY)
    try:
        user(keys, "u2", "free")
        user(keys, "u3", "pro")
        upkeep()
        coordinator = load_handler("rebuild_coordinator").lambda_handler
        assert coordinator({"time": "2026-11-28T03:00:00Z"}, FakeContext())["days_settled"] >= 1
        user(keys, "u4", "pro")
        upkeep()
        rows = ok(call("GET", f"/v1/segments/{seg}/stats", key=keys["read"], query={"days": "3"}))["data"]
        today = clock.now_datetime().date()
        assert [r["date"] for r in rows] == [
            (today.fromordinal(today.toordinal() - k)).isoformat() for k in (2, 1, 0)
        ]
        assert rows[0] == {
            "date": rows[0]["date"],
            "count": 0,
            "entered": 0,
            "exited": 0,
        }  # before it existed
        assert rows[1] == {"date": rows[1]["date"], "count": 2, "entered": 2, "exited": 0}
        assert rows[2] == {"date": rows[2]["date"], "count": 3, "entered": 2, "exited": 1}
        default = ok(call("GET", f"/v1/segments/{seg}/stats", key=keys["read"]))["data"]
        assert len(default) == 30 and default[-1] == rows[-1]
    finally:
        clock.set_offset_seconds(0)
    for days in ("0", "91", "many"):
        reply = call("GET", f"/v1/segments/{seg}/stats", key=keys["read"], query={"days": days})
        assert reply.status == 422, days
    predefined = ok(call("GET", "/v1/segments/new/stats", key=keys["read"], query={"days": "1"}))["data"]
    assert predefined[0]["count"] == ok(call("GET", "/v1/segments/new", key=keys["read"]))["count"]
