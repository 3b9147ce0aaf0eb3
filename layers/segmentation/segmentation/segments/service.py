"""Segment commands behind the HTTP routes: check, write, then build or drop membership.

No boto3 here: definitions are read through `definitions` (cached) and written through
`storage.segments` inside `definitions.changing()`, attribute types go through
`storage.attributes`, membership through `storage.memberships` and `upkeep`.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any

from segmentation import definitions, errors
from segmentation.engine import validate_filter
from segmentation.engine.segments import dependents
from segmentation.messaging.model import Message
from segmentation.people.attributes import all_types as all_attribute_types
from segmentation.storage import memberships, messages
from segmentation.storage import segments as segment_store
from segmentation.storage.segments import ConcurrentChange, SegmentRecord
from segmentation.upkeep.build import build_segment, drop_segment
from segmentation.vocabulary import name_key

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_RANDOM_CHARS = 12  # 62**12 ≈ 3e21: a clash is practically impossible, and the put is conditional anyway


def new_segment_id() -> str:
    return "seg_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_RANDOM_CHARS))


# API.md: at most this many segments per target (the predefined ones are not counted).
MAX_SEGMENTS_PER_TARGET = 1_000

# A write checks against the definitions as of one version and fails if they changed before it
# lands; it is then checked again from scratch. Changes of segments are rare: a few tries suffice.
_WRITE_ATTEMPTS = 3


def _with_retries[T](attempt: Callable[[], T]) -> T:
    for _ in range(_WRITE_ATTEMPTS - 1):
        try:
            return attempt()
        except ConcurrentChange:
            continue
    return attempt()


def require(segment_id: str) -> SegmentRecord:
    record = definitions.get(segment_id)
    if record is None:
        raise errors.NotFound(f"No segment has the id '{segment_id}'.", code="segment_not_found")
    return record


def _require_editable(segment_id: str) -> SegmentRecord:
    record = definitions.get(segment_id, check_now=True)
    if record is None:
        raise errors.NotFound(f"No segment has the id '{segment_id}'.", code="segment_not_found")
    if record.predefined:
        raise errors.Conflict(
            f"'{record.name}' is a predefined segment: it cannot be edited or deleted.",
            code="predefined_segment",
        )
    return record


def _check_name_free(name: str, target: str, own_id: str | None = None) -> None:
    """A clash with a predefined name (never stored) is caught here; stored ones by the guard item too."""
    for record in definitions.records(target, check_now=True):
        if record.id != own_id and name_key(record.name) == name_key(name):
            raise errors.Conflict(
                f"A {target} segment named '{record.name}' already exists (names are case-insensitive).",
                code="segment_name_taken",
            )


def _check_room(target: str) -> None:
    """Race-free with the create that follows: it is conditioned on the version this count was
    read at, and every other create moves that version on."""
    stored = sum(1 for record in definitions.records(target, check_now=True) if not record.predefined)
    if stored >= MAX_SEGMENTS_PER_TARGET:
        raise errors.Invalid(
            f"This workspace already has {stored} {target} segments, the most it may have "
            f"({MAX_SEGMENTS_PER_TARGET}): delete one first.",
            [{"path": "target", "message": f"at most {MAX_SEGMENTS_PER_TARGET} segments per target"}],
            code="limit_reached",
        )


def _validated_filter(raw: Any, *, target: str, segment_id: str | None) -> dict[str, Any]:
    validate_filter(
        raw,
        target=target,
        attributes=all_attribute_types(raw),
        segments=definitions.segment_defs(check_now=True),
        segment_id=segment_id,
        path="filter",
    )
    return dict(raw)


def create_segment(name: str, target: str, raw_filter: Any, now: float) -> SegmentRecord:
    def attempt() -> SegmentRecord:
        expected = definitions.version(check_now=True)
        _check_room(target)
        _check_name_free(name, target)
        filter_ = _validated_filter(raw_filter, target=target, segment_id=None)
        with definitions.changing():
            return segment_store.create(
                segment_id=new_segment_id(),
                name=name,
                target=target,
                filter_=filter_,
                now=now,
                expected_version=expected,
            )

    record = _with_retries(attempt)
    build_segment(definitions.definition_of(record), None, now)
    return record


def update_segment(segment_id: str, name: str | None, raw_filter: Any | None, now: float) -> SegmentRecord:
    """Rename and/or refilter; None leaves a field as it is."""

    def attempt() -> tuple[SegmentRecord, SegmentRecord]:
        expected = definitions.version(check_now=True)
        current = _require_editable(segment_id)
        if name is not None:
            _check_name_free(name, current.target, own_id=current.id)
        filter_ = None
        if raw_filter is not None:
            # segment_id makes the engine reject a filter that reaches this segment again (a cycle).
            filter_ = _validated_filter(raw_filter, target=current.target, segment_id=current.id)
        with definitions.changing():
            updated = segment_store.update(
                current, name=name, filter_=filter_, now=now, expected_version=expected
            )
        return current, updated

    previous, updated = _with_retries(attempt)
    if updated.filter != previous.filter:
        build_segment(definitions.definition_of(updated), definitions.definition_of(previous), now)
    return updated


def dependent_messages(segment_id: str) -> list[str]:
    """Ids of the messages whose audience names the segment (as its segment or in its filter) and
    that hold it: live or paused, or sent with their audience not read whole yet."""
    found = (Message.from_item(item) for item in messages.scan_all())
    return sorted(
        m.id for m in found if m.holds_its_segments and segment_id in m.audience.segment_references()
    )


def delete_segment(segment_id: str) -> None:
    """Delete a segment no other segment's filter and no live or paused message refers to.

    Race-free: the delete is conditioned on the definitions' version its checks read, and both a
    segment write and a message going live move that version on (see messaging.service.put_live).
    """

    def attempt() -> None:
        expected = definitions.version(check_now=True)
        current = _require_editable(segment_id)
        filters = {r.id: r.filter for r in definitions.records(check_now=True)}
        referring = dependents(current.id, filters)
        targeting = dependent_messages(current.id)
        if referring or targeting:
            details = [
                {"path": "dependents", "segment_id": sid, "message": f"segment {sid}'s filter refers to it"}
                for sid in referring
            ] + [
                {
                    "path": "dependents",
                    "message_id": mid,
                    "message": f"message {mid}'s audience refers to it (live, paused, or still sending)",
                }
                for mid in targeting
            ]
            named = ", ".join(
                [f"segment {sid}" for sid in referring] + [f"message {mid}" for mid in targeting]
            )
            raise errors.Conflict(
                f"The segment is in use ({named}): change, pause-and-delete or delete those first.",
                details=details,
                code="segment_in_use",
            )
        with definitions.changing():
            segment_store.delete(current, expected_version=expected)

    _with_retries(attempt)
    drop_segment(segment_id)


def member_count(segment_id: str) -> int:
    return memberships.count(memberships.segment_group(segment_id))


def member_counts(segment_ids: list[str]) -> dict[str, int]:
    """Exact member counts of many segments (one BatchGetItem per 100)."""
    found = memberships.counts(memberships.segment_group(sid) for sid in segment_ids)
    return {sid: found[memberships.segment_group(sid)] for sid in segment_ids}
