"""The Segments table under moto: name guards, versioned writes and the process-wide cache."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock, errors
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
    return segments.create(
        segment_id=f"seg_{target[0]}{name.replace(' ', '')}",
        name=name,
        target=target,
        filter_=TRIAL,
        now=clock.now(),
        expected_version=segments.version(check_now=True),
    )


def test_a_warm_process_reads_nothing_within_a_second(calls: list[str]) -> None:
    make("Trial")
    first = segments.load_workspace()
    calls.clear()
    assert segments.load_workspace() is first
    assert "seg_uTrial" in segments.segment_defs()
    assert calls == []


def test_after_a_second_only_the_version_is_read(calls: list[str]) -> None:
    first = segments.load_workspace()
    clock.set_offset_seconds(clock.offset_seconds() + 1.5)
    calls.clear()
    assert segments.load_workspace() is first
    assert calls == ["GetItem"]


def test_this_process_sees_its_own_change_at_once(calls: list[str]) -> None:
    segments.load_workspace()
    make("Trial")
    assert "seg_uTrial" in segments.load_workspace().definitions


def test_another_process_change_is_seen_after_the_revalidation_interval(calls: list[str]) -> None:
    segments.load_workspace()
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
    assert "seg_Other" not in segments.segment_defs()  # still within the second
    clock.set_offset_seconds(clock.offset_seconds() + 1.5)
    assert "seg_Other" in segments.segment_defs()
    assert "seg_Other" in segments.load_workspace().definitions


def test_names_are_guarded_per_target(calls: list[str]) -> None:
    make("Trial users")
    with pytest.raises(errors.Conflict) as clash:
        segments.create(
            segment_id="seg_Second",
            name="TRIAL users",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=segments.version(check_now=True),
        )
    assert clash.value.code == "segment_name_taken"
    make("Trial users", target="companies")
    assert [r.id for r in segments.records("companies")] == ["seg_cTrialusers"]
    assert [r.id for r in segments.records("users") if not r.predefined] == ["seg_uTrialusers"]


def test_a_taken_id_is_a_concurrent_change_to_retry(calls: list[str]) -> None:
    make("Trial")
    with pytest.raises(segments.ConcurrentChange):
        segments.create(
            segment_id="seg_uTrial",
            name="Another",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=segments.version(check_now=True),
        )


def test_a_write_checked_against_an_old_version_is_refused(calls: list[str]) -> None:
    stale = segments.version(check_now=True)
    make("First")
    with pytest.raises(segments.ConcurrentChange):
        segments.create(
            segment_id="seg_Late",
            name="Late",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=stale,
        )
    assert segments.get("seg_Late", check_now=True) is None


def test_update_and_delete_keep_the_guard_in_step(calls: list[str]) -> None:
    record = make("Trial")
    renamed = segments.update(
        record,
        name="Trials",
        filter_=None,
        now=clock.now(),
        expected_version=segments.version(check_now=True),
    )
    assert (renamed.name, renamed.filter) == ("Trials", TRIAL)
    assert segments.get(record.id, check_now=True) == renamed
    segments.delete(renamed, expected_version=segments.version(check_now=True))
    assert segments.get(record.id, check_now=True) is None
    items = storage_aws.table(get_settings().segments_table).scan()["Items"]
    assert [item["segment_id"] for item in items] == ["#meta"]  # no guard left behind
    assert int(items[0]["version"]) == 3
