"""Segments over HTTP: exact membership kept current, references, edits, deletes, companies."""

from __future__ import annotations

from typing import Any

import pytest

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
    user_segments,
    wait_for,
)

pytestmark = pytest.mark.e2e

TRIAL_FILTER: dict[str, Any] = {
    "and": [
        {"field": "signed_up_at", "op": "less_than_days_ago", "value": 14},
        {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"},
    ]
}


def _scoped(prefix: str, filter_: dict[str, Any]) -> dict[str, Any]:
    """The filter, limited to this test's users so that the member set is exact."""
    return {"and": [{"field": "user_id", "op": "starts_with", "value": prefix}, filter_]}


def _membership_settles(stack: RunningStack, segment_id: str, expected: set[str]) -> set[str]:
    """The members once they and the count agree with `expected` (or after the bounded wait)."""
    settled = wait_for(
        lambda: (member_ids(stack, segment_id), segment_count(stack, segment_id)),
        lambda found: found == (expected, len(expected)),
    )
    assert settled[1] == len(settled[0]), f"count {settled[1]} but members {settled[0]}"
    return settled[0]


def test_trial_users_exact_members_count_and_moves(stack: RunningStack) -> None:
    prefix = unique("u-trial") + "-"
    trial, old, pro, none = (prefix + suffix for suffix in ("trial", "old", "pro", "none"))
    upsert_user(
        stack,
        {"user_id": trial, "signed_up_at": ago(stack, days=3), "custom_attributes": {"plan": "Free Trial"}},
    )
    upsert_user(
        stack,
        {"user_id": old, "signed_up_at": ago(stack, days=20), "custom_attributes": {"plan": "free trial"}},
    )
    upsert_user(
        stack, {"user_id": pro, "signed_up_at": ago(stack, days=1), "custom_attributes": {"plan": "pro"}}
    )
    upsert_user(stack, {"user_id": none, "signed_up_at": ago(stack, days=1)})

    segment_id = create_segment(stack, f"Trial users {prefix}", _scoped(prefix, TRIAL_FILTER))
    # Built at once by the create.
    assert member_ids(stack, segment_id) == {trial}
    assert segment_count(stack, segment_id) == 1
    assert segment_id in user_segments(stack, trial)
    assert segment_id not in user_segments(stack, pro)

    # An update moves a user in, another out.
    upsert_user(stack, {"user_id": pro, "custom_attributes": {"plan": "free trial"}})
    upsert_user(stack, {"user_id": trial, "custom_attributes": {"plan": None}})
    assert _membership_settles(stack, segment_id, {pro}) == {pro}
    assert segment_count(stack, segment_id) == 1
    assert user_segments(stack, trial) & {segment_id} == set()
    assert segment_id in user_segments(stack, pro)

    # Deleting a member takes it out.
    assert stack.request("DELETE", f"/v1/users/{pro}", key=stack.admin_key).status == 204
    assert _membership_settles(stack, segment_id, set()) == set()
    assert segment_count(stack, segment_id) == 0


def test_literal_trial_users_segment_count_equals_its_members(stack: RunningStack) -> None:
    user_id = unique("u-trial-lit")
    upsert_user(
        stack,
        {"user_id": user_id, "signed_up_at": ago(stack, days=2), "custom_attributes": {"plan": "free trial"}},
    )
    segment_id = create_segment(stack, unique("Trial users"), TRIAL_FILTER)
    members = member_ids(stack, segment_id)
    assert user_id in members
    assert segment_count(stack, segment_id) == len(members)
    assert members == search_ids(stack, TRIAL_FILTER)
    listed = ok(stack.request("GET", "/v1/segments?target=users", key=stack.admin_key))["data"]
    assert [s["id"] for s in listed[:3]] == ["new", "active", "slipping_away"]
    mine = [s for s in listed if s["id"] == segment_id]
    assert len(mine) == 1 and mine[0]["count"] == len(members) and mine[0]["predefined"] is False
    assert stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key).status == 204
    assert stack.request("GET", f"/v1/segments/{segment_id}", key=stack.admin_key).status == 404
    assert segment_id not in user_segments(stack, user_id)


