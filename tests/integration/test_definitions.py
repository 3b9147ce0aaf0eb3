"""The definitions' process-wide cache over the Segments table (moto): what it reads, when it
reads again."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock, definitions
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import segments

TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}


@pytest.fixture
def calls(aws: object) -> Iterator[list[str]]:
    """Names of the DynamoDB operations made through the shared resource's client."""
    made: list[str] = []

    def record(model: Any, **_: Any) -> None:
        made.append(model.name)

    client = storage_aws.dynamodb().meta.client
    client.meta.events.register("before-call.dynamodb.*", record)
    yield made
    client.meta.events.unregister("before-call.dynamodb.*", record)
    clock.set_offset_seconds(0)


def make(name: str, target: str = "users") -> segments.SegmentRecord:
    with definitions.changing():
        return segments.create(
            segment_id=f"seg_{target[0]}{name.replace(' ', '')}",
            name=name,
            target=target,
            filter_=TRIAL,
            now=clock.now(),
            expected_version=definitions.version(check_now=True),
        )


def test_a_warm_process_reads_nothing_within_a_second(calls: list[str]) -> None:
    make("Trial")
    first = definitions.load_workspace()
    calls.clear()
    assert definitions.load_workspace() is first
    assert "seg_uTrial" in definitions.segment_defs()
    assert calls == []


def test_after_a_second_only_the_version_is_read(calls: list[str]) -> None:
    first = definitions.load_workspace()
    clock.set_offset_seconds(clock.offset_seconds() + 1.5)
    calls.clear()
    assert definitions.load_workspace() is first
    assert calls == ["GetItem"]


def test_this_process_sees_its_own_change_at_once(calls: list[str]) -> None:
    definitions.load_workspace()
    make("Trial")
    assert "seg_uTrial" in definitions.load_workspace().definitions


def test_another_process_change_is_seen_after_the_revalidation_interval(calls: list[str]) -> None:
    definitions.load_workspace()
    table = storage_aws.table(get_settings().segments_table)
    # Another process's write: the item and the version bump, without touching this process's cache.
    table.put_item(
        Item={
            "segment_id": "seg_Other",
            "name": "Other",
            "name_key": "other",
            "target": "users",
            "filter_json": '{"field":"email","op":"exists"}',
            "predefined": False,
            "created_at": Decimal(1),
            "updated_at": Decimal(1),
        }
    )
    table.update_item(
        Key={"segment_id": "#meta"},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": 1},
    )
    assert "seg_Other" not in definitions.segment_defs()  # still within the second
    clock.set_offset_seconds(clock.offset_seconds() + 1.5)
    assert "seg_Other" in definitions.segment_defs()
    assert "seg_Other" in definitions.load_workspace().definitions


def test_a_refused_write_still_makes_the_next_read_fresh(calls: list[str]) -> None:
    stale = definitions.version()
    make("First")
    first = definitions.load_workspace()
    calls.clear()
    with pytest.raises(segments.ConcurrentChange), definitions.changing():
        segments.create(
            segment_id="seg_Late",
            name="Late",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=stale,
        )
    calls.clear()
    assert definitions.load_workspace() is not first
    assert calls == ["GetItem", "Scan"]


def test_predefined_segments_come_first_then_the_stored_ones_oldest_first(calls: list[str]) -> None:
    make("Later")
    clock.set_offset_seconds(clock.offset_seconds() - 60)
    make("Earlier")
    ids = [record.id for record in definitions.records("users")]
    assert ids == ["new", "active", "slipping_away", "seg_uEarlier", "seg_uLater"]
    later = definitions.get("seg_uLater")
    assert later is not None and later.name == "Later" and not later.predefined
    assert definitions.definition_of(later) == definitions.segment_defs()["seg_uLater"]
