"""MembershipStreamFunction fed with real stream records read from moto after real writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.jobs import MembersJob
from segmentation.storage import companies, dynamo, membership_writes, memberships, people_scans, users
from segmentation.upkeep import rebuild
from segmentation.upkeep.refresh import RefreshRun

from tests.integration.upkeep_support import (
    DAY,
    FakeContext,
    Stack,
    epoch,
    load_handler,
    make_segment,
    members,
    stored_segments,
    upkeep_stack,
    upsert_user,
)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with upkeep_stack() as made:
        yield made


@pytest.fixture
def handler() -> Any:
    return load_handler("membership_stream").lambda_handler


def feed(stack: Stack, handler: Any, table: str = "UsersTable") -> dict[str, Any]:
    records = stack.stream_records(stack.tables[table])
    assert records, "expected stream records"
    result: dict[str, Any] = handler({"Records": records}, FakeContext())
    return result


def segments_of(user_id: str) -> set[str]:
    return stored_segments("users", user_id)


PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


def test_insert_update_delete_keep_members_and_counts_exact(stack, handler):
    make_segment("pro", PRO)
    now = clock.now()
    upsert_user("u1", {"signed_up_at": epoch(now - 3600), "last_seen_at": epoch(now)}, plan="pro")
    upsert_user("u2", {"signed_up_at": epoch(now - 40 * DAY)}, plan="free")
    assert feed(stack, handler) == {"batchItemFailures": []}

    assert segments_of("u1") == {"new", "active", "pro"}
    assert segments_of("u2") == {"slipping_away"}
    assert members("pro") == ["u1"] and memberships.count("segment#pro") == 1
    assert memberships.counts(["segment#new", "segment#slipping_away"]) == {
        "segment#new": 1,
        "segment#slipping_away": 1,
    }
    # recheck_at is when u1 stops being new.
    item = people_scans.get_item("users", "u1")
    assert item is not None and float(item["recheck_at"]) == pytest.approx(now - 3600 + DAY, abs=0.01)

    upsert_user("u1", plan="free")
    upsert_user("u2", plan="pro")
    feed(stack, handler)
    assert members("pro") == ["u2"] and memberships.count("segment#pro") == 1
    assert segments_of("u1") == {"new", "active"}

    users.delete("u2")
    feed(stack, handler)
    assert members("pro") == [] and memberships.count("segment#pro") == 0
    assert memberships.count("segment#slipping_away") == 0
    assert memberships.member_groups("u2", "segment#") == frozenset()


def test_records_of_upkeep_writes_only_are_skipped_without_writing(stack, handler, monkeypatch):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    feed(stack, handler)
    own_records = stack.stream_records(stack.tables["UsersTable"])
    assert own_records and all(r["eventName"] == "MODIFY" for r in own_records)

    calls: list[str] = []
    real = dynamo.client

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(real(), name)

    monkeypatch.setattr(dynamo, "client", Counting)
    assert handler({"Records": own_records}, FakeContext()) == {"batchItemFailures": []}
    assert [c for c in calls if c.startswith(("transact", "put", "update", "delete"))] == []


def test_unchanged_evaluation_writes_nothing(stack, handler, monkeypatch):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    feed(stack, handler)
    stack.skip_stream(stack.tables["UsersTable"])
    upsert_user("u1", {"name": "Ada"})  # changes nothing any segment reads

    writes: list[Any] = []
    real = dynamo.transact
    monkeypatch.setattr(dynamo, "transact", lambda items: writes.append(items) or real(items))
    feed(stack, handler)
    assert writes == []
    assert members("pro") == ["u1"]


def test_replayed_old_record_never_overwrites_a_newer_state(stack, handler):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    first = stack.stream_records(stack.tables["UsersTable"])
    handler({"Records": first}, FakeContext())
    upsert_user("u1", plan="free")
    feed(stack, handler)
    assert members("pro") == []

    # The stream delivers the first record again (a retry after a timeout, say).
    assert handler({"Records": first}, FakeContext()) == {"batchItemFailures": []}
    assert members("pro") == [] and memberships.count("segment#pro") == 0
    assert "pro" not in segments_of("u1")


def test_out_of_order_records_end_in_the_newest_state(stack, handler):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    upsert_user("u1", plan="free")
    records = stack.stream_records(stack.tables["UsersTable"])
    handler({"Records": list(reversed(records))}, FakeContext())
    assert members("pro") == [] and memberships.count("segment#pro") == 0


def test_a_poison_record_fails_alone(stack, handler):
    make_segment("pro", PRO)
    upsert_user("a", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    upsert_user("b", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    records = stack.stream_records(stack.tables["UsersTable"])
    # moto also streams a key-only INSERT for the upsert's failed conditional update: leave those out.
    good_a, good_b = [r for r in records if "rev" in r["dynamodb"].get("NewImage", {})]
    poison = {**good_a, "dynamodb": {**good_a["dynamodb"], "SequenceNumber": "999"}}
    poison["dynamodb"]["NewImage"] = {"rev": {"N": "1"}}  # no key: cannot be evaluated

    result = handler({"Records": [good_a, poison, good_b]}, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "999"}]}
    assert members("pro") == ["a", "b"] and memberships.count("segment#pro") == 2


def test_company_links_and_user_count_follow_company_ids(stack, handler):
    make_segment("big", {"field": "user_count", "op": "gte", "value": 2}, target="companies")
    companies.upsert("acme", {"name": "Acme"}, {}, [], clock.now())
    companies.upsert("beta", {"name": "Beta"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])
    upsert_user("u1", {"company_ids": ["acme"]})
    upsert_user("u2", {"company_ids": ["acme", "beta"]})
    feed(stack, handler)
    assert memberships.counts(["company#acme", "company#beta"]) == {"company#acme": 2, "company#beta": 1}
    assert members("big") == ["acme"]

    upsert_user("u1", {"company_ids": ["beta"]})
    feed(stack, handler)
    assert memberships.counts(["company#acme", "company#beta"]) == {"company#acme": 1, "company#beta": 2}
    assert members("big") == ["beta"]

    users.delete("u2")
    feed(stack, handler)
    assert memberships.counts(["company#acme", "company#beta"]) == {"company#acme": 0, "company#beta": 1}
    assert members("big") == []


def test_a_replayed_insert_links_a_new_user_once(stack, handler):
    companies.upsert("acme", {"name": "Acme"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])
    upsert_user("u1", {"company_ids": ["acme"]})
    records = stack.stream_records(stack.tables["UsersTable"])
    inserts = [r for r in records if r["eventName"] == "INSERT" and "NewImage" in r["dynamodb"]]
    assert inserts, "expected the user's INSERT record"
    # The INSERT takes no read of current links; a second delivery of it must not link twice.
    assert handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}
    assert handler({"Records": inserts}, FakeContext()) == {"batchItemFailures": []}
    assert memberships.count("company#acme") == 1
    assert memberships.member_groups("u1", memberships.COMPANY_PREFIX) == frozenset({"acme"})


def test_a_company_change_moves_its_users_when_segments_read_company_fields(stack, handler):
    make_segment("pro_company_users", {"field": "company.plan", "op": "eq", "value": "pro"})
    companies.upsert("acme", {"name": "Acme", "plan": "pro"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])
    upsert_user("u1", {"company_ids": ["acme"]})
    upsert_user("u2", {})
    feed(stack, handler)
    assert members("pro_company_users") == ["u1"]

    companies.upsert("acme", {"plan": "free"}, {"fixture": "1"}, [], clock.now())
    assert feed(stack, handler, "CompaniesTable") == {"batchItemFailures": []}
    assert members("pro_company_users") == [] and memberships.count("segment#pro_company_users") == 0
    assert segments_of("u1") == set()


def test_a_company_segment_follows_the_company_stream(stack, handler):
    make_segment("retail", {"field": "industry", "op": "eq", "value": "retail"}, target="companies")
    companies.upsert("acme", {"industry": "retail"}, {}, [], clock.now())
    feed(stack, handler, "CompaniesTable")
    assert members("retail") == ["acme"]
    item = people_scans.get_item("companies", "acme")
    assert item is not None and item["segments"] == {"retail"}

    companies.delete("acme")
    feed(stack, handler, "CompaniesTable")
    assert members("retail") == [] and memberships.count("segment#retail") == 0


def test_a_stale_record_of_a_deleted_user_never_lands_on_its_new_incarnation(stack, handler):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")  # its INSERT is not processed before the delete and re-creation
    users.delete("u1")
    upsert_user("u1", plan="free")  # created again at once, with the same rev (1) as before
    assert feed(stack, handler) == {"batchItemFailures": []}  # INSERT(pro), REMOVE, INSERT(free)
    assert members("pro") == [] and memberships.count("segment#pro") == 0
    assert "pro" not in segments_of("u1")


def test_a_delete_seen_after_the_new_incarnation_was_evaluated_keeps_its_memberships(stack, handler):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    feed(stack, handler)
    assert members("pro") == ["u1"]
    users.delete("u1")
    upsert_user("u1", plan="pro")
    # A rebuild (or recheck) evaluates the new incarnation before the stream sees the delete.
    rebuild = RefreshRun()
    rebuild.refresh_ids("users", ["u1"], clock.now())
    rebuild.finish()
    assert feed(stack, handler) == {"batchItemFailures": []}  # REMOVE, then INSERT
    assert members("pro") == ["u1"] and memberships.count("segment#pro") == 1
    assert "pro" in segments_of("u1")


def test_user_ids_that_look_like_internal_keys_are_members_like_any_other(stack, handler):
    make_segment("pro", PRO)
    odd = ["#count", "#", "#count#segment#pro", "segment#pro", "company#acme"]
    for user_id in odd:
        upsert_user(user_id, plan="pro")
    assert feed(stack, handler) == {"batchItemFailures": []}
    assert members("pro") == sorted(odd) and memberships.count("segment#pro") == len(odd)
    users.delete("#count")
    assert feed(stack, handler) == {"batchItemFailures": []}
    assert members("pro") == sorted(set(odd) - {"#count"}) and memberships.count("segment#pro") == 4


def test_a_record_that_keeps_failing_is_parked_alone_and_the_stream_goes_on(stack, handler, monkeypatch):
    make_segment("pro", PRO)
    upsert_user("a", plan="pro")
    upsert_user("b", plan="pro")
    real_apply = membership_writes.apply_update

    def fail_for_b(update, guard=None):
        if update.member_id == "b":
            raise RuntimeError("a bug that only b's data meets")
        return real_apply(update, guard)

    monkeypatch.setattr(membership_writes, "apply_update", fail_for_b)
    assert feed(stack, handler) == {"batchItemFailures": []}
    assert members("pro") == ["a"]
    parked = stack.rebuild_jobs()
    assert [json.loads(job["body"]) for job in parked] == [
        {"kind": "members", "target": "users", "member_ids": ["b"]}
    ]
    monkeypatch.setattr(membership_writes, "apply_update", real_apply)
    worker = load_handler("rebuild_worker").lambda_handler
    assert worker({"Records": parked}, FakeContext()) == {"batchItemFailures": []}
    assert members("pro") == ["a", "b"] and memberships.count("segment#pro") == 2


def test_a_segment_created_while_a_pass_evaluates_is_evaluated_again(stack, handler):
    upsert_user("u1", plan="pro")
    feed(stack, handler)
    stale = RefreshRun()  # compiled before the segment exists
    upsert_user("u1", {"last_seen_at": epoch(clock.now())})  # a change the stale pass will handle
    image = people_scans.get_item("users", "u1")
    assert image is not None
    make_segment("pro", PRO)  # the segment's build then puts u1 in it
    RefreshRun().refresh_ids("users", ["u1"], clock.now())
    assert segments_of("u1") == {"active", "pro"}
    # The older pass evaluates the change without the segment. Its write would land last and
    # take u1 out of it; but the write is guarded by the definitions' version, which moved on,
    # so it fails whole and the pass evaluates u1 again with the new definitions.
    stale.refresh("users", image, clock.now())
    assert stale.workspace.version > 0 and "pro" in stale.workspace.definitions
    assert members("pro") == ["u1"] and memberships.count("segment#pro") == 1
    assert segments_of("u1") == {"active", "pro"}


def test_a_retry_after_the_definitions_changed_reads_the_record_for_the_new_ones(stack, handler, monkeypatch):
    """A page's record read for definitions with no company field, then a company segment made:
    the guarded write fails, the pass moves on to the new definitions, and reads the record's
    companies for them (reusing the company-less record of the page would write u1 out of a
    segment it is in). An attempt then throttled past storage's own retries sets the record aside,
    and the job that parks it reconciles it from its current item."""
    companies.upsert("acme", {"name": "Acme", "plan": "pro"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])
    upsert_user("u1", {"company_ids": ["acme"]})
    feed(stack, handler)
    stale = RefreshRun()  # compiled before the company segment exists: its records carry no companies
    make_segment("pro_company_users", {"field": "company.plan", "op": "eq", "value": "pro"})
    RefreshRun().refresh_ids("users", ["u1"], clock.now())
    assert members("pro_company_users") == ["u1"]
    upsert_user("u1", {"last_seen_at": epoch(clock.now())})  # enters "active": a write to make
    image = people_scans.get_item("users", "u1")  # as the stale pass's page read it
    assert image is not None

    real_apply = membership_writes.apply_update
    calls: list[int] = []

    def guard_fails_then_throttled(update, guard=None):
        calls.append(1)
        if len(calls) == 2:  # the first attempt with the new definitions meets a throttle
            raise errors.Retryable("throttled")
        return real_apply(update, guard)

    monkeypatch.setattr(membership_writes, "apply_update", guard_fails_then_throttled)
    stale.refresh_many("users", [image], clock.now())
    monkeypatch.setattr(membership_writes, "apply_update", real_apply)
    assert len(calls) == 2 and stale.failed == {"users": ["u1"], "companies": []}
    assert members("pro_company_users") == ["u1"]  # never written out with a company-less record
    assert rebuild.run_job(MembersJob(target="users", member_ids=["u1"]), clock.now(), lambda: 60.0) is None
    assert members("pro_company_users") == ["u1"]
    assert segments_of("u1") == {"active", "pro_company_users"}


def test_users_follow_their_company_user_count_when_a_segment_reads_it(stack, handler):
    make_segment("big_company_users", {"field": "company.user_count", "op": "gte", "value": 2})
    companies.upsert("acme", {"name": "Acme"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])
    upsert_user("u1", {"company_ids": ["acme"]})
    feed(stack, handler)
    assert members("big_company_users") == []
    upsert_user("u2", {"company_ids": ["acme"]})  # u1 itself does not change
    feed(stack, handler)
    assert members("big_company_users") == ["u1", "u2"]
    users.delete("u2")
    feed(stack, handler)
    assert members("big_company_users") == [] and "big_company_users" not in segments_of("u1")
