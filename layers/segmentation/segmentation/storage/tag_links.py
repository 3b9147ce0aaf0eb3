"""Tag links of the Memberships table (`tag#<tag id>`, user id): the actions storage.user_batches
puts in the transactions that write a user's `tag_ids`, and the count update that goes with them.
"""

from __future__ import annotations

from collections.abc import Iterable

from segmentation.storage import dynamo
from segmentation.storage.memberships import TAG_PREFIX, Action, count_key, table_name, tag_group


def tag_links(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (tag id, user id) links exist (BatchGetItem, 100 a call)."""
    keys = [{"group_id": tag_group(tag_id), "member_id": user_id} for tag_id, user_id in pairs]
    found = dynamo.batch_get(table_name(), keys, consistent=True, projection="group_id, member_id")
    return {(str(item["group_id"])[len(TAG_PREFIX) :], str(item["member_id"])) for item in found}


def tag_link_put(tag_id: str, user_id: str) -> Action:
    """A new link (counted by the caller's `count_update`); fails when one exists."""
    item = {"group_id": tag_group(tag_id), "member_id": user_id, "target": "users"}
    return {
        "Put": {
            "TableName": table_name(),
            "Item": item,
            "ConditionExpression": "attribute_not_exists(member_id)",
        }
    }


def tag_link_kept(tag_id: str, user_id: str) -> Action:
    """A check that a link exists: one left by a deleted incarnation of the user (its cleanup,
    `forget`, keeps it once this incarnation holds the tag), taken over as it is, already counted."""
    key = {"group_id": tag_group(tag_id), "member_id": user_id}
    return {
        "ConditionCheck": {
            "TableName": table_name(),
            "Key": key,
            "ConditionExpression": "attribute_exists(member_id)",
        }
    }


def tag_link_delete(tag_id: str, user_id: str) -> Action:
    """A link removed (uncounted by the caller's `count_update`); fails when there is none."""
    key = {"group_id": tag_group(tag_id), "member_id": user_id}
    return {
        "Delete": {
            "TableName": table_name(),
            "Key": key,
            "ConditionExpression": "attribute_exists(member_id)",
        }
    }


def count_update(group_id: str, delta: int) -> Action:
    """The count item of a group moved by `delta` (in the transaction of the links it counts)."""
    return {
        "Update": {
            "TableName": table_name(),
            "Key": count_key(group_id),
            "UpdateExpression": "ADD #n :d",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":d": delta},
        }
    }
