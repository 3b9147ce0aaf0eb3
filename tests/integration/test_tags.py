"""Tags over the in-process local stack: routes and roles, counts, tags in filters, membership
that follows a tag change through the users stream, delete refused while named, tagging by a
filter (a job)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from segmentation.storage import memberships

from tests.integration.stack_support import Api, running_stack

_names = itertools.count()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_stack() as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def new_tag(api: Api, name: str | None = None) -> dict[str, Any]:
    return dict(api.ok("POST", "/v1/tags", {"name": name or unique("Tag ")}, role="write", status=201))


def new_users(api: Api, count: int, **fields: Any) -> list[str]:
    ids = [unique("u-tag-") for _ in range(count)]
    for user_id in ids:
        api.ok("POST", "/v1/users", {"user_id": user_id, **fields}, role="ingest", status=201)
    return ids


def has_tag(tag_id: str) -> dict[str, Any]:
    return {"field": "tag", "op": "has_tag", "value": tag_id}


def test_create_read_list_and_names_unique_case_insensitively(api: Api) -> None:
    name = unique("Customers ")
    tag = new_tag(api, name)
    assert tag["id"].startswith("tag_") and (tag["name"], tag["count"]) == (name, 0)
    assert tag["created_at"].endswith("Z")
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read") == tag
    listed = api.ok("GET", "/v1/tags", role="read")
    assert listed["next_cursor"] is None and tag in listed["data"]
    clash = api.call("POST", "/v1/tags", {"name": f"  {name.upper()} "}, role="write")
    assert (clash.status, clash.json()["error"]["code"]) == (409, "tag_name_taken")
    missing = api.call("GET", "/v1/tags/tag_nothing", role="read")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "tag_not_found")
    blank = api.call("POST", "/v1/tags", {"name": "  "}, role="write")
    assert blank.status == 422


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/tags", {"write", "admin"}),
        ("GET", "/v1/tags", {"read", "write", "admin"}),
        ("GET", "/v1/tags/{tag}", {"read", "write", "admin"}),
        ("POST", "/v1/tags/{tag}/users", {"write", "admin"}),
        ("DELETE", "/v1/tags/{tag}/users", {"write", "admin"}),
        ("DELETE", "/v1/tags/{tag}", {"admin"}),
    ],
)
def test_each_route_answers_its_roles_and_refuses_the_others(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    for role in ("ingest", "read", "write", "admin"):
        tag = new_tag(api)
        body: Any = None
        if path == "/v1/tags" and method == "POST":
            body = {"name": unique("Role ")}
        elif path.endswith("/users"):
            body = {"user_ids": ["nobody"]}
        answer = api.call(method, path.format(tag=tag["id"]), body, role=role)
        if role in allowed:
            assert answer.status in (200, 201, 204), (role, answer.body)
        else:
            assert (answer.status, answer.json()["error"]["code"]) == (403, "forbidden"), role


def test_tagging_by_ids_counts_each_user_once_and_leaves_unknown_ids_out(api: Api) -> None:
    tag = new_tag(api)
    first, second, third = new_users(api, 3)
    path = f"/v1/tags/{tag['id']}/users"
    assert api.ok("POST", path, {"user_ids": [first, second, "nobody", first]}, role="write") == {"tagged": 2}
    assert api.ok("POST", path, {"user_ids": [first, third]}, role="write") == {"tagged": 1}
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 3
    assert api.user(first)["tag_ids"] == [tag["id"]]
    assert api.ok("DELETE", path, {"user_ids": [first, "nobody"]}, role="write") == {"untagged": 1}
    assert api.ok("DELETE", path, {"user_ids": [first]}, role="write") == {"untagged": 0}
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 2
    assert api.user(first)["tag_ids"] == []
    assert api.user(second)["tag_ids"] == [tag["id"]]


def test_retagging_writes_nothing(api: Api) -> None:
    tag = new_tag(api)
    [user_id] = new_users(api, 1)
    path = f"/v1/tags/{tag['id']}/users"
    api.ok("POST", path, {"user_ids": [user_id]}, role="write")
    before = api.user(user_id)
    assert api.ok("POST", path, {"user_ids": [user_id]}, role="write") == {"tagged": 0}
    assert api.user(user_id)["updated_at"] == before["updated_at"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"user_ids": [f"u{i}" for i in range(1001)]}, "user_ids"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": ["a"], "filter": {"field": "email", "op": "exists"}}, "body"),
        ({}, "body"),
        ({"user_ids": [""]}, "user_ids[0]"),
    ],
)
def test_bad_bodies_are_422s_naming_the_field(api: Api, body: dict[str, Any], path: str) -> None:
    tag = new_tag(api)
    answer = api.call("POST", f"/v1/tags/{tag['id']}/users", body, role="write")
    assert answer.status == 422, answer.body
    assert path in [detail["path"] for detail in answer.json()["error"]["details"]]


def test_tagging_a_tag_that_does_not_exist_is_a_404(api: Api) -> None:
    [user_id] = new_users(api, 1)
    answer = api.call("POST", "/v1/tags/tag_nothing/users", {"user_ids": [user_id]}, role="write")
    assert (answer.status, answer.json()["error"]["code"]) == (404, "tag_not_found")
    assert api.user(user_id)["tag_ids"] == []


def test_tag_ids_are_read_only_on_upsert(api: Api) -> None:
    answer = api.call("POST", "/v1/users", {"user_id": unique("u-ro-"), "tag_ids": ["tag_x"]}, role="ingest")
    assert answer.status == 422
    assert answer.json()["error"]["details"] == [{"path": "tag_ids", "message": "tag_ids is read-only"}]


def test_a_tag_change_moves_the_user_into_and_out_of_segments_through_the_stream(api: Api) -> None:
    tag = new_tag(api)
    tagged, other = new_users(api, 2)
    segment = api.ok(
        "POST", "/v1/segments", {"name": unique("Tagged "), "filter": has_tag(tag["id"])}, status=201
    )
    untagged = api.ok(
        "POST",
        "/v1/segments",
        {"name": unique("Untagged "), "filter": {"field": "tag", "op": "not_has_tag", "value": tag["id"]}},
        status=201,
    )
    assert segment["count"] == 0
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": [tagged]}, role="write")
    api.stack.drain()
    assert segment["id"] in api.user(tagged)["segments"]
    assert (
        untagged["id"] not in api.user(tagged)["segments"] and untagged["id"] in api.user(other)["segments"]
    )
    assert api.ok("GET", f"/v1/segments/{segment['id']}", role="read")["count"] == 1
    members = api.ok("GET", f"/v1/segments/{segment['id']}/members", role="read")["data"]
    assert [m["user_id"] for m in members] == [tagged]
    api.ok("DELETE", f"/v1/tags/{tag['id']}/users", {"user_ids": [tagged]}, role="write")
    api.stack.drain()
    assert api.ok("GET", f"/v1/segments/{segment['id']}", role="read")["count"] == 0
    assert untagged["id"] in api.user(tagged)["segments"]


def test_search_and_count_read_tags_and_a_filter_naming_an_unknown_tag_is_a_422(api: Api) -> None:
    tag = new_tag(api)
    ids = new_users(api, 3)
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids[:2]}, role="write")
    found = api.ok("POST", "/v1/users/search", {"filter": has_tag(tag["id"])}, role="read")
    assert sorted(u["user_id"] for u in found["data"]) == sorted(ids[:2])
    assert api.ok("POST", "/v1/users/count", {"filter": has_tag(tag["id"])}, role="read")["count"] == 2
    for method, path, body in (
        ("POST", "/v1/users/search", {"filter": has_tag("tag_unknown")}),
        ("POST", "/v1/segments", {"name": unique("Bad "), "filter": has_tag("tag_unknown")}),
        ("POST", "/v1/companies/search", {"filter": has_tag(tag["id"])}),
    ):
        answer = api.call(method, path, body)
        assert answer.status == 422, answer.body
        assert answer.json()["error"]["details"][0]["path"].startswith("filter.")


def test_fields_list_the_tag_field_for_users_only(api: Api) -> None:
    users = api.ok("GET", "/v1/fields", role="read", query=[("target", "users")])["data"]
    assert {"field": "tag", "type": "tag", "ops": ["has_tag", "not_has_tag"], "source": "standard"} in users
    companies = api.ok("GET", "/v1/fields", role="read", query=[("target", "companies")])["data"]
    assert "tag" not in [field["field"] for field in companies]


def test_delete_is_refused_while_a_segment_or_a_message_names_the_tag(api: Api) -> None:
    tag = new_tag(api)
    segment = api.ok(
        "POST", "/v1/segments", {"name": unique("Named "), "filter": has_tag(tag["id"])}, status=201
    )
    message = api.ok(
        "POST",
        "/v1/messages",
        {
            "name": unique("To the tagged "),
            "type": "manual",
            "channel": "in_app",
            "audience": {"filter": {"not": has_tag(tag["id"])}},
            "body": "Hello",
        },
        status=201,
    )
    refused = api.call("DELETE", f"/v1/tags/{tag['id']}")
    assert (refused.status, refused.json()["error"]["code"]) == (409, "tag_in_use")
    named = {(d.get("segment_id"), d.get("message_id")) for d in refused.json()["error"]["details"]}
    assert named == {(segment["id"], None), (None, message["id"])}
    api.ok("DELETE", f"/v1/segments/{segment['id']}", status=204)
    refused = api.call("DELETE", f"/v1/tags/{tag['id']}")
    assert refused.status == 409 and message["id"] in refused.json()["error"]["message"]
    api.ok("DELETE", f"/v1/messages/{message['id']}", status=204)
    assert api.call("DELETE", f"/v1/tags/{tag['id']}").status == 204
    assert api.call("GET", f"/v1/tags/{tag['id']}", role="read").status == 404


def test_a_deleted_tags_users_lose_it_and_its_count_goes(api: Api) -> None:
    tag = new_tag(api)
    ids = new_users(api, 3)
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids}, role="write")
    api.ok("DELETE", f"/v1/tags/{tag['id']}", status=204)
    api.stack.drain()
    assert all(api.user(user_id)["tag_ids"] == [] for user_id in ids)
    assert memberships.count(memberships.tag_group(tag["id"])) == 0
    assert memberships.group_page(memberships.tag_group(tag["id"]), 10)[0] == []
    again = api.call("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids}, role="write")
    assert again.status == 404


def test_a_deleted_user_leaves_its_tags_count(api: Api) -> None:
    tag = new_tag(api)
    ids = new_users(api, 2)
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids}, role="write")
    api.ok("DELETE", f"/v1/users/{ids[0]}", role="ingest", status=204)
    api.stack.drain()
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 1
    # Created again, the user holds no tag; tagging it counts it again.
    api.ok("POST", "/v1/users", {"user_id": ids[0]}, role="ingest", status=201)
    assert api.user(ids[0])["tag_ids"] == []
    assert api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids}, role="write") == {"tagged": 1}
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 2


def test_a_user_created_again_before_its_cleanup_takes_over_its_old_link(api: Api) -> None:
    tag = new_tag(api)
    [user_id] = new_users(api, 1)
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": [user_id]}, role="write")
    api.ok("DELETE", f"/v1/users/{user_id}", role="ingest", status=204)
    # No drain: the old link is still there when the new user is created and tagged.
    api.ok("POST", "/v1/users", {"user_id": user_id}, role="ingest", status=201)
    assert api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": [user_id]}, role="write") == {
        "tagged": 1
    }
    api.stack.drain()  # the old incarnation's cleanup keeps the link the new one holds
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 1
    assert api.user(user_id)["tag_ids"] == [tag["id"]]


def test_tagging_and_untagging_by_filter_are_jobs_over_every_match(api: Api) -> None:
    tag = new_tag(api)
    plan = unique("plan-")
    matching = new_users(api, 3, name=plan)
    new_users(api, 2, name="someone else")
    body = {"filter": {"field": "name", "op": "eq", "value": plan}}
    started = api.ok("POST", f"/v1/tags/{tag['id']}/users", body, role="write", status=202)
    job = api.finished_job(started["job_id"])
    assert (job["kind"], job["state"], job["result"], job["errors"]) == ("tag", "done", {"tagged": 3}, [])
    assert job["done"] == job["total"] > 0
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 3
    assert all(api.user(user_id)["tag_ids"] == [tag["id"]] for user_id in matching)
    started = api.ok("DELETE", f"/v1/tags/{tag['id']}/users", body, role="write", status=202)
    job = api.finished_job(started["job_id"])
    assert (job["kind"], job["result"]) == ("untag", {"untagged": 3})
    assert api.ok("GET", f"/v1/tags/{tag['id']}", role="read")["count"] == 0


def test_a_filter_job_with_a_bad_filter_is_a_422_and_no_job(api: Api) -> None:
    tag = new_tag(api)
    answer = api.call("POST", f"/v1/tags/{tag['id']}/users", {"filter": {"field": "nope", "op": "exists"}})
    assert answer.status == 422 and answer.json()["error"]["details"][0]["path"] == "filter.field"


def test_jobs_are_read_by_read_keys_and_up(api: Api) -> None:
    tag = new_tag(api)
    started = api.ok(
        "POST", f"/v1/tags/{tag['id']}/users", {"filter": {"field": "email", "op": "exists"}}, status=202
    )
    for role in ("read", "write", "admin"):
        assert api.job(started["job_id"], role=role)["id"] == started["job_id"]
    assert api.call("GET", f"/v1/jobs/{started['job_id']}", role="ingest").status == 403
    missing = api.call("GET", "/v1/jobs/job_nothing", role="read")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "job_not_found")
    api.stack.drain()
