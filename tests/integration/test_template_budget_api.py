"""The render budget through the API (API.md, Messages): a template that can be seen to exceed it
is a 422 `template_budget` at creation naming its field; a preview that exceeds it while
rendering is a 422 `template_budget`."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation.auth import access

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_budget_test_key_00000000000000" for role in ("ingest", "read", "write")}
ISSUE = '{% for i in (1..10000) %}{% assign r = (1..9999) | join: "," %}{% endfor %}'
# The same work with the inner bound in a variable: only rendering can tell.
ISSUE_DYNAMIC = (
    '{% assign n = 9999 %}{% for i in (1..10000) %}{% assign r = (1..n) | join: "," %}{% endfor %}'
)


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    reply = call("POST", "/v1/users", key=KEYS["ingest"], body={"user_id": "ada", "name": "Ada"})
    assert reply.status in (200, 201), reply.body


def create(**fields: Any) -> Reply:
    body = {
        "name": "Budget",
        "type": "manual",
        "channel": "email",
        "audience": {"segment_id": "active"},
        "subject": "Hi {{ user.name }}",
        "body": "Hello",
        **fields,
    }
    return call("POST", "/v1/messages", key=KEYS["write"], body=body)


def preview(**fields: Any) -> Reply:
    body = {"channel": "email", "subject": "Hi {{ user.name }}", "body": "Hello", "user_id": "ada", **fields}
    return call("POST", "/v1/messages/preview", key=KEYS["write"], body=body)


def assert_budget_422(reply: Reply, field: str) -> None:
    assert reply.status == 422, reply.body
    error = reply.body["error"]
    assert error["code"] == "template_budget"
    assert [detail["path"] for detail in error["details"]] == [field]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("body", ISSUE),
        ("subject", "{% for i in (1..100000) %}{{ i }}{% endfor %}"),
        ("body", "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}"),
    ],
)
def test_a_template_seen_to_exceed_the_budget_is_refused_at_creation(
    api: None, field: str, template: str
) -> None:
    assert_budget_422(create(**{field: template}), field)
    assert call("GET", "/v1/messages", key=KEYS["read"]).body["data"] == []


def test_a_template_that_only_rendering_can_judge_is_created(api: None) -> None:
    reply = create(body=ISSUE_DYNAMIC)
    assert reply.status == 201, reply.body


@pytest.mark.parametrize("field", ["subject", "body"])
def test_a_preview_that_exceeds_the_budget_while_rendering_is_a_422_naming_the_field(
    api: None, field: str
) -> None:
    assert_budget_422(preview(**{field: ISSUE_DYNAMIC}), field)


def test_a_preview_of_the_issues_template_is_a_422_template_budget(api: None) -> None:
    assert_budget_422(preview(body=ISSUE), "body")


def test_a_preview_within_the_budget_renders(api: None) -> None:
    reply = preview(body="{% for i in (1..3) %}{{ i }}{% endfor %} {{ (1..9999) | join: ',' | size }}")
    assert reply.status == 200, reply.body
    joined = ",".join(str(i) for i in range(1, 10_000))
    assert reply.body == {"subject": "Hi Ada", "body": f"123 {len(joined)}"}


def test_a_preview_whose_template_fails_otherwise_keeps_invalid_request(api: None) -> None:
    reply = preview(body="{{ 7 | divided_by: 0 }}")
    assert reply.status == 422 and reply.body["error"]["code"] == "invalid_request"
    assert reply.body["error"]["details"][0]["path"] == "body"
