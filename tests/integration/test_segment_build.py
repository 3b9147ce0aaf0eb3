"""build_segment / drop_segment: membership is built at once, inline or fanned out."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from segmentation import clock
from segmentation.engine import SegmentDef
from segmentation.settings import get_settings
from segmentation.storage import aws, memberships
from segmentation.upkeep.build import build_segment, drop_segment

from tests.integration.upkeep_support import (
    FakeContext,
    Stack,
    load_handler,
    make_segment,
    members,
    stored_segments,
    upkeep_stack,
)

PLAN = "custom_attributes.plan"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with upkeep_stack() as made:
        users = aws.table(get_settings().users_table)
        for i in range(10):
            plan = "pro" if i < 4 else "free"
            users.put_item(
                Item={
                    "user_id": f"u{i}",
                    "rev": Decimal(1),
                    "custom_attributes": {"plan": plan, "n": Decimal(i)},
                }
            )
        yield made


def definition(segment_id: str, filter_: dict) -> SegmentDef:
    make_segment(segment_id, filter_)
    return SegmentDef(segment_id, segment_id, "users", filter_)


def test_a_small_workspace_is_built_within_the_call(stack):
    pro = definition("pro", {"field": PLAN, "op": "eq", "value": "pro"})
    result = build_segment(pro, None, clock.now())
    assert result.mode == "inline" and result.scanned == 10
    assert members("pro") == ["u0", "u1", "u2", "u3"] and memberships.count("segment#pro") == 4


def test_editing_a_segment_rebuilds_it_and_the_segments_that_refer_to_it(stack):
    from segmentation import definitions
    from segmentation.storage import segments

    pro = definition("pro", {"field": PLAN, "op": "eq", "value": "pro"})
    build_segment(pro, None, clock.now())
    big_pro = definition(
        "big_pro",
        {
            "and": [
                {"field": "segment", "op": "in_segment", "value": "pro"},
                {"field": "custom_attributes.n", "op": "gte", "value": 2},
            ]
        },
    )
    build_segment(big_pro, None, clock.now())
    assert members("big_pro") == ["u2", "u3"]

    edited_filter = {"field": PLAN, "op": "eq", "value": "free"}
    current = definitions.get("pro", check_now=True)
    assert current is not None
    with definitions.changing():
        segments.update(
            current,
            name=None,
            filter_=edited_filter,
            now=clock.now(),
            expected_version=definitions.version(check_now=True),
        )
    edited = SegmentDef("pro", "pro", "users", edited_filter)
    build_segment(edited, pro, clock.now())
    assert members("pro") == [f"u{i}" for i in range(4, 10)] and memberships.count("segment#pro") == 6
    assert members("big_pro") == [f"u{i}" for i in range(4, 10)]


def test_a_large_workspace_is_built_by_the_workers(stack, monkeypatch):
    monkeypatch.setenv("INLINE_BUILD_LIMIT", "3")
    monkeypatch.setenv("REBUILD_WORKERS", "4")
    get_settings.cache_clear()
    pro = definition("pro", {"field": PLAN, "op": "eq", "value": "pro"})
    result = build_segment(pro, None, clock.now())
    assert result.mode == "queued" and result.jobs == 4
    assert members("pro") == []  # not yet: the workers do it

    worker = load_handler("rebuild_worker").lambda_handler
    for record in stack.rebuild_jobs():
        assert worker({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}
    assert members("pro") == ["u0", "u1", "u2", "u3"] and memberships.count("segment#pro") == 4


def test_drop_removes_memberships_count_and_stored_ids(stack):
    pro = definition("pro", {"field": PLAN, "op": "eq", "value": "pro"})
    build_segment(pro, None, clock.now())
    assert drop_segment("pro") == 4
    assert members("pro") == [] and memberships.count("segment#pro") == 0
    assert memberships.member_groups("u0", "segment#") == frozenset()
    assert "pro" not in stored_segments("users", "u0")


def test_a_rename_builds_nothing(stack):
    pro = definition("pro", {"field": PLAN, "op": "eq", "value": "pro"})
    renamed = SegmentDef("pro", "Pro users", "users", pro.filter)
    assert build_segment(renamed, pro, clock.now()).mode == "unchanged"
    assert members("pro") == []
