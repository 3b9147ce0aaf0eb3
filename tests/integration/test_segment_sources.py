"""The Segment HTTP Tracking API (SourcesFunction) under moto: every route, the write key in its
three places, gzip, Segment's limits, per-message rejections, messageId idempotency, clock-skew
correction, and the faults of the batched write (a user changed meanwhile, a retried message
racing, throttling midway)."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from segmentation import errors
from segmentation.engine.events import summary_of
from segmentation.people import segment_ingest
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import dynamo, user_batches
from segmentation.storage import users as user_store

from tests.support.apigw import Reply, call

NOW_ISO = "2026-11-28T10:00:00Z"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def send(
    path: str,
    body: Any,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    gzipped: bool = False,
) -> Reply:
    """POST like a Segment library: no authorizer; the key wherever the caller puts it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = dict(headers or {})
    if gzipped:
        raw = gzip.compress(raw)
        all_headers["Content-Encoding"] = "gzip"
    try:
        text, encoded = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(raw).decode(), True  # as API Gateway passes binary
    return call("POST", path, key=key, raw_body=text, base64_encoded=encoded, headers=all_headers)


def batch(key: str, *messages: dict[str, Any], **extra: Any) -> Reply:
    reply = send("/v1/batch", {"batch": list(messages), "writeKey": key, **extra})
    assert reply.status == 200, reply.body
    return reply


def user(keys: dict[str, str], user_id: str) -> dict[str, Any] | None:
    reply = call("GET", f"/v1/users/{user_id}", key=keys["read"])
    return reply.body if reply.status == 200 else None


def events_of(keys: dict[str, str], user_id: str) -> dict[str, dict[str, Any]]:
    reply = call("GET", f"/v1/users/{user_id}/events", key=keys["read"])
    assert reply.status == 200, reply.body
    return {row["event_name"]: row for row in reply.body["data"]}


def track(user_id: str, event: str, message_id: str | None = None, **extra: Any) -> dict[str, Any]:
    message = {"type": "track", "userId": user_id, "event": event, "timestamp": NOW_ISO, **extra}
    if message_id:
        message["messageId"] = message_id
    return message


# --- the routes ---------------------------------------------------------------------------


def test_identify_upserts_the_user_with_its_traits_mapped(keys: dict[str, str]) -> None:
    traits = {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "phone": "+44 20 7946 0000",
        "createdAt": "2026-11-01T09:30:00Z",
        "unsubscribed_from_emails": True,
        "plan": "free trial",
        "photos_uploaded": 82,
        "address": {"city": "London"},  # an object: dropped
        "tags": ["a", "b"],  # a list: dropped
        "favourite-colour": "blue",  # outside the attribute pattern: dropped
    }
    reply = send("/v1/identify", {"userId": "u-1", "traits": traits, "writeKey": keys["ingest"]})
    assert reply.status == 200
    assert reply.body == {"success": True, "accepted": 1, "rejected": []}
    stored = user(keys, "u-1")
    assert stored is not None
    assert (stored["email"], stored["name"], stored["phone"]) == (
        "ada@example.com",
        "Ada Lovelace",
        "+44 20 7946 0000",
    )
    assert stored["signed_up_at"] == "2026-11-01T09:30:00Z"
    assert stored["unsubscribed_from_emails"] is True
    assert stored["custom_attributes"] == {"plan": "free trial", "photos_uploaded": 82}


def test_identify_reads_rudderstacks_context_traits_and_a_later_identify_wins(keys: dict[str, str]) -> None:
    batch(
        keys["ingest"],
        {
            "type": "identify",
            "userId": "u-2",
            "context": {"traits": {"email": "old@example.com", "plan": "pro"}},
        },
        {"type": "identify", "userId": "u-2", "traits": {"email": "new@example.com"}},
    )
    stored = user(keys, "u-2")
    assert stored is not None
    assert stored["email"] == "new@example.com"
    assert stored["custom_attributes"] == {"plan": "pro"}


