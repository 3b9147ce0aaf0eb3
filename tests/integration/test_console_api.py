"""The routes a filter builder needs: GET /v1/fields, POST /v1/users/count and /v1/companies/count,
POST /v1/messages/preview (API.md), through API Gateway events."""

from __future__ import annotations

import random
from typing import Any

import pytest
from segmentation.auth import access
from segmentation.engine.fields import COMPANY_FIELDS, OPS_BY_TYPE, USER_FIELDS
from segmentation.segments import count as counting
from segmentation.storage import people_scans

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_console_test_key_0000000000000" for role in ("ingest", "read", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)


def add_user(user_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/users", key=KEYS["ingest"], body={"user_id": user_id, **fields})
    assert reply.status in (200, 201), reply.body


def count(filter_: Any, target: str = "users", key: str = "read") -> Reply:
    return call("POST", f"/v1/{target}/count", key=KEYS[key], body={"filter": filter_})


def searched(filter_: Any) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        body = {"filter": filter_, "limit": 100, **({"cursor": cursor} if cursor else {})}
        reply = call("POST", "/v1/users/search", key=KEYS["read"], body=body)
        assert reply.status == 200, reply.body
        found |= {user["user_id"] for user in reply.body["data"]}
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return found


# --- GET /v1/fields -----------------------------------------------------------------------------


def test_fields_list_the_standard_custom_company_and_segment_fields(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "trial", "trial_ends_at": "2026-12-15T00:00:00Z"})
    call(
        "POST",
        "/v1/companies",
        key=KEYS["ingest"],
        body={"company_id": "acme", "custom_attributes": {"tier": 2}},
    )
    reply = call("GET", "/v1/fields", key=KEYS["read"], query={"target": "users"})
    assert reply.status == 200 and reply.body["next_cursor"] is None
    by_name = {f["field"]: f for f in reply.body["data"]}
    for name, kind in USER_FIELDS.items():
        assert by_name[name] == {
            "field": name,
            "type": kind,
            "ops": list(OPS_BY_TYPE[kind]),
            "source": "standard",
        }
    assert by_name["custom_attributes.plan"]["type"] == "string"
    assert by_name["custom_attributes.trial_ends_at"]["type"] == "timestamp"
    assert by_name["custom_attributes.plan"]["source"] == "custom"
    assert {f"company.{name}" for name in COMPANY_FIELDS} | {"company.custom_attributes.tier"} <= set(by_name)
    assert by_name["segment"] == {
        "field": "segment",
        "type": "segment",
        "ops": ["in_segment", "not_in_segment"],
        "source": "segment",
    }
    companies = call("GET", "/v1/fields", key=KEYS["read"], query={"target": "companies"}).body["data"]
    assert {f["field"] for f in companies} == {*COMPANY_FIELDS, "custom_attributes.tier", "segment"}


def test_every_listed_field_and_op_is_accepted_by_search(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "trial", "photos": 3, "vip": True})
    tag = call("POST", "/v1/tags", key=KEYS["write"], body={"name": "beta"})
    assert tag.status == 201, tag.body
    for field in call("GET", "/v1/fields", key=KEYS["read"]).body["data"]:
        for op in field["ops"]:
            value = {
                "string": ["x"] if op in ("in", "not_in") else "x",
                "number": [1] if op in ("in", "not_in") else 1,
                "timestamp": "2026-01-01" if op in ("before", "after", "on") else 1,
                "segment": "new",
                "tag": tag.body["id"],
            }.get(field["type"])
            condition = {"field": field["field"], "op": op}
            if op not in ("exists", "not_exists", "is_true", "is_false"):
                condition["value"] = value
            reply = call("POST", "/v1/users/search", key=KEYS["read"], body={"filter": condition})
            assert reply.status == 200, (condition, reply.body)


def test_fields_need_a_reading_key_and_a_known_target(api: None) -> None:
    assert call("GET", "/v1/fields", key=KEYS["ingest"]).status == 403
    assert call("GET", "/v1/fields", key=KEYS["read"], query={"target": "people"}).status == 422


# --- POST /v1/users/count -----------------------------------------------------------------------


def test_a_small_table_is_counted_exactly_and_agrees_with_search(api: None) -> None:
    for i in range(12):
        add_user(f"u{i}", custom_attributes={"plan": "trial" if i % 3 == 0 else "pro"})
    reply = count(TRIAL)
    assert reply.status == 200, reply.body
    assert reply.body["count"] == len(searched(TRIAL)) == 4
    assert reply.body["exact"] is True and reply.body["margin"] == 0
    assert reply.body["as_of"].endswith("Z")


