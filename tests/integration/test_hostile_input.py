"""Hostile input gets a clear 4xx with API.md's error body, and changes nothing (issue: no 5xx,
no stack trace, whatever a client sends)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws

from tests.support.apigw import Reply, call

# Every route that takes a body (admin may call each of them).
BODY_ROUTES = [
    ("POST", "/v1/users"),
    ("POST", "/v1/users/u-1/logins"),
    ("POST", "/v1/companies"),
    ("POST", "/v1/users/search"),
    ("POST", "/v1/companies/search"),
    ("POST", "/v1/users/count"),
    ("POST", "/v1/companies/count"),
    ("POST", "/v1/segments"),
    ("PUT", "/v1/segments/seg_x"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/preview"),
    ("POST", "/v1/api_keys"),
]
PAGED_ROUTES = [
    ("GET", "/v1/api_keys", None),
    ("GET", "/v1/messages", None),
    ("GET", "/v1/segments/new/members", None),
    ("POST", "/v1/users/search", {"filter": {"field": "email", "op": "exists"}}),
]


def assert_error(reply: Reply, status: int, code: str | None = None) -> None:
    assert reply.status == status, reply.body
    assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, reply.body
    error = reply.body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code


def table_items() -> dict[str, int]:
    """How many items each table holds (to show a refused request changed nothing)."""
    settings = get_settings()
    names = [settings.users_table, settings.companies_table, settings.segments_table, settings.messages_table]
    return {name: len(storage_aws.table(name).scan()["Items"]) for name in names}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_body_that_is_not_utf8_is_400_on_every_route(keys: dict[str, str], method: str, path: str) -> None:
    before = table_items()
    raw = base64.b64encode(b'{"user_id": "\xff\xfe"}').decode()
    reply = call(method, path, key=keys["admin"], raw_body=raw, base64_encoded=True)
    assert_error(reply, 400, "malformed_json")
    assert "UTF-8" in reply.body["error"]["message"]
    assert table_items() == before


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_json_nested_thousands_deep_is_400(keys: dict[str, str], method: str, path: str) -> None:
    reply = call(method, path, key=keys["admin"], raw_body="[" * 3000 + "]" * 3000)
    assert_error(reply, 400, "malformed_json")
    deep_but_parsable = '{"filter": ' + '{"not": ' * 100 + '{"field": "email", "op": "exists"}' + "}" * 101
    assert_error(call(method, path, key=keys["admin"], raw_body=deep_but_parsable), 400, "malformed_json")


def test_an_integer_of_thousands_of_digits_is_a_422_at_its_field(keys: dict[str, str]) -> None:
    digits = "9" * 5000
    reply = call(
        "POST",
        "/v1/users",
        key=keys["admin"],
        raw_body=f'{{"user_id": "u-1", "custom_attributes": {{"n": {digits}}}}}',
    )
    assert_error(reply, 422)
    assert [d["path"] for d in reply.body["error"]["details"]] == ["custom_attributes.n"]
    search = call(
        "POST", "/v1/users/search", key=keys["admin"], raw_body=f'{{"filter": {{}}, "limit": {digits}}}'
    )
    assert_error(search, 422)
    assert table_items()[get_settings().users_table] == 0


@pytest.mark.parametrize(
    "body",
    [
        '{"user_id": "u-1", "custom_attributes": {"plan": "\\ud800"}}',
        '{"user_id": "\\udfff"}',
        '{"user_id": "u-1", "custom_attributes": {"\\ud83d": 1}}',
    ],
)
def test_a_lone_surrogate_anywhere_is_400(keys: dict[str, str], body: str) -> None:
    assert_error(call("POST", "/v1/users", key=keys["admin"], raw_body=body), 400, "malformed_json")
    assert table_items()[get_settings().users_table] == 0


@pytest.mark.parametrize("user_id", ["a\x00b", "line\nbreak", "tab\there", "bell\x07"])
def test_ids_and_names_refuse_control_characters(keys: dict[str, str], user_id: str) -> None:
    assert_error(call("POST", "/v1/users", key=keys["admin"], body={"user_id": user_id}), 422)
    assert_error(call("POST", "/v1/users", key=keys["admin"], body={"user_id": "u-1", "name": user_id}), 422)
    segment = call(
        "POST",
        "/v1/segments",
        key=keys["admin"],
        body={"name": f"S {user_id}", "filter": {"field": "email", "op": "exists"}},
    )
    assert_error(segment, 422)
    assert table_items()[get_settings().users_table] == 0


def test_attribute_names_match_whole_strings(keys: dict[str, str]) -> None:
    reply = call(
        "POST", "/v1/users", key=keys["admin"], body={"user_id": "u-1", "custom_attributes": {"plan\n": "x"}}
    )
    assert_error(reply, 422)
    condition = {"field": "custom_attributes.plan\n", "op": "exists"}
    assert_error(call("POST", "/v1/users/search", key=keys["admin"], body={"filter": condition}), 422)


FORGED = [
    "eyIkbiI6IngifQ",  # {"$n":"x"} unsigned: was a 500
    base64.urlsafe_b64encode(json.dumps({"$n": "x"}).encode()).decode().rstrip("=")
    + ".AAAAAAAAAAAAAAAAAAAAAA",
    "not a cursor",
    "é",
    "." * 10,
]


@pytest.mark.parametrize(("method", "path", "body"), PAGED_ROUTES)
@pytest.mark.parametrize("cursor", FORGED)
def test_a_forged_or_altered_cursor_is_400_on_every_paged_route(
    keys: dict[str, str], method: str, path: str, body: Any, cursor: str
) -> None:
    if body is None:
        reply = call(method, path, key=keys["admin"], query={"cursor": cursor})
    else:
        reply = call(method, path, key=keys["admin"], body={**body, "cursor": cursor})
    assert_error(reply, 400, "invalid_cursor")


def test_a_cursor_altered_by_one_character_is_400(keys: dict[str, str]) -> None:
    for role in ("read", "write"):
        assert call("POST", "/v1/api_keys", key=keys["admin"], body={"role": role}).status == 201
    page = call("GET", "/v1/api_keys", key=keys["admin"], query={"limit": "1"})
    cursor = page.body["next_cursor"]
    assert (
        cursor
        and call("GET", "/v1/api_keys", key=keys["admin"], query={"limit": "1", "cursor": cursor}).status
        == 200
    )
    payload, signature = cursor.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert_error(
        call("GET", "/v1/api_keys", key=keys["admin"], query={"cursor": f"{flipped}.{signature}"}),
        400,
        "invalid_cursor",
    )
