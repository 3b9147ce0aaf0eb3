"""The Segments table under moto: name guards, versioned writes, the reads of the definitions."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import dynamo, segments

TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}


def make(name: str, target: str = "users") -> segments.SegmentRecord:
    return segments.create(
        segment_id=f"seg_{target[0]}{name.replace(' ', '')}",
        name=name,
        target=target,
        filter_=TRIAL,
        now=clock.now(),
        expected_version=segments.read_version(),
    )


def test_names_are_guarded_per_target(aws: object) -> None:
    make("Trial users")
    with pytest.raises(errors.Conflict) as clash:
        segments.create(
            segment_id="seg_Second",
            name="TRIAL users",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=segments.read_version(),
        )
    assert clash.value.code == "segment_name_taken"
    make("Trial users", target="companies")
    assert sorted((r.target, r.id) for r in segments.scan()) == [
        ("companies", "seg_cTrialusers"),
        ("users", "seg_uTrialusers"),
    ]


def test_a_taken_id_is_a_concurrent_change_to_retry(aws: object) -> None:
    make("Trial")
    with pytest.raises(segments.ConcurrentChange):
        segments.create(
            segment_id="seg_uTrial",
            name="Another",
            target="users",
            filter_=TRIAL,
            now=clock.now(),
            expected_version=segments.read_version(),
        )


def test_a_write_checked_against_an_old_version_is_refused(aws: object) -> None:
    stale = segments.read_version()
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
    assert [r.id for r in segments.scan()] == ["seg_uFirst"]


def test_update_and_delete_keep_the_guard_in_step(aws: object) -> None:
    record = make("Trial")
    renamed = segments.update(
        record,
        name="Trials",
        filter_=None,
        now=clock.now(),
        expected_version=segments.read_version(),
    )
    assert (renamed.name, renamed.filter) == ("Trials", TRIAL)
    assert segments.scan() == [renamed]
    segments.delete(renamed, expected_version=segments.read_version())
    assert segments.scan() == []
    items = storage_aws.table(get_settings().segments_table).scan()["Items"]
    assert [item["segment_id"] for item in items] == ["#meta"]  # no guard left behind
    assert int(items[0]["version"]) == 3


def test_the_version_reads_0_until_a_write_and_moves_on_with_each(aws: object) -> None:
    assert segments.read_version() == 0
    record = make("Trial")
    assert segments.read_version() == 1
    segments.delete(record, expected_version=1)
    assert segments.read_version() == 2


def test_the_version_actions_check_and_move_the_version_as_they_say(aws: object) -> None:
    def refused(action: dict[str, Any]) -> bool:
        reasons = dynamo.transact([action])
        return reasons is not None and reasons[0].condition_failed

    assert not refused(segments.version_guard(0))  # never written: 0 holds
    assert not refused(segments.version_bump())  # moves it on, whatever it was
    assert segments.read_version() == 1
    assert refused(segments.version_guard(0)) and refused(segments.version_guard(2))
    assert not refused(segments.version_guard(1))
    assert refused(segments.version_update(0)) and refused(segments.version_update(2))
    assert segments.read_version() == 1  # neither a check nor a refused update moved it
    assert not refused(segments.version_update(1))
    assert segments.read_version() == 2
