"""Every class of bad input answers with {"error": {...}} and the right status, and changes nothing."""

from __future__ import annotations

import json

import pytest
from segmentation.engine import attribute_type_of
from segmentation.http.body import MAX_BODY_BYTES
from segmentation.storage import attributes
from segmentation.storage import users as user_store

from tests.support.apigw import INGEST, call


def post_user(keys: dict[str, str], body: object = None, raw_body: str | None = None):
    return call("POST", "/v1/users", key=keys["ingest"], body=body, raw_body=raw_body)


def paths_of(reply) -> list[str]:
    return [detail["path"] for detail in reply.body["error"]["details"]]


def test_malformed_json_is_400(keys: dict[str, str]) -> None:
    reply = post_user(keys, raw_body='{"user_id": "u-1",')
    assert reply.status == 400 and reply.error_code == "malformed_json"


def test_a_body_that_is_not_an_object_is_422(keys: dict[str, str]) -> None:
    reply = post_user(keys, body=["u-1"])
    assert reply.status == 422 and paths_of(reply) == ["body"]


@pytest.mark.parametrize("field", ["session_count", "email_status", "segments", "created_at", "updated_at"])
def test_read_only_fields_are_422_by_name(keys: dict[str, str], field: str) -> None:
    reply = post_user(keys, body={"user_id": "u-1", field: 3})
    assert reply.status == 422 and reply.error_code == "invalid_request"
    assert reply.body["error"]["details"] == [{"path": field, "message": f"{field} is read-only"}]
    assert user_store.get("u-1") is None


def test_an_unknown_field_is_422(keys: dict[str, str]) -> None:
    reply = post_user(keys, body={"user_id": "u-1", "favourite_colour": "red"})
    assert reply.status == 422 and paths_of(reply) == ["favourite_colour"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 256}, "user_id"),
        ({"user_id": 12}, "user_id"),
        ({}, "user_id"),
        ({"user_id": "u-1", "email": "e" * 256}, "email"),
        ({"user_id": "u-1", "name": 5}, "name"),
        ({"user_id": "u-1", "unsubscribed_from_emails": "yes"}, "unsubscribed_from_emails"),
        ({"user_id": "u-1", "signed_up_at": "2026-11-01T09:30:00"}, "signed_up_at"),
        ({"user_id": "u-1", "signed_up_at": "yesterday"}, "signed_up_at"),
        ({"user_id": "u-1", "company_ids": "acme"}, "company_ids"),
        ({"user_id": "u-1", "custom_attributes": {"plan": "p" * 256}}, "custom_attributes.plan"),
        ({"user_id": "u-1", "custom_attributes": {"tags": ["a"]}}, "custom_attributes.tags"),
        ({"user_id": "u-1", "custom_attributes": {"big": 10**130}}, "custom_attributes.big"),
        (
            {"user_id": "u-1", "custom_attributes": {"long": 12345678901234567890123456789012345678901}},
            "custom_attributes.long",
        ),
        (
            {"user_id": "u-1", "custom_attributes": {"trial_ends_at": "soon"}},
            "custom_attributes.trial_ends_at",
        ),
    ],
)
def test_bad_values_are_422_naming_the_field(keys: dict[str, str], body: dict, path: str) -> None:
    reply = post_user(keys, body=body)
    assert reply.status == 422, reply.body
    assert path in paths_of(reply)
    assert user_store.get("u-1") is None


def test_not_a_number_is_422(keys: dict[str, str]) -> None:
    reply = post_user(keys, raw_body='{"user_id": "u-1", "custom_attributes": {"score": NaN}}')
    assert reply.status == 422 and paths_of(reply) == ["custom_attributes.score"]
    reply = post_user(keys, raw_body='{"user_id": "u-1", "custom_attributes": {"score": 1e400}}')
    assert reply.status == 422 and paths_of(reply) == ["custom_attributes.score"]


@pytest.mark.parametrize("name", ["1st", "has-dash", "x" * 65, ""])
def test_bad_attribute_names_are_422(keys: dict[str, str], name: str) -> None:
    reply = post_user(keys, body={"user_id": "u-1", "custom_attributes": {name: 1}})
    assert reply.status == 422 and paths_of(reply) == [f"custom_attributes.{name}"]
    assert user_store.get("u-1") is None


