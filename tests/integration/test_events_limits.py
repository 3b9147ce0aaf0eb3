"""Events within bounds, under moto: who may add an event name."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from segmentation.people import events
from segmentation.storage import users as user_store

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import Reply, call


@pytest.fixture
def user(keys: dict[str, str]) -> str:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    return "u-1"


def as_user(body: dict[str, Any], user_id: str = "u-1") -> Reply:
    """POST an event with the user's own X-User-Hash, as a browser or mobile app does."""
    own = hmac.new(TEST_IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return call("POST", f"/v1/users/{user_id}/events", user_hash=own, body=body)


def with_key(keys: dict[str, str], body: dict[str, Any], user_id: str = "u-1") -> Reply:
    return call("POST", f"/v1/users/{user_id}/events", key=keys["ingest"], body=body)


def listed(keys: dict[str, str], user_id: str = "u-1") -> dict[str, dict[str, Any]]:
    reply = call("GET", f"/v1/users/{user_id}/events", key=keys["read"])
    assert reply.status == 200, reply.body
    return {entry["event_name"]: entry for entry in reply.body["data"]}


# --- who may add an event name --------------------------------------------------------------------


def test_an_end_user_cannot_add_an_event_name_and_changes_nothing_trying(
    keys: dict[str, str], user: str
) -> None:
    before = user_store.get("u-1")
    reply = as_user({"event_name": "Made_Up_Name", "id": "evt-1"})
    assert reply.status == 403 and reply.error_code == "forbidden"
    assert "made_up_name" in reply.body["error"]["message"] and "key" in reply.body["error"]["message"]
    assert [d["path"] for d in reply.body["error"]["details"]] == ["event_name"]
    assert events.known_names() == {}  # the name was not registered
    assert user_store.get("u-1") == before  # nor anything recorded for the user
    # Its id was not remembered either: once a key has made the name known, the same event counts.
    assert with_key(keys, {"event_name": "made_up_name", "id": "evt-0"}).status == 202
    assert as_user({"event_name": "Made_Up_Name", "id": "evt-1"}).status == 202
    assert listed(keys)["made_up_name"]["count"] == 2


def test_an_end_user_records_names_the_app_has_recorded_whatever_the_case(
    keys: dict[str, str], user: str
) -> None:
    assert with_key(keys, {"event_name": "uploaded_photo"}, user_id="u-1").status == 202
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-2"}).status == 201
    assert as_user({"event_name": "Uploaded_Photo"}, user_id="u-2").status == 202
    assert as_user({"event_name": "uploaded_photo"}, user_id="u-2").status == 202
    assert listed(keys, "u-2")["uploaded_photo"]["count"] == 2
    assert as_user({"event_name": "uploaded_video"}, user_id="u-2").status == 403
    assert set(events.known_names()) == {"uploaded_photo"}


def test_a_full_workspace_still_takes_known_names_from_end_users(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_EVENT_NAMES", 2)
    for name in ("a", "b"):
        assert with_key(keys, {"event_name": name}).status == 202
    assert with_key(keys, {"event_name": "c"}).status == 422  # a key past the cap
    assert as_user({"event_name": "c"}).status == 403  # an end user: never a new name
    assert as_user({"event_name": "B"}).status == 202