def test_track_records_a_sanitized_event_and_creates_an_unknown_user(keys: dict[str, str]) -> None:
    assert user(keys, "u-3") is None
    body = track("u-3", "Order Completed!", properties={"revenue": 42.5, "items": [1, 2]})
    reply = send("/v1/track", {**body, "writeKey": keys["ingest"]})
    assert reply.body == {"success": True, "accepted": 1, "rejected": []}
    assert user(keys, "u-3") is not None
    assert events_of(keys, "u-3")["order_completed_"] == {
        "event_name": "order_completed_",
        "count": 1,
        "first_at": NOW_ISO,
        "last_at": NOW_ISO,
    }


def test_group_upserts_the_company_and_links_the_user(keys: dict[str, str]) -> None:
    traits = {
        "name": "Acme",
        "plan": "pro",
        "monthly_spend": 499,
        "size": 40,
        "industry": "retail",
        "website": "https://acme.example",
        "createdAt": "2024-01-02T03:04:05Z",
        "employees": 40,
        "address": {"city": "Paris"},
    }
    body = {"userId": "u-4", "groupId": "acme", "traits": traits}
    reply = send("/v1/group", body, headers=basic(keys["ingest"]))
    assert reply.body == {"success": True, "accepted": 1, "rejected": []}
    company = call("GET", "/v1/companies/acme", key=keys["read"]).body
    assert {k: company[k] for k in ("name", "plan", "monthly_spend", "size", "industry", "website")} == {
        "name": "Acme",
        "plan": "pro",
        "monthly_spend": 499,
        "size": 40,
        "industry": "retail",
        "website": "https://acme.example",
    }
    assert company["remote_created_at"] == "2024-01-02T03:04:05Z"
    assert company["custom_attributes"] == {"employees": 40}
    stored = user(keys, "u-4")
    assert stored is not None and stored["company_ids"] == ["acme"]
    # A second group adds a company; the first link stays.
    batch(keys["ingest"], {"type": "group", "userId": "u-4", "groupId": "globex"})
    stored = user(keys, "u-4")
    assert stored is not None and stored["company_ids"] == ["acme", "globex"]


def test_page_and_screen_record_their_events_and_alias_does_nothing(keys: dict[str, str]) -> None:
    for path in ("/v1/page", "/v1/screen"):
        reply = send(path, {"userId": "u-5", "name": "Pricing", "writeKey": keys["admin"]})
        assert reply.body == {"success": True, "accepted": 1, "rejected": []}
    assert set(events_of(keys, "u-5")) == {"page_viewed", "screen_viewed"}
    reply = send("/v1/alias", {"previousId": "anon-1", "userId": "u-6", "writeKey": keys["ingest"]})
    assert reply.body == {"success": True, "accepted": 1, "rejected": []}
    assert user(keys, "u-6") is None


# --- the write key --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body", "basic", "bearer"])
def test_the_write_key_is_read_from_the_body_basic_auth_or_a_bearer_token(
    keys: dict[str, str], where: str
) -> None:
    message = {"userId": f"u-{where}", "traits": {"email": f"{where}@example.com"}}
    if where == "body":
        reply = send("/v1/identify", {**message, "writeKey": keys["ingest"]})
    elif where == "basic":
        reply = send("/v1/identify", message, headers=basic(keys["ingest"]))
    else:
        reply = send("/v1/identify", message, key=keys["ingest"])
    assert reply.status == 200 and reply.body["accepted"] == 1
    stored = user(keys, f"u-{where}")
    assert stored is not None and stored["email"] == f"{where}@example.com"


