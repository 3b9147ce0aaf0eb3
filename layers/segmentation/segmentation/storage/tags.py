"""The Tags table: tag definitions and their name guards.

Items (key `tag_id`):
- a tag: `tag_id` ("tag_..."), `name`, `name_key` (case-folded), `created_at`;
- a name guard per name_key: `tag_id` = "#name#<name_key>", `owner` (the tag's id). Written in the
  same transaction as the tag, it makes names unique case-insensitively.
Which users hold a tag, and how many, live in Memberships (`tag#<id>` and its count item): the
tag writes of storage.user_batches keep them.

A delete is conditioned on the segment definitions' version its dependents check read, and moves
that version on (storage.segments): a segment or message written meanwhile with a filter naming
the tag makes one of the two writes fail and check again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.storage import segments as segment_store
from segmentation.vocabulary import name_key

GUARD_PREFIX = "#name#"


@dataclass(frozen=True)
class TagRecord:
    id: str
    name: str
    created_at: float


def _table_name() -> str:
    return get_settings().tags_table


def _guard_id(name: str) -> str:
    return GUARD_PREFIX + name_key(name)


def _from_item(item: Mapping[str, Any]) -> TagRecord:
    return TagRecord(id=str(item["tag_id"]), name=str(item["name"]), created_at=float(item["created_at"]))


def get(tag_id: str) -> TagRecord | None:
    if tag_id.startswith(GUARD_PREFIX):
        return None
    item = dynamo.call("get_item", TableName=_table_name(), Key={"tag_id": tag_id}, ConsistentRead=True).get(
        "Item"
    )
    return None if item is None else _from_item(item)


def get_many(tag_ids: Iterable[str]) -> dict[str, TagRecord]:
    """The tags among these ids that exist (BatchGetItem, 100 a call), by id."""
    wanted = [tag_id for tag_id in dict.fromkeys(tag_ids) if not tag_id.startswith(GUARD_PREFIX)]
    found = dynamo.batch_get(_table_name(), [{"tag_id": tag_id} for tag_id in wanted], consistent=True)
    return {str(item["tag_id"]): _from_item(item) for item in found}


def all_tags() -> list[TagRecord]:
    """Every tag, by name (a workspace holds tens or hundreds: one Scan, paged)."""
    items = dynamo.scan_all(TableName=_table_name(), ConsistentRead=True)
    found = [_from_item(item) for item in items if not str(item["tag_id"]).startswith(GUARD_PREFIX)]
    return sorted(found, key=lambda tag: (name_key(tag.name), tag.id))


def ids_by_name(names: Iterable[str]) -> dict[str, str]:
    """name_key -> tag id, for the names that name a tag (their guards: BatchGetItem)."""
    keys = list(dict.fromkeys(name_key(name) for name in names))
    found = dynamo.batch_get(_table_name(), [{"tag_id": GUARD_PREFIX + key} for key in keys], consistent=True)
    return {str(item["tag_id"])[len(GUARD_PREFIX) :]: str(item["owner"]) for item in found}


def create(tag_id: str, name: str, now: float) -> TagRecord:
    """Store a new tag. Conflict (`tag_name_taken`, with the owner's id in `details`) when a tag
    has that name already."""
    stamp = Decimal(str(round(now, 3)))
    item = {"tag_id": tag_id, "name": name, "name_key": name_key(name), "created_at": stamp}
    reasons = dynamo.transact(
        [
            {
                "Put": {
                    "TableName": _table_name(),
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(tag_id)",
                }
            },
            {
                "Put": {
                    "TableName": _table_name(),
                    "Item": {"tag_id": _guard_id(name), "owner": tag_id},
                    "ConditionExpression": "attribute_not_exists(tag_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
    )
    if reasons is None:
        return _from_item(item)
    if reasons[1].condition_failed:
        owner = str((reasons[1].item or {}).get("owner", ""))
        raise errors.Conflict(
            f"A tag named {name!r} already exists (names are case-insensitive).",
            details=[{"path": "name", "tag_id": owner, "message": "taken"}] if owner else None,
            code="tag_name_taken",
        )
    raise errors.Retryable("that tag id was just taken")  # a random id drawn twice: try again


def exists_check(tag_id: str) -> dict[str, Any]:
    """A transaction action that holds while the tag exists (a message going live, say)."""
    return {
        "ConditionCheck": {
            "TableName": _table_name(),
            "Key": {"tag_id": tag_id},
            "ConditionExpression": "attribute_exists(tag_id)",
        }
    }


def delete(tag: TagRecord, *, expected_version: int) -> None:
    """Delete a tag and its name guard, conditioned on the definitions' version (moved on).
    NotFound when it is gone; segments.ConcurrentChange when the definitions moved meanwhile."""
    reasons = dynamo.transact(
        [
            {
                "Delete": {
                    "TableName": _table_name(),
                    "Key": {"tag_id": tag.id},
                    "ConditionExpression": "attribute_exists(tag_id)",
                }
            },
            {"Delete": {"TableName": _table_name(), "Key": {"tag_id": _guard_id(tag.name)}}},
            segment_store.version_update(expected_version),
        ]
    )
    if reasons is None:
        return
    if reasons[0].condition_failed:
        raise errors.NotFound(f"No tag has the id '{tag.id}'.", code="tag_not_found")
    raise segment_store.ConcurrentChange("The segments or messages changed during this request: try again.")
