"""storage.memberships and storage.membership_writes on their own: pages, exact counts, big diffs
in chunks, and their undo."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from segmentation import definitions
from segmentation.settings import get_settings
from segmentation.storage import (
    aws,
    cursors,
    dynamo,
    membership_writes,
    memberships,
    people_scans,
    segments,
)
from segmentation.upkeep.diff import plan_update

from tests.integration.upkeep_support import Stack, upkeep_stack

MANY = [f"s{i:03d}" for i in range(120)]  # 240 operations: three transactions


@pytest.fixture
def stack() -> Iterator[Stack]:
    with upkeep_stack() as made:
        aws.table(get_settings().users_table).put_item(Item={"user_id": "u1", "rev": Decimal(1)})
        yield made


def test_members_come_a_page_at_a_time(stack):
    for i in range(7):
        user = {"user_id": f"m{i}", "rev": Decimal(1)}
        aws.table(get_settings().users_table).put_item(Item=user)
        assert membership_writes.apply_update(plan_update("users", user, frozenset({"seg"})))
    pages, cursor = [], None
    while True:
        page, cursor = memberships.members_page("seg", 3, cursor)
        pages.append(page)
        if cursor is None:
            break
    assert pages == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]
    assert memberships.count("segment#seg") == 7
    with pytest.raises(cursors.InvalidCursor):
        memberships.members_page("seg", 3, "not-a-cursor")


def test_a_diff_over_the_transaction_limit_is_chunked_and_stays_exact(stack):
    user = people_scans.get_item("users", "u1")
    assert user is not None
    assert membership_writes.apply_update(plan_update("users", user, frozenset(MANY)))
    assert memberships.counts(f"segment#{s}" for s in MANY) == {f"segment#{s}": 1 for s in MANY}
    assert people_scans.get_item("users", "u1")["segments"] == set(MANY)  # type: ignore[index]

    # Replaying the same (now stale) update changes nothing and counts nothing twice.
    assert not membership_writes.apply_update(plan_update("users", user, frozenset(MANY)))
    assert memberships.count("segment#s000") == 1


def test_a_change_between_chunks_undoes_the_chunks_already_written(stack, monkeypatch):
    user = people_scans.get_item("users", "u1")
    assert user is not None
    real = dynamo.transact
    done: list[int] = []

    def write_then_change_user(items):
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
    assert set(memberships.counts(f"segment#{s}" for s in MANY).values()) == {0}
    assert memberships.member_groups("u1", "segment#") == frozenset()
    assert "segments" not in (people_scans.get_item("users", "u1") or {})


def test_a_definitions_change_between_chunks_undoes_them_and_raises(stack, monkeypatch):
    """The version guard rides in the last chunk: a segment written meanwhile fails it, and the
    chunks already committed are undone, so nothing computed from the old definitions stays."""
    user = people_scans.get_item("users", "u1")
    assert user is not None
    version = definitions.load_workspace().version
    real = dynamo.transact
    done: list[int] = []

    def write_then_change_definitions(items):
        answer = real(items)
        done.append(1)
        if len(done) == 1:  # a segment is created between the first and the last chunk
            segments.create(
                segment_id="seg_new",
                name="Created meanwhile",
                target="users",
                filter_={"field": "name", "op": "known"},
                now=0.0,
                expected_version=version,
            )
        return answer

    monkeypatch.setattr(dynamo, "transact", write_then_change_definitions)
    with pytest.raises(dynamo.GuardFailed):
        membership_writes.apply_update(
            plan_update("users", user, frozenset(MANY)), segments.version_guard(version)
        )
    monkeypatch.setattr(dynamo, "transact", real)
    assert len(done) >= 3  # two chunks, then the undo
    assert set(memberships.counts(f"segment#{s}" for s in MANY).values()) == {0}
    assert memberships.member_groups("u1", "segment#") == frozenset()
    assert "segments" not in (people_scans.get_item("users", "u1") or {})


def test_the_version_guard_holds_while_the_definitions_stay(stack):
    user = people_scans.get_item("users", "u1")
    assert user is not None
    guard = segments.version_guard(definitions.load_workspace().version)
    assert membership_writes.apply_update(plan_update("users", user, frozenset({"seg"})), guard)
    assert memberships.count("segment#seg") == 1