@pytest.mark.parametrize(
    "headers, body_key",
    [
        ({}, None),  # no key at all
        ({}, "sk_not_a_key_of_this_stack"),
        ({"Authorization": "Bearer sk_not_a_key_of_this_stack"}, None),
        ({"Authorization": "Basic !!!"}, None),  # not base64
        ({"Authorization": "Digest abc"}, None),
    ],
    ids=["none", "unknown in body", "unknown bearer", "broken basic", "other scheme"],
)
def test_a_missing_or_bad_key_is_a_401_with_the_authorizers_body(
    keys: dict[str, str], headers: dict[str, str], body_key: str | None
) -> None:
    body: dict[str, Any] = {"batch": [track("u-401", "x")]}
    if body_key:
        body["writeKey"] = body_key
    reply = send("/v1/batch", body, headers=headers)
    assert reply.status == 401
    assert reply.error_code == "unauthorized" and reply.headers["www-authenticate"] == "Bearer"
    assert user(keys, "u-401") is None


def test_a_header_key_decides_before_the_body_is_read(keys: dict[str, str]) -> None:
    # A bad header key is a 401 even with a good key in the body, and whatever the body.
    reply = send(
        "/v1/track", {**track("u-7", "x"), "writeKey": keys["ingest"]}, key="sk_not_a_key_of_this_stack"
    )
    assert reply.status == 401
    assert send("/v1/track", b"not json", key="sk_not_a_key_of_this_stack").status == 401
    assert send("/v1/track", b"not json", key=keys["read"]).status == 403
    assert user(keys, "u-7") is None


def test_a_revoked_key_is_a_401(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "ingest", "name": "app"}).body
    assert send("/v1/track", {**track("u-8", "x"), "writeKey": created["key"]}).status == 200
    assert call("DELETE", f"/v1/api_keys/{created['id']}", key=keys["admin"]).status == 204
    reply = send("/v1/track", {**track("u-8", "y"), "writeKey": created["key"]})
    assert reply.status == 401
    assert set(events_of(keys, "u-8")) == {"x"}


@pytest.mark.parametrize("role", ["read", "write"])
def test_a_key_of_another_role_is_a_403(keys: dict[str, str], role: str) -> None:
    assert send("/v1/batch", {"batch": [track("u-9", "x")], "writeKey": keys[role]}).status == 403
    reply = send("/v1/batch", {"batch": [track("u-9", "x")]}, headers=basic(keys[role]))
    assert reply.status == 403 and reply.error_code == "forbidden"
    assert user(keys, "u-9") is None


# --- bodies ---------------------------------------------------------------------------------


def test_a_gzip_body_is_read_whichever_way_the_key_comes(keys: dict[str, str]) -> None:
    body = {"batch": [track("u-10", "signed_in")], "writeKey": keys["ingest"]}
    assert send("/v1/batch", body, gzipped=True).body["accepted"] == 1
    body = {"batch": [track("u-10", "signed_in", "m-2")]}
    assert send("/v1/batch", body, gzipped=True, headers=basic(keys["ingest"])).body["accepted"] == 1
    assert events_of(keys, "u-10")["signed_in"]["count"] == 2


def test_a_body_that_is_not_json_is_a_400(keys: dict[str, str]) -> None:
    reply = send("/v1/batch", b"{not json", headers=basic(keys["ingest"]))
    assert reply.status == 400 and reply.error_code == "malformed_json"
    # Without a header key, the key is in the body: a body that cannot be read is a 400 first.
    assert send("/v1/batch", b"{not json").status == 400
    assert send("/v1/batch", [1, 2], headers=basic(keys["ingest"])).status == 400
    reply = send("/v1/batch", {"batch": {"not": "a list"}}, headers=basic(keys["ingest"]))
    assert reply.status == 400 and reply.error_code == "malformed_batch"


def test_broken_gzip_and_unknown_encodings_are_400s(keys: dict[str, str]) -> None:
    good = gzip.compress(json.dumps({"batch": [track("u-11", "x")]}).encode())
    headers = {**basic(keys["ingest"]), "Content-Encoding": "gzip"}
    assert send("/v1/batch", good[:-12], headers=headers).status == 400  # cut short
    assert send("/v1/batch", b"\x1f\x8b" + b"\x00" * 40, headers=headers).status == 400
    reply = send("/v1/batch", b"{}", headers={**basic(keys["ingest"]), "Content-Encoding": "br"})
    assert reply.status == 400 and reply.error_code == "malformed_body"
    assert user(keys, "u-11") is None


