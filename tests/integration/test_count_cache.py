"""POST /v1/users/count and /v1/companies/count answer again from a cache for 60 seconds (API.md:
"An answer may come from a cache up to 60 seconds old; `as_of` says when it was taken")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.auth import access
from segmentation.segments import count as counting
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import count_cache

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_count_cache_test_key_000000000000" for role in ("ingest", "read", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}
NAMED = {"field": "name", "op": "exists"}  # a field of both targets


@pytest.fixture
def api(aws: object) -> Iterator[None]:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    yield
    clock.set_offset_seconds(0)


@pytest.fixture
def calls(api: None) -> Iterator[list[tuple[str, str]]]:
    """(operation, table) of every DynamoDB call made through the shared client."""
    made: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        made.append((model.name, str(params.get("TableName", ""))))

    client = storage_aws.dynamodb().meta.client
    client.meta.events.register("before-parameter-build.dynamodb.*", record)
    yield made
    client.meta.events.unregister("before-parameter-build.dynamodb.*", record)


def add_user(user_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/users", key=KEYS["ingest"], body={"user_id": user_id, **fields})
    assert reply.status in (200, 201), reply.body


def add_company(company_id: str, **fields: Any) -> None:
    reply = call("POST", "/v1/companies", key=KEYS["ingest"], body={"company_id": company_id, **fields})
    assert reply.status in (200, 201), reply.body


def count(filter_: Any, target: str = "users") -> Reply:
    reply = call("POST", f"/v1/{target}/count", key=KEYS["read"], body={"filter": filter_})
    assert reply.status == 200, reply.body
    return reply


def scans(calls: list[tuple[str, str]]) -> list[str]:
    """The tables of users and companies read by a Scan (what a count costs)."""
    records = {get_settings().users_table, get_settings().companies_table}
    return [table for operation, table in calls if operation == "Scan" and table in records]


def later(seconds: float) -> None:
    clock.set_offset_seconds(clock.offset_seconds() + seconds)


def test_a_second_count_within_the_window_reads_no_table_and_keeps_its_as_of(
    api: None, calls: list[tuple[str, str]]
) -> None:
    add_user("u1", custom_attributes={"plan": "trial"})
    first = count(TRIAL)
    assert first.body["count"] == 1
    assert scans(calls) == [get_settings().users_table]
    add_user("u2", custom_attributes={"plan": "trial"})
    later(30)
    calls.clear()
    again = count(TRIAL)
    assert again.body == first.body  # the answer taken 30 s ago, with its as_of
    assert scans(calls) == []
    cache = get_settings().count_cache_table
    assert [op for op, table in calls if table == cache] == ["GetItem"]
    records = {get_settings().users_table, get_settings().companies_table}
    assert not [call for call in calls if call[1] in records]


def test_after_60_seconds_it_counts_again(api: None, calls: list[tuple[str, str]]) -> None:
    add_user("u1", custom_attributes={"plan": "trial"})
    first = count(TRIAL)
    add_user("u2", custom_attributes={"plan": "trial"})
    later(60)
    calls.clear()
    fresh = count(TRIAL)
    assert scans(calls) == [get_settings().users_table]
    assert fresh.body["count"] == 2 and fresh.body["as_of"] > first.body["as_of"]
    later(59)
    calls.clear()
    assert count(TRIAL).body == fresh.body  # the new answer is the cached one now
    assert scans(calls) == []


def test_key_order_does_not_matter_but_the_filter_and_the_target_do(
    api: None, calls: list[tuple[str, str]]
) -> None:
    add_user("u1", name="Ada", custom_attributes={"plan": "trial"})
    add_user("u2", name="Bob", custom_attributes={"plan": "pro"})
    add_company("acme", name="Acme")
    both = {"and": [TRIAL, NAMED]}
    assert count(both).body["count"] == 1
    calls.clear()
    reordered = {
        "and": [
            {"value": "trial", "op": "eq", "field": "custom_attributes.plan"},
            {"op": "exists", "field": "name"},
        ]
    }
    assert count(reordered).body["count"] == 1
    assert scans(calls) == []
    # Another filter, and the same filter of the other target, are counted on their own.
    assert count(NAMED).body["count"] == 2
    assert count(NAMED, "companies").body["count"] == 1
    assert count({"and": [NAMED, TRIAL]}).body["count"] == 1
    assert scans(calls) == [
        get_settings().users_table,
        get_settings().companies_table,
        get_settings().users_table,
    ]
    assert counting.cache_key("users", NAMED, 7) != counting.cache_key("companies", NAMED, 7)


def test_a_filter_naming_a_segment_is_counted_afresh_once_that_segment_changes(api: None) -> None:
    for user_id, plan in (("u1", "trial"), ("u2", "pro"), ("u3", "pro")):
        add_user(user_id, name=user_id, custom_attributes={"plan": plan})
    segment = call("POST", "/v1/segments", key=KEYS["admin"], body={"name": "Trials", "filter": TRIAL}).body[
        "id"
    ]
    named = {"and": [{"field": "segment", "op": "in_segment", "value": segment}, NAMED]}
    assert count(named).body["count"] == 1
    edited = call(
        "PUT",
        f"/v1/segments/{segment}",
        key=KEYS["admin"],
        body={"filter": {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}},
    )
    assert edited.status == 200, edited.body
    assert count(named).body["count"] == 2  # not the cached 1: the definitions' version is in the key
    # A filter naming only predefined segments (never edited) keeps its answer across edits.
    assert counting.cache_key("users", {"field": "segment", "op": "in_segment", "value": "active"}, 1) == (
        counting.cache_key("users", {"field": "segment", "op": "in_segment", "value": "active"}, 2)
    )


def test_one_stored_segment_is_read_from_its_count_each_time_uncached(
    api: None, calls: list[tuple[str, str]]
) -> None:
    add_user("u1", custom_attributes={"plan": "trial"})
    segment = call("POST", "/v1/segments", key=KEYS["admin"], body={"name": "Trials", "filter": TRIAL}).body[
        "id"
    ]
    first = count({"field": "segment", "op": "in_segment", "value": segment})
    later(5)
    calls.clear()
    second = count({"field": "segment", "op": "in_segment", "value": segment})
    assert second.body["count"] == first.body["count"] == 1
    assert second.body["as_of"] > first.body["as_of"]  # exact now, not a cached answer
    assert not [table for _, table in calls if table == get_settings().count_cache_table]


def test_a_cache_write_that_fails_still_answers_and_the_next_call_counts(
    api: None, calls: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user("u1", custom_attributes={"plan": "trial"})
    real = count_cache.dynamo.call

    def throttled(operation: str, **arguments: Any) -> Any:
        if operation == "put_item":
            raise errors.Retryable("DynamoDB: ProvisionedThroughputExceededException")
        return real(operation, **arguments)

    monkeypatch.setattr(count_cache.dynamo, "call", throttled)
    assert count(TRIAL).body["count"] == 1
    monkeypatch.setattr(count_cache.dynamo, "call", real)
    calls.clear()
    assert count(TRIAL).body["count"] == 1
    assert scans(calls) == [get_settings().users_table]


def test_an_answer_is_never_replaced_while_it_is_fresh(api: None) -> None:
    """Two instances that both missed: the second one's write does not replace the first's, so
    everyone reads the same answer (and as_of) until it expires."""
    key = counting.cache_key("users", TRIAL, 0)
    now = clock.now()
    first = counting.epoch_millis(now)
    count_cache.put(key, count=1, exact=True, margin=0, as_of=first, keep_seconds=60)
    count_cache.put(key, count=2, exact=True, margin=0, as_of=counting.epoch_millis(now + 1), keep_seconds=60)
    assert (count_cache.get(key) or {})["count"] == 1
    count_cache.put(
        key, count=3, exact=True, margin=0, as_of=counting.epoch_millis(now + 60), keep_seconds=60
    )
    stored = count_cache.get(key) or {}
    assert stored["count"] == 3 and stored["expires_at"] >= now + 120
