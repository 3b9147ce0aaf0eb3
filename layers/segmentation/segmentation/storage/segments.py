"""The Segments table: stored segment definitions, their name guards, and a cached Workspace.

Items (key `segment_id`):
- a segment: `segment_id` ("seg_..."), `name`, `name_key` (lower-case), `target`, `filter_json`,
  `predefined` (false), `created_at`, `updated_at` (epoch seconds). Upkeep may add `member_count`
  and `build` to it; the updates here SET only their own attributes, so those survive.
- a name guard per (target, name_key): `segment_id` = "#name#<target>#<name_key>", `owner`.
  Written in the same transaction as the segment, it makes names unique per target.
- `#meta`: `version`, ADDed 1 in the same transaction as every change. Writers pass the version
  their checks were made against; a concurrent change makes the write fail with
  `ConcurrentChange` (so two edits cannot together build a cycle or orphan a reference).

Readers use `load_workspace()` / `segment_defs()`: every definition (the predefined ones and the
stored ones) read with one Scan and compiled once per process, revalidated by one GetItem of
`#meta.version` at most once a second, and at once after this process changed a segment.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation import clock, errors
from segmentation.engine import PREDEFINED_SEGMENTS, SegmentDef, Workspace
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo
from segmentation.vocabulary import name_key

META_ID = "#meta"
REVALIDATE_SECONDS = 1.0


class ConcurrentChange(errors.Conflict):
    """Another writer changed the segments between our checks and our write: check again."""

    code = "concurrent_change"


@dataclass(frozen=True)
class SegmentRecord:
    id: str
    name: str
    target: str
    filter: dict[str, Any]
    predefined: bool
    created_at: float | None  # None for the predefined segments: they were never created
    updated_at: float | None

    def definition(self) -> SegmentDef:
        return SegmentDef(
            id=self.id, name=self.name, target=self.target, filter=self.filter, predefined=self.predefined
        )


_PREDEFINED_ORDER = {d.id: index for index, d in enumerate(PREDEFINED_SEGMENTS)}


def _guard_id(target: str, key: str) -> str:
    return f"#name#{target}#{key}"


def _table_name() -> str:
    return get_settings().segments_table


def _from_item(item: dict[str, Any]) -> SegmentRecord:
    return SegmentRecord(
        id=item["segment_id"],
        name=item["name"],
        target=item["target"],
        filter=json.loads(item["filter_json"]),
        predefined=False,
        created_at=float(item["created_at"]),
        updated_at=float(item["updated_at"]),
    )


def _predefined_records() -> dict[str, SegmentRecord]:
    return {
        d.id: SegmentRecord(
            id=d.id,
            name=d.name,
            target=d.target,
            filter=d.filter,
            predefined=True,
            created_at=None,
            updated_at=None,
        )
        for d in PREDEFINED_SEGMENTS
    }


# --- the process-wide cache ------------------------------------------------------------------


@dataclass
class _Snapshot:
    # The boto3 resource it was read through: a new mock or stack makes a new resource (aws.reset),
    # and a snapshot of another one is never trusted.
    resource: Any
    version: int
    records: dict[str, SegmentRecord]
    checked_at: float
    workspace: Workspace | None = field(default=None)


_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def reset_cache() -> None:
    """Forget the cached definitions (tests; and after this process changes a segment)."""
    global _snapshot
    with _lock:
        _snapshot = None


def _read_version() -> int:
    item = (
        dynamo.call(
            "get_item", TableName=_table_name(), Key={"segment_id": META_ID}, ConsistentRead=True
        ).get("Item")
        or {}
    )
    return int(item.get("version", 0))


def _scan_records() -> dict[str, SegmentRecord]:
    records = _predefined_records()
    for item in dynamo.scan_all(TableName=_table_name(), ConsistentRead=True):
        if not str(item["segment_id"]).startswith("#"):  # skip guards and #meta
            record = _from_item(item)
            records[record.id] = record
    return records


def _current(*, check_now: bool = False) -> _Snapshot:
    """The current snapshot; `check_now` skips the once-a-second allowance (used before writes)."""
    global _snapshot
    with _lock:
        now = clock.now()
        resource = aws.dynamodb()
        cached = _snapshot
        if cached is not None and cached.resource is resource:
            if not check_now and 0 <= now - cached.checked_at < REVALIDATE_SECONDS:
                return cached
            # Read the version before the data: the snapshot's version is never newer than its data.
            version = _read_version()
            if version == cached.version:
                cached.checked_at = now
                return cached
        else:
            version = _read_version()
        _snapshot = _Snapshot(resource=resource, version=version, records=_scan_records(), checked_at=now)
        return _snapshot


def load_workspace(*, check_now: bool = False) -> Workspace:
    """Every segment definition, compiled once per version and reused for every record.

    `check_now` reads the version now (one GetItem) instead of trusting a check made within the
    last second: upkeep uses it once a write's version guard found the definitions changed.
    """
    snapshot = _current(check_now=check_now)
    with _lock:
        if snapshot.workspace is None:
            snapshot.workspace = Workspace(
                [r.definition() for r in snapshot.records.values()],
                timezone=get_settings().timezone,
                version=snapshot.version,
            )
        return snapshot.workspace


def segment_defs(*, check_now: bool = False) -> dict[str, SegmentDef]:
    return {sid: r.definition() for sid, r in _current(check_now=check_now).records.items()}


def records(target: str | None = None, *, check_now: bool = False) -> list[SegmentRecord]:
    """Definitions of one target (or all): predefined first, then stored ones oldest first."""
    chosen = [r for r in _current(check_now=check_now).records.values() if target in (None, r.target)]
    return sorted(
        chosen, key=lambda r: (_PREDEFINED_ORDER.get(r.id, len(_PREDEFINED_ORDER)), r.created_at or 0.0, r.id)
    )


def get(segment_id: str, *, check_now: bool = False) -> SegmentRecord | None:
    return _current(check_now=check_now).records.get(segment_id)


def version(*, check_now: bool = False) -> int:
    """The version the current definitions were read at: pass it to a write as `expected_version`."""
    return _current(check_now=check_now).version


# --- writes ----------------------------------------------------------------------------------


def _meta_update(table_name: str, expected_version: int) -> dict[str, Any]:
    if expected_version:
        condition = "#v = :expected"
        values: dict[str, Any] = {":one": 1, ":expected": expected_version}
    else:
        condition = "attribute_not_exists(#v)"
        values = {":one": 1}
    return {
        "Update": {
            "TableName": table_name,
            "Key": {"segment_id": META_ID},
            "UpdateExpression": "ADD #v :one",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": values,
        }
    }


def version_update(expected_version: int) -> dict[str, Any]:
    """A transaction action moving the definitions' version on from `expected_version` (and
    failing if it moved meanwhile): a write that depends on the definitions' checks (a tag's
    delete found no segment or message naming it)."""
    return _meta_update(_table_name(), expected_version)


def exists_check(segment_id: str) -> dict[str, Any]:
    """A transaction action that holds while a stored segment exists."""
    return {
        "ConditionCheck": {
            "TableName": _table_name(),
            "Key": {"segment_id": segment_id},
            "ConditionExpression": "attribute_exists(segment_id)",
        }
    }


def version_guard(version: int) -> dict[str, Any]:
    """A transaction action that holds while the definitions are still at `version` (0: never
    written): a membership computed from them is written only if no segment changed meanwhile."""
    if version:
        condition, values = "#v = :v", {":v": version}
    else:
        condition, values = "attribute_not_exists(#v)", {}
    check: dict[str, Any] = {
        "TableName": _table_name(),
        "Key": {"segment_id": META_ID},
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#v": "version"},
    }
    if values:
        check["ExpressionAttributeValues"] = values
    return {"ConditionCheck": check}


def version_bump() -> dict[str, Any]:
    """A transaction action moving the definitions' version on: a segment write checked against
    the version before it (a delete that found no dependents) then fails and checks again."""
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": {"segment_id": META_ID},
            "UpdateExpression": "ADD #v :one",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":one": 1},
        }
    }


def _write(
    actions: list[dict[str, Any]], *, guard_index: int | None, segment_index: int, segment_failed: Exception
) -> None:
    """Run one transaction; map which condition failed to the domain error it means."""
    try:
        reasons = dynamo.transact(actions)
    finally:
        reset_cache()  # this process changed (or tried to change) a segment: recheck at next use
    if reasons is None:
        return
    failed = {index for index, reason in enumerate(reasons) if reason.condition_failed}
    if guard_index is not None and guard_index in failed:
        raise errors.Conflict(
            "A segment of this target already has that name (names are case-insensitive).",
            code="segment_name_taken",
        )
    if segment_index in failed:
        raise segment_failed
    raise ConcurrentChange("The segments changed during this request: try again.")


def _gone(segment_id: str) -> errors.NotFound:
    return errors.NotFound(f"No segment has the id '{segment_id}'.", code="segment_not_found")


def create(
    *, segment_id: str, name: str, target: str, filter_: dict[str, Any], now: float, expected_version: int
) -> SegmentRecord:
    table_name = _table_name()
    key = name_key(name)
    stamp = Decimal(str(round(now, 3)))
    item = {
        "segment_id": segment_id,
        "name": name,
        "name_key": key,
        "target": target,
        "filter_json": json.dumps(filter_, separators=(",", ":")),
        "predefined": False,
        "created_at": stamp,
        "updated_at": stamp,
    }
    _write(
        [
            {
                "Put": {
                    "TableName": table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(segment_id)",
                }
            },
            {
                "Put": {
                    "TableName": table_name,
                    "Item": {"segment_id": _guard_id(target, key), "owner": segment_id},
                    "ConditionExpression": "attribute_not_exists(segment_id)",
                }
            },
            _meta_update(table_name, expected_version),
        ],
        guard_index=1,
        segment_index=0,
        # A random id already taken (practically never): the caller's retry draws a new one.
        segment_failed=ConcurrentChange("That segment id was just taken: try again."),
    )
    return _from_item(item)


def update(
    current: SegmentRecord,
    *,
    name: str | None,
    filter_: dict[str, Any] | None,
    now: float,
    expected_version: int,
) -> SegmentRecord:
    """Rename and/or refilter a stored segment; a rename moves its name guard."""
    table_name = _table_name()
    new_name = current.name if name is None else name
    new_filter = current.filter if filter_ is None else filter_
    stamp = Decimal(str(round(now, 3)))
    actions: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": {"segment_id": current.id},
                "UpdateExpression": "SET #n = :name, #k = :key, #f = :filter, #u = :at",
                "ConditionExpression": "attribute_exists(segment_id)",
                "ExpressionAttributeNames": {
                    "#n": "name",
                    "#k": "name_key",
                    "#f": "filter_json",
                    "#u": "updated_at",
                },
                "ExpressionAttributeValues": {
                    ":name": new_name,
                    ":key": name_key(new_name),
                    ":filter": json.dumps(new_filter, separators=(",", ":")),
                    ":at": stamp,
                },
            }
        },
        _meta_update(table_name, expected_version),
    ]
    guard_index = None
    if name_key(new_name) != name_key(current.name):
        old_guard = {
            "TableName": table_name,
            "Key": {"segment_id": _guard_id(current.target, name_key(current.name))},
        }
        new_guard = {
            "TableName": table_name,
            "Item": {"segment_id": _guard_id(current.target, name_key(new_name)), "owner": current.id},
            "ConditionExpression": "attribute_not_exists(segment_id)",
        }
        actions += [{"Delete": old_guard}, {"Put": new_guard}]
        guard_index = len(actions) - 1
    _write(actions, guard_index=guard_index, segment_index=0, segment_failed=_gone(current.id))
    return SegmentRecord(
        id=current.id,
        name=new_name,
        target=current.target,
        filter=new_filter,
        predefined=False,
        created_at=current.created_at,
        updated_at=float(stamp),
    )


def delete(current: SegmentRecord, *, expected_version: int) -> None:
    table_name = _table_name()
    _write(
        [
            {
                "Delete": {
                    "TableName": table_name,
                    "Key": {"segment_id": current.id},
                    "ConditionExpression": "attribute_exists(segment_id)",
                }
            },
            {
                "Delete": {
                    "TableName": table_name,
                    "Key": {"segment_id": _guard_id(current.target, name_key(current.name))},
                }
            },
            _meta_update(table_name, expected_version),
        ],
        guard_index=None,
        segment_index=0,
        segment_failed=_gone(current.id),
    )