def test_a_login_moves_a_user_into_active(stack: RunningStack) -> None:
    prefix = unique("u-act") + "-"
    user_id = prefix + "1"
    upsert_user(
        stack, {"user_id": user_id, "signed_up_at": ago(stack, days=90), "last_seen_at": ago(stack, days=45)}
    )
    segment_id = create_segment(
        stack,
        f"Active {prefix}",
        _scoped(prefix, {"field": "segment", "op": "in_segment", "value": "active"}),
    )
    assert member_ids(stack, segment_id) == set()
    assert "slipping_away" in user_segments(stack, user_id)

    login = ok(stack.request("POST", f"/v1/users/{user_id}/logins", key=stack.ingest_key))
    assert "active" in login["segments"] and segment_id in login["segments"]
    assert "slipping_away" not in login["segments"]
    assert _membership_settles(stack, segment_id, {user_id}) == {user_id}
    assert user_id in wait_for(lambda: member_ids(stack, "active"), lambda found: user_id in found)
    assert user_id not in member_ids(stack, "slipping_away")


def test_segment_names_clash_case_insensitively_and_with_predefined(stack: RunningStack) -> None:
    name = unique("Clash")
    create_segment(stack, name, {"field": "name", "op": "exists"})
    for clash in (name.upper(), f"  {name.lower()} ", "Active", "new"):
        response = stack.request(
            "POST",
            "/v1/segments",
            {"name": clash, "filter": {"field": "name", "op": "exists"}},
            key=stack.admin_key,
        )
        assert response.status == 409, clash
        assert response.json()["error"]["message"]


@pytest.mark.parametrize(
    "filter_, path",
    [
        (
            {"and": [{"field": "name", "op": "exists"}, {"field": "name", "op": "gt", "value": 3}]},
            "filter.and[1].op",
        ),
        ({"field": "nonsense", "op": "exists"}, "filter.field"),
        ({"field": "session_count", "op": "gt", "value": "many"}, "filter.value"),
        ({"or": [{"field": "segment", "op": "in_segment", "value": "seg_missing"}]}, "filter.or[0].value"),
        ({"field": "custom_attributes.never_seen_attr", "op": "exists"}, "filter.field"),
    ],
)
def test_invalid_filter_is_422_with_the_path(stack: RunningStack, filter_: dict, path: str) -> None:
    response = stack.request(
        "POST", "/v1/segments", {"name": unique("Bad"), "filter": filter_}, key=stack.admin_key
    )
    assert response.status == 422, response.body
    details = response.json()["error"]["details"]
    assert any(detail["path"] == path for detail in details), details


def test_a_filter_nested_deeper_than_6_is_422(stack: RunningStack) -> None:
    filter_: dict[str, Any] = {"field": "name", "op": "exists"}
    for _ in range(7):
        filter_ = {"not": filter_}
    response = stack.request(
        "POST", "/v1/segments", {"name": unique("Deep"), "filter": filter_}, key=stack.admin_key
    )
    assert response.status == 422


def test_references_to_a_segment_created_a_moment_ago_are_complete_at_once(stack: RunningStack) -> None:
    prefix = unique("u-ref") + "-"
    vip, plain = prefix + "vip", prefix + "plain"
    upsert_user(stack, {"user_id": vip, "custom_attributes": {"photos_uploaded": 500}})
    upsert_user(stack, {"user_id": plain, "custom_attributes": {"photos_uploaded": 1}})
    base = create_segment(
        stack,
        f"Base {prefix}",
        _scoped(prefix, {"field": "custom_attributes.photos_uploaded", "op": "gte", "value": 100}),
    )
    in_base = {"field": "segment", "op": "in_segment", "value": base}
    # Search and members of a referring segment, straight after the create.
    assert search_ids(stack, in_base) == {vip}
    assert search_ids(stack, {"field": "segment", "op": "not_in_segment", "value": base}) >= {plain}
    assert vip not in search_ids(stack, {"field": "segment", "op": "not_in_segment", "value": base})
    outer = create_segment(stack, f"Outer {prefix}", in_base)
    assert member_ids(stack, outer) == {vip}
    outer_not = create_segment(stack, f"OuterNot {prefix}", _scoped(prefix, {"not": in_base}))
    assert member_ids(stack, outer_not) == {plain}

    # Self-reference through another segment: 422.
    cycle = stack.request(
        "PUT",
        f"/v1/segments/{base}",
        {"filter": {"field": "segment", "op": "in_segment", "value": outer}},
        key=stack.admin_key,
    )
    assert cycle.status == 422

    # An admin edit of the base rebuilds it and what refers to it.
    edited = stack.request(
        "PUT",
        f"/v1/segments/{base}",
        {"filter": _scoped(prefix, {"field": "custom_attributes.photos_uploaded", "op": "lt", "value": 100})},
        key=stack.admin_key,
    )
    assert ok(edited)["id"] == base
    assert member_ids(stack, base) == {plain}
    assert member_ids(stack, outer) == {plain}
    assert member_ids(stack, outer_not) == {vip}
    assert segment_count(stack, outer) == 1

    # A change of a user moves it through both levels.
    upsert_user(stack, {"user_id": vip, "custom_attributes": {"photos_uploaded": 2}})
    assert _membership_settles(stack, outer, {plain, vip}) == {plain, vip}
    assert _membership_settles(stack, outer_not, set()) == set()

    # Delete is blocked while referenced, naming the dependent.
    blocked = stack.request("DELETE", f"/v1/segments/{base}", key=stack.admin_key)
    assert blocked.status == 409
    assert outer in blocked.json()["error"]["message"] or any(
        detail.get("segment_id") == outer for detail in blocked.json()["error"].get("details", [])
    )
    for dependent in (outer, outer_not):
        assert stack.request("DELETE", f"/v1/segments/{dependent}", key=stack.admin_key).status == 204
    assert stack.request("DELETE", f"/v1/segments/{base}", key=stack.admin_key).status == 204


