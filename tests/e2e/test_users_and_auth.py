"""Users, logins, validation and every role, over HTTP as the acceptance suite drives them."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import (
    ago,
    error_code,
    iso,
    new_key,
    ok,
    parse_iso,
    role_keys,
    stack_now,
    unique,
    upsert_user,
    user_hash,
)

pytestmark = pytest.mark.e2e
__all__ = ["role_keys"]


def test_user_create_update_get_delete(stack: RunningStack) -> None:
    user_id = unique("u-crud")
    signed_up = ago(stack, days=3)
    created = stack.request(
        "POST",
        "/v1/users",
        {"user_id": user_id, "email": f"{user_id}@example.com", "name": "Ada", "signed_up_at": signed_up},
        key=stack.ingest_key,
    )
    body = ok(created, 201)
    assert body["user_id"] == user_id and body["name"] == "Ada"
    assert body["signed_up_at"] == signed_up
    assert body["session_count"] == 0
    assert body["unsubscribed_from_emails"] is False
    for field in ("created_at", "updated_at", "segments", "custom_attributes", "company_ids", "phone"):
        assert field in body

    updated = ok(
        stack.request("POST", "/v1/users", {"user_id": user_id, "phone": "+1"}, key=stack.ingest_key)
    )
    # Only the fields sent change.
    assert (
        updated["phone"] == "+1" and updated["name"] == "Ada" and updated["email"] == f"{user_id}@example.com"
    )

    fetched = ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.ingest_key))
    assert fetched["phone"] == "+1" and fetched["signed_up_at"] == signed_up

    assert stack.request("DELETE", f"/v1/users/{user_id}", key=stack.ingest_key).status == 204
    gone = stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key)
    assert gone.status == 404 and error_code(gone) == "not_found"
    assert stack.request("DELETE", f"/v1/users/{user_id}", key=stack.admin_key).status == 404


def test_unix_seconds_are_accepted_and_returned_as_iso(stack: RunningStack) -> None:
    user_id = unique("u-unix")
    body = upsert_user(stack, {"user_id": user_id, "signed_up_at": 1_700_000_000})
    assert body["signed_up_at"] == "2023-11-14T22:13:20Z"


def test_custom_attributes_merge_and_null_removes(stack: RunningStack) -> None:
    user_id = unique("u-attrs")
    upsert_user(stack, {"user_id": user_id, "custom_attributes": {"plan": "pro", "photos_uploaded": 3}})
    merged = upsert_user(
        stack,
        {"user_id": user_id, "custom_attributes": {"downloaded_mobile_app": True, "photos_uploaded": 4}},
    )
    assert merged["custom_attributes"] == {"plan": "pro", "photos_uploaded": 4, "downloaded_mobile_app": True}
    removed = upsert_user(stack, {"user_id": user_id, "custom_attributes": {"plan": None}})
    assert removed["custom_attributes"] == {"photos_uploaded": 4, "downloaded_mobile_app": True}
    fetched = ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))
    assert fetched["custom_attributes"] == removed["custom_attributes"]


def test_custom_attribute_type_clash_is_422_with_the_path(stack: RunningStack) -> None:
    name = "clash_" + unique("x").replace("-", "_")
    upsert_user(stack, {"user_id": unique("u-clash"), "custom_attributes": {name: 5}})
    other = unique("u-clash")
    response = stack.request(
        "POST", "/v1/users", {"user_id": other, "custom_attributes": {name: "five"}}, key=stack.ingest_key
    )
    assert response.status == 422
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert any(
        name in detail["path"] and "custom_attributes" in detail["path"] for detail in error["details"]
    )
    # Nothing was written for the refused request.
    assert stack.request("GET", f"/v1/users/{other}", key=stack.admin_key).status == 404


@pytest.mark.parametrize(
    "body, bad_path",
    [
        ({"user_id": "u-x", "favourite_colour": "red"}, "favourite_colour"),
        ({"user_id": "u-x", "session_count": 5}, "session_count"),
        ({"user_id": "u-x", "segments": ["new"]}, "segments"),
        ({"user_id": "u-x", "custom_attributes": {"9bad": 1}}, "custom_attributes"),
        ({"user_id": "u-x", "custom_attributes": {"tags": ["a"]}}, "custom_attributes"),
        ({"user_id": "", "name": "empty"}, "user_id"),
        ({"user_id": "u-x", "email": "e" * 256}, "email"),
        ({"user_id": "u-x", "signed_up_at": "yesterday"}, "signed_up_at"),
    ],
)
def test_invalid_user_bodies_are_422_naming_the_field(stack: RunningStack, body: dict, bad_path: str) -> None:
    response = stack.request("POST", "/v1/users", body, key=stack.ingest_key)
    assert response.status == 422, response.body
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(bad_path in detail["path"] for detail in error["details"]), error


def _raw(stack: RunningStack, method: str, path: str, data: bytes, key: str) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    request = urllib.request.Request(stack.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.parametrize("data", [b'{"user_id": "u-x",', b"not json", b'{"user_id": "u-x"} trailing'])
def test_malformed_json_is_400(stack: RunningStack, data: bytes) -> None:
    status, body = _raw(stack, "POST", "/v1/users", data, stack.ingest_key)
    assert status == 400
    assert body["error"]["code"] == "malformed_json" and body["error"]["message"]


def test_body_over_256_kb_is_413_on_several_routes(stack: RunningStack) -> None:
    big = {"user_id": unique("u-big"), "custom_attributes": {"x": "y"}, "name": "n" * (257 * 1024)}
    assert stack.request("POST", "/v1/users", big, key=stack.admin_key).status == 413
    segment = {"name": "big", "filter": {"field": "name", "op": "eq", "value": "z" * (300 * 1024)}}
    response = stack.request("POST", "/v1/segments", segment, key=stack.admin_key)
    assert response.status == 413 and error_code(response) == "payload_too_large"
    # The refused user was not created.
    assert stack.request("GET", f"/v1/users/{big['user_id']}", key=stack.admin_key).status == 404
    user_id = unique("u-big-login")
    upsert_user(stack, {"user_id": user_id})
    padded_login = {"at": 1_700_000_000, "pad": "p" * (300 * 1024)}
    response = stack.request(
        "POST",
        f"/v1/users/{user_id}/logins",
        padded_login,
        headers={"X-User-Hash": user_hash(stack, user_id)},
    )
    assert response.status == 413 and error_code(response) == "payload_too_large"
    assert ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))["session_count"] == 0


def test_api_keys_are_created_listed_and_revoked(stack: RunningStack) -> None:
    created = new_key(stack, "read")
    assert set(created) >= {"id", "role", "name", "key", "created_at"}
    assert created["role"] == "read"
    listed = ok(stack.request("GET", "/v1/api_keys?limit=100", key=stack.admin_key))
    assert "next_cursor" in listed
    mine = [key for key in listed["data"] if key["id"] == created["id"]]
    assert len(mine) == 1 and "key" not in mine[0]
    assert stack.request("GET", "/v1/segments", key=created["key"]).status == 200

    assert stack.request("DELETE", f"/v1/api_keys/{created['id']}", key=stack.admin_key).status == 204
    revoked = stack.request("GET", "/v1/segments", key=created["key"])
    assert revoked.status == 401 and error_code(revoked) == "unauthorized"


def test_api_key_with_an_unknown_role_is_422(stack: RunningStack) -> None:
    response = stack.request("POST", "/v1/api_keys", {"role": "root", "name": "x"}, key=stack.admin_key)
    assert response.status == 422


def test_missing_or_unknown_key_is_401(stack: RunningStack) -> None:
    for path in ("/v1/users/anyone", "/v1/segments", "/v1/messages", "/v1/api_keys"):
        assert stack.request("GET", path).status == 401
        assert stack.request("GET", path, key="sk_unknown_" + "z" * 20).status == 401
    garbage = stack.request("GET", "/v1/segments", headers={"Authorization": "Basic abc"})
    assert garbage.status == 401


def test_each_role_may_do_what_api_md_says(stack: RunningStack, role_keys: dict[str, str]) -> None:
    user_id = unique("u-roles")
    new_user = {"user_id": user_id, "name": "Roles"}
    filter_ = {"field": "user_id", "op": "eq", "value": user_id}

    # Users: ingest and admin write; read and write may not.
    for role in ("read", "write"):
        refused = stack.request("POST", "/v1/users", new_user, key=role_keys[role])
        assert refused.status == 403 and error_code(refused) == "forbidden", role
    assert stack.request("POST", "/v1/users", new_user, key=role_keys["ingest"]).status == 201
    assert stack.request("POST", "/v1/users", new_user, key=role_keys["admin"]).status == 200
    for role in ("ingest", "read", "write", "admin"):
        assert stack.request("GET", f"/v1/users/{user_id}", key=role_keys[role]).status == 200, role
    assert stack.request("POST", f"/v1/users/{user_id}/logins", key=role_keys["read"]).status == 403
    assert stack.request("POST", f"/v1/users/{user_id}/logins", key=role_keys["ingest"]).status == 200

    # Reading everything: read and up; ingest may not.
    for path in ("/v1/segments", "/v1/messages", f"/v1/users/{user_id}/messages"):
        assert stack.request("GET", path, key=role_keys["ingest"]).status == 403, path
        for role in ("read", "write", "admin"):
            assert stack.request("GET", path, key=role_keys[role]).status == 200, (path, role)
    search = {"filter": filter_}
    assert stack.request("POST", "/v1/users/search", search, key=role_keys["ingest"]).status == 403
    assert stack.request("POST", "/v1/users/search", search, key=role_keys["read"]).status == 200

    # Segments: write creates; only admin edits and deletes.
    segment = {"name": unique("Roles segment"), "filter": filter_}
    assert stack.request("POST", "/v1/segments", segment, key=role_keys["read"]).status == 403
    assert stack.request("POST", "/v1/segments", segment, key=role_keys["ingest"]).status == 403
    segment_id = ok(stack.request("POST", "/v1/segments", segment, key=role_keys["write"]), 201)["id"]
    rename = {"name": unique("Renamed")}
    refused = stack.request("PUT", f"/v1/segments/{segment_id}", rename, key=role_keys["write"])
    assert refused.status == 403 and error_code(refused) == "forbidden"
    assert stack.request("DELETE", f"/v1/segments/{segment_id}", key=role_keys["write"]).status == 403
    assert stack.request("PUT", f"/v1/segments/{segment_id}", rename, key=role_keys["admin"]).status == 200

    # Messages: write creates; only admin deletes.
    message = {
        "name": "roles",
        "type": "manual",
        "channel": "in_app",
        "audience": {"segment_id": segment_id},
        "body": "hi",
    }
    assert stack.request("POST", "/v1/messages", message, key=role_keys["read"]).status == 403
    message_id = ok(stack.request("POST", "/v1/messages", message, key=role_keys["write"]), 201)["id"]
    assert stack.request("DELETE", f"/v1/messages/{message_id}", key=role_keys["write"]).status == 403
    assert stack.request("DELETE", f"/v1/messages/{message_id}", key=role_keys["admin"]).status == 204

    # API keys: admin only.
    for role in ("ingest", "read", "write"):
        assert stack.request("GET", "/v1/api_keys", key=role_keys[role]).status == 403, role
        body = {"role": "admin", "name": "escalate"}
        assert stack.request("POST", "/v1/api_keys", body, key=role_keys[role]).status == 403, role

    # Delete of users: ingest and admin only.
    assert stack.request("DELETE", f"/v1/users/{user_id}", key=role_keys["write"]).status == 403
    assert stack.request("DELETE", f"/v1/segments/{segment_id}", key=role_keys["admin"]).status == 204
    assert stack.request("DELETE", f"/v1/users/{user_id}", key=role_keys["ingest"]).status == 204


def test_identity_verification_on_its_own_user_and_two_routes_only(stack: RunningStack) -> None:
    user_id = unique("u-ident")
    other_id = unique("u-ident")
    for uid in (user_id, other_id):
        upsert_user(stack, {"user_id": uid, "name": uid})
    own = {"X-User-Hash": user_hash(stack, user_id)}

    login = stack.request("POST", f"/v1/users/{user_id}/logins", headers=own)
    assert ok(login)["user"]["session_count"] == 1
    assert ok(stack.request("GET", f"/v1/users/{user_id}/messages", headers=own))["data"] == []

    # Another user's hash, a wrong hash, or another route: refused.
    assert stack.request("POST", f"/v1/users/{other_id}/logins", headers=own).status in (401, 403)
    assert stack.request("GET", f"/v1/users/{other_id}/messages", headers=own).status in (401, 403)
    bad = {"X-User-Hash": "0" * 64}
    assert stack.request("POST", f"/v1/users/{user_id}/logins", headers=bad).status in (401, 403)
    assert stack.request("GET", f"/v1/users/{user_id}", headers=own).status in (401, 403)
    assert stack.request("POST", "/v1/users", {"user_id": user_id}, headers=own).status in (401, 403)
    assert stack.request("GET", "/v1/segments", headers=own).status in (401, 403)
    # The refused login did not count.
    user = ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))
    assert user["session_count"] == 1
    assert ok(stack.request("GET", f"/v1/users/{other_id}", key=stack.admin_key))["session_count"] == 0


def test_login_counts_sessions_keeps_the_later_last_seen_and_answers_its_shape(stack: RunningStack) -> None:
    user_id = unique("u-login")
    now = stack_now(stack)
    upsert_user(stack, {"user_id": user_id, "signed_up_at": ago(stack, days=100)})

    first = ok(stack.request("POST", f"/v1/users/{user_id}/logins", key=stack.ingest_key))
    assert set(first) == {"user", "segments", "messages"}
    assert first["user"]["session_count"] == 1
    assert first["messages"] == []
    assert "active" in first["segments"] and first["segments"] == first["user"]["segments"]
    seen = parse_iso(first["user"]["last_seen_at"])
    assert abs((seen - now).total_seconds()) < 60

    earlier = ago(stack, days=2)
    second = ok(stack.request("POST", f"/v1/users/{user_id}/logins", {"at": earlier}, key=stack.ingest_key))
    assert second["user"]["session_count"] == 2
    assert second["user"]["last_seen_at"] == first["user"]["last_seen_at"]

    later = iso(stack_now(stack).replace(microsecond=0) + timedelta(minutes=2))
    third = ok(stack.request("POST", f"/v1/users/{user_id}/logins", {"at": later}, key=stack.ingest_key))
    assert third["user"]["session_count"] == 3
    assert third["user"]["last_seen_at"] == later


def test_login_far_in_the_future_is_422_and_unknown_user_404(stack: RunningStack) -> None:
    user_id = unique("u-future")
    upsert_user(stack, {"user_id": user_id})
    future = iso(stack_now(stack) + timedelta(minutes=10))
    response = stack.request("POST", f"/v1/users/{user_id}/logins", {"at": future}, key=stack.ingest_key)
    assert response.status == 422
    assert response.json()["error"]["message"]
    assert ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))["session_count"] == 0
    missing = stack.request("POST", f"/v1/users/{unique('u-nobody')}/logins", key=stack.ingest_key)
    assert missing.status == 404 and error_code(missing) == "not_found"


def _post_with_content_type(
    stack: RunningStack, path: str, data: bytes, content_type: str | None
) -> tuple[int, dict]:
    """POST with exactly this Content-Type (None: no such header at all, unlike urllib)."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Authorization", f"Bearer {stack.ingest_key}")
        if content_type is not None:
            connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"],
)
def test_a_json_body_is_read_as_json_whatever_its_content_type(
    stack: RunningStack, content_type: str | None
) -> None:
    # Fixed: a form type (curl -d, urllib's default) gave a junk 422 and text/plain a 500.
    user_id = unique("u-ctype")
    data = json.dumps({"user_id": user_id, "name": "Typed"}).encode()
    status, body = _post_with_content_type(stack, "/v1/users", data, content_type)
    assert status == 201, body
    assert body["user_id"] == user_id and body["name"] == "Typed"
    status, body = _post_with_content_type(stack, "/v1/users", b'{"user_id": ', content_type)
    assert status == 400 and body["error"]["code"] == "malformed_json"
