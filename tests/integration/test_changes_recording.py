"""Every membership change is recorded in the transaction that makes it: one per change, with
its cause and its sequence, never twice, never one that did not happen (docs/upkeep.md)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from segmentation import clock, definitions
from segmentation.settings import get_settings
from segmentation.storage import (
    aws,
    companies,
    dynamo,
    events,
    membership_stats,
    membership_writes,
    memberships,
    people_scans,
    segments,
    users,
)
from segmentation.upkeep.build import build_segment, drop_segment
from segmentation.upkeep.diff import plan_update
from segmentation.upkeep.refresh import RefreshRun

from tests.integration.upkeep_support import (
    DAY,
    FakeContext,
    Stack,
    epoch,
    load_handler,
    make_segment,
    members,
    upkeep_stack,
    upsert_user,
)

PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


@pytest.fixture
def stack() -> Iterator[Stack]:
    with upkeep_stack() as made:
        yield made


@pytest.fixture
def stream() -> Any:
    handler = load_handler("membership_stream").lambda_handler

    def feed(made: Stack, table: str = "UsersTable") -> None:
        records = made.stream_records(made.tables[table])
        assert records, "expected stream records"
        assert handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}

    return feed


def recorded(segment_id: str | None = None, member_id: str | None = None) -> list[dict[str, Any]]:
    """Every change kept, in (segment, member, sequence) order."""
    table = aws.table(get_settings().changes_table)
    items: list[dict[str, Any]] = []
    answer = table.scan()
    items += answer["Items"]
    while "LastEvaluatedKey" in answer:
        answer = table.scan(ExclusiveStartKey=answer["LastEvaluatedKey"])
        items += answer["Items"]
    found = [
        i
        for i in items
        if (segment_id is None or i["segment_id"] == segment_id)
        and (member_id is None or i["member_id"] == member_id)
    ]
    return sorted(found, key=lambda i: (i["segment_id"], i["member_id"], int(i["sequence"])))


def story(segment_id: str, member_id: str) -> list[tuple[int, str, str]]:
    return [(int(i["sequence"]), i["change"], i["cause"]) for i in recorded(segment_id, member_id)]


def assert_history_agrees_with_membership(segment_ids: list[str]) -> None:
    """For every member ever recorded: sequences 1..n with no gap or repeat, entries and exits
    alternating, and the last one saying whether it is a member now."""
    for segment_id in segment_ids:
        by_member: dict[str, list[dict[str, Any]]] = {}
        for item in recorded(segment_id):
            by_member.setdefault(str(item["member_id"]), []).append(item)
        now_in = set(members(segment_id))
        assert now_in <= set(by_member), f"members of {segment_id} with no entry recorded"
        for member_id, history in by_member.items():
            assert [int(i["sequence"]) for i in history] == list(range(1, len(history) + 1)), history
            kinds = [i["change"] for i in history]
            assert kinds == [("entered", "exited")[k % 2] for k in range(len(kinds))], history
            assert (kinds[-1] == "entered") == (member_id in now_in), (segment_id, member_id, history)


# --- a change per cause -------------------------------------------------------------------------


def test_an_attribute_change_records_entries_with_cause_attributes(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 3600)}, plan="pro")
    stream(stack)
    assert story("pro", "u1") == [(1, "entered", "attributes")]
    assert story("new", "u1") == [(1, "entered", "attributes")]
    change = recorded("pro", "u1")[0]
    assert change["target"] == "users" and abs(float(change["at"]) - clock.now()) < 60
    assert int(change["expires_at"]) == int(change["at"]) + 90 * 86400

    upsert_user("u1", plan="free")
    stream(stack)
    assert story("pro", "u1") == [(1, "entered", "attributes"), (2, "exited", "attributes")]
    assert_history_agrees_with_membership(["pro", "new"])


def test_a_login_records_cause_login(stack, stream):
    upsert_user(
        "u1", {"signed_up_at": epoch(clock.now() - 40 * DAY), "last_seen_at": epoch(clock.now() - 40 * DAY)}
    )
    stream(stack)
    assert story("slipping_away", "u1") == [(1, "entered", "attributes")]
    users.record_login("u1", epoch(clock.now()), clock.now())
    stream(stack)
    assert story("active", "u1") == [(1, "entered", "login")]
    assert story("slipping_away", "u1") == [(1, "entered", "attributes"), (2, "exited", "login")]


def test_an_event_records_cause_event(stack, stream):
    make_segment("uploaders", {"field": "event.uploaded.count", "op": "gte", "value": 1})
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)})
    stream(stack)
    events.record("u1", "uploaded", epoch(clock.now()), None, clock.now())
    stream(stack)
    assert story("uploaders", "u1") == [(1, "entered", "event")]


def test_a_company_change_records_cause_company_for_its_users(stack, stream):
    make_segment("at_pro", {"field": "company.plan", "op": "eq", "value": "pro"})
    companies.upsert("acme", {"plan": "free"}, {}, [], clock.now())
    stream(stack, "CompaniesTable")
    upsert_user("u1", {"company_ids": ["acme"]})
    stream(stack)
    stack.skip_stream(stack.tables["CompaniesTable"])  # user_count moved: nothing reads it
    assert story("at_pro", "u1") == []
    companies.upsert("acme", {"plan": "pro"}, {}, [], clock.now())
    stream(stack, "CompaniesTable")
    assert story("at_pro", "u1") == [(1, "entered", "company")]


def test_the_clock_records_cause_time_whichever_function_finds_it(stack, stream):
    recheck = load_handler("recheck").lambda_handler
    signup = clock.now() - 3600
    for user_id in ("by_recheck", "by_rebuild", "by_stream"):
        upsert_user(user_id, {"signed_up_at": epoch(signup), "last_seen_at": epoch(signup)})
    stream(stack)
    clock.set_offset_seconds(DAY)  # every one of them is past its first day

    recheck_only = people_scans.get_item("users", "by_recheck")
    assert recheck_only is not None
    RefreshRun().refresh("users", recheck_only, clock.now())  # recheck-like: no cause of its own
    rebuild = RefreshRun()
    rebuild.refresh_ids("users", ["by_rebuild"], clock.now(), "rebuild")
    rebuild.finish()
    upsert_user("by_stream", {"name": "Ada"})  # an attribute no segment reads
    stream(stack)
    for user_id in ("by_recheck", "by_rebuild", "by_stream"):
        assert story("new", user_id) == [(1, "entered", "attributes"), (2, "exited", "time")], user_id

    # The recheck function itself, for a user whose time comes later.
    upsert_user("later", {"signed_up_at": epoch(clock.now() - 3600)})
    stream(stack)
    clock.set_offset_seconds(2 * DAY)
    assert recheck({}, FakeContext())["rechecked"] >= 1
    assert story("new", "later") == [(1, "entered", "attributes"), (2, "exited", "time")]


def test_a_write_that_flips_a_segment_the_clock_also_flipped_names_each_cause(stack, stream):
    """One stream record: `new` ended by the clock meanwhile, `pro` entered by the write."""
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 3600)}, plan="free")
    stream(stack)
    clock.set_offset_seconds(DAY)
    upsert_user("u1", plan="pro")
    stream(stack)
    assert story("new", "u1")[-1] == (2, "exited", "time")
    assert story("pro", "u1") == [(1, "entered", "attributes")]


def test_segment_builds_record_segment_created_and_segment_edited(stack, stream):
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")
    upsert_user("u2", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="free")
    stream(stack)
    record = make_segment("seg_pro", PRO)
    build_segment(definitions.definition_of(record), None, clock.now())
    assert story("seg_pro", "u1") == [(1, "entered", "segment_created")]
    with definitions.changing():
        edited = segments.update(
            record,
            name=None,
            filter_={"field": "custom_attributes.plan", "op": "eq", "value": "free"},
            now=clock.now(),
            expected_version=definitions.version(check_now=True),
        )
    build_segment(definitions.definition_of(edited), definitions.definition_of(record), clock.now())
    assert story("seg_pro", "u1") == [(1, "entered", "segment_created"), (2, "exited", "segment_edited")]
    assert story("seg_pro", "u2") == [(1, "entered", "segment_edited")]
    assert_history_agrees_with_membership(["seg_pro"])


def test_a_write_upkeep_has_not_seen_yet_is_the_cause_of_what_a_rebuild_finds(stack):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")  # its record is lost
    stack.skip_stream(stack.tables["UsersTable"])
    rebuild = RefreshRun()
    rebuild.refresh_ids("users", ["u1"], clock.now(), "rebuild")
    rebuild.finish()
    assert story("pro", "u1") == [(1, "entered", "attributes")]
    assert story("slipping_away", "u1") == [(1, "entered", "attributes")]


def test_the_rebuild_records_a_correction_no_write_explains_with_cause_rebuild(stack, stream):
    make_segment("at_pro", {"field": "company.plan", "op": "eq", "value": "pro"})
    companies.upsert("acme", {"plan": "free"}, {}, [], clock.now())
    stream(stack, "CompaniesTable")
    upsert_user("u1", {"company_ids": ["acme"]})
    stream(stack)
    stack.skip_stream(stack.tables["CompaniesTable"])
    companies.upsert("acme", {"plan": "pro"}, {}, [], clock.now())
    stack.skip_stream(stack.tables["CompaniesTable"])  # the company's record is lost
    rebuild = RefreshRun()
    rebuild.refresh_ids("users", ["u1"], clock.now(), "rebuild")
    rebuild.finish()
    assert story("at_pro", "u1") == [(1, "entered", "rebuild")]


def test_a_build_names_only_its_own_segments_and_those_referring_to_it(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", {"signed_up_at": epoch(clock.now() - 40 * DAY)}, plan="pro")  # not seen by upkeep yet
    record = make_segment("seg_pro2", PRO)
    make_segment("seg_wraps", {"field": "segment", "op": "in_segment", "value": "seg_pro2"})
    build_segment(definitions.definition_of(record), None, clock.now())
    assert story("seg_pro2", "u1") == [(1, "entered", "segment_created")]
    assert story("seg_wraps", "u1") == [(1, "entered", "segment_created")]
    assert story("pro", "u1") == [(1, "entered", "attributes")]  # the user's own write did that


def test_deleting_a_member_or_a_segment_records_exits_with_cause_deleted(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    upsert_user("u2", plan="pro")
    stream(stack)
    users.delete("u1")
    stream(stack)
    assert story("pro", "u1") == [(1, "entered", "attributes"), (2, "exited", "deleted")]
    drop_segment("pro")
    assert story("pro", "u2") == [(1, "entered", "attributes"), (2, "exited", "deleted")]
    assert "pro" not in (people_scans.get_item("users", "u2") or {}).get("segments", set())


# --- never twice, never invented ----------------------------------------------------------------


def test_a_stream_record_delivered_twice_records_nothing_twice(stack):
    handler = load_handler("membership_stream").lambda_handler
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    records = stack.stream_records(stack.tables["UsersTable"])
    handler({"Records": records}, FakeContext())
    handler({"Records": records}, FakeContext())  # the stream hands the same batch again
    assert story("pro", "u1") == [(1, "entered", "attributes")]
    assert memberships.count("segment#pro") == 1


def test_a_transaction_retried_after_its_answer_was_lost_records_once(stack, stream, monkeypatch):
    """DynamoDB committed, but the answer never came back: our retry of it must not record again."""
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    real = dynamo.client()
    lost: list[int] = []

    class LosesOneAnswer:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            answer = real.transact_write_items(**kwargs)
            if not lost:
                lost.append(1)
                raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")
            return answer

    monkeypatch.setattr(dynamo, "client", LosesOneAnswer)
    stream(stack)
    assert lost == [1]
    assert story("pro", "u1") == [(1, "entered", "attributes")]
    assert memberships.count("segment#pro") == 1


def test_the_rebuild_running_twice_records_nothing_the_second_time(stack):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    stack.skip_stream(stack.tables["UsersTable"])
    for _ in range(2):
        rebuild = RefreshRun()
        rebuild.refresh_ids("users", ["u1"], clock.now(), "rebuild")
        rebuild.finish()
    assert story("pro", "u1") == [(1, "entered", "attributes")]


def test_a_deleted_and_created_again_member_keeps_its_history_and_sequence(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    stream(stack)
    users.delete("u1")
    stream(stack)
    upsert_user("u1", plan="pro")  # a new incarnation: its item holds no sequences
    stream(stack)
    assert story("pro", "u1") == [
        (1, "entered", "attributes"),
        (2, "exited", "deleted"),
        (3, "entered", "attributes"),
    ]
    item = people_scans.get_item("users", "u1")
    assert item is not None and item["seqs"]["pro"] == 3
    assert_history_agrees_with_membership(["pro"])


def test_a_delete_seen_after_the_new_incarnation_was_evaluated_still_records_exit_and_entry(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    stream(stack)
    users.delete("u1")
    upsert_user("u1", plan="pro")
    # A rebuild (or recheck) evaluates the new incarnation before the stream sees the delete: the
    # membership the old one left passes to the new one.
    rebuild = RefreshRun()
    rebuild.refresh_ids("users", ["u1"], clock.now(), "rebuild")
    rebuild.finish()
    stream(stack)  # REMOVE (the new incarnation holds pro: nothing to remove), then INSERT
    assert story("pro", "u1") == [
        (1, "entered", "attributes"),
        (2, "exited", "deleted"),
        (3, "entered", "attributes"),  # the re-creation did it, though the rebuild found it
    ]
    assert members("pro") == ["u1"] and memberships.count("segment#pro") == 1
    assert_history_agrees_with_membership(["pro"])


# --- big diffs, undo, statistics ----------------------------------------------------------------

MANY = [f"s{i:03d}" for i in range(70)]  # 140 membership ops + 70 changes: several chunks


def test_a_chunked_diff_records_each_change_once(stack):
    aws.table(get_settings().users_table).put_item(Item={"user_id": "u1", "rev": Decimal(1)})
    user = people_scans.get_item("users", "u1")
    assert user is not None
    assert membership_writes.apply_update(plan_update("users", user, frozenset(MANY)))
    assert len(recorded(member_id="u1")) == len(MANY)
    assert {int(i["sequence"]) for i in recorded(member_id="u1")} == {1}
    assert people_scans.get_item("users", "u1")["seqs"] == dict.fromkeys(MANY, 1)  # type: ignore[index]


def test_an_undone_chunk_records_its_changes_back_and_the_next_change_follows(stack, monkeypatch):
    aws.table(get_settings().users_table).put_item(Item={"user_id": "u1", "rev": Decimal(1)})
    user = people_scans.get_item("users", "u1")
    assert user is not None
    real = dynamo.transact
    done: list[int] = []

    def write_then_change_user(items: Any) -> Any:
        answer = real(items)
        done.append(1)
        if len(done) == 1:  # a newer API write lands between the first and second chunk
            aws.table(get_settings().users_table).update_item(
                Key={"user_id": "u1"}, UpdateExpression="ADD rev :one", ExpressionAttributeValues={":one": 1}
            )
        return answer

    monkeypatch.setattr(dynamo, "transact", write_then_change_user)
    assert not membership_writes.apply_update(plan_update("users", user, frozenset(MANY)))
    monkeypatch.setattr(dynamo, "transact", real)
    undone = [s for s in MANY if story(s, "u1")]
    assert undone, "the first chunk was written, then undone"
    for segment_id in undone:
        assert [c[:2] for c in story(segment_id, "u1")] == [(1, "entered"), (2, "exited")]
    assert memberships.member_groups("u1", "segment#") == frozenset()

    # The member item never learned those sequences: the next entry still follows them.
    user = people_scans.get_item("users", "u1")
    assert user is not None
    assert membership_writes.apply_update(plan_update("users", user, frozenset(undone[:1])))
    assert [c[:2] for c in story(undone[0], "u1")] == [(1, "entered"), (2, "exited"), (3, "entered")]


def test_each_day_counts_its_entries_and_exits_on_the_count_item_until_settled(stack, stream):
    make_segment("pro", PRO)
    upsert_user("u1", plan="pro")
    upsert_user("u2", plan="pro")
    stream(stack)
    upsert_user("u2", plan="free")
    stream(stack)
    today = clock.now_datetime().date().isoformat()
    count, days = membership_stats.day_counts("pro")
    assert count == 1 and days == {today: {"entered": 2, "exited": 1}}

    clock.set_offset_seconds(DAY)
    tomorrow = clock.now_datetime().date().isoformat()
    assert membership_stats.settle_days("pro", tomorrow) == 1
    assert membership_stats.settle_days("pro", tomorrow) == 0  # a second run moves nothing twice
    assert membership_stats.day_counts("pro") == (1, {})
    assert membership_stats.settled_days("pro", today, tomorrow) == {today: {"entered": 2, "exited": 1}}
