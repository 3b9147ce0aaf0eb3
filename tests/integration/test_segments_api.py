"""Segments through API Gateway events: create, list, read, edit, delete, members, roles, references."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation.auth import access
from segmentation.storage import attributes

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_segments_test_key_0000000000000" for role in ("ingest", "read", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}
PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    # Filters may name only known custom attributes: fix the types these tests use.
    attributes.register("users", {"plan": "string", "photos": "number"})


def add_user(user_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/users", key=KEYS["ingest"], body={"user_id": user_id, **fields})
    assert reply.status in (200, 201), reply.body


def create(name: str, filter_: dict[str, Any], target: str | None = None, role: str = "write") -> Reply:
    body: dict[str, Any] = {"name": name, "filter": filter_}
    if target is not None:
        body["target"] = target
    return call("POST", "/v1/segments", key=KEYS[role], body=body)


def created_id(name: str, filter_: dict[str, Any], target: str | None = None) -> str:
    reply = create(name, filter_, target)
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def in_segment(segment_id: str) -> dict[str, Any]:
    return {"field": "segment", "op": "in_segment", "value": segment_id}


def member_ids(segment_id: str, limit: int = 100) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        reply = call("GET", f"/v1/segments/{segment_id}/members", key=KEYS["read"], query=query)
        assert reply.status == 200, reply.body
        ids += [user["user_id"] for user in reply.body["data"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return ids


def count_of(segment_id: str) -> int:
    reply = call("GET", f"/v1/segments/{segment_id}", key=KEYS["read"])
    assert reply.status == 200, reply.body
    return int(reply.body["count"])


def test_create_read_and_list(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "free trial"})
    add_user("u2", custom_attributes={"plan": "pro"})
    reply = create("Trial users", TRIAL)
    assert reply.status == 201
    segment = reply.body
    assert segment["id"].startswith("seg_")
    assert (segment["name"], segment["target"], segment["filter"], segment["predefined"]) == (
        "Trial users",
        "users",
        TRIAL,
        False,
    )
    assert segment["count"] == 1  # built at once
    assert segment["created_at"].endswith("Z") and segment["updated_at"] == segment["created_at"]

    assert call("GET", f"/v1/segments/{segment['id']}", key=KEYS["read"]).body == segment
    listed = call("GET", "/v1/segments", key=KEYS["read"]).body
    assert listed["next_cursor"] is None
    assert [s["id"] for s in listed["data"]] == ["new", "active", "slipping_away", segment["id"]]
    assert all(s["predefined"] and s["created_at"] is None for s in listed["data"][:3])
    assert listed["data"][3] == segment


def test_list_is_per_target(api: None) -> None:
    user_segment = created_id("Trial", TRIAL)
    company_segment = created_id("Big", {"field": "size", "op": "gt", "value": 100}, target="companies")
    companies = call("GET", "/v1/segments", key=KEYS["read"], query={"target": "companies"}).body["data"]
    users = call("GET", "/v1/segments", key=KEYS["read"], query={"target": "users"}).body["data"]
    assert [s["id"] for s in companies] == [company_segment]
    assert user_segment in [s["id"] for s in users] and company_segment not in [s["id"] for s in users]
    assert call("GET", "/v1/segments", key=KEYS["read"], query={"target": "teams"}).status == 422


def test_names_are_unique_per_target_case_insensitively(api: None) -> None:
    created_id("Trial users", TRIAL)
    clash = create("  TRIAL USERS ", PRO)
    assert (clash.status, clash.error_code) == (409, "segment_name_taken")
    assert (
        create("Trial users", {"field": "plan", "op": "eq", "value": "x"}, target="companies").status == 201
    )
    predefined_clash = create("active", PRO)
    assert (predefined_clash.status, predefined_clash.error_code) == (409, "segment_name_taken")


def test_rename_moves_the_name(api: None) -> None:
    first = created_id("Trial users", TRIAL)
    second = created_id("Pro users", PRO)
    taken = call("PUT", f"/v1/segments/{second}", key=KEYS["admin"], body={"name": "trial USERS"})
    assert (taken.status, taken.error_code) == (409, "segment_name_taken")
    renamed = call("PUT", f"/v1/segments/{first}", key=KEYS["admin"], body={"name": "Trials"})
    assert renamed.status == 200 and renamed.body["name"] == "Trials" and renamed.body["filter"] == TRIAL
    assert create("Trial users", TRIAL).status == 201  # the old name is free again
    assert create("TRIALS", TRIAL).status == 409  # the new one is taken
    same_key = call("PUT", f"/v1/segments/{first}", key=KEYS["admin"], body={"name": "TRIALS"})
    assert same_key.status == 200 and same_key.body["name"] == "TRIALS"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "", "filter": TRIAL}, "name"),
        ({"name": "x" * 256, "filter": TRIAL}, "name"),
        ({"filter": TRIAL}, "name"),
        ({"name": "A", "target": "teams", "filter": TRIAL}, "target"),
        ({"name": "A", "filter": TRIAL, "colour": "red"}, "colour"),
        (
            {"name": "A", "filter": {"and": [TRIAL, {"field": "shoe_size", "op": "eq", "value": 3}]}},
            "filter.and[1]",
        ),
        ({"name": "A", "filter": {"field": "email", "op": "gt", "value": 3}}, "filter"),
        (
            {"name": "A", "filter": {"not": {"field": "session_count", "op": "gt", "value": "many"}}},
            "filter.not",
        ),
    ],
)
def test_invalid_bodies_name_the_bad_path(api: None, body: dict[str, Any], path: str) -> None:
    reply = call("POST", "/v1/segments", key=KEYS["write"], body=body)
    assert reply.status == 422, reply.body
    paths = [detail["path"] for detail in reply.body["error"]["details"]]
    assert any(p == path or p.startswith(path + ".") for p in paths), paths


def test_roles(api: None) -> None:
    segment = created_id("Trial", TRIAL)
    assert create("By reader", TRIAL, role="read").status == 403
    assert create("By ingest", TRIAL, role="ingest").status == 403
    assert create("By admin", TRIAL, role="admin").status == 201
    for role in ("write", "read"):
        assert call("PUT", f"/v1/segments/{segment}", key=KEYS[role], body={"name": "B"}).status == 403
        assert call("DELETE", f"/v1/segments/{segment}", key=KEYS[role]).status == 403
    for path in ("/v1/segments", f"/v1/segments/{segment}", f"/v1/segments/{segment}/members"):
        assert call("GET", path, key=KEYS["read"]).status == 200
        assert call("GET", path, key=KEYS["ingest"]).status == 403
        assert call("GET", path).status == 401
    assert (
        count_of(segment) == 0
        and call("GET", f"/v1/segments/{segment}", key=KEYS["read"]).body["name"] == "Trial"
    )


def test_a_reference_is_complete_right_after_creation(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "free trial", "photos": 90})
    add_user("u2", custom_attributes={"plan": "free trial", "photos": 10})
    add_user("u3", custom_attributes={"plan": "pro", "photos": 95})
    trial = created_id("Trial", TRIAL)
    hot = created_id(
        "Hot trials",
        {"and": [in_segment(trial), {"field": "custom_attributes.photos", "op": "gt", "value": 80}]},
    )
    assert member_ids(hot) == ["u1"] and count_of(hot) == 1
    not_trial = created_id("Not trial", {"field": "segment", "op": "not_in_segment", "value": trial})
    assert member_ids(not_trial) == ["u3"] and count_of(not_trial) == 1


def test_references_must_exist_and_share_the_target(api: None) -> None:
    company_segment = created_id("Big", {"field": "size", "op": "gt", "value": 100}, target="companies")
    for value in ("seg_missing", company_segment):
        reply = create(f"Refers to {value}", in_segment(value))
        assert reply.status == 422, reply.body
        assert reply.body["error"]["details"][0]["path"] == "filter.value"
    assert create("Refers to a predefined one", in_segment("active")).status == 201


def test_a_cycle_through_an_edit_is_refused(api: None) -> None:
    a = created_id("A", TRIAL)
    b = created_id("B", in_segment(a))
    c = created_id("C", {"or": [PRO, in_segment(b)]})
    reply = call(
        "PUT", f"/v1/segments/{a}", key=KEYS["admin"], body={"filter": {"and": [TRIAL, in_segment(c)]}}
    )
    assert (reply.status, reply.error_code) == (422, "invalid_filter"), reply.body
    assert reply.body["error"]["details"][0]["path"] == "filter.and[1].value"
    itself = call("PUT", f"/v1/segments/{a}", key=KEYS["admin"], body={"filter": in_segment(a)})
    assert itself.status == 422
    assert call("GET", f"/v1/segments/{a}", key=KEYS["read"]).body["filter"] == TRIAL  # unchanged


def test_editing_a_filter_rebuilds_membership_and_its_dependents(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "free trial"})
    add_user("u2", custom_attributes={"plan": "pro"})
    a = created_id("A", TRIAL)
    b = created_id("B", in_segment(a))
    assert member_ids(a) == member_ids(b) == ["u1"]
    reply = call("PUT", f"/v1/segments/{a}", key=KEYS["admin"], body={"filter": PRO})
    assert reply.status == 200 and reply.body["filter"] == PRO and reply.body["count"] == 1
    assert reply.body["updated_at"] >= reply.body["created_at"]
    assert member_ids(a) == ["u2"] and member_ids(b) == ["u2"]
    assert count_of(b) == 1


def test_delete_is_blocked_while_another_segment_refers(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "free trial"})
    a = created_id("A", TRIAL)
    b = created_id("B", {"not": in_segment(a)})
    blocked = call("DELETE", f"/v1/segments/{a}", key=KEYS["admin"])
    assert (blocked.status, blocked.error_code) == (409, "segment_in_use")
    assert b in blocked.body["error"]["message"]
    assert [d.get("segment_id") for d in blocked.body["error"]["details"]] == [b]
    assert call("DELETE", f"/v1/segments/{b}", key=KEYS["admin"]).status == 204
    assert call("DELETE", f"/v1/segments/{a}", key=KEYS["admin"]).status == 204
    assert call("GET", f"/v1/segments/{a}", key=KEYS["read"]).status == 404
    assert a not in [s["id"] for s in call("GET", "/v1/segments", key=KEYS["read"]).body["data"]]
    user = call("GET", "/v1/users/u1", key=KEYS["read"]).body
    assert a not in user["segments"]
    assert create("A", TRIAL).status == 201  # its name is free again


def test_predefined_segments_cannot_be_edited_or_deleted(api: None) -> None:
    for segment_id in ("new", "active", "slipping_away"):
        put = call("PUT", f"/v1/segments/{segment_id}", key=KEYS["admin"], body={"name": "Mine"})
        delete = call("DELETE", f"/v1/segments/{segment_id}", key=KEYS["admin"])
        assert (put.status, put.error_code) == (409, "predefined_segment")
        assert (delete.status, delete.error_code) == (409, "predefined_segment")
    assert call("GET", "/v1/segments/active", key=KEYS["read"]).body["name"] == "Active"


def test_unknown_segments_are_404(api: None) -> None:
    for method, path in [
        ("GET", "/v1/segments/seg_nope"),
        ("GET", "/v1/segments/seg_nope/members"),
        ("DELETE", "/v1/segments/seg_nope"),
    ]:
        assert call(method, path, key=KEYS["admin"]).status == 404
    assert call("PUT", "/v1/segments/seg_nope", key=KEYS["admin"], body={"name": "x"}).status == 404


def test_members_come_a_page_at_a_time_and_match_the_count(api: None) -> None:
    for n in range(7):
        add_user(f"u{n}", custom_attributes={"plan": "free trial" if n != 3 else "pro"})
    trial = created_id("Trial", TRIAL)
    first = call("GET", f"/v1/segments/{trial}/members", key=KEYS["read"], query={"limit": "4"})
    assert len(first.body["data"]) == 4 and first.body["next_cursor"]
    everyone = member_ids(trial, limit=4)
    assert sorted(everyone) == [f"u{n}" for n in range(7) if n != 3]
    assert len(set(everyone)) == len(everyone) == count_of(trial)
    assert all(trial in user["segments"] for user in first.body["data"])


def test_members_refuse_a_bad_limit_or_cursor(api: None) -> None:
    trial = created_id("Trial", TRIAL)
    path = f"/v1/segments/{trial}/members"
    for limit in ("0", "101", "x"):
        assert call("GET", path, key=KEYS["read"], query={"limit": limit}).status == 422
    garbage = call("GET", path, key=KEYS["read"], query={"cursor": "!!not-a-cursor!!"})
    assert (garbage.status, garbage.error_code) == (400, "invalid_cursor")


def test_company_segments_list_companies(api: None) -> None:
    for company_id, size in (("acme", 400), ("tiny", 3)):
        reply = call(
            "POST", "/v1/companies", key=KEYS["ingest"], body={"company_id": company_id, "size": size}
        )
        assert reply.status == 201
    big = created_id("Big", {"field": "size", "op": "gte", "value": 100}, target="companies")
    reply = call("GET", f"/v1/segments/{big}/members", key=KEYS["read"])
    assert [c["company_id"] for c in reply.body["data"]] == ["acme"]
    assert reply.body["data"][0]["segments"] == [big] and count_of(big) == 1