def test_rename_keeps_members_and_frees_the_old_name(stack: RunningStack) -> None:
    prefix = unique("u-ren") + "-"
    upsert_user(stack, {"user_id": prefix + "1", "name": "x"})
    old_name, new_name = f"Old {prefix}", f"New {prefix}"
    segment_id = create_segment(stack, old_name, _scoped(prefix, {"field": "name", "op": "exists"}))
    renamed = ok(stack.request("PUT", f"/v1/segments/{segment_id}", {"name": new_name}, key=stack.admin_key))
    assert renamed["name"] == new_name and renamed["count"] == 1
    assert member_ids(stack, segment_id) == {prefix + "1"}
    create_segment(stack, old_name, {"field": "name", "op": "exists"})


def test_predefined_segments_cannot_be_edited_or_deleted(stack: RunningStack) -> None:
    for segment_id in ("new", "active", "slipping_away"):
        put = stack.request("PUT", f"/v1/segments/{segment_id}", {"name": unique("x")}, key=stack.admin_key)
        assert put.status == 409
        delete = stack.request("DELETE", f"/v1/segments/{segment_id}", key=stack.admin_key)
        assert delete.status == 409
        segment = ok(stack.request("GET", f"/v1/segments/{segment_id}", key=stack.admin_key))
        assert segment["predefined"] is True
        assert segment["count"] == len(member_ids(stack, segment_id))


def test_unknown_segment_is_404(stack: RunningStack) -> None:
    for method, path in (
        ("GET", "/v1/segments/seg_nope"),
        ("GET", "/v1/segments/seg_nope/members"),
        ("DELETE", "/v1/segments/seg_nope"),
    ):
        assert stack.request(method, path, key=stack.admin_key).status == 404


