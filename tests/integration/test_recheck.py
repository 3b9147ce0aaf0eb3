"""RecheckFunction: users leave time-relative segments when their time comes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segmentation import clock
from segmentation.storage import memberships, people_scans

from tests.integration.upkeep_support import (
    DAY,
    FakeContext,
    Stack,
    epoch,
    load_handler,
    members,
    stored_segments,
    upkeep_stack,
    upsert_user,
)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with upkeep_stack() as made:
        yield made


def test_a_user_leaves_new_once_the_first_day_is_over(stack):
    stream = load_handler("membership_stream").lambda_handler
    recheck = load_handler("recheck").lambda_handler
    signup = clock.now() - 3600
    upsert_user("u1", {"signed_up_at": epoch(signup), "last_seen_at": epoch(signup)})
    upsert_user("u2", {"signed_up_at": epoch(signup - 40 * DAY)})
    stream({"Records": stack.stream_records(stack.tables["UsersTable"])}, FakeContext())
    assert members("new") == ["u1"]

    assert recheck({}, FakeContext())["rechecked"] == 0  # nobody is due yet
    clock.set_offset_seconds(DAY - 3600 + 1)  # one second past signup + 1 day
    assert recheck({}, FakeContext())["rechecked"] == 1
    assert members("new") == [] and memberships.count("segment#new") == 0
    assert stored_segments("users", "u1") == {"active"}
    # The next flip is when u1 stops being active (last seen + 30 days).
    item = people_scans.get_item("users", "u1")
    assert item is not None and float(item["recheck_at"]) == pytest.approx(signup + 30 * DAY, abs=0.01)
    assert recheck({}, FakeContext())["rechecked"] == 0