@pytest.mark.parametrize("value", ["soon", True, "2026-12-15"])
def test_ingest_types_attributes_by_the_engine_rule(keys: dict[str, str], value: object) -> None:
    """One rule for every path: a value the engine would not take as a timestamp is refused."""
    reply = post_user(keys, body={"user_id": "u-1", "custom_attributes": {"trial_ends_at": value}})
    assert reply.status == 422 and paths_of(reply) == ["custom_attributes.trial_ends_at"]
    with pytest.raises(ValueError):
        attribute_type_of("trial_ends_at", value)
    assert user_store.get("u-1") is None and attributes.all_types("users") == {}
    good = post_user(keys, body={"user_id": "u-1", "custom_attributes": {"trial_ends_at": 1793525400}})
    assert good.status == 201 and attributes.all_types("users") == {
        "trial_ends_at": attribute_type_of("trial_ends_at", 1793525400)
    }


def test_an_attribute_keeps_the_type_of_its_first_value(keys: dict[str, str]) -> None:
    assert (
        post_user(keys, body={"user_id": "u-1", "custom_attributes": {"plan": "pro", "seats": 3}}).status
        == 201
    )
    reply = post_user(keys, body={"user_id": "u-2", "custom_attributes": {"plan": 7, "seats": 4}})
    assert reply.status == 422
    assert reply.body["error"]["details"] == [
        {"path": "custom_attributes.plan", "message": "plan holds string values; got a number"}
    ]
    assert user_store.get("u-2") is None
    assert attributes.all_types("users") == {"plan": "string", "seats": "number"}


def test_a_refused_update_changes_nothing(keys: dict[str, str]) -> None:
    post_user(keys, body={"user_id": "u-1", "name": "Ada", "custom_attributes": {"plan": "pro"}})
    before = user_store.get("u-1")
    reply = post_user(keys, body={"user_id": "u-1", "name": "Bob", "custom_attributes": {"plan": True}})
    assert reply.status == 422
    assert user_store.get("u-1") == before


def test_at_most_250_attribute_names(keys: dict[str, str]) -> None:
    first = {f"a{index}": index for index in range(200)}
    assert post_user(keys, body={"user_id": "u-1", "custom_attributes": first}).status == 201
    second = {f"b{index}": index for index in range(50)}
    assert post_user(keys, body={"user_id": "u-2", "custom_attributes": second}).status == 201
    reply = post_user(keys, body={"user_id": "u-3", "custom_attributes": {"one_more": 1}})
    assert reply.status == 422 and paths_of(reply) == ["custom_attributes.one_more"]
    assert user_store.get("u-3") is None
    # Names already known still take values.
    assert post_user(keys, body={"user_id": "u-3", "custom_attributes": {"a1": 5}}).status == 201


def test_a_body_over_256_kb_is_413(keys: dict[str, str]) -> None:
    body = json.dumps({"user_id": "u-1", "name": "x" * MAX_BODY_BYTES})
    reply = post_user(keys, raw_body=body)
    assert reply.status == 413 and reply.error_code == "payload_too_large"


def test_an_oversized_body_from_a_wrong_role_is_still_413_not_422(keys: dict[str, str]) -> None:
    reply = call("POST", "/v1/users", key=keys["read"], raw_body="{" + " " * MAX_BODY_BYTES + "}")
    assert reply.status == 413


def test_a_wrong_role_is_403_before_the_body_is_checked(keys: dict[str, str]) -> None:
    reply = call("POST", "/v1/users", key=keys["read"], body={"user_id": 5, "bogus": True})
    assert reply.status == 403


def test_an_unknown_route_is_404_and_a_wrong_method_405(keys: dict[str, str]) -> None:
    missing = call("GET", "/v1/nothing/here", key=keys["admin"], function=INGEST)
    assert missing.status == 404 and missing.error_code == "not_found"
    wrong = call("PUT", "/v1/users", key=keys["admin"], body={})
    assert wrong.status == 405 and wrong.error_code == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"


def test_an_unexpected_failure_is_a_bare_500(keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(user_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(user_store, "get", explode)
    reply = call("GET", "/v1/users/u-1", key=keys["read"])
    assert reply.status == 500 and reply.error_code == "internal_error"
    assert "secret internals" not in json.dumps(reply.body)