def test_over_500_kb_uncompressed_is_a_413_and_nothing_is_kept(keys: dict[str, str]) -> None:
    # 30 messages of ~17 KB: each under 32 KB, together over 500 KB (gzip makes it small on the wire).
    messages = [track(f"u-big-{i}", "x", properties={"blob": "y" * 17_000}) for i in range(30)]
    body = {"batch": messages, "writeKey": keys["ingest"]}
    assert len(gzip.compress(json.dumps(body).encode())) < 100_000
    reply = send("/v1/batch", body, gzipped=True)
    assert reply.status == 413 and reply.error_code == "payload_too_large"
    assert user(keys, "u-big-0") is None
    # A small body that inflates to a huge one (a gzip bomb) stops at the limit.
    bomb = gzip.compress(b" " * 50_000_000)
    assert (
        send("/v1/batch", bomb, headers={**basic(keys["ingest"]), "Content-Encoding": "gzip"}).status == 413
    )


def test_more_than_2500_messages_is_a_413_and_nothing_is_kept(keys: dict[str, str]) -> None:
    messages = [{"type": "identify", "userId": f"u-many-{i}"} for i in range(2501)]
    reply = send("/v1/batch", {"batch": messages}, headers=basic(keys["ingest"]))
    assert reply.status == 413
    assert user(keys, "u-many-0") is None


def test_a_message_over_32_kb_is_rejected_alone(keys: dict[str, str]) -> None:
    reply = batch(
        keys["ingest"],
        track("u-12", "small"),
        track("u-12", "large", properties={"blob": "z" * 33_000}),
        track("u-12", "after"),
    )
    assert reply.body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in reply.body["rejected"]] == [(1, "message_too_large")]
    assert set(events_of(keys, "u-12")) == {"small", "after"}


def test_each_bad_message_is_reported_and_the_others_kept(keys: dict[str, str]) -> None:
    batch(keys["ingest"], {"type": "identify", "userId": "u-13", "traits": {"plan": "free"}})
    reply = batch(
        keys["ingest"],
        {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "x@example.com"}},
        {"type": "identify", "userId": "u-13", "traits": {"plan": 3}},  # plan holds strings
        {"type": "launch", "userId": "u-13"},
        track("u-13", "9 lives"),
        track("u-13", "later", timestamp="2999-01-01T00:00:00Z"),
        "not an object",
        {"type": "group", "userId": "u-13"},
        track("u-13", "kept"),
        {"type": "identify", "userId": "u-13", "traits": {"email": "e" * 300}},
    )
    assert [(r["index"], r["code"]) for r in reply.body["rejected"]] == [
        (0, "no_user_id"),
        (1, "invalid_traits"),
        (2, "invalid_type"),
        (3, "invalid_event_name"),
        (4, "in_the_future"),
        (5, "invalid_message"),
        (6, "no_group_id"),
        (8, "invalid_traits"),
    ]
    assert all(r["message"] for r in reply.body["rejected"])
    assert reply.body["accepted"] == 1
    stored = user(keys, "u-13")
    assert stored is not None and stored["custom_attributes"] == {"plan": "free"} and stored["email"] is None
    assert set(events_of(keys, "u-13")) == {"kept"}


def test_a_trait_whose_type_clashes_within_one_batch_rejects_only_its_message(keys: dict[str, str]) -> None:
    reply = batch(
        keys["ingest"],
        {"type": "identify", "userId": "u-14", "traits": {"seats": 3}},
        {"type": "identify", "userId": "u-15", "traits": {"seats": "three"}},
        {"type": "group", "userId": "u-14", "groupId": "c-14", "traits": {"tier": "gold"}},
        {"type": "group", "userId": "u-15", "groupId": "c-15", "traits": {"tier": 2}},
    )
    assert [(r["index"], r["code"]) for r in reply.body["rejected"]] == [
        (1, "invalid_traits"),
        (3, "invalid_traits"),
    ]
    assert user(keys, "u-14")["custom_attributes"] == {"seats": 3}  # type: ignore[index]
    assert call("GET", "/v1/companies/c-15", key=keys["read"]).status == 404
    u15 = user(keys, "u-15")
    assert u15 is None  # its only messages were rejected


