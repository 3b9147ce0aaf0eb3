"""POST /v1/users/{user_id}/logins and GET /v1/users/{user_id}/messages."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from segmentation import clock
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import inbox
from segmentation.storage import users as user_store

from tests.support.apigw import call
from tests.support.moto_atomic import atomic_moto_writes


def make_user(keys: dict[str, str], **fields: object) -> None:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1", **fields}).status == 201


def test_a_login_counts_a_session_and_sets_last_seen_now(keys: dict[str, str]) -> None:
    make_user(keys)
    before = clock.now()
    reply = call("POST", "/v1/users/u-1/logins", key=keys["ingest"])
    assert reply.status == 200
    assert set(reply.body) == {"user", "segments", "messages"}
    assert reply.body["user"]["session_count"] == 1
    stored = user_store.get("u-1")
    assert stored is not None and float(stored["last_seen_at"]) >= before - 1
    # Seen just now: in the predefined "active" segment at this instant.
    assert "active" in reply.body["segments"] and reply.body["user"]["segments"] == reply.body["segments"]


def test_an_older_login_counts_but_never_moves_last_seen_back(keys: dict[str, str]) -> None:
    make_user(keys, last_seen_at="2026-01-10T00:00:00Z")
    reply = call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"at": "2026-01-01T00:00:00Z"})
    assert reply.status == 200
    assert reply.body["user"]["last_seen_at"] == "2026-01-10T00:00:00Z"
    assert reply.body["user"]["session_count"] == 1
    later = call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"at": "2026-01-20T00:00:00Z"})
    assert later.body["user"]["last_seen_at"] == "2026-01-20T00:00:00Z"
    assert later.body["user"]["session_count"] == 2


def test_a_login_more_than_5_minutes_ahead_is_422_and_changes_nothing(keys: dict[str, str]) -> None:
    make_user(keys)
    before = user_store.get("u-1")
    reply = call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"at": int(clock.now()) + 400})
    assert reply.status == 422 and reply.body["error"]["details"][0]["path"] == "at"
    assert user_store.get("u-1") == before
    assert (
        call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"at": int(clock.now()) + 200}).status
        == 200
    )


def test_a_login_of_an_unknown_user_is_404_and_creates_nothing(keys: dict[str, str]) -> None:
    reply = call("POST", "/v1/users/ghost/logins", key=keys["ingest"])
    assert reply.status == 404 and reply.error_code == "not_found"
    assert user_store.get("ghost") is None


def test_bad_login_bodies(keys: dict[str, str]) -> None:
    make_user(keys)
    assert call("POST", "/v1/users/u-1/logins", key=keys["ingest"], raw_body="{").status == 400
    assert call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"at": "noon"}).status == 422
    assert call("POST", "/v1/users/u-1/logins", key=keys["ingest"], body={"when": 1}).status == 422


def test_concurrent_logins_all_count(keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    atomic_moto_writes(monkeypatch)
    make_user(keys, last_seen_at="2026-01-01T00:00:00Z")
    storage_aws.table(get_settings().users_table)  # make the shared resource before the threads race
    moments = [Decimal(1_767_225_600 + offset) for offset in (50, 10, 40, 20, 30, 0, 60, 5)]
    barrier = threading.Barrier(len(moments))
    failures: list[BaseException] = []

    def login(at: Decimal) -> None:
        barrier.wait()
        try:
            user_store.record_login("u-1", at, clock.now())
        except BaseException as error:  # collected: a thread's failure must fail the test
            failures.append(error)

    threads = [threading.Thread(target=login, args=(at,)) for at in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stored = user_store.get("u-1")
    assert stored is not None
    assert stored["session_count"] == len(moments)
    assert stored["last_seen_at"] == max(moments)


def test_login_and_messages_return_the_users_inbox(keys: dict[str, str]) -> None:
    make_user(keys)
    table = storage_aws.table(get_settings().inbox_table)
    table.put_item(Item=inbox.inbox_item("u-1", "msg_old", "Hello", "Hi Ada", 1_767_225_600))
    table.put_item(Item=inbox.inbox_item("u-1", "msg_new", None, "Welcome back", 1_767_312_000))
    table.put_item(Item=inbox.inbox_item("u-2", "msg_other", None, "Not yours", 1_767_312_000))
    login = call("POST", "/v1/users/u-1/logins", key=keys["ingest"])
    assert [message["message_id"] for message in login.body["messages"]] == ["msg_new", "msg_old"]
    assert login.body["messages"][1] == {
        "message_id": "msg_old",
        "subject": "Hello",
        "body": "Hi Ada",
        "delivered_at": "2026-01-01T00:00:00Z",
    }
    listed = call("GET", "/v1/users/u-1/messages", key=keys["read"])
    assert listed.status == 200
    assert listed.body["data"] == login.body["messages"]


def test_roles_of_the_login_and_messages_routes(keys: dict[str, str]) -> None:
    make_user(keys)
    assert call("POST", "/v1/users/u-1/logins", key=keys["admin"]).status == 200
    assert call("POST", "/v1/users/u-1/logins", key=keys["read"]).status == 403
    assert call("POST", "/v1/users/u-1/logins", key=keys["write"]).status == 403
    assert call("GET", "/v1/users/u-1/messages", key=keys["write"]).status == 200
    assert call("GET", "/v1/users/u-1/messages", key=keys["ingest"]).status == 403
    stored = user_store.get("u-1")
    assert stored is not None and stored["session_count"] == 1
