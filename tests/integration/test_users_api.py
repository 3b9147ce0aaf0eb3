"""POST/GET/DELETE /v1/users through the authorizer and IngestFunction, on moto."""

from __future__ import annotations

from decimal import Decimal

import pytest
from segmentation.storage import users as user_store

from tests.support.apigw import call

USER_KEYS = {
    "user_id",
    "email",
    "name",
    "phone",
    "signed_up_at",
    "last_seen_at",
    "session_count",
    "unsubscribed_from_emails",
    "email_status",
    "company_ids",
    "tag_ids",
    "custom_attributes",
    "segments",
    "created_at",
    "updated_at",
}


def upsert(keys: dict[str, str], body: dict, role: str = "ingest"):
    return call("POST", "/v1/users", key=keys[role], body=body)


def test_a_new_user_is_201_with_every_key_and_defaults(keys: dict[str, str]) -> None:
    reply = upsert(keys, {"user_id": "u-1", "email": "ada@example.com"})
    assert reply.status == 201
    assert set(reply.body) == USER_KEYS
    assert reply.body["email"] == "ada@example.com"
    assert reply.body["name"] is None and reply.body["phone"] is None and reply.body["last_seen_at"] is None
    assert reply.body["session_count"] == 0
    assert reply.body["unsubscribed_from_emails"] is False
    assert reply.body["email_status"] == "ok"
    assert reply.body["company_ids"] == []
    assert reply.body["custom_attributes"] == {}
    assert reply.body["created_at"].endswith("Z")


def test_a_second_upsert_is_200_and_changes_only_sent_fields(keys: dict[str, str]) -> None:
    upsert(
        keys,
        {"user_id": "u-1", "email": "ada@example.com", "name": "Ada", "custom_attributes": {"plan": "trial"}},
    )
    reply = upsert(keys, {"user_id": "u-1", "phone": "+44", "custom_attributes": {"photos": 82}})
    assert reply.status == 200
    assert (reply.body["email"], reply.body["name"], reply.body["phone"]) == ("ada@example.com", "Ada", "+44")
    assert reply.body["custom_attributes"] == {"plan": "trial", "photos": 82}


def test_null_removes_a_field_and_an_attribute(keys: dict[str, str]) -> None:
    upsert(keys, {"user_id": "u-1", "name": "Ada", "custom_attributes": {"plan": "trial", "photos": 3}})
    reply = upsert(keys, {"user_id": "u-1", "name": None, "custom_attributes": {"plan": None}})
    assert reply.body["name"] is None
    assert reply.body["custom_attributes"] == {"photos": 3}
    stored = user_store.get("u-1")
    assert stored is not None and "name" not in stored and "plan" not in stored["custom_attributes"]


def test_timestamps_are_stored_as_epoch_numbers_and_returned_as_utc(keys: dict[str, str]) -> None:
    reply = upsert(
        keys,
        {
            "user_id": "u-1",
            "signed_up_at": "2026-11-01T10:30:00+01:00",
            "last_seen_at": 1_793_525_400,
            "custom_attributes": {"trial_ends_at": "2026-12-15T00:00:00Z", "score": 2.5, "vip": True},
        },
    )
    assert reply.status == 201
    assert reply.body["signed_up_at"] == "2026-11-01T09:30:00Z"
    assert reply.body["last_seen_at"] == "2026-11-01T09:30:00Z"
    assert reply.body["custom_attributes"] == {
        "score": 2.5,
        "trial_ends_at": "2026-12-15T00:00:00Z",
        "vip": True,
    }
    stored = user_store.get("u-1")
    assert stored is not None
    assert stored["signed_up_at"] == Decimal("1793525400")
    assert stored["custom_attributes"]["trial_ends_at"] == Decimal("1797292800")


def test_company_ids_are_kept_once_each(keys: dict[str, str]) -> None:
    reply = upsert(keys, {"user_id": "u-1", "company_ids": ["acme", "globex", "acme"]})
    assert reply.body["company_ids"] == ["acme", "globex"]


def test_get_returns_the_user_with_its_segments_now(keys: dict[str, str]) -> None:
    upsert(keys, {"user_id": "u-1", "signed_up_at": "2020-01-01T00:00:00Z"})
    reply = call("GET", "/v1/users/u-1", key=keys["read"])
    assert reply.status == 200
    assert reply.body["user_id"] == "u-1"
    # Signed up long ago and never seen: the predefined "slipping_away" segment.
    assert reply.body["segments"] == ["slipping_away"]


def test_a_recent_signup_is_new_at_once(keys: dict[str, str]) -> None:
    from segmentation import clock

    reply = upsert(keys, {"user_id": "u-new", "signed_up_at": int(clock.now()) - 60})
    assert "new" in reply.body["segments"]


@pytest.mark.parametrize("role", ["ingest", "read", "write", "admin"])
def test_every_key_role_reads_one_user(keys: dict[str, str], role: str) -> None:
    upsert(keys, {"user_id": "u-1"})
    assert call("GET", "/v1/users/u-1", key=keys[role]).status == 200


def test_an_unknown_user_is_404(keys: dict[str, str]) -> None:
    reply = call("GET", "/v1/users/nobody", key=keys["read"])
    assert reply.status == 404 and reply.error_code == "not_found"


def test_delete_is_204_then_404(keys: dict[str, str]) -> None:
    upsert(keys, {"user_id": "u-1"})
    assert call("DELETE", "/v1/users/u-1", key=keys["ingest"]).status == 204
    assert user_store.get("u-1") is None
    assert call("DELETE", "/v1/users/u-1", key=keys["ingest"]).status == 404
    assert call("GET", "/v1/users/u-1", key=keys["read"]).status == 404


@pytest.mark.parametrize("role", ["read", "write"])
def test_read_and_write_keys_cannot_write_users(keys: dict[str, str], role: str) -> None:
    reply = upsert(keys, {"user_id": "u-1"}, role=role)
    assert reply.status == 403 and reply.error_code == "forbidden"
    assert "ingest" in reply.body["error"]["message"]
    assert user_store.get("u-1") is None
    upsert(keys, {"user_id": "u-2"})
    assert call("DELETE", "/v1/users/u-2", key=keys[role]).status == 403
    assert user_store.get("u-2") is not None


def test_rev_counts_every_write(keys: dict[str, str]) -> None:
    upsert(keys, {"user_id": "u-1"})
    upsert(keys, {"user_id": "u-1", "name": "A"})
    stored = user_store.get("u-1")
    assert stored is not None and stored["rev"] == 2