# --- time and idempotency -----------------------------------------------------------------


def test_original_timestamp_is_corrected_by_the_clients_clock_error(keys: dict[str, str]) -> None:
    # The client's clock is an hour behind: it stamped the event 10 s before it sent the batch.
    message = {
        "type": "track",
        "userId": "u-16",
        "event": "skewed",
        "originalTimestamp": "2026-11-28T08:59:50Z",
    }
    reply = batch(keys["ingest"], message, sentAt="2026-11-28T09:00:00Z")
    assert reply.body["accepted"] == 1
    at = events_of(keys, "u-16")["skewed"]["last_at"]
    stored = user_store.get("u-16")
    assert stored is not None
    received = float(stored["created_at"])  # written as the batch arrived
    from segmentation.values import parse_timestamp

    assert abs(float(parse_timestamp(at)) - (received - 10)) < 1.0
    # `timestamp` wins, as sent.
    batch(keys["ingest"], {**message, "event": "exact", "timestamp": NOW_ISO}, sentAt="2026-11-28T09:00:00Z")
    assert events_of(keys, "u-16")["exact"]["last_at"] == NOW_ISO


def test_a_batch_sent_twice_counts_its_events_once(keys: dict[str, str]) -> None:
    messages = [
        {"type": "identify", "userId": "u-17", "messageId": "m-1", "traits": {"email": "a@example.com"}},
        track("u-17", "clicked", "m-2"),
        track("u-17", "clicked", "m-3"),
        track("u-18", "clicked", "m-2"),  # the same id for another user is another message
        track("u-17", "clicked", "m-3"),  # repeated within the batch: once
        {"type": "group", "userId": "u-17", "groupId": "acme", "messageId": "m-4"},
    ]
    first = batch(keys["ingest"], *messages)
    again = batch(keys["ingest"], *messages)
    assert first.body["accepted"] == again.body["accepted"] == 6
    assert events_of(keys, "u-17")["clicked"]["count"] == 2
    assert events_of(keys, "u-18")["clicked"]["count"] == 1
    before = user_store.get("u-17")
    assert before is not None and before["rev"] == 1  # the second send wrote nothing


# --- batched writes and their faults --------------------------------------------------------


