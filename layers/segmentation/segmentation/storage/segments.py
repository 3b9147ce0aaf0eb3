"""The Segments table: stored segment definitions and their name guards.

Items (key `segment_id`):
- a segment: `segment_id` ("seg_..."), `name`, `name_key` (lower-case), `target`, `filter_json`,
  `predefined` (false), `created_at`, `updated_at` (epoch seconds). Upkeep may add `member_count`
  and `build` to it; the updates here SET only their own attributes, so those survive.
- a name guard per (target, name_key): `segment_id` = "#name#<target>#<name_key>", `owner`.
  Written in the same transaction as the segment, it makes names unique per target.
- `#meta`: `version`, ADDed 1 in the same transaction as every change. Writers pass the version
  their checks were made against; a concurrent change makes the write fail with
  `ConcurrentChange` (so two edits cannot together build a cycle or orphan a reference).

Readers go through segmentation.definitions, which caches what `read_version` and `scan` read
(and adds the predefined segments); writers run inside its `changing()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.vocabulary import name_key

META_ID = "#meta"


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


# --- reads -----------------------------------------------------------------------------------


def read_version() -> int:
    """The definitions' version (0: never written), read consistently."""
    item = (
        dynamo.call(
            "get_item", TableName=_table_name(), Key={"segment_id": META_ID}, ConsistentRead=True
        ).get("Item")
        or {}
    )
    return int(item.get("version", 0))


def scan() -> list[SegmentRecord]:
    """Every stored segment (not the predefined ones), read with one consistent Scan."""
    return [
        _from_item(item)
        for item in dynamo.scan_all(TableName=_table_name(), ConsistentRead=True)
        if not str(item["segment_id"]).startswith("#")  # skip guards and #meta
    ]


# --- writes ----------------------------------------------------------------------------------


def _meta(*, at: int | None, moves: bool) -> dict[str, Any]:
    """A transaction action on `#meta`: with `at`, it holds only while the version is `at` (0: never
    written); when it `moves`, it moves the version on (an Update), else it only checks."""
    action: dict[str, Any] = {
        "TableName": _table_name(),
        "Key": {"segment_id": META_ID},
        "ExpressionAttributeNames": {"#v": "version"},
    }
    values: dict[str, Any] = {}
    if at is not None:
        action["ConditionExpression"] = "#v = :at" if at else "attribute_not_exists(#v)"
        if at:
            values[":at"] = at
    if moves:
        action["UpdateExpression"] = "ADD #v :one"
        values[":one"] = 1
    if values:  # DynamoDB refuses an empty map
        action["ExpressionAttributeValues"] = values
    return {"Update" if moves else "ConditionCheck": action}


def version_update(expected_version: int) -> dict[str, Any]:
    """A transaction action moving the definitions' version on from `expected_version` (and
    failing if it moved meanwhile): every segment write, and a write that depends on the
    definitions' checks (a tag's delete found no segment or message naming it)."""
    return _meta(at=expected_version, moves=True)


def version_guard(version: int) -> dict[str, Any]:
    """A transaction action that holds while the definitions are still at `version` (0: never
    written): a membership computed from them is written only if no segment changed meanwhile."""
    return _meta(at=version, moves=False)


def version_bump() -> dict[str, Any]:
    """A transaction action moving the definitions' version on: a segment write checked against
    the version before it (a delete that found no dependents) then fails and checks again."""
    return _meta(at=None, moves=True)


def exists_check(segment_id: str) -> dict[str, Any]:
    """A transaction action that holds while a stored segment exists."""
    return {
        "ConditionCheck": {
            "TableName": _table_name(),
            "Key": {"segment_id": segment_id},
            "ConditionExpression": "attribute_exists(segment_id)",
        }
    }


def _write(
    actions: list[dict[str, Any]], *, guard_index: int | None, segment_index: int, segment_failed: Exception
) -> None:
    """Run one transaction; map which condition failed to the domain error it means."""
    reasons = dynamo.transact(actions)
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
            version_update(expected_version),
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
        version_update(expected_version),
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
            version_update(expected_version),
        ],
        guard_index=None,
        segment_index=0,
        segment_failed=_gone(current.id),
    )