def test_companies_segments_and_company_fields_of_users(stack: RunningStack) -> None:
    prefix = unique("c") + "-"
    acme, globex = prefix + "acme", prefix + "globex"
    ok(
        stack.request(
            "POST",
            "/v1/companies",
            {"company_id": acme, "name": "Acme", "plan": "pro", "size": 40},
            key=stack.ingest_key,
        ),
        201,
    )
    ok(
        stack.request(
            "POST",
            "/v1/companies",
            {"company_id": globex, "name": "Globex", "plan": "starter"},
            key=stack.ingest_key,
        ),
        201,
    )
    ada, bob, cy = prefix + "ada", prefix + "bob", prefix + "cy"
    upsert_user(stack, {"user_id": ada, "company_ids": [acme]})
    upsert_user(stack, {"user_id": bob, "company_ids": [globex, acme]})
    upsert_user(stack, {"user_id": cy, "company_ids": [globex]})

    # The stream links each user to its companies within seconds; wait for both counts.
    for company_id in (acme, globex):
        company = wait_for(
            lambda company_id=company_id: ok(
                stack.request("GET", f"/v1/companies/{company_id}", key=stack.admin_key)
            ),
            lambda found: found["user_count"] == 2,
        )
        assert company["user_count"] == 2

    company_segment = create_segment(
        stack,
        f"Pro companies {prefix}",
        {
            "and": [
                {"field": "company_id", "op": "starts_with", "value": prefix},
                {"field": "plan", "op": "eq", "value": "pro"},
            ]
        },
        target="companies",
    )
    assert member_ids(stack, company_segment, "company_id") == {acme}
    assert (
        company_segment in ok(stack.request("GET", f"/v1/companies/{acme}", key=stack.admin_key))["segments"]
    )
    assert search_ids(
        stack, {"field": "segment", "op": "in_segment", "value": company_segment}, "companies"
    ) == {acme}
    big = create_segment(
        stack,
        f"Two users {prefix}",
        {
            "and": [
                {"field": "company_id", "op": "starts_with", "value": prefix},
                {"field": "user_count", "op": "gte", "value": 2},
            ]
        },
        target="companies",
    )
    assert member_ids(stack, big, "company_id") == {acme, globex}

    pro_users = create_segment(
        stack, f"Pro users {prefix}", _scoped(prefix, {"field": "company.plan", "op": "eq", "value": "pro"})
    )
    assert member_ids(stack, pro_users) == {ada, bob}
    # A user segment may not refer to a company segment.
    wrong_target = stack.request(
        "POST",
        "/v1/segments",
        {
            "name": unique("Wrong"),
            "filter": {"field": "segment", "op": "in_segment", "value": company_segment},
        },
        key=stack.admin_key,
    )
    assert wrong_target.status == 422

    # A change of a company moves its users (and the company itself).
    ok(stack.request("POST", "/v1/companies", {"company_id": globex, "plan": "pro"}, key=stack.ingest_key))
    assert _membership_settles(stack, pro_users, {ada, bob, cy}) == {ada, bob, cy}
    assert pro_users in user_segments(stack, cy)
    assert member_ids(stack, company_segment, "company_id") == {acme, globex}
    ok(stack.request("POST", "/v1/companies", {"company_id": acme, "plan": "starter"}, key=stack.ingest_key))
    ok(
        stack.request(
            "POST", "/v1/companies", {"company_id": globex, "plan": "starter"}, key=stack.ingest_key
        )
    )
    assert _membership_settles(stack, pro_users, set()) == set()
    assert segment_count(stack, pro_users) == 0
    assert (
        wait_for(lambda: member_ids(stack, company_segment, "company_id"), lambda found: not found) == set()
    )

    # A user leaving a company lowers its user_count.
    upsert_user(stack, {"user_id": bob, "company_ids": [globex]})
    company = wait_for(
        lambda: ok(stack.request("GET", f"/v1/companies/{acme}", key=stack.admin_key)),
        lambda found: found["user_count"] == 1,
    )
    assert company["user_count"] == 1
    assert wait_for(lambda: member_ids(stack, big, "company_id"), lambda found: found == {globex}) == {globex}


def test_a_user_deleted_and_created_again_at_once_ends_in_the_right_segments(stack: RunningStack) -> None:
    prefix = unique("u-again") + "-"
    keep, drop = prefix + "keep", prefix + "drop"
    for user_id in (keep, drop):
        upsert_user(stack, {"user_id": user_id, "custom_attributes": {"photos_uploaded": 30}})
    segment_id = create_segment(
        stack,
        f"Again {prefix}",
        _scoped(prefix, {"field": "custom_attributes.photos_uploaded", "op": "gte", "value": 10}),
    )
    assert member_ids(stack, segment_id) == {keep, drop}
    # Deleted and re-created before the stream has seen the delete: once matching, once not.
    for user_id, photos in ((keep, 40), (drop, 1)):
        assert stack.request("DELETE", f"/v1/users/{user_id}", key=stack.ingest_key).status == 204
        created = stack.request(
            "POST",
            "/v1/users",
            {"user_id": user_id, "custom_attributes": {"photos_uploaded": photos}},
            key=stack.ingest_key,
        )
        assert ok(created, 201)["session_count"] == 0
    assert _membership_settles(stack, segment_id, {keep}) == {keep}
    assert segment_id in user_segments(stack, keep) and segment_id not in user_segments(stack, drop)
    # And the nightly rebuild finds nothing to correct.
    ok(stack.request("POST", "/_local/invoke/RebuildCoordinatorFunction"))
    assert member_ids(stack, segment_id) == {keep} and segment_count(stack, segment_id) == 1
