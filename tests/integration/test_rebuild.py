"""The nightly rebuild: coordinator fan-out, workers over several scan pages, faults and cost."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo, membership_writes, memberships
from segmentation.upkeep import rebuild

from tests.integration.upkeep_support import (
    DAY,
    FakeContext,
    Stack,
    load_handler,
    make_segment,
    members,
    stored_segments,
    upkeep_stack,
)

WORKERS = 3


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with upkeep_stack() as made:
        monkeypatch.setenv("REBUILD_WORKERS", str(WORKERS))
        get_settings.cache_clear()
        monkeypatch.setattr(rebuild, "SCAN_PAGE_LIMIT", 4)  # 30 users: several pages per slice
        yield made


class CountingClient:
    """Wraps the DynamoDB client: counts calls, and answers the first BatchGetItems of each
    request with half of its keys unprocessed, as DynamoDB does under load."""

    def __init__(self, unprocessed_rounds: int = 0) -> None:
        self.calls: Counter[str] = Counter()
        self.unprocessed_rounds = unprocessed_rounds
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        real = getattr(aws.dynamodb().meta.client, name)
        if name != "batch_get_item" or self.injected >= self.unprocessed_rounds:
            return real

        def partial(RequestItems: dict[str, Any]) -> dict[str, Any]:
            (table, request), *_ = RequestItems.items()
            keys = request["Keys"]
            if len(keys) < 2:
                return real(RequestItems=RequestItems)
            self.injected += 1
            answer = real(RequestItems={table: {**request, "Keys": keys[: len(keys) // 2]}})
            answer["UnprocessedKeys"] = {table: {**request, "Keys": keys[len(keys) // 2 :]}}
            return answer

        return partial


def put_test_data() -> None:
    """Users and companies written straight to the tables: no stream ran, nothing stored yet."""
    now = clock.now()
    users = aws.table(get_settings().users_table)
    companies = aws.table(get_settings().companies_table)
    companies.put_item(Item={"company_id": "acme", "plan": "pro", "rev": Decimal(1)})
    companies.put_item(Item={"company_id": "beta", "plan": "free", "rev": Decimal(1)})
    for i in range(30):
        users.put_item(
            Item={
                "user_id": f"u{i:02d}",
                "rev": Decimal(1),
                "signed_up_at": Decimal(int(now - (40 if i % 2 else 0.5) * DAY)),
                "company_ids": ["acme" if i % 3 == 0 else "beta"],
                "custom_attributes": {"plan": "pro" if i % 5 == 0 else "free"},
            }
        )


def run_rebuild(stack: Stack, context: FakeContext) -> int:
    coordinator = load_handler("rebuild_coordinator").lambda_handler
    worker = load_handler("rebuild_worker").lambda_handler
    assert coordinator({"time": "2026-11-28T03:00:00Z"}, context)["jobs"] == 2 * WORKERS
    handled = 0
    while records := stack.rebuild_jobs():
        for record in records:  # BatchSize 1
            assert worker({"Records": [record]}, context) == {"batchItemFailures": []}
            handled += 1
    return handled


def expected(i: int) -> set[str]:
    wanted = {"new"} if i % 2 == 0 else {"slipping_away"}
    if i % 5 == 0:
        wanted.add("pro")
    if i % 3 == 0:
        wanted.add("at_pro_company")
    return wanted


def test_rebuild_fills_every_segment_and_repeats_for_free(stack, monkeypatch):
    make_segment("pro", {"field": "custom_attributes.plan", "op": "eq", "value": "pro"})
    make_segment("at_pro_company", {"field": "company.plan", "op": "eq", "value": "pro"})
    make_segment("pro_plan", {"field": "plan", "op": "eq", "value": "pro"}, target="companies")
    put_test_data()
    client = CountingClient(unprocessed_rounds=5)
    monkeypatch.setattr(dynamo, "client", lambda: client)

    assert run_rebuild(stack, FakeContext()) == 2 * WORKERS
    assert client.injected == 5  # unprocessed keys were met, and retried
    for i in range(30):
        assert stored_segments("users", f"u{i:02d}") == expected(i)
    assert members("pro") == [f"u{i:02d}" for i in range(30) if i % 5 == 0]
    assert memberships.counts(["segment#pro", "segment#new", "segment#at_pro_company"]) == {
        "segment#pro": 6,
        "segment#new": 15,
        "segment#at_pro_company": 10,
    }
    assert members("pro_plan") == ["acme"]

    # A second run changes nothing: no writes, a bounded number of reads.
    client.calls.clear()
    run_rebuild(stack, FakeContext())
    assert client.calls["transact_write_items"] == 0
    assert memberships.count("segment#pro") == 6


def test_a_worker_short_of_time_requeues_its_cursor(stack):
    make_segment("pro", {"field": "custom_attributes.plan", "op": "eq", "value": "pro"})
    put_test_data()
    short = FakeContext(seconds_left=rebuild.REQUEUE_WHEN_SECONDS_LEFT - 1)
    handled = run_rebuild(stack, short)
    assert handled > 2 * WORKERS  # jobs came back with cursors
    assert memberships.count("segment#pro") == 6
    assert memberships.count("segment#new") == 15


def test_the_coordinator_queues_one_job_per_slice_and_target(stack):
    coordinator = load_handler("rebuild_coordinator").lambda_handler
    coordinator({"time": "2026-11-28T03:00:00Z"}, FakeContext())
    queued = [json.loads(r["body"]) for r in stack.rebuild_jobs()]
    assert sorted((j["target"], j["segment"]) for j in queued) == [
        (t, i) for t in ("companies", "users") for i in range(WORKERS)
    ]
    assert {j["run_id"] for j in queued} == {"2026-11-28T03:00:00Z"}
    assert all(j["total_segments"] == WORKERS and j["cursor"] is None for j in queued)


def test_a_record_that_fails_is_parked_alone_and_the_rest_of_its_slice_completes(stack, monkeypatch):
    make_segment("pro", {"field": "custom_attributes.plan", "op": "eq", "value": "pro"})
    make_segment("at_pro_company", {"field": "company.plan", "op": "eq", "value": "pro"})
    put_test_data()
    real_apply = membership_writes.apply_update

    def fail_for_u05(update, guard=None):
        if update.member_id == "u05":
            raise RuntimeError("a bug that only u05's data meets")
        return real_apply(update, guard)

    monkeypatch.setattr(membership_writes, "apply_update", fail_for_u05)
    coordinator = load_handler("rebuild_coordinator").lambda_handler
    worker = load_handler("rebuild_worker").lambda_handler
    coordinator({"time": "2026-11-28T03:00:00Z"}, FakeContext())
    parked: list[dict] = []
    while records := stack.rebuild_jobs():
        for record in records:
            if json.loads(record["body"])["kind"] == "members":
                parked.append(record)
                continue
            assert worker({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}
    assert [json.loads(r["body"]) for r in parked] == [
        {"kind": "members", "target": "users", "member_ids": ["u05"]}
    ]
    assert members("pro") == [f"u{i:02d}" for i in range(30) if i % 5 == 0 and i != 5]
    for i in range(30):
        if i != 5:
            assert stored_segments("users", f"u{i:02d}") == expected(i)

    # Parked alone, it fails alone (the queue retries it, then keeps it in the dead-letter queue)...
    assert worker({"Records": parked}, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": parked[0]["messageId"]}]
    }
    # ...and once the cause is gone, its retry puts it right.
    monkeypatch.setattr(membership_writes, "apply_update", real_apply)
    assert worker({"Records": parked}, FakeContext()) == {"batchItemFailures": []}
    assert stored_segments("users", "u05") == expected(5) and memberships.count("segment#pro") == 6