def test_one_stored_segment_is_answered_from_its_count(api: None) -> None:
    for i in range(5):
        add_user(f"u{i}", custom_attributes={"plan": "trial"})
    created = call("POST", "/v1/segments", key=KEYS["write"], body={"name": "Trials", "filter": TRIAL})
    assert created.status == 201
    reply = count({"field": "segment", "op": "in_segment", "value": created.body["id"]})
    assert reply.body == {**reply.body, "count": created.body["count"], "exact": True, "margin": 0}
    assert reply.body["count"] == 5


def test_a_large_table_gets_an_estimate_whose_margin_covers_the_truth(
    api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(300):
        add_user(f"u{i:03d}", custom_attributes={"plan": "trial" if i % 4 == 0 else "pro"})
    monkeypatch.setattr(counting, "EXACT_SCAN_LIMIT", 50)
    monkeypatch.setattr(counting, "SEGMENT_SIZE", 10)
    monkeypatch.setattr(counting, "SAMPLE_SEGMENTS", 12)
    monkeypatch.setattr(people_scans, "approximate_count", lambda target: 300)
    truth = len(searched(TRIAL))
    for seed in range(5):
        found = counting.count("users", TRIAL, 1_800_000_000, rng=random.Random(seed))
        assert found.exact is False and found.margin > 0
        assert abs(found.count - truth) <= found.margin * 2  # 95% half-width; twice it is ~4.4 sd
    reply = count(TRIAL)
    assert reply.status == 200 and reply.body["exact"] is False


def test_the_estimator_scales_the_mean_and_shrinks_its_margin_with_the_sample() -> None:
    assert counting.estimate([5, 5, 5, 5], 100) == counting.Count(500, False, 0)
    spread = counting.estimate([0, 10, 0, 10], 100)
    assert spread.count == 500 and spread.margin > 0
    assert counting.estimate([0, 10] * 8, 100).margin < spread.margin
    assert counting.estimate([0, 10, 0, 10], 4).margin == 0  # the whole table was read


def test_counting_checks_the_filter_and_writes_nothing(api: None) -> None:
    add_user("u1", custom_attributes={"plan": "trial"})
    bad = count({"field": "nope", "op": "eq", "value": 1})
    assert bad.status == 422 and bad.body["error"]["details"][0]["path"] == "filter.field"
    assert count(TRIAL, key="ingest").status == 403
    assert count({"field": "segment", "op": "in_segment", "value": "seg_gone"}).status == 422
    assert (
        call(
            "POST",
            "/v1/companies/count",
            key=KEYS["read"],
            body={"filter": {"field": "plan", "op": "exists"}},
        ).body["count"]
        == 0
    )


# --- POST /v1/messages/preview ------------------------------------------------------------------


def preview(**body: Any) -> Reply:
    return call("POST", "/v1/messages/preview", key=KEYS["write"], body=body)


def test_a_preview_renders_for_one_user_and_sends_nothing(api: None) -> None:
    add_user(
        "ada", name="Ada", email="ada@example.com", company_ids=["acme"], custom_attributes={"plan": "trial"}
    )
    call("POST", "/v1/companies", key=KEYS["ingest"], body={"company_id": "acme", "name": "Acme"})
    reply = preview(
        channel="email",
        subject="Hi {{ user.name }}",
        body="Plan {{ user.custom_attributes.plan }} at {{ company.name }}",
        user_id="ada",
    )
    assert reply.status == 200, reply.body
    assert reply.body == {"subject": "Hi Ada", "body": "Plan trial at Acme"}
    assert call("GET", "/v1/messages", key=KEYS["read"]).body["data"] == []


def test_a_preview_refuses_bad_templates_unknown_users_and_readers(api: None) -> None:
    add_user("ada", name="Ada")
    bad = preview(channel="in_app", body="{{ user.name ", user_id="ada")
    assert bad.status == 422 and bad.body["error"]["details"][0]["path"] == "body"
    assert preview(channel="in_app", body="Hi", user_id="nobody").status == 404
    assert (
        call(
            "POST",
            "/v1/messages/preview",
            key=KEYS["read"],
            body={"channel": "in_app", "body": "x", "user_id": "ada"},
        ).status
        == 403
    )
    assert preview(channel="in_app", body="Hi", user_id="ada", extra=1).status == 422