@contextmanager
def counted_calls() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    client = storage_aws.dynamodb().meta.client

    def count(event_name: str, **_: Any) -> None:
        counts[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.dynamodb", count)
    try:
        yield counts
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


@pytest.mark.long
def test_a_batch_of_2500_messages_is_written_in_batches(keys: dict[str, str]) -> None:
    # 100 users, each identified and then doing 24 events (ids included): 2,500 messages.
    messages: list[dict[str, Any]] = []
    for u in range(100):
        messages.append(
            {"type": "identify", "userId": f"b-{u}", "messageId": f"i-{u}", "traits": {"score": u}}
        )
        messages += [track(f"b-{u}", "viewed", f"e-{u}-{n}") for n in range(24)]
    body = json.dumps({"batch": messages}).encode()
    assert len(body) < 500 * 1024
    warm = [track("warm", "viewed"), {"type": "identify", "userId": "warm", "traits": {"score": 0}}]
    send("/v1/batch", {"batch": warm}, headers=basic(keys["ingest"]))  # the names are known
    with counted_calls() as counts:
        reply = send("/v1/batch", {"batch": messages}, headers=basic(keys["ingest"]))
    assert reply.status == 200 and reply.body == {"success": True, "accepted": 2500, "rejected": []}
    total = sum(counts.values())
    # 2,500 puts of ids and 100 updates: a user's 26 actions stay together, 3 users to a
    # transaction of at most 100 actions (34); one key lookup, 25 reads of ids, one read of the
    # users: far from one call per message.
    assert counts["TransactWriteItems"] == 34, counts
    assert counts["BatchGetItem"] == 26 and counts["GetItem"] == 1, counts
    assert total == 61, counts
    assert events_of(keys, "b-7")["viewed"]["count"] == 24
    assert user(keys, "b-99")["custom_attributes"] == {"score": 99}  # type: ignore[index]


def test_more_than_99_keyed_messages_for_one_user_all_count(keys: dict[str, str]) -> None:
    messages = [track("u-19", "tapped", f"t-{n}") for n in range(250)]
    assert batch(keys["ingest"], *messages).body["accepted"] == 250
    assert events_of(keys, "u-19")["tapped"]["count"] == 250


def test_a_user_changed_between_read_and_write_is_recomputed_and_nothing_is_lost(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch(keys["ingest"], track("u-20", "opened", "o-0"))
    real = dynamo.batch_get
    interfered = []

    def read_then_someone_writes(table: str, keys_: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found = real(table, keys_, **kwargs)
        if table.endswith(user_store.get_settings().users_table) and not interfered:
            interfered.append(True)  # another request's event lands on the user meanwhile
            assert (
                call(
                    "POST", "/v1/users/u-20/events", key=keys["ingest"], body={"event_name": "opened"}
                ).status
                == 202
            )
        return found

    monkeypatch.setattr(user_batches.dynamo, "batch_get", read_then_someone_writes)
    reply = batch(keys["ingest"], track("u-20", "opened", "o-1"), track("u-21", "opened", "o-1"))
    assert interfered and reply.body["accepted"] == 2
    assert events_of(keys, "u-20")["opened"]["count"] == 3  # the batch's, the interloper's, the first
    assert events_of(keys, "u-21")["opened"]["count"] == 1


def test_a_message_id_recorded_by_a_racing_request_counts_once(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [track("u-22", "paid", "p-1"), track("u-22", "paid", "p-2"), track("u-23", "paid", "p-1")]
    batch(keys["ingest"], messages[0])
    # The pre-read misses it (the racing request recorded it just after): the transaction catches it.
    monkeypatch.setattr(segment_ingest.user_batches, "recorded", lambda pairs: set())
    reply = batch(keys["ingest"], *messages)
    assert reply.body["accepted"] == 3
    assert events_of(keys, "u-22")["paid"]["count"] == 2
    assert events_of(keys, "u-23")["paid"]["count"] == 1


def test_throttling_midway_is_a_429_and_the_retry_loses_nothing_and_doubles_nothing(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [track(f"u-th-{i % 3}", "ran", f"r-{i}") for i in range(150)]
    real = dynamo.transact
    calls: list[int] = []

    def throttled_second_time(actions: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise errors.Retryable("DynamoDB: ProvisionedThroughputExceededException")
        return real(actions)

    monkeypatch.setattr(user_batches.dynamo, "transact", throttled_second_time)
    reply = send("/v1/batch", {"batch": messages}, headers=basic(keys["ingest"]))
    assert reply.status == 429 and reply.error_code == "throttled"
    monkeypatch.setattr(user_batches.dynamo, "transact", real)
    assert batch(keys["ingest"], *messages).body["accepted"] == 150
    assert [events_of(keys, f"u-th-{u}")["ran"]["count"] for u in range(3)] == [50, 50, 50]


def test_events_keep_the_summaries_the_rest_api_keeps(keys: dict[str, str]) -> None:
    batch(keys["ingest"], track("u-24", "Uploaded Photo", timestamp="2026-11-27T09:00:00Z"))
    assert (
        call(
            "POST", "/v1/users/u-24/events", key=keys["ingest"], body={"event_name": "uploaded_photo"}
        ).status
        == 202
    )
    stored = user_store.get("u-24")
    assert stored is not None
    summary = summary_of(stored, "uploaded_photo")
    assert summary is not None and summary.count == 2


def test_many_companies_are_upserted_in_transactions_not_one_call_each(keys: dict[str, str]) -> None:
    send(
        "/v1/group",
        {"userId": "warm", "groupId": "warm", "traits": {"tier": "x"}},
        headers=basic(keys["ingest"]),
    )
    messages = [
        {"type": "group", "userId": f"g-{n}", "groupId": f"co-{n}", "traits": {"plan": "pro", "tier": "a"}}
        for n in range(150)
    ]
    with counted_calls() as counts:
        reply = send("/v1/batch", {"batch": messages}, headers=basic(keys["ingest"]))
    assert reply.body["accepted"] == 150
    # Companies: 2 reads, 2 transactions; users: 2 reads, 2 transactions; the key: 1 read.
    assert counts == Counter({"BatchGetItem": 4, "TransactWriteItems": 4, "GetItem": 1}), counts
    company = call("GET", "/v1/companies/co-149", key=keys["read"]).body
    assert (company["plan"], company["custom_attributes"]) == ("pro", {"tier": "a"})
    assert user(keys, "g-149")["company_ids"] == ["co-149"]  # type: ignore[index]


def test_a_company_created_between_read_and_write_keeps_both_writes(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.storage import people_items

    real = people_items.get_many

    def read_then_someone_creates(table: str, key_name: str, ids: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found = real(table, key_name, ids, **kwargs)
        if key_name == "company_id":
            body = {"company_id": "raced", "industry": "retail"}
            assert call("POST", "/v1/companies", key=keys["ingest"], body=body).status == 201
        return found

    monkeypatch.setattr(people_items, "get_many", read_then_someone_creates)
    reply = batch(
        keys["ingest"], {"type": "group", "userId": "u-25", "groupId": "raced", "traits": {"plan": "pro"}}
    )
    assert reply.body["accepted"] == 1
    company = call("GET", "/v1/companies/raced", key=keys["read"]).body
    assert (company["industry"], company["plan"]) == ("retail", "pro")


# --- what the other write paths keep true holds here too -----------------------------------


def test_an_identify_with_a_new_email_clears_what_ses_said_of_the_old_one(keys: dict[str, str]) -> None:
    batch(keys["ingest"], {"type": "identify", "userId": "u-ses", "traits": {"email": "old@example.com"}})
    storage_aws.table(get_settings().users_table).update_item(  # as SES's bounce leaves it
        Key={"user_id": "u-ses"},
        UpdateExpression="SET email_status = :b",
        ExpressionAttributeValues={":b": "bounced"},
    )
    batch(keys["ingest"], {"type": "identify", "userId": "u-ses", "traits": {"email": "old@example.com"}})
    assert (user(keys, "u-ses") or {})["email_status"] == "bounced"  # the same address: still bounced
    batch(keys["ingest"], {"type": "identify", "userId": "u-ses", "traits": {"email": "new@example.com"}})
    assert (user(keys, "u-ses") or {})["email_status"] == "ok"


def test_a_batch_of_events_keeps_the_user_within_the_event_budget(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.event_summaries import budget

    monkeypatch.setattr(budget, "BUDGET_BYTES", 2 * 1024)
    monkeypatch.setattr(budget, "SLACK_BYTES", 256)
    messages = [
        track("u-budget", "Clicked", timestamp=f"2026-11-{day:02d}T10:00:{second:02d}Z")
        for day in range(1, 29)
        for second in range(8)
    ]
    batch(keys["ingest"], *messages)
    stored = user_store.get("u-budget") or {}
    size = budget.events_size(stored["events"])
    assert size + stored["events_room"] <= budget.BUDGET_BYTES and stored["events_room"] >= 0
    assert events_of(keys, "u-budget")["clicked"]["count"] == len(messages)
