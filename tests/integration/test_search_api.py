"""Search of users and companies through API Gateway events: pages, cursors, meaning of references."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation.auth import access
from segmentation.storage import attributes

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_search_test_key_00000000000000" for role in ("ingest", "read", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    attributes.register("users", {"plan": "string", "photos": "number"})


def add_user(user_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/users", key=KEYS["ingest"], body={"user_id": user_id, **fields})
    assert reply.status in (200, 201), reply.body


def add_company(company_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/companies", key=KEYS["ingest"], body={"company_id": company_id, **fields})
    assert reply.status in (200, 201), reply.body


def search(filter_: Any, target: str = "users", key: str = "read", **more: Any) -> Reply:
    return call("POST", f"/v1/{target}/search", key=KEYS[key], body={"filter": filter_, **more})


def search_all(filter_: Any, limit: int, target: str = "users") -> list[list[str]]:
    """Every page of a search, as lists of ids."""
    id_key = "user_id" if target == "users" else "company_id"
    pages: list[list[str]] = []
    cursor = None
    while True:
        reply = search(filter_, target, limit=limit, cursor=cursor)
        assert reply.status == 200, reply.body
        pages.append([record[id_key] for record in reply.body["data"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return pages


def create_segment(name: str, filter_: dict[str, Any]) -> str:
    reply = call("POST", "/v1/segments", key=KEYS["write"], body={"name": name, "filter": filter_})
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def members(segment_id: str) -> set[str]:
    reply = call("GET", f"/v1/segments/{segment_id}/members", key=KEYS["read"], query={"limit": "100"})
    assert reply.status == 200 and reply.body["next_cursor"] is None
    return {user["user_id"] for user in reply.body["data"]}


def test_search_pages_through_every_match_once(api: None) -> None:
    for n in range(12):
        add_user(f"u{n:02}", custom_attributes={"plan": "free trial" if n % 4 else "pro", "photos": n})
    expected = {f"u{n:02}" for n in range(12) if n % 4}
    pages = search_all(TRIAL, limit=4)
    assert [len(page) for page in pages] == [4, 4, 1]
    found = [user_id for page in pages for user_id in page]
    assert len(found) == len(set(found)) and set(found) == expected
    assert search_all(TRIAL, limit=4) == pages  # a stable order across pages


def test_a_last_full_page_has_no_cursor_when_nothing_follows(api: None) -> None:
    for n in range(3):
        add_user(f"u{n}", custom_attributes={"plan": "free trial"})
    reply = search(TRIAL, limit=3)
    assert len(reply.body["data"]) == 3 and reply.body["next_cursor"] is None
    assert search({"field": "email", "op": "exists"}).body == {"data": [], "next_cursor": None}


def test_results_are_user_json_with_their_segments(api: None) -> None:
    add_user("u1", email="ada@example.com", custom_attributes={"plan": "free trial"})
    trial = create_segment("Trial", TRIAL)
    user = search({"field": "email", "op": "ends_with", "value": "EXAMPLE.COM"}).body["data"][0]
    assert user["user_id"] == "u1" and user["email"] == "ada@example.com"
    assert user["custom_attributes"] == {"plan": "free trial"} and trial in user["segments"]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJrIjoxfQ", "", "e30"],
)
def test_a_garbage_cursor_is_a_400(api: None, cursor: str) -> None:
    add_user("u1", custom_attributes={"plan": "free trial"})
    reply = search(TRIAL, cursor=cursor)
    if cursor == "":
        assert reply.status == 200  # an empty cursor is the first page
    else:
        assert (reply.status, reply.error_code) == (400, "invalid_cursor")


def test_a_cursor_is_good_only_for_its_own_search(api: None) -> None:
    for n in range(3):
        add_user(f"u{n}", custom_attributes={"plan": "free trial"})
    cursor = search(TRIAL, limit=1).body["next_cursor"]
    assert cursor
    other = search({"field": "custom_attributes.plan", "op": "exists"}, cursor=cursor, limit=1)
    assert (other.status, other.error_code) == (400, "invalid_cursor")
    assert other.body["error"]["message"].startswith("The cursor is not valid for this search")
    companies = search(TRIAL | {"field": "plan"}, target="companies", cursor=cursor)
    assert companies.status == 400


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"filter": {"field": "nope", "op": "eq", "value": 1}}, "filter.field"),
        (
            {"filter": {"and": [TRIAL, {"field": "session_count", "op": "contains", "value": "x"}]}},
            "filter.and[1]",
        ),
        ({"filter": {"field": "segment", "op": "in_segment", "value": "seg_missing"}}, "filter.value"),
        ({"filter": TRIAL, "limit": 0}, "limit"),
        ({"filter": TRIAL, "limit": 101}, "limit"),
        ({"filter": TRIAL, "sort": "name"}, "sort"),
        ({"limit": 5}, "filter"),
    ],
)
def test_invalid_searches_name_the_bad_path(api: None, body: dict[str, Any], path: str) -> None:
    reply = call("POST", "/v1/users/search", key=KEYS["read"], body=body)
    assert reply.status == 422, reply.body
    paths = [detail["path"] for detail in reply.body["error"]["details"]]
    assert any(p == path or p.startswith(path + ".") for p in paths), paths


def test_search_roles(api: None) -> None:
    for role in ("read", "write", "admin"):
        assert search(TRIAL, key=role).status == 200
    assert search(TRIAL, key="ingest").status == 403
    assert call("POST", "/v1/users/search", body={"filter": TRIAL}).status == 401


def test_search_agrees_with_members_and_count(api: None) -> None:
    for n in range(9):
        add_user(f"u{n}", custom_attributes={"plan": "free trial" if n % 3 else "pro", "photos": n * 10})
    hot = {"and": [TRIAL, {"field": "custom_attributes.photos", "op": "gt", "value": 30}]}
    segment = create_segment("Hot trials", hot)
    by_filter = {u for page in search_all(hot, limit=2) for u in page}
    by_reference = {
        u
        for page in search_all({"field": "segment", "op": "in_segment", "value": segment}, limit=2)
        for u in page
    }
    count = call("GET", f"/v1/segments/{segment}", key=KEYS["read"]).body["count"]
    assert by_filter == by_reference == members(segment) == {"u4", "u5", "u7", "u8"}
    assert count == 4


def test_a_reference_is_evaluated_by_meaning_not_stored_membership(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "pro"})
    trial = create_segment("Trial", TRIAL)
    # The change reaches stored membership only through the stream (not fed in this test);
    # search must see it at once anyway.
    add_user("u1", custom_attributes={"plan": "free trial"})
    reply = search({"field": "segment", "op": "in_segment", "value": trial})
    assert [user["user_id"] for user in reply.body["data"]] == ["u1"]
    assert members(trial) == set()


def test_users_match_through_any_of_their_companies(api: None) -> None:
    add_company("acme", plan="pro", size=40)
    add_company("tiny", plan="free", size=2)
    add_user("u1", company_ids=["tiny", "acme"])
    add_user("u2", company_ids=["tiny"])
    add_user("u3")
    pro = {"field": "company.plan", "op": "eq", "value": "pro"}
    assert search_all(pro, limit=10) == [["u1"]]
    unknown = {"field": "company.plan", "op": "not_exists"}
    assert search_all(unknown, limit=10) == [["u3"]]
    via_segment = create_segment("Pro companies' users", pro)
    assert search_all({"field": "segment", "op": "in_segment", "value": via_segment}, limit=10) == [["u1"]]


def test_company_search(api: None) -> None:
    add_company("acme", plan="pro", size=40)
    add_company("tiny", plan="free", size=2)
    add_company("mega", plan="pro", size=900)
    pages = search_all({"field": "plan", "op": "eq", "value": "PRO"}, limit=1, target="companies")
    assert sorted(c for page in pages for c in page) == ["acme", "mega"]
    reply = search({"field": "size", "op": "lt", "value": 10}, target="companies")
    assert [c["company_id"] for c in reply.body["data"]] == ["tiny"]
    assert reply.body["data"][0]["user_count"] == 0
