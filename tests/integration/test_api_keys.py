"""POST/GET/DELETE /v1/api_keys (admin only)."""

from __future__ import annotations

import re

import pytest

from tests.support.apigw import call


def test_create_shows_the_key_once(keys: dict[str, str]) -> None:
    reply = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read", "name": "analytics"})
    assert reply.status == 201
    assert set(reply.body) == {"id", "role", "name", "key", "created_at", "revoked"}
    assert (reply.body["role"], reply.body["name"], reply.body["revoked"]) == ("read", "analytics", False)
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]{32,}", reply.body["key"])
    listed = call("GET", "/v1/api_keys", key=keys["admin"])
    assert listed.status == 200 and listed.body["next_cursor"] is None
    mine = [key for key in listed.body["data"] if key["id"] == reply.body["id"]]
    assert mine and "key" not in mine[0]
    assert all("key" not in key for key in listed.body["data"])


def test_two_keys_differ(keys: dict[str, str]) -> None:
    first = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "ingest"})
    second = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "ingest"})
    assert first.body["key"] != second.body["key"] and first.body["id"] != second.body["id"]


def test_a_new_key_works_with_its_role(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "ingest", "name": "app"})
    assert call("POST", "/v1/users", key=created.body["key"], body={"user_id": "u-1"}).status == 201
    assert call("GET", "/v1/api_keys", key=created.body["key"]).status == 403


@pytest.mark.parametrize(
    "body", [{"role": "root"}, {}, {"role": "read", "name": "n" * 256}, {"role": "read", "x": 1}]
)
def test_bad_create_bodies_are_422(keys: dict[str, str], body: dict) -> None:
    assert call("POST", "/v1/api_keys", key=keys["admin"], body=body).status == 422


@pytest.mark.parametrize("role", ["ingest", "read", "write"])
def test_only_admins_manage_keys(keys: dict[str, str], role: str) -> None:
    assert call("POST", "/v1/api_keys", key=keys[role], body={"role": "admin"}).status == 403
    assert call("GET", "/v1/api_keys", key=keys[role]).status == 403
    listed = call("GET", "/v1/api_keys", key=keys["admin"]).body["data"]
    assert call("DELETE", f"/v1/api_keys/{listed[0]['id']}", key=keys[role]).status == 403


def test_revoking_an_unknown_key_is_404(keys: dict[str, str]) -> None:
    reply = call("DELETE", "/v1/api_keys/key_nope", key=keys["admin"])
    assert reply.status == 404 and reply.error_code == "not_found"


def test_a_revoked_key_is_listed_as_revoked(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "write"})
    call("DELETE", f"/v1/api_keys/{created.body['id']}", key=keys["admin"])
    listed = call("GET", "/v1/api_keys", key=keys["admin"]).body["data"]
    assert [key["revoked"] for key in listed if key["id"] == created.body["id"]] == [True]


def test_pages_of_keys_follow_the_cursor(keys: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = call("GET", "/v1/api_keys", key=keys["admin"], query=query)
        assert page.status == 200 and len(page.body["data"]) <= 2
        seen += [key["id"] for key in page.body["data"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(keys)
    reply = call("GET", "/v1/api_keys", key=keys["admin"], query={"cursor": "!!"})
    assert (reply.status, reply.error_code) == (400, "invalid_cursor")
    assert call("GET", "/v1/api_keys", key=keys["admin"], query={"limit": "0"}).status == 422


@pytest.mark.parametrize("role", ["ingest", "read", "write", "admin"])
def test_me_names_the_calling_key(keys: dict[str, str], role: str) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": role, "name": f"{role} script"})
    me = call("GET", "/v1/me", key=created.body["key"])
    assert me.status == 200, me
    assert me.body == {"key_id": created.body["id"], "role": role, "name": f"{role} script"}


def test_me_of_a_key_without_a_name_is_null(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"})
    assert call("GET", "/v1/me", key=created.body["key"]).body == {
        "key_id": created.body["id"],
        "role": "read",
        "name": None,
    }


def test_me_without_a_key_or_with_a_revoked_one_is_401(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "write"})
    call("DELETE", f"/v1/api_keys/{created.body['id']}", key=keys["admin"])
    assert call("GET", "/v1/me").status == 401
    assert call("GET", "/v1/me", key=created.body["key"]).status == 401
